"""Pattern 2: SQS backlog drives an EC2 Auto Scaling group of workers (stack `queue-depth-scaling`).

Public API: :class:`SqsToAutoScalingWorkers` (construct), :class:`QueueDepthScalingSettings` (props).
"""

from scaling_patterns.spec import PatternSpec

_HERE = "scaling_patterns.patterns.queue_depth_scaling"

PATTERN = PatternSpec(
    name="queue-depth-scaling",
    short="queue",
    construct_id="queue_depth_scaling",
    summary="SQS work queue -> EC2 worker Auto Scaling group scaled on jobs waiting or in flight per worker (or the reference's alarm steps); job-intake Lambda",
    settings=f"{_HERE}.settings:QueueDepthScalingSettings",
    construct=f"{_HERE}.construct:SqsToAutoScalingWorkers",
    functions=("job_intake", "queue_worker"),
    simulation=f"{_HERE}.simulation:scenario",
    variants=f"{_HERE}.variants:VARIANTS",
    emulator_leaves_out={
        "aws_sqs_queue_redrive_allow_policy": "moto never stores `RedriveAllowPolicy`; the provider waits for it until it times out",
    },
    doc="docs/patterns/queue-depth-scaling.md",
)
