"""A pattern's scaling policy as the simulator runs it: `Scenario`, `Assumption`, `Comparison`.

Each pattern package has a ``simulation.py`` with ``scenario(settings, overrides) -> Scenario``
(declared in its ``PATTERN`` spec): settings -> the scaling models it deploys. Every number
a model needs comes from the settings where the settings have it. What the settings cannot
know (how long your model takes per request, how fast new capacity starts, the latency you
promise) is an *assumption*: a documented default, shown next to every result and
changeable with ``--assume <stack>.<name>=<value>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Mapping

from scaling_patterns.core.settings import Settings
from scaling_patterns.simulation.models import (
    Minute,
    Policy,
    ScheduledMinimum,
    Timeline,
    Workload,
    minutes,
    scheduled_minimums,
    simulate,
)
from scaling_patterns.simulation.traces import Trace


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


def per_serving(value: Callable[[Minute], float]) -> Callable[[Minute], float | None]:
    """A per-unit metric: ``value / serving``, no data without a serving unit."""
    return lambda m: value(m) / m.serving if m.serving > 0 else None




def scenario_for(stack: str, settings: Settings, overrides: Mapping[str, float] | None = None) -> Scenario:
    """The scenario of a registered stack (its pattern's ``simulation`` entry)."""
    from scaling_patterns.registry import pattern

    try:
        spec = pattern(stack)
    except KeyError:
        raise SimulationError(f"stack {stack!r} is not a registered pattern") from None
    return spec.load("simulation")(settings, overrides or {})
