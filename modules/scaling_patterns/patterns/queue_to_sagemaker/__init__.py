"""Pattern 4: SQS queue -> Lambda -> SageMaker endpoint, with partial batch responses and variant autoscaling.

Public API: :class:`SqsToSagemakerEndpoint` (construct), :class:`QueueToSageMakerSettings` (props).
"""

from scaling_patterns.spec import PatternSpec

_HERE = "scaling_patterns.patterns.queue_to_sagemaker"

PATTERN = PatternSpec(
    name="queue-to-sagemaker",
    short="q2sm",
    construct_id="queue_to_sagemaker",
    summary="SQS -> invoker Lambda (batches, partial failures) -> autoscaled SageMaker real-time endpoint (or your own endpoint)",
    settings=f"{_HERE}.settings:QueueToSageMakerSettings",
    construct=f"{_HERE}.construct:SqsToSagemakerEndpoint",
    functions=("sagemaker_invoker",),
    simulation=f"{_HERE}.simulation:scenario",
    variants=f"{_HERE}.variants:VARIANTS",
    emulator_leaves_out={
        "aws_sqs_queue_redrive_allow_policy": "moto never stores `RedriveAllowPolicy`; the provider waits for it until it times out",
        "aws_appautoscaling_target": "Application Auto Scaling `ListTagsForResource` answers 500 and the provider retries for many minutes",
        "aws_appautoscaling_policy": "needs the scalable target",
    },
    # The default image is a placeholder that cannot run: check what a real deployment does.
    rollout_baseline={"endpoint": {"type": "create", "image_uri": "111122223333.dkr.ecr.us-east-1.amazonaws.com/llm-server:1.4.0"}},
    doc="docs/patterns/queue-to-sagemaker.md",
)
