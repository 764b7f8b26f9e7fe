"""Generate the example load traces in traces/ (deterministic: same seed, same files).

    python -m tooling.simulate.make_traces [--out traces/] [--seed 20240506]

Each trace is arrivals per minute (jobs or requests), CSV ``timestamp,arrivals``, drawn as
Poisson counts around a smooth mean so minutes vary as real traffic does:

- ``diurnal.csv``: one day (1,440 minutes) from Monday 2024-05-06 00:00 UTC; the mean follows
  a cosine between 10 a minute at 04:00 and 150 a minute at 16:00;
- ``burst.csv``: three hours (180 minutes) from 2024-05-07 12:00 UTC; 20 a minute, then
  200 a minute for 30 minutes from minute 60 (a sudden burst, e.g. a batch submitted at once);
- ``ramp.csv``: eight hours (480 minutes) from 2024-05-08 06:00 UTC; the mean rises linearly
  from 10 to 200 a minute over six hours, then holds;
- ``stop.csv``: three hours (180 minutes) from 2024-05-09 18:00 UTC; 120 a minute for an hour,
  then none at all (the producers stop: a batch ends, traffic moves to another region), which
  shows whether a policy scales in without any request.

The sizes suit the request-serving stacks' defaults (tens to a few hundred requests a minute).
Jobs of queue-depth-scaling take 30 s of a worker each by default, so they arrive far less
often: when the simulator runs these example traces, it scales their arrivals for that stack
by :data:`EXAMPLE_SCALE` (shown as ``x0.05`` next to the trace name); a trace of your own is
never scaled unless you pass ``--scale``.
Poisson draws use Python's own ``random.Random(seed)`` and inversion, so the files do not
depend on NumPy or the platform.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from scaling_patterns.simulation.traces import render_trace

SEED = 20240506
#: Arrival factors applied to these example traces per stack (never to a trace passed with --trace).
EXAMPLE_SCALE: dict[str, float] = {"queue-depth-scaling": 0.05}
OUT = Path(__file__).resolve().parents[2] / "traces"


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw by inversion (exact; fine for means up to several hundred)."""
    if mean <= 0:
        return 0
    u = rng.random()
    k, probability = 0, math.exp(-mean)
    cumulative = probability
    while u > cumulative and probability > 0:
        k += 1
        probability *= mean / k
        cumulative += probability
    return k


def diurnal_mean(minute: int) -> float:
    hour = minute / 60
    return 10 + 140 * (0.5 - 0.5 * math.cos(2 * math.pi * (hour - 4) / 24))


def burst_mean(minute: int) -> float:
    return 200.0 if 60 <= minute < 90 else 20.0


def ramp_mean(minute: int) -> float:
    return 10 + 190 * min(minute, 360) / 360


def stop_mean(minute: int) -> float:
    return 120.0 if minute < 60 else 0.0


#: name -> (start, minutes, mean arrivals per minute)
TRACES: dict[str, tuple[datetime, int, Callable[[int], float]]] = {
    "diurnal": (datetime(2024, 5, 6, 0, 0, tzinfo=timezone.utc), 1440, diurnal_mean),
    "burst": (datetime(2024, 5, 7, 12, 0, tzinfo=timezone.utc), 180, burst_mean),
    "ramp": (datetime(2024, 5, 8, 6, 0, tzinfo=timezone.utc), 480, ramp_mean),
    "stop": (datetime(2024, 5, 9, 18, 0, tzinfo=timezone.utc), 180, stop_mean),
}


def generate(seed: int = SEED) -> dict[str, str]:
    """CSV text of every trace; each trace draws from its own generator (seed, name)."""
    result = {}
    for name, (start, count, mean) in TRACES.items():
        rng = random.Random(f"{seed}:{name}")
        result[name] = render_trace(start, [poisson(rng, mean(minute)) for minute in range(count)])
    return result


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.simulate.make_traces", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in generate(args.seed).items():
        path = args.out / f"{name}.csv"
        path.write_text(text)
        print(f"wrote {path} ({text.count(chr(10)) - 1} minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
