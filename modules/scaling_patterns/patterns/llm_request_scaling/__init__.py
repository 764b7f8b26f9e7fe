"""Pattern 1: EventBridge rule on inference-request events -> request Lambda; scheduled scaler (stack `llm-request-scaling`).

Public API: :class:`EventbridgeToScalingController` (construct), :class:`LlmRequestScalingSettings` (props).
"""

from scaling_patterns.spec import PatternSpec

_HERE = "scaling_patterns.patterns.llm_request_scaling"

PATTERN = PatternSpec(
    name="llm-request-scaling",
    short="llm",
    construct_id="llm_request_scaling",
    summary="EventBridge rule on inference-request events -> request Lambda (metrics as EMF, no API call per request); with a scaling target, a scaler Lambda on a 1-minute schedule sets its capacity from the rule's matched events (scales in when requests stop; the only writer)",
    settings=f"{_HERE}.settings:LlmRequestScalingSettings",
    construct=f"{_HERE}.construct:EventbridgeToScalingController",
    functions=("scaling_controller",),
    simulation=f"{_HERE}.simulation:scenario",
    checks=f"{_HERE}.checks:check",
    variants=f"{_HERE}.variants:VARIANTS",
    plan_labels=(
        # The scaler is configured through its environment.
        ("aws_lambda_function", "environment.*.variables.MIN_CAPACITY", "controller's lowest capacity"),
        ("aws_lambda_function", "environment.*.variables.MAX_CAPACITY", "controller's highest capacity"),
        ("aws_lambda_function", "environment.*.variables.REQUESTS_PER_INSTANCE_PER_MINUTE", "requests one instance serves per minute"),
        ("aws_lambda_function", "environment.*.variables.COOLDOWN_SECONDS", "controller cooldown (s)"),
        ("aws_lambda_function", "environment.*.variables.RATE_WINDOW_MINUTES", "request-rate window (min)"),
    ),
    doc="docs/patterns/llm-request-scaling.md",
)
