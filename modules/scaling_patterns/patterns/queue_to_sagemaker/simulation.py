"""`queue-to-sagemaker` in the simulator: its settings -> the scaling models it deploys (see scaling_patterns.simulation)."""

from __future__ import annotations

from typing import Mapping

from scaling_patterns.patterns.queue_to_sagemaker.settings import NewEndpoint, QueueToSageMakerSettings
from scaling_patterns.simulation.models import STEP_SECONDS, Policy, QueueWorkload, TargetTracking, minutes
from scaling_patterns.simulation.scenario import Assumption, Scenario, per_serving, resolve


def scenario(s: QueueToSageMakerSettings, overrides: Mapping[str, float]) -> Scenario:
    a = resolve("queue-to-sagemaker", {
        "seconds_per_invocation": Assumption(0.4, "InvokeEndpoint time per message; one instance serves one at a time, "
                                                  "each invoker invocation handles its batch one message after another"),
        "warmup_seconds": Assumption(300.0, "a new endpoint instance serves this long after it is requested", allow_zero=True),
        "latency_goal_seconds": Assumption(60.0, "a message waiting longer than this in the queue counts against the goal"),
    }, overrides)
    auto = s.autoscaling
    per_instance = STEP_SECONDS / a["seconds_per_invocation"].value
    pollers = s.max_concurrency * per_instance  # max_concurrency invokers, each one message at a time
    created = isinstance(s.endpoint, NewEndpoint)
    start = s.endpoint.initial_instance_count if isinstance(s.endpoint, NewEndpoint) else auto.min_capacity
    policy = [f"invoker: at most {s.max_concurrency} concurrent invocations -> at most {pollers:g} messages a minute"]
    if auto.enabled:
        policy.append(f"target tracking: SageMakerVariantInvocationsPerInstance = {auto.target_invocations_per_instance:g} "
                      f"a minute; cooldowns out {auto.scale_out_cooldown_seconds} s, in {auto.scale_in_cooldown_seconds} s")
        policy.append(f"{auto.min_capacity}..{auto.max_capacity} instances, starting at {start}")
        low, high = auto.min_capacity, auto.max_capacity
    else:
        policy.append(f"autoscaling disabled: {start} instances" + ("" if created else " (existing endpoint: autoscaling.min_capacity assumed)"))
        low = high = start

    def policies() -> list[Policy]:
        if not auto.enabled:
            return []
        return [TargetTracking(auto.target_invocations_per_instance, per_serving(lambda m: m.served),
                               scale_out_cooldown_minutes=minutes(auto.scale_out_cooldown_seconds),
                               scale_in_cooldown_minutes=minutes(auto.scale_in_cooldown_seconds))]

    return Scenario(
        stack="queue-to-sagemaker", kind="queue", unit="instances", policy=tuple(policy), assumptions=a,
        latency_goal_seconds=a["latency_goal_seconds"].value, initial=start, minimum=low, maximum=high,
        warmup_seconds=a["warmup_seconds"].value, workload=QueueWorkload(per_instance, cap=pollers), policies=policies)
