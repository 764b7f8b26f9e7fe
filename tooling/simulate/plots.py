"""One PNG per stack and trace: load, capacity, and backlog (or spillover) over time.

The queue panel shows the jobs in flight (busy units) over the backlog and the wait; where the
backlog outlasts the trace the wait is only a lower bound (report.py, ``>= ...`` in the
tables): those minutes are a hatched band from the bound upward (the wait lies in it), never a
line falling to 0, with an arrow labelled ``>= <largest bound>``. With a scenario
comparison (queue-depth-scaling) the capacity panel also shows, dashed, the capacity the
other policy asks for.

matplotlib (a dev dependency) with the Agg backend, imported only here, only when plotting.
"""

from __future__ import annotations

from pathlib import Path

from tooling.simulate.report import StackRun, TraceRun, trace_label, wait_series


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_run(stack: StackRun, run: TraceRun, path: Path, compared: TraceRun | None = None) -> Path:
    plt = _pyplot()
    fig = figure(stack, run, compared)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def figure(stack: StackRun, run: TraceRun, compared: TraceRun | None = None):
    """The chart of one stack and trace (a matplotlib Figure; the caller closes it)."""
    plt = _pyplot()
    import matplotlib.dates as mdates
    from matplotlib.ticker import MaxNLocator

    scenario, rows = stack.scenario, run.timeline.minutes
    times = [run.trace.time(m.index) for m in rows]
    fig, (load, capacity, queue) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    fig.subplots_adjust(left=0.07, right=0.93, top=0.94, bottom=0.07, hspace=0.12)
    fig.suptitle(f"{scenario.stack}: {trace_label(run.trace)}")

    load.plot(times, [m.arrivals for m in rows], lw=0.8, color="tab:gray", label="arrivals / min")
    if scenario.kind == "concurrency":
        load.plot(times, [m.spillover for m in rows], lw=0.8, color="tab:red", label="spillover / min")
    else:
        load.plot(times, [m.served for m in rows], lw=0.8, color="tab:blue", label="served / min")
    load.set_ylabel("per minute")
    load.legend(loc="upper left", fontsize="small")

    capacity.step(times, [m.desired for m in rows], where="post", color="tab:orange", label=f"{scenario.unit} (asked for)")
    capacity.step(times, [m.serving for m in rows], where="post", color="tab:green", label=f"{scenario.unit} serving")
    if compared is not None and scenario.comparison is not None:
        capacity.step(times, [m.desired for m in compared.timeline.minutes], where="post", color="tab:gray", ls="--",
                      lw=0.8, label=f"{scenario.unit} asked for, {scenario.comparison.before}")
    if len({m.minimum for m in rows}) > 1:
        capacity.step(times, [m.minimum for m in rows], where="post", color="tab:purple", ls="--", label="minimum (schedule)")
    if scenario.kind == "concurrency":
        capacity.plot(times, [m.demand for m in rows], lw=0.8, color="tab:gray", label="concurrency wanted")
    capacity.set_ylabel(scenario.unit)
    capacity.yaxis.set_major_locator(MaxNLocator(integer=True))
    capacity.legend(loc="upper left", fontsize="small")

    if scenario.kind == "concurrency":
        queue.fill_between(times, [m.spillover for m in rows], step="post", color="tab:red", alpha=0.4, label="spillover / min")
        queue.set_ylabel("spillover / min")
    else:
        queue.fill_between(times, [m.backlog for m in rows], step="post", color="tab:blue", alpha=0.3, label="backlog")
        queue.step(times, [m.in_flight for m in rows], where="post", color="tab:blue", lw=0.8, label="in flight (busy units)")
        queue.set_ylabel("backlog")
        wait = queue.twinx()
        series = wait_series(run)
        nan = float("nan")
        wait.plot(times, [nan if w is None else w for w in series.exact], lw=0.8, color="tab:red", label="wait (min)")
        if series.label_at is not None:
            top = max(w for w in series.exact + series.lower_bound if w is not None) * 1.3
            known = [w is not None for w in series.lower_bound]
            wait.fill_between(times, [top if w is None else w for w in series.lower_bound], top, where=known, step="post",
                              facecolor="none", edgecolor="tab:red", hatch="//", lw=0.0, gid="wait-lower-bound",
                              label="wait >= (backlog outlasts the trace)")
            wait.set_ylim(bottom=0, top=top)
            at, level = times[series.label_at], series.lower_bound[series.label_at]
            wait.annotate(series.label, xy=(at, level), xytext=(24, -30), textcoords="offset points", ha="left",
                          color="tab:red", fontsize="small", gid="wait-lower-bound-label",
                          arrowprops={"arrowstyle": "->", "color": "tab:red"})
        if scenario.latency_goal_seconds is not None:
            wait.axhline(scenario.latency_goal_seconds / 60, color="tab:red", ls=":", lw=0.8, label="latency goal")
        wait.set_ylabel("wait (min)")
        wait.legend(loc="upper right", fontsize="small")
    queue.legend(loc="upper left", fontsize="small")
    queue.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    queue.set_xlabel("time (UTC)")
    return fig


def plot_all(runs: dict[str, StackRun], outdir: Path) -> list[Path]:
    """``<outdir>/<stack>/<trace>.png`` for every stack and trace."""
    paths = []
    for name, stack in runs.items():
        compared: list[TraceRun | None] = list(stack.compared) or [None] * len(stack.runs)
        paths += [plot_run(stack, run, outdir / name / f"{run.trace.name}.png", other) for run, other in zip(stack.runs, compared)]
    return paths
