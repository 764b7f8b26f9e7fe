#!/usr/bin/env python
"""cdktf app: one App, one stack per scaling pattern, settings from one file.

    python main.py            # synthesize every stack into cdktf.out/ (or $CDKTF_OUTDIR)
    python main.py --cached   # the same, unless cdktf.out/ already holds this synthesis (`make synth`)
    python main.py --check    # validate the settings file only; writes nothing

Settings come from settings.toml in this folder, or the file named by
$SCALING_PATTERNS_SETTINGS; either must exist and be UTF-8 TOML. Bad settings (or a file
that cannot be read) print one line per problem and exit 2 before anything is written.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from app.config import PROJECT_ROOT, load_config
from scaling_patterns.core.settings import SettingsError


def main(argv: list[str]) -> int:
    started = time.monotonic()
    try:
        config = load_config()
    except SettingsError as exc:
        print("Settings are not valid; nothing was written:", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    if "--check" in argv:
        print(f"{config.source.name}: settings are valid for {len(config.stacks)} stacks")
        return 0

    from app import synth_cache

    outdir = Path(os.environ.get("CDKTF_OUTDIR") or PROJECT_ROOT / "cdktf.out")
    key = synth_cache.input_key(config) if "--cached" in argv else None
    rows = synth_cache.cached(outdir, key) if key else None
    if rows is not None:
        _table(rows)
        print(f"unchanged: {_shown(outdir)} already holds this synthesis (inputs {key[:12]}); nothing synthesized, "
              f"{time.monotonic() - started:.1f}s (settings: {config.source.name})")
        return 0

    from app.synth import requests_for, synthesize

    try:
        results = synthesize(config.project, requests_for(config), outdir)
    except ValueError as exc:  # a construct rejected a setting combination
        print(f"Cannot synthesize: {exc}", file=sys.stderr)
        return 2
    _table(results)
    if key:
        synth_cache.record(outdir, key, results)
    print(f"synthesized {len(results)} stacks in {time.monotonic() - started:.1f}s (settings: {config.source.name})")
    return 0


def _shown(path: Path) -> Path:
    return path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path


def _table(rows: list) -> None:
    width = max(len(r.name) for r in rows)
    print(f"{'stack'.ljust(width)}  resources  outputs  file")
    for r in rows:
        print(f"{r.name.ljust(width)}  {r.resources:>9}  {r.outputs:>7}  {_shown(r.path)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
