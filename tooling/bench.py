"""`make bench`: what synthesis costs, against the floor of importing the bindings.

    python -m tooling.bench [--copies 1,5,25] [--markdown FILE]

Each measurement is a fresh process (run with ``--child``), timed wall-clock, with memory
sampled every 20 ms as the summed RSS of the process and its children (the jsii Node.js
runtime does most of the work, so measuring Python alone would flatter us):

- ``floor``: import every construct module (and so the same provider bindings), synthesize nothing;
- ``eager`` (reference): a plain ``import cdktf_cdktf_provider_aws``, which runs the package
  ``__init__`` and so imports all 2,135 resource modules (what app/bindings.py avoids);
- ``synth xN``: N copies of each registered stack in one App, synthesized into a temp folder;
- ``make synth, unchanged``: ``main.py --cached`` (what `make synth` runs) a second time on the same
  settings and output folder: the cache answers without loading the bindings (app/synth_cache.py).

Reported: wall time, peak memory, the ratio to the floor, and time per stack beyond the floor.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.config import PROJECT_ROOT
from scaling_patterns.registry import PATTERNS

TIME_TARGET = 1.3  # x floor, for the default synth (one copy of each stack)
MEMORY_TARGET_MB = 1024


@dataclass(frozen=True)
class Measurement:
    label: str
    stacks: int
    seconds: float
    peak_mb: float


def _tree_rss_kb(root: int) -> int:
    """Summed RSS of ``root`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid, ppid = int(entry.name), int(fields.get("PPid", "0").strip())
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(label: str, args: list[str], stacks: int, env: dict[str, str] | None = None) -> Measurement:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tooling.bench", "--child", *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed ({proc.returncode}):\n{err[-2000:]}")
    return Measurement(label, stacks, elapsed, peak / 1024)


def child(mode: str, copies: int) -> None:
    """Runs inside the measured process."""
    from app.config import ProjectSettings

    if mode == "main":  # main.py --cached, as `make synth` runs it (CDKTF_OUTDIR from the parent)
        import contextlib
        import io

        import main as app_main

        with contextlib.redirect_stdout(io.StringIO()):
            code = app_main.main(["--cached"])
        if code:
            raise SystemExit(code)
        return
    if mode == "eager":  # what a plain `import cdktf_cdktf_provider_aws` costs (every module)
        import importlib

        sys.modules.pop("cdktf_cdktf_provider_aws", None)
        importlib.import_module("cdktf_cdktf_provider_aws")
        return
    from app.bindings import import_provider_lazily

    import_provider_lazily()  # as the app does (app/synth.py)
    import app.stack  # noqa: F401 - imports the bindings

    classes = [spec.load("construct") for spec in PATTERNS]
    if mode == "floor":
        return
    from app.synth import StackRequest, synthesize

    requests = [StackRequest(spec, spec.name if i == 0 else f"{spec.name}-copy{i}", spec.load_settings_class()())
                for i in range(copies) for spec in PATTERNS]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        synthesize(ProjectSettings(), requests, Path(tmp) / "cdktf.out")
    del classes


def table(results: list[Measurement]) -> str:
    floor = results[0]
    lines = ["| run | stacks | wall time (s) | x floor | per stack beyond floor (s) | peak memory (MiB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        per_stack = f"{(r.seconds - floor.seconds) / r.stacks:.2f}" if r.stacks else "-"
        lines.append(f"| {r.label} | {r.stacks} | {r.seconds:.1f} | {r.seconds / floor.seconds:.2f} | "
                     f"{per_stack} | {r.peak_mb:.0f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", default="1,5,25", help="copies of each stack per run (default 1,5,25)")
    parser.add_argument("--no-eager", dest="eager", action="store_false",
                        help="skip the reference run that imports the whole provider package")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "COPIES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    copies = [int(c) for c in args.copies.split(",") if c.strip()]
    print(f"measuring on {os.cpu_count()} cores: floor, then synth x{', x'.join(map(str, copies))} "
          f"({len(PATTERNS)} stacks each) ...", flush=True)
    results = [measure("floor (import the bindings used, synthesize nothing)", ["floor", "0"], 0)]
    print(f"  floor: {results[0].seconds:.1f}s, {results[0].peak_mb:.0f} MiB", flush=True)
    if args.eager:
        eager = measure("reference: eager `import cdktf_cdktf_provider_aws`", ["eager", "0"], 0)
        results.append(eager)
        print(f"  eager package import: {eager.seconds:.1f}s, {eager.peak_mb:.0f} MiB", flush=True)
    for n in copies:
        r = measure(f"synth x{n}", ["synth", str(n)], n * len(PATTERNS))
        results.append(r)
        print(f"  synth x{n}: {r.seconds:.1f}s, {r.peak_mb:.0f} MiB", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        env = {"CDKTF_OUTDIR": str(Path(tmp) / "cdktf.out")}
        measure("make synth, first run", ["main", "0"], 0, env)
        cached = measure("make synth, unchanged (cached repeat)", ["main", "0"], 0, env)
    results.append(cached)
    print(f"  make synth, unchanged: {cached.seconds:.2f}s, {cached.peak_mb:.0f} MiB", flush=True)
    text = table(results)
    print()
    print(text)
    one = next((r for r in results if r.label == "synth x1"), None)
    if one is not None:
        ratio = one.seconds / results[0].seconds
        print(f"\nsynth of all {one.stacks} stacks: {ratio:.2f}x the floor (target < {TIME_TARGET}x), "
              f"peak {one.peak_mb:.0f} MiB (target < {MEMORY_TARGET_MB} MiB)")
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
