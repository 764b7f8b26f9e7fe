"""Settings of each stack -> the scaling models it deploys (one adapter per registered stack).

Every number a model needs comes from the stack's settings where the settings have it.
What the settings cannot know (how long your model takes per request, how fast new capacity
starts, the latency you promise) is an *assumption*: a documented default, shown next to
every result and changeable with ``--assume <stack>.<name>=<value>``.

A new stack in modules/registry.py needs an entry in :data:`ADAPTERS`
(tests/test_simulate.py fails until it has one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Mapping

from modules.core.settings import Settings
from modules.inference_load_balancing.settings import InferenceLoadBalancingSettings
from modules.llm_request_scaling.settings import LlmRequestScalingSettings, SageMakerVariantTarget
from modules.predictive_lambda_scaling.settings import PredictiveLambdaScalingSettings
from modules.queue_depth_scaling.settings import AlarmStepScaling, QueueDepthScalingSettings
from modules.queue_to_sagemaker.settings import NewEndpoint, QueueToSageMakerSettings
from tooling.simulate.models import (
    STEP_SECONDS,
    Alarm,
    AlarmAction,
    ConcurrencyWorkload,
    Minute,
    Policy,
    Query,
    QueueWorkload,
    RateController,
    ScheduledMinimum,
    SimpleScaling,
    TargetTracking,
    Timeline,
    Workload,
    minutes,
    scheduled_minimums,
    simulate,
)
from tooling.simulate.traces import Trace


class SimulationError(ValueError):
    """Bad simulation input (assumption, stack name); the message is one readable line."""


@dataclass(frozen=True)
class Assumption:
    value: float
    meaning: str
    source: str = "assumed"  # or "settings: <field>" when the default comes from the settings
    allow_zero: bool = False


@dataclass(frozen=True)
class Comparison:
    """The same stack with one policy detail the way it used to be (or the way AWS's example has it).

    Run on the same traces next to the deployed policy, so the report shows what the
    difference does (``make simulate``: "scaling actions a day: visible only N -> M").
    """

    before: str  # the other policy in a few words: "visible only (AWS's example)"
    now: str  # the deployed one: "visible + in flight (deployed)"
    why: str  # one sentence: what differs and why the deployed one does it
    policies: Callable[[], list[Policy]]  # fresh policies of the other version for each run


@dataclass(frozen=True)
class Scenario:
    """One stack's policy, ready to run on any trace."""

    stack: str
    kind: Literal["queue", "concurrency"]
    unit: str  # what capacity counts: "workers", "instances", "provisioned concurrency"
    policy: tuple[str, ...]  # the policy in words, from the settings
    assumptions: Mapping[str, Assumption]
    latency_goal_seconds: float | None  # queue kinds: a wait above it counts as a minute above the goal
    initial: int
    minimum: int
    maximum: int
    warmup_seconds: float
    workload: Workload
    policies: Callable[[], list[Policy]]  # fresh (stateful) policies for each run
    schedule: tuple[ScheduledMinimum, ...] = ()
    schedule_timezone: str = "UTC"
    comparison: Comparison | None = None

    @property
    def hours_label(self) -> str:
        """Unit of the cost proxy: ``instance-hours``, ``worker-hours``, ``PC-hours``."""
        return "PC-hours" if self.kind == "concurrency" else self.unit.removesuffix("s") + "-hours"

    def run(self, trace: Trace, policies: Callable[[], list[Policy]] | None = None) -> Timeline:
        """The deployed policies on ``trace`` (or ``policies``, e.g. the comparison's)."""
        lows = scheduled_minimums(self.schedule, self.minimum, self.schedule_timezone, trace.start, trace.minutes)
        return simulate(trace.arrivals, initial=self.initial, minimum=lows, maximum=self.maximum,
                        warmup_minutes=minutes(self.warmup_seconds), workload=self.workload,
                        policies=(policies or self.policies)())


Adapter = Callable[[Settings, Mapping[str, float]], Scenario]


def resolve(stack: str, defaults: Mapping[str, Assumption], overrides: Mapping[str, float]) -> dict[str, Assumption]:
    """Defaults with ``--assume`` overrides applied; unknown names and bad values are errors."""
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise SimulationError(f"--assume {stack}.{unknown[0]}: unknown assumption (known: {', '.join(sorted(defaults))})")
    result = dict(defaults)
    for name, value in overrides.items():
        base = defaults[name]
        if not (value >= 0 if base.allow_zero else value > 0):
            rule = ">= 0" if base.allow_zero else "> 0"
            raise SimulationError(f"--assume {stack}.{name}: must be {rule} (given {value:g})")
        result[name] = Assumption(value, base.meaning, "--assume", base.allow_zero)
    return result


def _per_serving(value: Callable[[Minute], float]) -> Callable[[Minute], float | None]:
    """A per-unit metric: ``value / serving``, no data without a serving unit."""
    return lambda m: value(m) / m.serving if m.serving > 0 else None


# ----------------------------------------------------------------------------------------
# llm-request-scaling
# ----------------------------------------------------------------------------------------


def llm_request_scaling(s: LlmRequestScalingSettings, overrides: Mapping[str, float]) -> Scenario:
    sagemaker = isinstance(s.scaling_target, SageMakerVariantTarget)
    a = resolve("llm-request-scaling", {
        "warmup_seconds": Assumption(300.0 if sagemaker else 120.0, "a new instance of the scaling target serves this long after the controller adds it"
                                     + (" (SageMaker adds instances in minutes)" if sagemaker else ""), allow_zero=True),
        "latency_goal_seconds": Assumption(10.0, "a request waiting longer than this for a free instance counts against the goal"),
    }, overrides)
    p = s.scaling
    target = ("SageMaker variant" if sagemaker else "Auto Scaling group" if s.scaling_target is not None
              else "no scaling_target set: metrics only; simulated as if a target were set")
    policy = (
        f"scaler Lambda every minute (schedule): desired = ceil(requests per minute over the last {p.rate_window_minutes} min, "
        f"empty minutes included, / {p.requests_per_instance_per_minute:g}), {p.min_capacity}..{p.max_capacity} instances, "
        f"no change within {p.cooldown_seconds} s of the last one" + ("; holds while the endpoint is updating" if sagemaker else ""),
        f"target: {target}",
        f"each instance serves {p.requests_per_instance_per_minute:g} requests a minute (settings: scaling.requests_per_instance_per_minute)",
    )

    def policies() -> list[Policy]:
        return [RateController(per_instance_per_minute=p.requests_per_instance_per_minute, minimum=p.min_capacity,
                               maximum=p.max_capacity, cooldown_seconds=p.cooldown_seconds,
                               window_minutes=p.rate_window_minutes, busy_while_warming=sagemaker)]

    return Scenario(
        stack="llm-request-scaling", kind="queue", unit="instances", policy=policy, assumptions=a,
        latency_goal_seconds=a["latency_goal_seconds"].value, initial=p.min_capacity, minimum=p.min_capacity,
        maximum=p.max_capacity, warmup_seconds=a["warmup_seconds"].value,
        workload=QueueWorkload(p.requests_per_instance_per_minute), policies=policies)


# ----------------------------------------------------------------------------------------
# queue-depth-scaling
# ----------------------------------------------------------------------------------------


def queue_depth_scaling(s: QueueDepthScalingSettings, overrides: Mapping[str, float]) -> Scenario:
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


# ----------------------------------------------------------------------------------------
# inference-load-balancing
# ----------------------------------------------------------------------------------------


def inference_load_balancing(s: InferenceLoadBalancingSettings, overrides: Mapping[str, float]) -> Scenario:
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
        return [TargetTracking(target, _per_serving(lambda m: m.arrivals))]

    return Scenario(
        stack="inference-load-balancing", kind="queue", unit="instances", policy=policy, assumptions=a,
        latency_goal_seconds=a["latency_goal_seconds"].value, initial=fleet.min_size, minimum=fleet.min_size,
        maximum=fleet.max_size, warmup_seconds=fleet.default_instance_warmup_seconds,
        workload=QueueWorkload(STEP_SECONDS / a["seconds_per_request"].value), policies=policies)


# ----------------------------------------------------------------------------------------
# predictive-lambda-scaling
# ----------------------------------------------------------------------------------------


def predictive_lambda_scaling(s: PredictiveLambdaScalingSettings, overrides: Mapping[str, float]) -> Scenario:
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
        utilization = _per_serving(lambda m: min(m.demand, m.serving))
        return [TargetTracking(sc.target_utilization, utilization,
                               scale_out_cooldown_minutes=minutes(sc.scale_out_cooldown_seconds),
                               scale_in_cooldown_minutes=minutes(sc.scale_in_cooldown_seconds))]

    return Scenario(
        stack="predictive-lambda-scaling", kind="concurrency", unit="provisioned concurrency", policy=tuple(policy),
        assumptions=a, latency_goal_seconds=None, initial=s.provisioned_concurrency, minimum=sc.min_capacity,
        maximum=sc.max_capacity, warmup_seconds=a["provisioning_seconds"].value,
        workload=ConcurrencyWorkload(a["seconds_per_invocation"].value), policies=policies,
        schedule=schedule, schedule_timezone=s.schedule.timezone)


# ----------------------------------------------------------------------------------------
# queue-to-sagemaker
# ----------------------------------------------------------------------------------------


def queue_to_sagemaker(s: QueueToSageMakerSettings, overrides: Mapping[str, float]) -> Scenario:
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
        return [TargetTracking(auto.target_invocations_per_instance, _per_serving(lambda m: m.served),
                               scale_out_cooldown_minutes=minutes(auto.scale_out_cooldown_seconds),
                               scale_in_cooldown_minutes=minutes(auto.scale_in_cooldown_seconds))]

    return Scenario(
        stack="queue-to-sagemaker", kind="queue", unit="instances", policy=tuple(policy), assumptions=a,
        latency_goal_seconds=a["latency_goal_seconds"].value, initial=start, minimum=low, maximum=high,
        warmup_seconds=a["warmup_seconds"].value, workload=QueueWorkload(per_instance, cap=pollers), policies=policies)


#: Stack name -> adapter. Every stack in modules.registry.STACKS must have one.
ADAPTERS: dict[str, Adapter] = {
    "llm-request-scaling": llm_request_scaling,  # type: ignore[dict-item]
    "queue-depth-scaling": queue_depth_scaling,  # type: ignore[dict-item]
    "inference-load-balancing": inference_load_balancing,  # type: ignore[dict-item]
    "predictive-lambda-scaling": predictive_lambda_scaling,  # type: ignore[dict-item]
    "queue-to-sagemaker": queue_to_sagemaker,  # type: ignore[dict-item]
}


def scenario_for(stack: str, settings: Settings, overrides: Mapping[str, float] | None = None) -> Scenario:
    adapter = ADAPTERS.get(stack)
    if adapter is None:
        raise SimulationError(f"stack {stack!r} has no simulation adapter; add one to tooling/simulate/adapters.py ADAPTERS")
    return adapter(settings, overrides or {})
