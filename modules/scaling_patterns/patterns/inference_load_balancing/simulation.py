"""`inference-load-balancing` in the simulator: its settings -> the scaling models it deploys (see scaling_patterns.simulation)."""

from __future__ import annotations

from typing import Mapping

from scaling_patterns.patterns.inference_load_balancing.settings import InferenceLoadBalancingSettings
from scaling_patterns.simulation.models import STEP_SECONDS, Policy, QueueWorkload, TargetTracking
from scaling_patterns.simulation.scenario import Assumption, Scenario, per_serving, resolve


def scenario(s: InferenceLoadBalancingSettings, overrides: Mapping[str, float]) -> Scenario:
    a = resolve("inference-load-balancing", {
        "seconds_per_request": Assumption(0.8, "one instance's time per request, one request at a time (75 a minute)"),
        "latency_goal_seconds": Assumption(10.0, "a request waiting longer than this for a free instance counts against the goal"),
    }, overrides)
    fleet = s.fleet
    target = s.requests_per_target_per_minute
    policy = (
        f"target tracking: ALBRequestCountPerTarget = {target:g} requests per instance per minute",
        f"{fleet.min_size}..{fleet.max_size} instances, warm-up {fleet.default_instance_warmup_seconds} s "
        f"(settings: fleet.default_instance_warmup_seconds)",
    )

    def policies() -> list[Policy]:
        # The load balancer counts every request it routes, over the healthy (serving) targets.
        return [TargetTracking(target, per_serving(lambda m: m.arrivals))]

    return Scenario(
        stack="inference-load-balancing", kind="queue", unit="instances", policy=policy, assumptions=a,
        latency_goal_seconds=a["latency_goal_seconds"].value, initial=fleet.min_size, minimum=fleet.min_size,
        maximum=fleet.max_size, warmup_seconds=fleet.default_instance_warmup_seconds,
        workload=QueueWorkload(STEP_SECONDS / a["seconds_per_request"].value), policies=policies)
