"""`make validate`: terraform init -backend=false + validate for every synthesized stack."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from app.config import PROJECT_ROOT
from tooling.terraform import find_provider_mirror, validate_stacks


def main(argv: list[str]) -> int:
    outdir = Path(argv[0]) if argv else PROJECT_ROOT / "cdktf.out"
    stacks = sorted(p for p in (outdir / "stacks").glob("*") if (p / "cdk.tf.json").is_file())
    if not stacks:
        print(f"No synthesized stacks under {outdir}/stacks; run `make synth` first.", file=sys.stderr)
        return 2
    mirror = find_provider_mirror()
    print(f"provider source: {'local mirror ' + str(mirror) if mirror else 'Terraform registry'}")
    started = time.monotonic()
    results = [(name, ok, text) for name, (ok, text) in validate_stacks(stacks).items()]
    failed = 0
    for name, ok, text in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f"\n{text}"))
        failed += not ok
    print(f"validated {len(results)} stacks in {time.monotonic() - started:.1f}s: {len(results) - failed} valid, {failed} invalid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
