"""`queue-depth-scaling` in the simulator: its settings -> the scaling models it deploys (see scaling_patterns.simulation)."""

from __future__ import annotations

from typing import Mapping

from scaling_patterns.patterns.queue_depth_scaling.settings import AlarmStepScaling, QueueDepthScalingSettings
from scaling_patterns.simulation.models import (
    STEP_SECONDS,
    Alarm,
    AlarmAction,
    Minute,
    Policy,
    Query,
    QueueWorkload,
    SimpleScaling,
    TargetTracking,
    minutes,
)
from scaling_patterns.simulation.scenario import Assumption, Comparison, Scenario, resolve


def scenario(s: QueueDepthScalingSettings, overrides: Mapping[str, float]) -> Scenario:
    alarm_mode = isinstance(s.scaling, AlarmStepScaling)
    if alarm_mode:
        defaults = {
            "seconds_per_job": Assumption(30.0, "one worker's time per job (alarm_steps has no such setting; "
                                                "the backlog_per_instance default)"),
            "latency_goal_seconds": Assumption(300.0, "a job waiting longer than this counts against the goal "
                                                      "(the backlog_per_instance default of target_latency_seconds)"),
        }
    else:
        defaults = {
            "seconds_per_job": Assumption(s.scaling.seconds_per_job, "one worker's time per job; override to see what the policy does "
                                          "when jobs take longer than it assumes", source="settings: scaling.seconds_per_job"),
            "latency_goal_seconds": Assumption(float(s.scaling.target_latency_seconds), "a job waiting longer than this counts against the goal",
                                               source="settings: scaling.target_latency_seconds"),
        }
    a = resolve("queue-depth-scaling", defaults, overrides)
    fleet = s.fleet
    per_worker = STEP_SECONDS / a["seconds_per_job"].value

    # What CloudWatch samples once a minute (SQS publishes its queue metrics every minute).
    def visible(m: Minute) -> float:
        return m.backlog  # ApproximateNumberOfMessagesVisible

    def in_flight(m: Minute) -> float:
        return m.in_flight  # ApproximateNumberOfMessagesNotVisible: received, not yet deleted = busy workers

    def wake() -> list[AlarmAction]:
        if fleet.min_size != 0:
            return []
        # IF(visible > 0 AND desired == 0, 1, 0) >= 1: visible only, so it never wakes a worker for a job another holds.
        alarm = Alarm(1, ">=", "Maximum", 1, 1, lambda m: 1.0 if m.backlog > 0 and m.desired == 0 else 0.0)
        return [AlarmAction(alarm, 1, minutes(60), exact=True)]

    policy: list[str] = []
    comparison: Comparison | None = None
    if alarm_mode:
        sc = s.scaling
        assert isinstance(sc, AlarmStepScaling)
        period = sc.period_seconds // STEP_SECONDS
        policy.append(f"alarm: visible jobs ({sc.statistic}, {sc.period_seconds} s) >= {sc.scale_out_threshold} for "
                      f"{sc.evaluation_periods} periods -> {sc.scale_out_adjustment:+d} workers; visible + in flight "
                      f"<= {sc.scale_in_threshold} and no worker starting (in service >= desired) -> "
                      f"{sc.scale_in_adjustment:+d}; cooldown {sc.cooldown_seconds} s (simple scaling)")

        def scale_out() -> AlarmAction:
            return AlarmAction(Alarm(sc.scale_out_threshold, ">=", sc.statistic, period, sc.evaluation_periods, visible),
                               sc.scale_out_adjustment, minutes(sc.cooldown_seconds))

        def scale_in() -> AlarmAction:
            # IF(in_service >= desired AND visible + in_flight <= threshold, 1, 0) >= 1 (construct.py scale_in_expression)
            alarm = Alarm.math(1, ">=", period, sc.evaluation_periods, {
                "visible": Query(sc.statistic, visible), "in_flight": Query(sc.statistic, in_flight),
                "in_service": Query("Minimum", lambda m: float(m.serving)), "desired": Query("Maximum", lambda m: float(m.desired)),
            }, lambda v: 1.0 if v["in_service"] >= v["desired"] and v["visible"] + v["in_flight"] <= sc.scale_in_threshold else 0.0)
            return AlarmAction(alarm, sc.scale_in_adjustment, minutes(sc.cooldown_seconds))

        def reference_scale_in() -> AlarmAction:
            return AlarmAction(Alarm(sc.scale_in_threshold, "<=", sc.statistic, period, sc.evaluation_periods, visible),
                               sc.scale_in_adjustment, minutes(sc.cooldown_seconds))

        def policies() -> list[Policy]:
            return [SimpleScaling([scale_out(), scale_in(), *wake()])]

        def reference() -> list[Policy]:
            return [SimpleScaling([scale_out(), reference_scale_in(), *wake()])]

        comparison = Comparison(
            before=f"reference scale-in (visible <= {sc.scale_in_threshold})",
            now=f"deployed (visible + in flight <= {sc.scale_in_threshold}, no worker starting)",
            why="the reference's scale-in alarm is in ALARM whenever few jobs wait, also while the worker that was "
                "just started for them still boots, and takes it away once the cooldown ends",
            policies=reference)
    else:
        bs = s.scaling
        policy.append(f"target tracking: jobs (visible + in flight) per in-service worker = {bs.target_backlog_per_instance:g} "
                      f"({bs.target_latency_seconds} s / {bs.seconds_per_job:g} s per job); no scale-in while a worker warms up"
                      + ("; scale-in disabled" if bs.disable_scale_in else ""))

        def tracking(count_in_flight: bool) -> TargetTracking:
            def jobs_per_worker(m: Minute) -> float:
                # IF(in_service > 0, (visible + in_flight) / in_service, visible + in_flight) (construct.py BACKLOG_EXPRESSION)
                jobs = visible(m) + (in_flight(m) if count_in_flight else 0.0)
                return jobs / m.serving if m.serving > 0 else jobs

            return TargetTracking(bs.target_backlog_per_instance, jobs_per_worker, disable_scale_in=bs.disable_scale_in,
                                  hold_scale_in_while_warming=True)

        def policies() -> list[Policy]:
            return [tracking(count_in_flight=True), *([SimpleScaling(wake())] if fleet.min_size == 0 else [])]

        def visible_only() -> list[Policy]:
            return [tracking(count_in_flight=False), *([SimpleScaling(wake())] if fleet.min_size == 0 else [])]

        comparison = Comparison(
            before="visible only (AWS's example)", now="visible + in flight (deployed)",
            why="counting only visible jobs, a queue one worker keeps empty reads 0 and target tracking scales that busy "
                "worker in; the jobs it holds (received, not yet deleted) keep the metric up while it works",
            policies=visible_only)

    if fleet.min_size == 0:
        policy.append("wake-from-zero alarm: jobs visible and desired capacity 0 -> 1 worker (cooldown 60 s)")
    policy.append(f"{fleet.min_size}..{fleet.max_size} workers, warm-up {fleet.default_instance_warmup_seconds} s "
                  f"(settings: fleet.default_instance_warmup_seconds)")

    return Scenario(
        stack="queue-depth-scaling", kind="queue", unit="workers", policy=tuple(policy), assumptions=a,
        latency_goal_seconds=a["latency_goal_seconds"].value, initial=fleet.min_size, minimum=fleet.min_size,
        maximum=fleet.max_size, warmup_seconds=fleet.default_instance_warmup_seconds,
        workload=QueueWorkload(per_worker), policies=policies, comparison=comparison)
