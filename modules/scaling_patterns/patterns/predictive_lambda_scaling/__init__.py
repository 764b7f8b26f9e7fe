"""Pattern 3: published inference function whose alias's provisioned concurrency is scaled and scheduled.

Public API: :class:`LambdaWithPredictiveConcurrency` (construct), :class:`PredictiveLambdaScalingSettings` (props).
"""

from scaling_patterns.spec import PatternSpec

_HERE = "scaling_patterns.patterns.predictive_lambda_scaling"
_TAGS = "Application Auto Scaling `ListTagsForResource` answers 500 and the provider retries for many minutes"

PATTERN = PatternSpec(
    name="predictive-lambda-scaling",
    short="pred",
    construct_id="predictive_lambda_scaling",
    summary="Published inference Lambda + alias with provisioned concurrency, target tracking and a schedule derived from a load profile",
    settings=f"{_HERE}.settings:PredictiveLambdaScalingSettings",
    construct=f"{_HERE}.construct:LambdaWithPredictiveConcurrency",
    functions=("predictive_inference",),
    simulation=f"{_HERE}.simulation:scenario",
    variants=f"{_HERE}.variants:VARIANTS",
    emulator_leaves_out={
        "aws_lambda_provisioned_concurrency_config": "Lambda provisioned concurrency answers 404",
        "aws_appautoscaling_target": _TAGS,
        "aws_appautoscaling_policy": "needs the scalable target",
        "aws_appautoscaling_scheduled_action": "needs the scalable target",
        "aws_autoscalingplans_scaling_plan": "AWS Auto Scaling plans answer 500 (opt-in resource)",
    },
    doc="docs/patterns/predictive-lambda-scaling.md",
)
