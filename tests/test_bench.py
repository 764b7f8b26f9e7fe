"""`make bench`: the arithmetic of its table and a real measurement of a small run.

The full benchmark (floor, eager import, 1/5/25 copies) takes about a minute and its numbers
depend on the machine, so the suite runs `--copies 2 --no-eager` once and checks what must hold
anywhere: every stack is synthesized in the measured child, synthesis costs more than the floor,
and memory is measured across Python and the Node.js runtime.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.config import PROJECT_ROOT
from scaling_patterns.registry import PATTERNS
from tooling.bench import Measurement, table


def test_table_gives_the_ratio_to_the_floor_and_the_cost_per_stack():
    rows = table([Measurement("floor", 0, 4.0, 600), Measurement("synth x1", 5, 5.0, 700),
                  Measurement("synth x5", 25, 9.0, 720)]).splitlines()
    assert rows[2] == "| floor | 0 | 4.0 | 1.00 | - | 600 |"
    assert rows[3] == "| synth x1 | 5 | 5.0 | 1.25 | 0.20 | 700 |"
    assert rows[4] == "| synth x5 | 25 | 9.0 | 2.25 | 0.20 | 720 |"


@pytest.mark.slow
def test_a_small_benchmark_run_measures_synthesis_of_every_stack(tmp_path):
    markdown = tmp_path / "bench.md"
    run = subprocess.run([sys.executable, "-m", "tooling.bench", "--copies", "2", "--no-eager", "--markdown", str(markdown)],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in markdown.read_text().splitlines()[2:]}
    floor, synth = rows["floor (import the bindings used, synthesize nothing)"], rows["synth x2"]
    assert synth[0] == str(2 * len(PATTERNS))
    assert float(synth[1]) > 1.0 and float(floor[1]) > 1.0  # seconds (wall times too noisy to order here)
    assert float(floor[4]) > 300  # MiB: the jsii Node.js runtime is counted, not just Python
    assert float(synth[4]) > 300  # (peaks of two processes: too noisy to order, as seen on a loaded machine)
    cached = rows["make synth, unchanged (cached repeat)"]
    assert float(cached[1]) < float(floor[1])  # the cache answers without loading the bindings
    assert float(cached[4]) < 300  # MiB: no Node.js runtime was started
