"""SYNTH_ONLY (tests/conftest.py): a developer switch to synthesize only some stacks in tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scaling_patterns.registry import PATTERNS

ROOT = Path(__file__).resolve().parent.parent


def _pytest(only: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SYNTH_ONLY=only)
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, "tests/test_make_help.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_an_unknown_stack_name_stops_the_run_with_one_line_naming_it_and_the_known_stacks():
    run = _pytest("queue-depth-scaling, nope")
    assert run.returncode == 4, run.stdout + run.stderr  # pytest's usage error: no test ran
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: SYNTH_ONLY='queue-depth-scaling, nope': unknown stack(s) nope (known: ")
    assert all(spec.name in lines[0] for spec in PATTERNS)
    assert "Traceback" not in run.stderr


def test_the_same_line_on_two_workers():
    run = _pytest("nope", "-n", "2")
    assert run.returncode == 4
    assert "unknown stack(s) nope" in run.stdout + run.stderr and "Traceback" not in run.stdout + run.stderr


def test_known_stack_names_run_the_tests():
    run = _pytest(",".join(spec.name for spec in PATTERNS[:2]))
    assert run.returncode == 0, run.stdout + run.stderr
