"""`predictive-lambda-scaling` in the simulator: its settings -> the scaling models it deploys (see scaling_patterns.simulation)."""

from __future__ import annotations

from typing import Mapping

from scaling_patterns.patterns.predictive_lambda_scaling.settings import PredictiveLambdaScalingSettings
from scaling_patterns.simulation.models import ConcurrencyWorkload, Policy, ScheduledMinimum, TargetTracking, minutes
from scaling_patterns.simulation.scenario import Assumption, Scenario, per_serving, resolve


def scenario(s: PredictiveLambdaScalingSettings, overrides: Mapping[str, float]) -> Scenario:
    a = resolve("predictive-lambda-scaling", {
        "seconds_per_invocation": Assumption(4.0, "average duration of one invocation; concurrency = invocations a minute x this / 60"),
        "provisioning_seconds": Assumption(120.0, "added provisioned concurrency is ready this long after it is requested", allow_zero=True),
    }, overrides)
    sc = s.scaling
    schedule = tuple(ScheduledMinimum(c.days, c.hour, c.minute, c.min_capacity) for c in s.scheduled_changes)
    policy = [
        f"target tracking: LambdaProvisionedConcurrencyUtilization = {sc.target_utilization:g}; cooldowns "
        f"out {sc.scale_out_cooldown_seconds} s, in {sc.scale_in_cooldown_seconds} s",
        f"provisioned concurrency {sc.min_capacity}..{sc.max_capacity}, starting at {s.provisioned_concurrency}; "
        "invocations above it spill over to on-demand (cold starts)",
    ]
    if schedule:
        policy.append(f"schedule ({s.schedule.timezone}): " + "; ".join(
            f"{c.day_expression} {c.hour:02d}:{c.minute:02d} {c.kind} minimum to {c.min_capacity}" for c in s.scheduled_changes))
    else:
        policy.append("no schedule (no peaks above the minimum)")

    def policies() -> list[Policy]:
        utilization = per_serving(lambda m: min(m.demand, m.serving))
        return [TargetTracking(sc.target_utilization, utilization,
                               scale_out_cooldown_minutes=minutes(sc.scale_out_cooldown_seconds),
                               scale_in_cooldown_minutes=minutes(sc.scale_in_cooldown_seconds))]

    return Scenario(
        stack="predictive-lambda-scaling", kind="concurrency", unit="provisioned concurrency", policy=tuple(policy),
        assumptions=a, latency_goal_seconds=None, initial=s.provisioned_concurrency, minimum=sc.min_capacity,
        maximum=sc.max_capacity, warmup_seconds=a["provisioning_seconds"].value,
        workload=ConcurrencyWorkload(a["seconds_per_invocation"].value), policies=policies,
        schedule=schedule, schedule_timezone=s.schedule.timezone)
