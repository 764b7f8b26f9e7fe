"""`make upgrade-check BASE=<ref>`: what this checkout does to stacks deployed from ``<ref>``.

    python -m tooling.upgrade_check --base REF [--stack NAME ...] [--settings FILE] [--base-settings FILE]
                                    [--out plans] [--jobs 2]

`make plan` on a fresh emulator plans from empty state: "create everything", never what a change
does to running infrastructure. This command plans the change against the base revision,
deployed:

1. exports ``REF`` (``git archive``) into a temporary folder: the base has its own ``main.py``,
   ``modules/``, ``functions/`` and settings file, and ITS code synthesizes it, with this
   interpreter, in the emulator profile exactly as `make deploy-local` builds it
   (``project.emulator = true``, the S3 backend with ``use_lockfile`` on the emulator);
2. starts a private emulator (moto on a free port, in the temporary folder; never the one of
   `make deploy-local`) and applies the base stacks on it (tooling/deploy_local.py, without
   its second plan and wiring checks);
3. synthesizes this checkout with its settings the same way and plans each stack against that
   state (tooling/plan.py): ``<out>/summary.md`` first lists what is destroyed or replaced in the
   running stacks, then the counts and every change, old -> new (tooling/plan_summary.py);
4. stops the emulator and removes the temporary folder.

The base's settings file is the same path in the base tree as this checkout's (``settings.toml``,
or ``$SCALING_PATTERNS_SETTINGS`` when it lies inside the project), unless ``--base-settings``
names one; a settings file outside the project is used for both.

Output goes into a temporary folder beside ``--out`` (default ``plans/``) that replaces it only
when the run completed: a crash leaves the previous ``plans/`` untouched. A run that completed
with a failure (the base does not apply, a plan fails) still writes its ``summary.md``, saying
so first, and exits 1. The binary ``.tfplan`` files are not kept: they belong to an emulator
that no longer exists, and `make apply` refuses emulator plans anyway.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.config import PROJECT_ROOT, SETTINGS_ENV, settings_source
from scaling_patterns.registry import PATTERNS
from tooling.plan import DEFAULT_OUT, MANIFEST, StackPlan, write_combined

EMULATOR_GAPS_NOTE = ("Resources the emulator cannot create (Lambda provisioned concurrency, Application Auto Scaling) "
                      "are left out of both the base and this plan.")


class UpgradeCheckError(Exception):
    """A step failed; the message says which and why (one line first, details after)."""


def _git(args: list[str], cwd: Path = PROJECT_ROOT, binary: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=not binary, timeout=300)


def resolve(ref: str, cwd: Path = PROJECT_ROOT) -> str:
    run = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd)
    if run.returncode != 0 or not run.stdout.strip():
        raise UpgradeCheckError(f"BASE={ref!r} is not a commit in {cwd} (in CI, check out with fetch-depth: 0)")
    return run.stdout.strip()


def head_description(cwd: Path = PROJECT_ROOT) -> str:
    """``abc1234`` (and ``+ uncommitted changes`` when the work tree differs from HEAD)."""
    head = _git(["rev-parse", "--short", "HEAD"], cwd).stdout.strip() or "unknown"
    dirty = _git(["status", "--porcelain", "--untracked-files=no"], cwd).stdout.strip()
    return f"`{head}`" + (" + uncommitted changes" if dirty else "")


def export(sha: str, dest: Path, cwd: Path = PROJECT_ROOT) -> None:
    """The tree of ``sha`` (``git archive``) into ``dest``."""
    run = _git(["archive", "--format=tar", sha], cwd, binary=True)
    if run.returncode != 0:
        raise UpgradeCheckError(f"git archive {sha} failed: {run.stderr.decode(errors='replace').strip()}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(run.stdout)) as archive:
        archive.extractall(dest, filter="data")


def base_settings_for(head_settings: Path, base_root: Path) -> Path:
    """The base tree's counterpart of the head's settings file (see module docstring)."""
    head_settings = head_settings.resolve()
    if not head_settings.is_relative_to(PROJECT_ROOT):
        return head_settings
    path = base_root / head_settings.relative_to(PROJECT_ROOT)
    if not path.is_file():
        raise UpgradeCheckError(f"the base has no {head_settings.relative_to(PROJECT_ROOT)}; "
                                "name the base's settings with --base-settings")
    return path


@dataclass
class Outcome:
    base_ref: str
    base_sha: str = ""
    head: str = ""
    results: list[StackPlan] = field(default_factory=list)
    base_stacks: list[str] = field(default_factory=list)  # applied from the base
    new_stacks: list[str] = field(default_factory=list)  # in this checkout, not in the base
    removed_stacks: list[str] = field(default_factory=list)  # in the base, not in this checkout
    failure: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    gap_note: str = ""  # which changed resources differ only by emulator gaps

    @property
    def ok(self) -> bool:
        return not self.failure and not any(r.error for r in self.results)


def _names(items: list[str]) -> str:
    return ", ".join(f"`{s}`" for s in items)


def gap_only(out: Path, results: list[StackPlan]) -> dict[str, tuple[list[str], list[str]]]:
    """Per stack: (replaced, updated) resources whose every difference is an emulator gap.

    Those rows are not part of the change (a plan against AWS does not show them); in an
    upgrade check they would otherwise read as if the change replaced running resources."""
    from tooling.deploy_local import emulator_gaps

    found = {}
    for result in results:
        if result.summary is None:
            continue
        only = emulator_gaps(json.loads((out / f"{result.stack}.json").read_text())).gap_only
        replaced = sorted(c.address for c in result.summary.changes if c.destructive and c.address in only)
        updated = sorted(a for a in only if a not in replaced)
        if replaced or updated:
            found[result.stack] = (replaced, updated)
    return found


def gaps_sentence(found: dict[str, tuple[list[str], list[str]]], results: list[StackPlan]) -> str:
    if not found:
        return ""
    replaced = [(stack, a) for stack, (r, _) in found.items() for a in r]
    updated = sum(len(u) for _, u in found.values())
    changed = sum(len(r.summary.changes) + len(r.summary.outputs) for r in results if r.summary)
    if len(replaced) + updated >= changed:
        lead = "**This change does nothing to the running stacks beyond emulator gaps**: every row below comes from"
    else:
        lead = f"**Not part of the change**: {len(replaced) + updated} of the changed resources differ only in"
    text = (f"{lead} attributes moto reads back differently from AWS (listed under **Emulator gaps** at the end; "
            "a plan against AWS does not show them)")
    if replaced:
        text += (", including the replacement" + ("s" if len(replaced) > 1 else "") + " of "
                 + ", ".join(f"`{a}` (`{stack}`)" for stack, a in replaced))
    return text + "."


def note(outcome: Outcome, gaps: bool) -> str:
    text = (f"**Upgrade check**: this change ({outcome.head}) planned against the stacks of the base "
            f"`{outcome.base_ref}` (`{outcome.base_sha[:7]}`), applied first on a private emulator (moto): "
            "each row is what the change does to a running stack.")
    if outcome.base_stacks:
        text += f" Deployed from the base: {_names(outcome.base_stacks)}."
    if outcome.new_stacks:
        text += f" New in this change (not in the base, every resource is created): {_names(outcome.new_stacks)}."
    if outcome.removed_stacks:
        text += (f" **Removed by this change: {_names(outcome.removed_stacks)}**: nothing plans them any more, "
                 "so their resources keep running until someone runs `terraform destroy` on them.")
    text += " " + EMULATOR_GAPS_NOTE
    if gaps:
        text += (" Rows that come from what the emulator reads back, not from the change, are listed under "
                 "**Emulator gaps** at the end.")
    if outcome.gap_note:
        text += "\n\n" + outcome.gap_note
    return text


def failure_summary(outcome: Outcome) -> str:
    return ("# Terraform plan summary\n\n"
            f"**Upgrade check FAILED: {outcome.failure.splitlines()[0]}** Nothing below compares this change "
            f"({outcome.head}) with running stacks of `{outcome.base_ref}`.\n\n"
            "```\n" + outcome.failure.strip() + "\n```\n")


def run_check(outcome: Outcome, out: Path, stacks: list[str] | None, settings: Path | None, base_settings: Path | None,
              jobs: int, scratch: Path) -> None:
    """Steps 1-3 into ``out`` (a fresh folder), using ``scratch`` for the base tree and the emulator;
    raises UpgradeCheckError when a step fails."""
    from tooling import deploy_local as local
    from tooling import emulator as emu
    from tooling.plan import plan_on_emulator

    base_ref = outcome.base_ref
    started = time.monotonic()
    outcome.base_sha = resolve(base_ref)
    base_root = scratch / "base"
    export(outcome.base_sha, base_root)
    head_settings = settings_source(settings)[0]
    base_file = base_settings.resolve() if base_settings else base_settings_for(head_settings, base_root)
    outcome.seconds["export"] = time.monotonic() - started
    print(f"upgrade-check: base {base_ref} = {outcome.base_sha[:7]} exported; settings: base {base_file}, "
          f"head {head_settings}", flush=True)

    head_names = [spec.name for spec in PATTERNS]
    if stacks:
        unknown = sorted(set(stacks) - set(head_names))
        outcome.removed_stacks = unknown  # asked for, gone from this checkout (checked against the base below)
    emulator_dir = scratch / "emulator"
    try:
        t = time.monotonic()
        deployed = local.deploy(emulator_dir, base_file, jobs, stacks=stacks, root=base_root, verify=False,
                                missing_ok=True)
        outcome.seconds["base"] = time.monotonic() - t
        base_names = local.synthesized_stacks(local.Workspace(emulator_dir.resolve()))
        if stacks:
            outcome.removed_stacks = [s for s in outcome.removed_stacks if s in base_names]
            unknown = sorted(set(stacks) - set(head_names) - set(base_names))
            if unknown:
                raise UpgradeCheckError(f"unknown stack(s): {', '.join(unknown)} (this checkout: {', '.join(head_names)})")
        else:
            outcome.removed_stacks = [s for s in base_names if s not in head_names]
        outcome.base_stacks = [s.name for s in deployed.stacks]
        wanted = [s for s in (stacks or head_names) if s in head_names]
        outcome.new_stacks = [s for s in wanted if base_names and s not in base_names]
        if deployed.error or deployed.problems or not deployed.ok:
            details = deployed.error or "\n".join(f"{s.name}: {s.error}" for s in deployed.stacks if s.error)
            raise UpgradeCheckError(f"the base `{base_ref}` did not apply on the emulator.\n{details}"
                                    f"\nlogs: {emulator_dir / 'logs'} (removed at the end; rerun locally to keep them)")
        if not wanted:
            return
        t = time.monotonic()
        try:
            outcome.results, _ = plan_on_emulator(out, head_settings, wanted, emulator_dir, jobs)
        except SystemExit as exc:  # plan_on_emulator exits on a failed synthesis
            raise UpgradeCheckError(f"this checkout could not be planned: {exc}") from None
        outcome.seconds["plan"] = time.monotonic() - t
        outcome.gap_note = gaps_sentence(gap_only(out, outcome.results), outcome.results)
    finally:
        emu.stop(emulator_dir)
        outcome.seconds["total"] = time.monotonic() - started


def write_output(outcome: Outcome, staging: Path) -> str:
    for planfile in staging.glob("*.tfplan"):
        planfile.unlink()  # the emulator they were made on is gone
    if outcome.failure:
        text = failure_summary(outcome)
        (staging / "summary.md").write_text(text)
    else:
        text = write_combined(outcome.results, staging, note(outcome, any(r.emulator_gaps for r in outcome.results)))
    (staging / MANIFEST).write_text(json.dumps({
        "target": "emulator",
        "upgrade_check": {"base": outcome.base_ref, "base_sha": outcome.base_sha, "head": outcome.head,
                          "base_stacks": outcome.base_stacks, "new_stacks": outcome.new_stacks,
                          "removed_stacks": outcome.removed_stacks, "failure": outcome.failure,
                          "seconds": {k: round(v, 1) for k, v in outcome.seconds.items()}},
        "stacks": [{"stack": r.stack, "directory": "", "error": r.error,
                    "changes": bool(r.summary and r.summary.has_changes)} for r in outcome.results],
    }, indent=1) + "\n")
    return text


def replace_folder(staging: Path, out: Path) -> None:
    """``staging`` becomes ``out`` (same parent, so each step is a rename)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def upgrade_check(base_ref: str, out: Path = DEFAULT_OUT, stacks: list[str] | None = None, settings: Path | None = None,
                  base_settings: Path | None = None, jobs: int = 2) -> Outcome:
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    scratch = Path(tempfile.mkdtemp(prefix="upgrade-check."))
    outcome = Outcome(base_ref, head=head_description())
    try:
        try:
            run_check(outcome, staging, stacks, settings, base_settings, jobs, scratch)
        except UpgradeCheckError as exc:
            outcome.failure = str(exc)
        write_output(outcome, staging)
        replace_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return outcome


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tooling.upgrade_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git ref of the base revision (e.g. origin/main)")
    parser.add_argument("--stack", action="append", help="only this stack (repeatable)")
    parser.add_argument("--settings", type=Path, default=None, help=f"this checkout's settings (default ${SETTINGS_ENV} or settings.toml)")
    parser.add_argument("--base-settings", type=Path, default=None, help="the base's settings file (default: the same path in the base tree)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default plans/), replaced when complete")
    parser.add_argument("--jobs", type=int, default=2, help="stacks applied or planned at the same time (default 2)")
    args = parser.parse_args(argv)
    outcome = upgrade_check(args.base, args.out, args.stack, args.settings, args.base_settings, args.jobs)
    out = args.out.resolve()
    for r in outcome.results:
        if r.summary is not None:
            print(f"{r.stack}: {r.summary.counts()} ({r.seconds:.0f}s) -> {out / (r.stack + '.md')}")
        else:
            print(f"{r.stack}: PLAN FAILED\n{r.error}", file=sys.stderr)
    if outcome.failure:
        print(f"upgrade-check FAILED: {outcome.failure}", file=sys.stderr)
    timing = ", ".join(f"{k} {v:.0f}s" for k, v in outcome.seconds.items())
    print(f"wrote {out / 'summary.md'} (upgrade from {args.base}; {timing or 'failed early'})")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
