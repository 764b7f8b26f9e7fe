"""Scaling-policy models on a 60 s clock (CloudWatch's resolution); pure, deterministic.

The clock
    Minute ``t`` covers ``[t, t+1)``. During minute ``t`` the capacity is fixed; at its end
    every policy sees that minute (:class:`Minute`) and may change the capacity, which
    counts from minute ``t+1``. A scheduled minimum applies at the start of its minute.

Capacity (:class:`Pool`)
    Units (instances, provisioned concurrency) serve ``warmup_minutes`` after they are
    added; the initial units serve from the start. Scaling in removes the newest units
    first (those still warming up before serving ones).

Workloads
    :class:`QueueWorkload`: arrivals join a FIFO backlog; each serving unit completes
    ``per_unit_per_minute`` jobs a minute (60 / seconds per job), optionally capped by an
    upstream limit (Lambda pollers). Fluid: fractions of jobs are allowed. The jobs in
    flight in a minute (SQS: received, not yet deleted) are the busy units,
    ``served / per_unit_per_minute``.
    :class:`ConcurrencyWorkload`: a Lambda alias; ``arrivals * seconds_per_invocation / 60``
    concurrent executions (Little's law) of which those above the serving provisioned
    concurrency spill over to on-demand (cold starts). Nothing queues.

Policies (each a small stateful object; ``decide(minute) -> desired capacity``)
    :class:`SimpleScaling` with :class:`Alarm` s: CloudWatch alarms (statistic over a
    period, N evaluation periods; one metric, or metric math over several :class:`Query`
    s) driving EC2 simple scaling policies that share the group's cooldown. An alarm with an Auto Scaling action invokes it every minute it stays
    in ALARM; a policy whose change is clipped to no change starts no cooldown.
    :class:`TargetTracking`: AWS target tracking, approximated (see its docstring).
    (The llm-request-scaling scaler's own model is in that pattern's ``simulation`` module.)
    calling the Lambda's own ``rate_per_minute``, ``desired_capacity`` and ``decide``
    (functions/scaling_controller/handler.py).
    :func:`scheduled_minimums`: Application Auto Scaling scheduled actions on the minimum.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable, Literal, Mapping, Protocol, Sequence
from zoneinfo import ZoneInfo

STEP_SECONDS = 60
#: Target tracking: the alarm AWS creates to scale out needs this many 1-minute datapoints above target ...
HIGH_MINUTES = 3
#: ... and the one to scale in this many below LOW_RATIO * target.
LOW_MINUTES = 15
LOW_RATIO = 0.9
#: Floating-point slack for ceil(): 40 / 10 must be 4, not 5.
EPSILON = 1e-9

Comparison = Literal[">=", ">", "<=", "<"]
Statistic = Literal["Sum", "Average", "Maximum", "Minimum"]


def minutes(seconds: float) -> int:
    """Whole minutes covering ``seconds`` (the model's resolution): 90 s -> 2."""
    return max(0, math.ceil(seconds / STEP_SECONDS - EPSILON))


def ceil(value: float) -> int:
    return math.ceil(value - EPSILON)


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


# ----------------------------------------------------------------------------------------
# What a policy sees
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Minute:
    """One minute of a run, as the policies see it at its end."""

    index: int
    arrivals: float  # jobs or requests arriving in this minute
    served: float  # jobs completed / invocations handled in this minute
    backlog: float  # jobs waiting at the end of the minute (SQS: messages visible)
    throughput: float  # most jobs the serving capacity could complete in this minute
    desired: int  # capacity asked for during this minute (warming units included)
    serving: int  # units that serve (warm-up over)
    minimum: int
    maximum: int
    demand: float = 0.0  # concurrent executions wanted (concurrency workloads)
    spillover: float = 0.0  # invocations above the serving capacity (concurrency workloads)
    in_flight: float = 0.0  # jobs being worked on = busy units (SQS: messages not visible)


class Policy(Protocol):
    def decide(self, minute: Minute) -> int:
        """The capacity from the next minute on (``minute.desired`` = no change), within min/max."""
        ...


# ----------------------------------------------------------------------------------------
# Capacity and workloads
# ----------------------------------------------------------------------------------------


class Pool:
    """Units of capacity and the minute each starts serving."""

    def __init__(self, initial: int, warmup_minutes: int):
        if initial < 0 or warmup_minutes < 0:
            raise ValueError(f"initial capacity and warm-up must be >= 0 (given {initial}, {warmup_minutes})")
        self.warmup_minutes = warmup_minutes
        self._ready_at: list[int] = [0] * initial  # ascending: units are added in time order

    @property
    def desired(self) -> int:
        return len(self._ready_at)

    def serving(self, minute: int) -> int:
        return sum(1 for ready in self._ready_at if ready <= minute)

    def resize(self, desired: int, minute: int) -> None:
        """Capacity ``desired`` from ``minute`` on; new units serve after the warm-up."""
        if desired > self.desired:
            self._ready_at.extend([minute + self.warmup_minutes] * (desired - self.desired))
        else:
            del self._ready_at[desired:]  # the newest (still warming) units go first


@dataclass(frozen=True)
class Step:
    served: float
    backlog: float
    throughput: float
    demand: float = 0.0
    spillover: float = 0.0
    in_flight: float = 0.0


class Workload(Protocol):
    def step(self, backlog: float, arrivals: float, serving: int) -> Step: ...


@dataclass(frozen=True)
class QueueWorkload:
    """FIFO backlog served at ``per_unit_per_minute`` per serving unit, at most ``cap`` a minute.

    In flight: the units busy during the minute, ``served / per_unit_per_minute`` (workers
    that can each finish 2 jobs a minute and finish 3 between them hold 1.5 jobs in flight).
    """

    per_unit_per_minute: float
    cap: float | None = None

    def step(self, backlog: float, arrivals: float, serving: int) -> Step:
        throughput = serving * self.per_unit_per_minute
        if self.cap is not None:
            throughput = min(throughput, self.cap)
        available = backlog + arrivals
        served = min(available, throughput)
        return Step(served=served, backlog=available - served, throughput=throughput,
                    in_flight=served / self.per_unit_per_minute)


@dataclass(frozen=True)
class ConcurrencyWorkload:
    """Invocations of a Lambda alias: concurrency above the serving provisioned concurrency spills over."""

    seconds_per_invocation: float

    def step(self, backlog: float, arrivals: float, serving: int) -> Step:
        demand = arrivals * self.seconds_per_invocation / STEP_SECONDS
        over = max(0.0, demand - serving)
        spillover = arrivals * over / demand if demand > 0 else 0.0
        return Step(served=arrivals, backlog=0.0, throughput=serving * STEP_SECONDS / self.seconds_per_invocation,
                    demand=demand, spillover=spillover)


# ----------------------------------------------------------------------------------------
# CloudWatch alarms and EC2 simple scaling
# ----------------------------------------------------------------------------------------

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda v, t: v >= t, ">": lambda v, t: v > t, "<=": lambda v, t: v <= t, "<": lambda v, t: v < t}
_STATISTIC: dict[str, Callable[[Sequence[float]], float]] = {
    "Sum": sum, "Average": lambda xs: sum(xs) / len(xs), "Maximum": max, "Minimum": min}


@dataclass(frozen=True)
class Query:
    """One metric of a metric-math alarm: a sample a minute, reduced by ``statistic`` per period."""

    statistic: Statistic
    sample: Callable[[Minute], float]


@dataclass
class Alarm:
    """A CloudWatch metric alarm on one sample a minute (``sample(minute)``).

    Each ``period_minutes`` the samples of the period are reduced by ``statistic`` to one
    datapoint (periods aligned to the start of the trace); the alarm is in ALARM while its
    last ``evaluation_periods`` datapoints all breach, and stays in its state between
    datapoints. With fewer datapoints than ``evaluation_periods`` it is not in ALARM
    (INSUFFICIENT_DATA).

    :meth:`math` builds the alarm on a metric-math expression instead (CloudWatch
    ``metric_query``): each :class:`Query` is reduced by its own statistic over the period,
    and the expression of those values (by query id) is the datapoint.
    """

    threshold: float
    comparison: Comparison
    statistic: Statistic
    period_minutes: int
    evaluation_periods: int
    sample: Callable[[Minute], float]
    queries: Mapping[str, Query] | None = None
    expression: Callable[[Mapping[str, float]], float] | None = None
    _samples: list[dict[str, float]] = field(default_factory=list, repr=False)
    _breaches: deque[bool] = field(default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        if self.period_minutes < 1 or self.evaluation_periods < 1:
            raise ValueError(f"period_minutes and evaluation_periods must be >= 1 "
                             f"(given {self.period_minutes}, {self.evaluation_periods})")
        if (self.queries is None) != (self.expression is None) or self.queries == {}:
            raise ValueError("a metric-math alarm needs at least one query and an expression")
        self._breaches = deque(maxlen=self.evaluation_periods)

    @classmethod
    def math(cls, threshold: float, comparison: Comparison, period_minutes: int, evaluation_periods: int,
             queries: Mapping[str, Query], expression: Callable[[Mapping[str, float]], float]) -> "Alarm":
        """An alarm on ``expression(values by query id)``, e.g. ``IF(a >= b AND c <= 2, 1, 0)``."""
        return cls(threshold, comparison, "Maximum", period_minutes, evaluation_periods, sample=lambda m: 0.0,
                   queries=dict(queries), expression=expression)

    def _take(self, minute: Minute) -> dict[str, float]:
        if self.queries is None:
            return {"": self.sample(minute)}
        return {name: query.sample(minute) for name, query in self.queries.items()}

    def _datapoint(self) -> float:
        if self.queries is None or self.expression is None:
            return _STATISTIC[self.statistic]([s[""] for s in self._samples])
        return self.expression({name: _STATISTIC[query.statistic]([s[name] for s in self._samples])
                                for name, query in self.queries.items()})

    def observe(self, minute: Minute) -> bool:
        """Take this minute's sample; True while the alarm is in ALARM."""
        self._samples.append(self._take(minute))
        if len(self._samples) == self.period_minutes:
            datapoint = self._datapoint()
            self._breaches.append(_COMPARE[self.comparison](datapoint, self.threshold))
            self._samples = []
        return len(self._breaches) == self.evaluation_periods and all(self._breaches)


@dataclass(frozen=True)
class AlarmAction:
    """An alarm and the simple scaling policy it invokes."""

    alarm: Alarm
    adjustment: int  # ChangeInCapacity, or the capacity itself with ``exact``
    cooldown_minutes: int
    exact: bool = False  # ExactCapacity


class SimpleScaling:
    """EC2 simple scaling policies of one group, driven by alarms, sharing the group's cooldown.

    Every minute each alarm takes its sample; each alarm in ALARM invokes its policy (AWS
    repeats Auto Scaling actions every minute an alarm stays in ALARM). A policy acts only
    when no cooldown runs; a change of capacity (clipped to min/max) starts that policy's
    cooldown; a clipped no-op starts none.
    """

    def __init__(self, actions: Sequence[AlarmAction]):
        self.actions = tuple(actions)
        self._next_allowed = 0  # first minute index at whose end a policy may act

    def decide(self, minute: Minute) -> int:
        firing = [action.alarm.observe(minute) for action in self.actions]  # every alarm samples every minute
        desired = minute.desired
        for action, in_alarm in zip(self.actions, firing):
            if not in_alarm or minute.index < self._next_allowed:
                continue
            wanted = action.adjustment if action.exact else desired + action.adjustment
            changed = clamp(wanted, minute.minimum, minute.maximum)
            if changed != desired:
                desired = changed
                self._next_allowed = minute.index + action.cooldown_minutes
        return desired


# ----------------------------------------------------------------------------------------
# Target tracking
# ----------------------------------------------------------------------------------------


@dataclass
class TargetTracking:
    """AWS target tracking, approximated.

    AWS creates two alarms per policy: high (metric > target for 3 of 3 one-minute
    datapoints) and low (metric < 90% of target for 15 of 15). Modelled as:

    - scale out when the metric was above ``target`` for the last ``HIGH_MINUTES`` minutes, to
      ``ceil(serving * metric / target)`` if that exceeds the current desired capacity (which
      counts units still warming up, so they are not added twice);
    - scale in when it was below ``LOW_RATIO * target`` for the last ``LOW_MINUTES`` minutes,
      to ``ceil(serving * metric / target)`` (at least the minimum), unless scale-in is disabled;
    - cooldowns (Application Auto Scaling): no scale-out within ``scale_out_cooldown_minutes``
      of the last scale-out, no scale-in within ``scale_in_cooldown_minutes`` of the last
      scale-in. EC2 target tracking has no cooldowns (0): warm-up does that job;
    - ``hold_scale_in_while_warming`` (EC2 Auto Scaling): no scale-in while a unit is still
      warming up (desired > serving). AWS blocks target-tracking and step scale-in until new
      instances finish their warm-up (docs: "Set the default instance warmup"), so a worker
      the wake alarm started is not taken away before it serves;
    - no metric (``None``, e.g. no serving unit) resets both streaks; with no serving unit
      the proposal is 0, so target tracking never scales out from zero.

    ``metric(minute)`` returns the metric the policy tracks for that minute.
    """

    target: float
    metric: Callable[[Minute], float | None]
    scale_out_cooldown_minutes: int = 0
    scale_in_cooldown_minutes: int = 0
    disable_scale_in: bool = False
    hold_scale_in_while_warming: bool = False
    _high: int = 0
    _low: int = 0
    _last_out: int | None = None
    _last_in: int | None = None

    def __post_init__(self) -> None:
        if self.target <= 0:
            raise ValueError(f"target must be > 0 (given {self.target})")

    def decide(self, minute: Minute) -> int:
        value = self.metric(minute)
        if value is None:
            self._high = self._low = 0
            return minute.desired
        self._high = self._high + 1 if value > self.target else 0
        self._low = self._low + 1 if value < LOW_RATIO * self.target else 0
        proposal = ceil(minute.serving * value / self.target)
        if self._high >= HIGH_MINUTES and _cooled(self._last_out, minute.index, self.scale_out_cooldown_minutes):
            wanted = min(minute.maximum, proposal)
            if wanted > minute.desired:
                self._last_out = minute.index
                return wanted
        warming = self.hold_scale_in_while_warming and minute.serving < minute.desired
        if (not self.disable_scale_in and not warming and self._low >= LOW_MINUTES
                and _cooled(self._last_in, minute.index, self.scale_in_cooldown_minutes)):
            wanted = max(minute.minimum, proposal)
            if wanted < minute.desired:
                self._last_in = minute.index
                return wanted
        return minute.desired


def _cooled(last: int | None, now: int, cooldown_minutes: int) -> bool:
    return last is None or now - last >= cooldown_minutes


# ----------------------------------------------------------------------------------------
# Scheduled actions on the minimum (Application Auto Scaling)
# ----------------------------------------------------------------------------------------

MINUTES_PER_WEEK = 7 * 24 * 60


@dataclass(frozen=True)
class ScheduledMinimum:
    """A recurring scheduled action: from ``days`` at ``hour:minute`` local time, minimum = ``capacity``."""

    days: tuple[int, ...]  # Monday = 0
    hour: int
    minute: int
    capacity: int


def scheduled_minimums(actions: Sequence[ScheduledMinimum], baseline: int, tz: str,
                       start: datetime, count: int) -> list[int]:
    """The minimum in each of ``count`` minutes from ``start``: the latest action before it wins.

    Local time in ``tz`` (daylight saving included). Before the first action of the week the
    last one of the previous week applies; with no actions the minimum is ``baseline``.
    """
    if not actions:
        return [baseline] * count
    events = sorted((day * 1440 + a.hour * 60 + a.minute, a.capacity) for a in actions for day in a.days)
    starts = [moment for moment, _ in events]
    zone = ZoneInfo(tz)
    result = []
    for offset in range(count):
        local = (start + timedelta(minutes=offset)).astimezone(zone)
        moment = local.weekday() * 1440 + local.hour * 60 + local.minute
        index = _last_at_or_before(starts, moment)
        result.append(events[index][1])  # index -1: the week's last action, still in force
    return result


def _last_at_or_before(sorted_values: Sequence[int], value: int) -> int:
    return bisect.bisect_right(sorted_values, value) - 1


# ----------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """What happened in each minute of a run."""

    minutes: tuple[Minute, ...]

    def series(self, name: str) -> list[float]:
        return [getattr(m, name) for m in self.minutes]


def simulate(arrivals: Sequence[float], *, initial: int, minimum: Sequence[int] | int, maximum: int,
             warmup_minutes: int, workload: Workload, policies: Sequence[Policy]) -> Timeline:
    """Run ``arrivals`` (one value per minute) through the workload and the policies.

    ``minimum`` is one value, or one per minute (scheduled actions): a minimum above the
    current capacity raises it at the start of that minute. The starting capacity is
    ``initial`` (at least the first minimum), all of it serving.
    """
    count = len(arrivals)
    lows = [minimum] * count if isinstance(minimum, int) else list(minimum)
    if len(lows) != count:
        raise ValueError(f"one minimum per minute expected (given {len(lows)} for {count} minutes)")
    if count and not 0 <= max(lows) <= maximum:
        raise ValueError(f"minimum must be between 0 and maximum {maximum} (given up to {max(lows)})")
    pool = Pool(clamp(initial, lows[0] if count else 0, maximum), warmup_minutes)  # serving from minute 0
    backlog = 0.0
    rows: list[Minute] = []
    for t, arriving in enumerate(arrivals):
        if pool.desired < lows[t]:
            pool.resize(lows[t], t)
        serving = pool.serving(t)
        step = workload.step(backlog, arriving, serving)
        backlog = step.backlog
        minute = Minute(index=t, arrivals=arriving, served=step.served, backlog=step.backlog, throughput=step.throughput,
                        desired=pool.desired, serving=serving, minimum=lows[t], maximum=maximum,
                        demand=step.demand, spillover=step.spillover, in_flight=step.in_flight)
        rows.append(minute)
        desired = pool.desired
        for policy in policies:
            desired = policy.decide(replace(minute, desired=desired))
            if not lows[t] <= desired <= maximum:
                raise AssertionError(f"{type(policy).__name__} proposed {desired} outside {lows[t]}..{maximum}")
        if desired != pool.desired:
            pool.resize(desired, t + 1)
    return Timeline(tuple(rows))
