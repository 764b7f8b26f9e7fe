"""Pattern 5: Application Load Balancer in front of an inference fleet (stack `inference-load-balancing`).

Public API: :class:`AlbToAutoScalingFleet` (construct), :class:`InferenceLoadBalancingSettings` (props).
"""

from scaling_patterns.spec import PatternSpec

_HERE = "scaling_patterns.patterns.inference_load_balancing"

PATTERN = PatternSpec(
    name="inference-load-balancing",
    short="infer",
    construct_id="inference_load_balancing",
    summary="ALB (HTTP, or HTTPS with a certificate; or your own load balancer's target group) -> target group with health checks -> inference Auto Scaling group scaled on requests per target",
    settings=f"{_HERE}.settings:InferenceLoadBalancingSettings",
    construct=f"{_HERE}.construct:AlbToAutoScalingFleet",
    simulation=f"{_HERE}.simulation:scenario",
    variants=f"{_HERE}.variants:VARIANTS",
    doc="docs/patterns/inference-load-balancing.md",
)
