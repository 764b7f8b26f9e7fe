"""`make help`: the `##` text of every target, printed as a user reads it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _make_help() -> str:
    # Under `make test` a nested make inherits MAKELEVEL/MAKEFLAGS and prints "Entering directory".
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    run = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_help_prints_environment_variables_with_one_dollar():
    text = _make_help()
    assert "$$" not in text, [line for line in text.splitlines() if "$$" in line]
    assert "(or $SCALING_PATTERNS_SETTINGS)" in text


def test_help_lists_every_documented_target_with_its_text():
    documented = re.findall(r"^([a-z-]+):.*?## (.*)$", (ROOT / "Makefile").read_text(), flags=re.M)
    lines = _make_help().splitlines()
    assert len(lines) == len(documented)
    for (target, text), line in zip(documented, lines):
        assert line.split()[:2] == ["make", target]
        assert line.rstrip().endswith(text.rstrip())
