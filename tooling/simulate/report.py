"""Metrics of a run, Markdown tables, and the comparison of two settings versions.

Metrics (per stack and trace):

- **peak backlog**: most jobs/requests waiting at the end of a minute;
- **peak wait**: longest wait in the queue, FIFO: the last arrival of a minute waits until the
  serving capacity of the following minutes has worked off the backlog in front of it
  (fluid, exact for the model). A backlog not worked off by the end of the trace gives a
  lower bound, shown as ``>= ...``;
- **minutes above the goal**: minutes whose wait exceeds the latency goal (queue stacks), or
  minutes with any spillover (provisioned concurrency: those invocations start cold);
- **capacity-hours** (cost proxy): the sum over minutes of the capacity asked for (warming
  units included: they are paid for), / 60;
- **scaling actions**: minutes in which the capacity changed (policies, scheduled actions);
  **a day**: scaled to 1,440 minutes (``actions x 1440 / minutes``);
- **spillover**: invocations above the serving provisioned concurrency (Lambda only).

A stack whose scenario has a :class:`~scaling_patterns.simulation.scenario.Comparison` (queue-depth-scaling:
the backlog metric of AWS's example, or the reference's scale-in alarm) is also run with that
policy on every trace; its table is followed by "before -> deployed" per trace.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from scaling_patterns.core.settings import Settings
from scaling_patterns.simulation.models import EPSILON, Timeline
from scaling_patterns.simulation.scenario import Scenario, scenario_for
from scaling_patterns.simulation.traces import Trace, format_timestamp


@dataclass(frozen=True)
class Metrics:
    minutes: int
    peak_backlog: float
    peak_wait_seconds: float
    peak_wait_is_lower_bound: bool
    minutes_above_goal: int
    capacity_hours: float
    scaling_actions: int
    peak_capacity: int
    spillover: float
    peak_spillover: float
    backlog_at_end: float

    @property
    def scaling_actions_a_day(self) -> float:
        return self.scaling_actions * 1440 / self.minutes if self.minutes else 0.0


@dataclass(frozen=True)
class TraceRun:
    trace: Trace  # as run (scaled)
    timeline: Timeline
    waits: tuple[float, ...]  # seconds, per minute
    metrics: Metrics
    #: Per minute: the wait is only a lower bound (its backlog is not worked off by the end of the trace).
    wait_is_lower_bound: tuple[bool, ...] = ()


@dataclass(frozen=True)
class StackRun:
    scenario: Scenario
    runs: tuple[TraceRun, ...]
    compared: tuple[TraceRun, ...] = ()  # the scenario's comparison policy on the same traces (if it has one)


@dataclass(frozen=True)
class Options:
    """``--assume`` values per stack, and arrival scale factors.

    ``scale`` comes from ``--scale`` (key ``"*"`` = every stack); ``example_scale`` is the
    factor of the shipped example traces for a stack. A stack's own ``--scale`` replaces its
    example factor; a ``"*"`` factor multiplies it.
    """

    assume: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    scale: Mapping[str, float] = field(default_factory=dict)
    example_scale: Mapping[str, float] = field(default_factory=dict)

    def scale_for(self, stack: str) -> float:
        if stack in self.scale:
            return self.scale[stack]
        return self.scale.get("*", 1.0) * self.example_scale.get(stack, 1.0)


# ----------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------


def queue_waits(backlog: Sequence[float], throughput: Sequence[float]) -> list[tuple[float, bool]]:
    """(seconds, is_lower_bound) the last arrival of each minute waits, FIFO (see module docstring).

    The backlog at the end of minute ``t`` is worked off from minute ``t+1`` on at each
    minute's throughput; the wait is the time from the end of minute ``t`` until it is gone.
    """
    prefix = [0.0]
    for rate in throughput:
        prefix.append(prefix[-1] + rate)
    count = len(backlog)
    waits: list[tuple[float, bool]] = []
    for t, ahead in enumerate(backlog):
        if ahead <= EPSILON:
            waits.append((0.0, False))
            continue
        goal = prefix[t + 1] + ahead
        k = bisect.bisect_left(prefix, goal - EPSILON, lo=t + 2)  # first k with sum(c[t+1 .. k-1]) >= ahead
        if k > count:
            waits.append(((count - t - 1) * 60.0, True))
            continue
        last = k - 1  # the minute in which the backlog runs out
        before = prefix[last] - prefix[t + 1]
        waits.append((((last - t - 1) + (ahead - before) / throughput[last]) * 60.0, False))
    return waits


def measure(timeline: Timeline, latency_goal_seconds: float | None) -> tuple[Metrics, list[tuple[float, bool]]]:
    """The run's metrics, and (seconds, is_lower_bound) of each minute's wait (:func:`queue_waits`)."""
    rows = timeline.minutes
    waits = queue_waits([m.backlog for m in rows], [m.throughput for m in rows])
    peak_wait, censored = max(waits, key=lambda w: (w[0], w[1]), default=(0.0, False))
    if latency_goal_seconds is None:
        above = sum(1 for m in rows if m.spillover > EPSILON)
    else:
        above = sum(1 for seconds, _ in waits if seconds > latency_goal_seconds)
    actions = sum(1 for before, after in zip(rows, rows[1:]) if after.desired != before.desired)
    metrics = Metrics(
        minutes=len(rows),
        peak_backlog=max((m.backlog for m in rows), default=0.0),
        peak_wait_seconds=peak_wait,
        peak_wait_is_lower_bound=censored,
        minutes_above_goal=above,
        capacity_hours=sum(m.desired for m in rows) / 60.0,
        scaling_actions=actions,
        peak_capacity=max((m.desired for m in rows), default=0),
        spillover=sum(m.spillover for m in rows),
        peak_spillover=max((m.spillover for m in rows), default=0.0),
        backlog_at_end=rows[-1].backlog if rows else 0.0,
    )
    return metrics, waits


def _trace_run(scenario: Scenario, trace: Trace, timeline: Timeline) -> TraceRun:
    metrics, waits = measure(timeline, scenario.latency_goal_seconds)
    return TraceRun(trace, timeline, tuple(seconds for seconds, _ in waits), metrics, tuple(bound for _, bound in waits))


@dataclass(frozen=True)
class WaitSeries:
    """The wait panel of a chart, in minutes: ``exact`` where the wait is known (None elsewhere),
    ``lower_bound`` where only a lower bound is (the backlog outlasts the trace; None elsewhere).
    ``label`` (``>= 34 min``, as in the table) marks minute ``label_at``, the largest lower bound."""

    exact: tuple[float | None, ...]
    lower_bound: tuple[float | None, ...]
    label_at: int | None = None
    label: str = ""


def wait_series(run: TraceRun) -> WaitSeries:
    bounds = run.wait_is_lower_bound or (False,) * len(run.waits)
    exact = tuple(None if bound else seconds / 60 for seconds, bound in zip(run.waits, bounds))
    lower = tuple(seconds / 60 if bound else None for seconds, bound in zip(run.waits, bounds))
    if not any(bounds):
        return WaitSeries(exact, lower)
    at = max((i for i, bound in enumerate(bounds) if bound), key=lambda i: run.waits[i])
    return WaitSeries(exact, lower, at, ">= " + duration(run.waits[at]))


def run_stack(scenario: Scenario, traces: Iterable[Trace], scale: float = 1.0) -> StackRun:
    scaled = [trace.scaled(scale) for trace in traces]
    runs = tuple(_trace_run(scenario, trace, scenario.run(trace)) for trace in scaled)
    compared: tuple[TraceRun, ...] = ()
    if scenario.comparison is not None:
        other = scenario.comparison.policies
        compared = tuple(_trace_run(scenario, trace, scenario.run(trace, other)) for trace in scaled)
    return StackRun(scenario, runs, compared)


def simulate_stacks(stacks: Mapping[str, Settings], names: Sequence[str], traces: Sequence[Trace],
                    options: Options) -> dict[str, StackRun]:
    """Every named stack's policy on every trace."""
    return {name: run_stack(scenario_for(name, stacks[name], options.assume.get(name, {})), traces, options.scale_for(name))
            for name in names}


# ----------------------------------------------------------------------------------------
# Formatting
# ----------------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def count(value: float) -> str:
    return f"{value:,.1f}" if abs(value) < 10 and not float(value).is_integer() else f"{value:,.0f}"


@dataclass(frozen=True)
class Column:
    label: str
    value: Callable[[Metrics], float]
    text: Callable[[Metrics], str]


def columns(scenario: Scenario) -> list[Column]:
    """The metric columns of a stack's table (queue stacks and provisioned concurrency differ)."""
    unit = "PC" if scenario.kind == "concurrency" else scenario.unit
    tail = [
        Column(scenario.hours_label, lambda m: m.capacity_hours, lambda m: f"{m.capacity_hours:,.1f}"),
        Column("scaling actions", lambda m: m.scaling_actions, lambda m: str(m.scaling_actions)),
        Column(f"peak {unit}", lambda m: m.peak_capacity, lambda m: str(m.peak_capacity)),
    ]
    if scenario.kind == "concurrency":
        return [
            Column("spillover invocations", lambda m: m.spillover, lambda m: count(m.spillover)),
            Column("peak spillover / min", lambda m: m.peak_spillover, lambda m: count(m.peak_spillover)),
            Column("minutes with spillover", lambda m: m.minutes_above_goal, lambda m: str(m.minutes_above_goal)),
            *tail,
        ]
    goal = duration(scenario.latency_goal_seconds or 0.0)
    return [
        Column("peak backlog", lambda m: m.peak_backlog, lambda m: count(m.peak_backlog)),
        Column("peak wait", lambda m: m.peak_wait_seconds,
               lambda m: (">= " if m.peak_wait_is_lower_bound else "") + duration(m.peak_wait_seconds)),
        Column(f"minutes wait > {goal}", lambda m: m.minutes_above_goal, lambda m: str(m.minutes_above_goal)),
        *tail,
        Column("backlog at end", lambda m: m.backlog_at_end, lambda m: count(m.backlog_at_end)),
    ]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def describe_scenario(scenario: Scenario) -> list[str]:
    lines = [f"- {line}" for line in scenario.policy]
    for name, a in sorted(scenario.assumptions.items()):
        lines.append(f"- {name} = {a.value:g} ({a.source}): {a.meaning}")
    return lines


def trace_label(trace: Trace) -> str:
    """The trace's name, with its arrival factor when scaled (``burst x0.05``)."""
    return trace.name + (f" x{trace.scale:g}" if trace.scale != 1.0 else "")


def stack_markdown(run: StackRun) -> str:
    """``### stack``, the policy and assumptions in words, one row per trace, and the comparison (if any)."""
    cols = columns(run.scenario)
    lines = [f"### `{run.scenario.stack}`", "", *describe_scenario(run.scenario), ""]
    lines += _table(["trace", "minutes", *(c.label for c in cols)],
                    ([trace_label(r.trace), str(r.metrics.minutes), *(c.text(r.metrics) for c in cols)] for r in run.runs))
    comparison = comparison_markdown(run)
    return "\n".join(lines) + "\n" + (f"\n{comparison}" if comparison else "")


def comparison_columns(scenario: Scenario) -> list[Column]:
    """What the comparison table shows: scaling actions a day first, then latency and cost."""
    goal = duration(scenario.latency_goal_seconds or 0.0)
    return [
        Column("scaling actions a day", lambda m: m.scaling_actions_a_day, lambda m: f"{m.scaling_actions_a_day:,.0f}"),
        Column(f"minutes wait > {goal}", lambda m: m.minutes_above_goal, lambda m: str(m.minutes_above_goal)),
        Column("peak wait", lambda m: m.peak_wait_seconds,
               lambda m: (">= " if m.peak_wait_is_lower_bound else "") + duration(m.peak_wait_seconds)),
        Column(scenario.hours_label, lambda m: m.capacity_hours, lambda m: f"{m.capacity_hours:,.1f}"),
    ]


def comparison_markdown(run: StackRun) -> str:
    """``before -> deployed`` per trace for a scenario with a comparison; ``""`` without one."""
    comparison = run.scenario.comparison
    if comparison is None or not run.compared:
        return ""
    cols = comparison_columns(run.scenario)
    lines = [f"Each cell: {comparison.before} -> {comparison.now}, same traces. Why they differ: {comparison.why}.", ""]
    lines += _table(["trace", *(c.label for c in cols)],
                    ([trace_label(now.trace), *(_change(c.value(old.metrics), c.value(now.metrics), c.text(old.metrics),
                                                        c.text(now.metrics)) for c in cols)]
                     for old, now in zip(run.compared, run.runs)))
    lines += ["", "(a day: scaling actions x 1440 / the trace's minutes)"]
    return "\n".join(lines) + "\n"


def traces_markdown(traces: Sequence[Trace]) -> str:
    rows = []
    for trace in traces:
        note = f"{trace.filled_minutes} missing minutes read as 0" if trace.filled_minutes else ""
        rows.append([trace.name, format_timestamp(trace.start), str(trace.minutes), f"{sum(trace.arrivals):,.0f}",
                     f"{max(trace.arrivals, default=0):,.0f}", note])
    return "\n".join(_table(["trace", "start", "minutes", "arrivals", "peak / min", "note"], rows)) + "\n"


def summary_markdown(runs: Mapping[str, StackRun], traces: Sequence[Trace], settings_name: str) -> str:
    parts = [f"## Scaling simulation ({settings_name})", "", traces_markdown(traces)]
    parts += [stack_markdown(run) for run in runs.values()]
    return "\n".join(parts)


# ----------------------------------------------------------------------------------------
# Comparing two settings versions (make simulate BASE=<ref>)
# ----------------------------------------------------------------------------------------


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


_ABSENT = object()


def _shown(value: Any) -> str:
    """A setting value for a table: ``-`` when that version has no such setting (another variant)."""
    if value is _ABSENT:
        return "-"
    if value is None:
        return "unset"
    text = json.dumps(value, separators=(", ", " = "))
    return "`" + (text if len(text) <= 60 else text[:57] + "...") + "`"


def settings_differences(base: Settings, current: Settings) -> list[tuple[str, str, str]]:
    """(dotted setting, base value, current value) for every setting that differs, defaults included."""
    old, new = _flatten(base.model_dump(mode="json")), _flatten(current.model_dump(mode="json"))
    return [(key, _shown(old.get(key, _ABSENT)), _shown(new.get(key, _ABSENT)))
            for key in sorted(set(old) | set(new)) if old.get(key, _ABSENT) != new.get(key, _ABSENT)]


def _change(old: float, new: float, old_text: str, new_text: str) -> str:
    if old_text == new_text:
        return old_text
    if old and abs(old) > EPSILON:
        return f"{old_text} -> **{new_text}** ({(new - old) / old:+.0%})"
    return f"{old_text} -> **{new_text}**"


def diff_markdown(base_label: str, base: Mapping[str, StackRun], current: Mapping[str, StackRun],
                  differences: Mapping[str, list[tuple[str, str, str]]], note: str = "") -> str:
    """Per stack: the settings that differ, then metric base -> current for each trace."""
    lines = [f"## Scaling simulation: `{base_label}` -> working tree", ""]
    if note:
        lines += [note, ""]
    same = [name for name in current if not differences.get(name)]
    if same:
        lines += [f"Settings unchanged (not simulated again): {', '.join(f'`{n}`' for n in same)}.", ""]
    for name, run in current.items():
        if not differences.get(name):
            continue
        old = base[name]
        settings_rows = ([f"`{key}`", old_value, new_value] for key, old_value, new_value in differences[name])
        lines += [f"### `{name}`", "", *_table(["setting", base_label, "working tree"], settings_rows), ""]
        cols = columns(run.scenario)
        header = ["metric", *(trace_label(r.trace) for r in run.runs)]
        rows = []
        for col in cols:
            rows.append([col.label, *(_change(col.value(o.metrics), col.value(n.metrics), col.text(o.metrics), col.text(n.metrics))
                                      for o, n in zip(old.runs, run.runs))])
        lines += _table(header, rows) + [""]
        before, now = describe_scenario(old.scenario), describe_scenario(run.scenario)
        if before != now:
            lines += ["Policy and assumptions (`-` before, `+` now; unchanged lines left out):", "", "```diff"]
            lines += [f"- {line[2:]}" for line in before if line not in now] + [f"+ {line[2:]}" for line in now if line not in before]
            lines += ["```", ""]
    if not any(differences.get(name) for name in current):
        lines += ["The settings of the simulated stacks are the same at both versions; nothing to compare.", ""]
    return "\n".join(lines)


def diff_report(base_label: str, base_stacks: Mapping[str, Settings], current_stacks: Mapping[str, Settings],
                current_runs: Mapping[str, StackRun], traces: Sequence[Trace], options: Options,
                note: str = "") -> tuple[str, dict[str, StackRun]]:
    """Simulate the base settings of the stacks that differ; the Markdown diff and those base runs."""
    differences = {name: settings_differences(base_stacks[name], current_stacks[name]) for name in current_runs}
    changed = [name for name, diff in differences.items() if diff]
    base_runs = simulate_stacks(base_stacks, changed, traces, options)
    return diff_markdown(base_label, base_runs, current_runs, differences, note), base_runs
