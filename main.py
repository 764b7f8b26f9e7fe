#!/usr/bin/env python
"""cdktf app: one App, one stack per scaling pattern, settings from one file.

    python main.py            # synthesize every stack into cdktf.out/ (or $CDKTF_OUTDIR)
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

    from app.synth import requests_for, synthesize

    outdir = Path(os.environ.get("CDKTF_OUTDIR") or PROJECT_ROOT / "cdktf.out")
    try:
        results = synthesize(config.project, requests_for(config), outdir)
    except ValueError as exc:  # a construct rejected a setting combination
        print(f"Cannot synthesize: {exc}", file=sys.stderr)
        return 2
    width = max(len(r.name) for r in results)
    print(f"{'stack'.ljust(width)}  resources  outputs  file")
    for r in results:
        shown = r.path.relative_to(PROJECT_ROOT) if r.path.is_relative_to(PROJECT_ROOT) else r.path
        print(f"{r.name.ljust(width)}  {r.resources:>9}  {r.outputs:>7}  {shown}")
    print(f"synthesized {len(results)} stacks in {time.monotonic() - started:.1f}s (settings: {config.source.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
