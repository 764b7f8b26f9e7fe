"""`make simulate`: replay load traces through every stack's scaling policy as its settings configure it.

    python -m tooling.simulate [--trace FILE.csv ...] [--stack NAME ...] [--base REF]
                               [--scale [STACK=]FACTOR ...] [--assume STACK.NAME=VALUE ...]
                               [--out simulation/] [--no-plots]

Prints one Markdown table per stack (a row per trace) and writes ``<out>/summary.md`` and
``<out>/<stack>/<trace>.png``. With ``--base REF``, also simulates the settings file as it was
at that git ref and writes ``<out>/diff.md`` (metric base -> now, for the PR comment).
Settings: ``$SCALING_PATTERNS_SETTINGS`` or settings.toml. Traces: ``traces/*.csv`` unless
``--trace`` is given. Errors are one line each; exit status 2, before anything is written. The
new files replace the previous run's (summary.md, diff.md, every stack's PNGs) only once all of
them are written (to a staging folder beside ``--out``); a failure leaves the previous ones.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from app.config import PROJECT_ROOT, load_config, settings_path
from scaling_patterns.core.settings import SettingsError
from scaling_patterns.registry import PATTERNS
from scaling_patterns.simulation.scenario import SimulationError
from scaling_patterns.simulation.traces import Trace, TraceError, read_trace
from tooling.outputs import publish, staging
from tooling.simulate.base import settings_at_ref
from tooling.simulate.make_traces import EXAMPLE_SCALE
from tooling.simulate.report import Options, diff_report, simulate_stacks, stack_markdown, summary_markdown, traces_markdown

TRACES_DIR = PROJECT_ROOT / "traces"
OUT_DIR = PROJECT_ROOT / "simulation"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tooling.simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", action="append", type=Path, default=[], metavar="FILE.csv",
                        help="trace CSV (timestamp,arrivals; one row per minute); repeatable; default traces/*.csv")
    parser.add_argument("--stack", action="append", default=[], metavar="NAME", help="simulate only this stack; repeatable")
    parser.add_argument("--base", metavar="REF", help="also simulate settings.toml at this git ref; write diff.md")
    parser.add_argument("--scale", action="append", default=[], metavar="[STACK=]FACTOR",
                        help="multiply arrivals by FACTOR (for every stack, or one); repeatable")
    parser.add_argument("--assume", action="append", default=[], metavar="STACK.NAME=VALUE",
                        help="change a simulation assumption (listed under each stack's table); repeatable")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: simulation/)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    return parser


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise SimulationError(f"{what}: must be a number (given {text!r})")
    return value


def parse_options(scale: Sequence[str], assume: Sequence[str], known: Sequence[str]) -> Options:
    """``--scale`` and ``--assume`` values, checked against the stack names."""
    scales: dict[str, float] = {}
    for item in scale:
        stack, _, factor = item.rpartition("=")
        stack = stack or "*"
        if stack != "*" and stack not in known:
            raise SimulationError(f"--scale {item}: unknown stack {stack!r} (known: {', '.join(known)})")
        value = _number(factor, f"--scale {item}")
        if value <= 0:
            raise SimulationError(f"--scale {item}: factor must be > 0 (given {factor})")
        scales[stack] = value
    assumed: dict[str, dict[str, float]] = {}
    for item in assume:
        key, sep, raw = item.partition("=")
        stack, dot, name = key.rpartition(".")
        if not sep or not dot:
            raise SimulationError(f"--assume {item}: expected STACK.NAME=VALUE, e.g. inference-load-balancing.seconds_per_request=1.5")
        if stack not in known:
            raise SimulationError(f"--assume {item}: unknown stack {stack!r} (known: {', '.join(known)})")
        assumed.setdefault(stack, {})[name] = _number(raw, f"--assume {item}")
    return Options(assume=assumed, scale=scales)


def load_traces(files: Sequence[Path]) -> list[Trace]:
    paths = list(files) or sorted(TRACES_DIR.glob("*.csv"))
    if not paths:
        raise TraceError(f"no traces: {TRACES_DIR} has no *.csv (run `python -m tooling.simulate.make_traces`) and no --trace given")
    traces = [read_trace(path) for path in paths]
    names = [t.name for t in traces]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise TraceError(f"two traces are named {duplicate!r} (file stem); rename one")
    return traces


def previous_outputs(out: Path, stacks: Sequence[str]) -> list[Path]:
    """What an earlier run wrote in ``out``: summary.md, diff.md and every stack's PNGs (a run replaces them all)."""
    return [out / "summary.md", out / "diff.md"] + [png for name in stacks for png in sorted((out / name).glob("*.png"))]


def _shown(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    source = settings_path()
    known = [spec.name for spec in PATTERNS]
    try:
        config = load_config()  # errors name the file as the user gave it
        names = args.stack or known
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SimulationError(f"--stack {unknown[0]}: unknown stack (known: {', '.join(known)})")
        options = parse_options(args.scale, args.assume, known)
        traces = load_traces(args.trace)
        if not args.trace:
            options = replace(options, example_scale=EXAMPLE_SCALE)
        base = settings_at_ref(args.base, source) if args.base else None
        base_config = None
        if base is not None:
            try:
                base_config = load_config(data=base.data)
            except SettingsError as exc:
                raise SettingsError([f"at {args.base}: {line}" for line in exc.problems]) from None
        runs = simulate_stacks(config.stacks, names, traces, options)
    except SettingsError as exc:
        print("Settings are not valid; nothing was simulated:", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    except (TraceError, SimulationError) as exc:
        print(f"Cannot simulate: {exc}", file=sys.stderr)
        return 2

    print(traces_markdown(traces))
    for run in runs.values():
        print(stack_markdown(run))
    # Everything goes to a staging folder beside --out first; the previous results are replaced only when
    # the new ones are complete (a failed plot leaves them as they were).
    with staging(args.out) as staged:
        (staged / "summary.md").write_text(summary_markdown(runs, traces, source.name))
        if base is not None and base_config is not None:
            note = "" if base.existed else f"`{base.path}` did not exist at `{args.base}`: compared with the defaults."
            diff, _ = diff_report(args.base, base_config.stacks, config.stacks, runs, traces, options, note)
            (staged / "diff.md").write_text(diff)
            print(diff)
        if not args.no_plots:
            from tooling.simulate.plots import plot_all

            plot_all(runs, staged)
        written = publish(staged, args.out, previous_outputs(args.out, known))
    pngs = sum(1 for p in written if p.suffix == ".png")
    print(f"simulated {len(runs)} stacks x {len(traces)} traces in {time.monotonic() - started:.1f}s "
          f"(settings: {source.name}); wrote {_shown(args.out)}/summary.md"
          + (", diff.md" if base is not None else "") + (f" and {pngs} PNGs" if pngs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
