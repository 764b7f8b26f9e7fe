"""`make rollout-check`: python -m tooling.rollout [--write] [--stack NAME ...] [--keep DIR]

Runs the check (tooling/rollout/check.py), prints its findings and counts, and compares the
table with docs/rollout.md: `--write` updates that file instead. Exit 0 when every finding is
reviewed, no reviewed entry is stale and the docs are current; 1 otherwise; 2 when the check
cannot run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tooling.rollout.check import DOC, RolloutError, render, run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.rollout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write the table to {DOC.relative_to(DOC.parents[1])}")
    parser.add_argument("--stack", action="append", help="check only this stack (repeatable; the docs are then not compared)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the synthesized variants and plans in this folder")
    args = parser.parse_args(argv)
    started = time.monotonic()

    def progress(line: str) -> None:
        print(f"[{time.monotonic() - started:5.0f}s] {line}", flush=True)

    try:
        report = run(args.keep, args.stack, progress=progress)
    except RolloutError as exc:
        print("rollout-check cannot run:", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    text = render(report)
    failed = False
    for title, lines in (("Findings not in rollout-reviewed.yaml", report.unreviewed()),
                         ("Stale entries in rollout-reviewed.yaml", report.stale()),
                         ("Baselines whose planned state does not settle (a bug in the check)",
                          [f"{k}: {', '.join(v)}" for k, v in report.baseline_noise.items()])):
        if lines:
            failed = True
            print(f"\n{title}:")
            for line in lines:
                print(f"  - {line}")
    if not args.stack:
        if args.write:
            DOC.write_text(text)
            print(f"\nwrote {DOC}")
        elif not DOC.exists() or DOC.read_text() != text:
            failed = True
            print(f"\n{DOC} is out of date: run `make rollout-check ARGS=--write` (or python -m tooling.rollout --write)")
    summary = text.split("\n\n")[3] if text.count("\n\n") > 3 else ""
    print(f"\n{summary}\n{report.plans} terraform plans; synth {report.seconds.get('synth', 0):.0f}s, "
          f"baselines {report.seconds.get('baselines', 0):.0f}s, plans {report.seconds.get('plans', 0):.0f}s, "
          f"total {report.seconds.get('total', 0):.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
