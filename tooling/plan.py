"""`make plan` / `make apply`: a reviewed Terraform plan per stack, as JSON and Markdown.

    python -m tooling.plan [--target emulator|aws] [--out plans] [--stack NAME ...] [--settings FILE] [--skip-preflight]
    python -m tooling.plan --apply [--out plans]        # apply the saved plans (target aws only)

``--target emulator`` (the default; ``PLAN_TARGET=emulator``) needs no AWS account. It
reuses the local emulator deploy (tooling/deploy_local.py): your settings get
``project.emulator = true`` and the S3 backend on the emulator's state bucket and are
synthesized (before any emulator starts: a setting the stacks reject starts nothing), the
emulator recorded in ``.emulator/`` is started or reused, and every stack is planned against the state that
``make deploy-local`` left there. So: ``make deploy-local``, change settings, ``make plan``
shows what the change does. With nothing deployed, the plan creates everything. An emulator
this command started is stopped again; one that was running keeps running.

``--target aws`` (``PLAN_TARGET=aws``) plans against real AWS with the backend from the
settings file and the credentials of the environment (in CI: an OIDC role). It runs the
preflight first (tooling/preflight.py, ``make preflight``: placeholder image, Lambda
concurrency, EC2 and SageMaker quotas of the selected stacks); when something is short it
prints one line per shortfall and exits 2 before anything is synthesized, planned or deleted. ``--skip-preflight`` plans anyway (the summary
says so). Plans run with ``-lock=false``: a plan writes no state, and a review plan should
neither wait for nor block an apply. ``--apply`` then applies exactly those saved plan files.

Before anything starts, the ``--stack`` names and your settings file are checked: a problem is
one line naming your file (as you gave it), the field, the rule and the value; exit 2. The
new files are written to a staging folder beside ``--out`` and replace the previous run's only
when every stack was planned and summarized (a stack whose ``terraform plan`` failed is part of
a complete run: ``summary.md`` says so and ``--apply`` refuses it); if the run stops before that
(bad settings, synth failure, Ctrl-C), ``--out`` keeps the previous run's files.

Output in ``--out`` (default ``plans/``, gitignored), replaced on every run:

* ``<stack>.json``: ``terraform show -json`` of the plan, sensitive values redacted;
* ``<stack>.md``: the stack's review summary (tooling/plan_summary.py);
* ``summary.md``: every stack, destroyed/replaced resources first;
* ``<stack>.tfplan``: the binary plan for ``--apply`` (holds sensitive values in clear: it
  stays on the machine that planned; CI does not upload it);
* ``manifest.json``: target, stacks, and where each was planned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from app.config import PROJECT_ROOT, SETTINGS_ENV, settings_path
from tooling.outputs import UserError, check_settings, check_stacks, publish, report_user_error, staging
from tooling.plan_summary import StackSummary, mark_emulator_gaps, redact_plan, render_combined, render_stack, summarize
from tooling.terraform import Run, cli_config_env, terraform

TARGETS = ("emulator", "aws")
DEFAULT_OUT = PROJECT_ROOT / "plans"
MANIFEST = "manifest.json"


@dataclass
class StackPlan:
    stack: str
    directory: Path
    summary: StackSummary | None = None
    error: str = ""
    seconds: float = 0.0
    #: Plan differences the emulator causes, not the change (emulator target only).
    emulator_gaps: list[str] = field(default_factory=list)


def _tail(run: Run, lines: int = 30) -> str:
    text = (run.stderr.strip() or run.stdout.strip()).splitlines()
    return "\n".join(text[-lines:])


def plan_stack(stack: str, directory: Path, env: dict[str, str], out: Path,
               init: Callable[[], Run] | None = None, lock: bool = True) -> StackPlan:
    """init (``init`` or a plain ``terraform init``), plan to ``<out>/<stack>.tfplan``, then
    ``<stack>.json`` (redacted) and ``<stack>.md``."""
    started = time.monotonic()
    result = StackPlan(stack, directory)
    run = init() if init else terraform(["init", "-input=false", "-no-color", "-reconfigure"], directory, env)
    if not run.ok:
        result.error = f"terraform init failed:\n{_tail(run)}"
        return result
    planfile = out / f"{stack}.tfplan"
    run = terraform(["plan", "-input=false", "-no-color", f"-lock={'true' if lock else 'false'}", f"-out={planfile}"],
                    directory, env, timeout=1800)
    (out / f"{stack}.plan.log").write_text(run.stdout + run.stderr)
    if not run.ok:
        result.error = f"terraform plan failed:\n{_tail(run)}"
        return result
    shown = terraform(["show", "-json", str(planfile)], directory, env)
    if not shown.ok:
        result.error = f"terraform show failed:\n{_tail(shown)}"
        return result
    plan = json.loads(shown.stdout)
    (out / f"{stack}.json").write_text(json.dumps(redact_plan(plan), indent=1) + "\n")
    result.summary = summarize(plan, stack)
    (out / f"{stack}.md").write_text(render_stack(result.summary, heading="#"))
    result.seconds = time.monotonic() - started
    return result


def _failed_section(plan: StackPlan) -> str:
    return f"## {plan.stack}\n\n**The plan FAILED; nothing below covers this stack.**\n\n```\n{plan.error}\n```\n"


def write_combined(results: list[StackPlan], out: Path, note: str) -> str:
    summaries = [r.summary for r in results if r.summary is not None]
    failed = [r for r in results if r.summary is None]
    if failed:
        note += "\n\n**Plans that FAILED (not summarized below): " + ", ".join(f"`{r.stack}`" for r in failed) + "**"
    text = render_combined(summaries, note=note)
    if failed:
        text += "\n" + "\n".join(_failed_section(r) for r in failed)
    gaps = [f"- stack `{r.stack}`: {line[2:]}" for r in results for line in r.emulator_gaps]
    if gaps:
        text += _gaps_section(gaps)
    (out / "summary.md").write_text(text)
    return text


def _previous_outputs(out: Path) -> list[Path]:
    """What the previous run wrote in ``out`` (as its manifest lists), and nothing else."""
    try:
        previous = json.loads((out / MANIFEST).read_text())["stacks"]
    except (OSError, ValueError, KeyError, TypeError):
        previous = []
    paths = [out / f"{entry['stack']}{suffix}" for entry in previous for suffix in (".json", ".md", ".tfplan", ".plan.log")]
    return paths + [out / "summary.md", out / MANIFEST]


def _synthesize(settings: Path, outdir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, **{SETTINGS_ENV: str(settings), "CDKTF_OUTDIR": str(outdir)})
    return subprocess.run([sys.executable, "main.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)


def _select(names: list[str], wanted: list[str] | None) -> list[str]:
    if not wanted:
        return names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise SystemExit(f"unknown stack(s): {', '.join(unknown)} (synthesized: {', '.join(names)})")
    return [n for n in names if n in wanted]


def plan_on_emulator(out: Path, settings: Path | None, stacks: list[str] | None, emulator_dir: Path,
                     jobs: int = 2) -> tuple[list[StackPlan], str]:
    """Plan every stack against the local emulator deploy's state (see module docstring)."""
    from tooling import deploy_local as local
    from tooling import emulator as emu

    # Synthesis first: a setting the stacks reject stops the run before an emulator starts.
    ws = local.Workspace(emulator_dir.resolve() / "plan")
    data = local.write_settings(ws, settings)
    synth = local.synthesize(ws)
    if synth.returncode != 0:
        raise SystemExit(f"synth failed:\n{synth.stdout}{synth.stderr}")
    names = _select(local.synthesized_stacks(ws), stacks)
    emulator, started = emu.start(emulator_dir)
    try:
        local.ensure_state_bucket(emulator, local.project_region(data))
        local.write_backend_config(ws, emulator)
        env = local.terraform_env(emulator)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            results = list(pool.map(lambda name: plan_stack(
                name, ws.stack_dir(name), env, out, init=lambda: local.init_stack(ws, emulator, name)), names))
        deployed = local.stacks_with_state(emulator, local.project_region(data))
    finally:
        if started:
            emu.stop(emulator_dir)
    note = ("Planned on the local emulator (moto) against the state of `make deploy-local` "
            + (f"(deployed: {', '.join(f'`{s}`' for s in deployed)})" if deployed else "(nothing deployed: every resource is new)")
            + ". Resources the emulator cannot create (Lambda provisioned concurrency, Application Auto Scaling) "
              "are left out of emulator plans.")
    if note_emulator_gaps(results, out):
        note += (" Rows that come from what the emulator reads back, not from the change, are listed under "
                 "**Emulator gaps** at the end.")
    return results, note


def _gaps_section(lines: list[str]) -> str:
    return ("\n## Emulator gaps\n\nThese differences come from what moto reads back, not from the change; "
            "a plan against AWS does not show them (tooling/deploy_local.py, `EMULATOR_GAPS`).\n\n"
            + "\n".join(lines) + "\n")


def note_emulator_gaps(results: list[StackPlan], out: Path) -> bool:
    """Find, per stack, the plan differences the emulator causes: mark them in the stack's summary
    (its headline and counts then say what would happen on AWS), write the stack's ``.md`` again
    with them listed at the end; ``write_combined`` lists them at the end of ``summary.md``."""
    from tooling.deploy_local import emulator_gaps

    for result in results:
        if result.summary is None:
            continue
        found = emulator_gaps(json.loads((out / f"{result.stack}.json").read_text()))
        result.emulator_gaps = [f"- `{where}`:{why}" for where, _, why in (gap.partition(":") for gap in found.gaps)]
        if result.emulator_gaps:
            mark_emulator_gaps(result.summary, found.gap_only, found.gap_attributes)
            (out / f"{result.stack}.md").write_text(render_stack(result.summary, heading="#")
                                                    + _gaps_section(result.emulator_gaps))
    return any(r.emulator_gaps for r in results)


def plan_on_aws(out: Path, settings: Path | None, stacks: list[str] | None, jobs: int = 2) -> tuple[list[StackPlan], str]:
    """Plan every stack against real AWS, state from the settings' backend, credentials from the environment."""
    from app.config import S3Backend, load_config

    settings = (settings or settings_path()).resolve()
    config = load_config(settings)
    backend = config.project.backend
    if isinstance(backend, S3Backend):
        where = f"state in s3://{backend.bucket}/{backend.key_prefix}/"
    else:
        where = "state in LOCAL files (`terraform.<stack>.tfstate`); set `[project] backend` to S3 for shared state"
        print(f"warning: {where}", file=sys.stderr)
    outdir = PROJECT_ROOT / "cdktf.out"
    synth = _synthesize(settings, outdir)
    if synth.returncode != 0:
        raise SystemExit(f"synth failed:\n{synth.stdout}{synth.stderr}")
    names = _select(sorted(p.parent.name for p in (outdir / "stacks").glob("*/cdk.tf.json")), stacks)
    env = cli_config_env()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(lambda name: plan_stack(name, outdir / "stacks" / name, env, out, lock=False), names))
    return results, f"Planned against AWS ({config.project.region}), {where}."


def _aws_s3_client(region: str):
    import boto3

    return boto3.client("s3", region_name=region or None)


def apply_saved(out: Path, s3_client: Callable[[str], Any] = _aws_s3_client, errored_dir: Path | None = None) -> int:
    """Apply ``<out>/<stack>.tfplan`` of an ``aws`` plan, stack by stack, stopping at the first failure.

    Before applying anything: every plan must have succeeded, and no stack to change may have a
    lock on its S3 state (a ``.tflock`` object, read with ``s3_client(region)``) or an errored
    state file waiting to be pushed (tooling/recovery.py); each stops the run with the command
    that fixes it. A failed apply prints what to do next (lock, errored.tfstate, "already exists"),
    and copies an ``errored.tfstate`` to ``errored_dir`` (default ``errored-state/``): the next
    synthesis replaces the stack's folder."""
    from tooling import recovery

    errored_dir = errored_dir or recovery.ERRORED_DIR

    manifest = json.loads((out / MANIFEST).read_text())
    if manifest.get("target") != "aws":
        print(f"refusing to apply: the plans in {out} were made for target {manifest.get('target')!r}, not 'aws' "
              "(`make deploy-local` applies on the emulator)", file=sys.stderr)
        return 2
    failed = [entry["stack"] for entry in manifest["stacks"] if entry.get("error")]
    if failed:
        print(f"refusing to apply: the plan of {', '.join(failed)} failed; nothing was applied", file=sys.stderr)
        return 1
    env = cli_config_env()
    commands = recovery.Commands("aws")
    problems = []
    for entry in manifest["stacks"]:
        if entry.get("changes"):
            stack = entry["stack"]
            problems += recovery.check_before_apply(stack, Path(entry["directory"]), commands, s3_client,
                                                    [errored_dir / f"{stack}.{recovery.ERRORED_STATE}"])
    if problems:
        print("make apply STOPPED before applying anything:\n" + recovery.render(problems), file=sys.stderr)
        return 1
    for entry in manifest["stacks"]:
        stack, directory = entry["stack"], Path(entry["directory"])
        if not entry.get("changes"):
            print(f"[{stack}] no changes")
            continue
        print(f"[{stack}] applying {out / (stack + '.tfplan')} ...", flush=True)
        run = terraform(["apply", "-input=false", "-no-color", str(out / f"{stack}.tfplan")], directory, env, timeout=3600)
        print(run.stdout[-4000:])
        if not run.ok:
            print(f"[{stack}] apply FAILED:\n{_tail(run)}", file=sys.stderr)
            found = recovery.after_failed_apply(stack, directory, run.stdout + run.stderr, commands,
                                                keep_errored_in=errored_dir)
            if found:
                print("\nTo recover:\n" + recovery.render(found), file=sys.stderr)
            return 1
    return 0


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tooling.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=TARGETS, default=os.environ.get("PLAN_TARGET") or "emulator",
                        help="emulator (default, no AWS account) or aws (backend from settings, credentials from the environment)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default plans/)")
    parser.add_argument("--stack", action="append", help="plan only this stack (repeatable)")
    parser.add_argument("--settings", type=Path, default=None, help=f"settings file (default ${SETTINGS_ENV} or settings.toml)")
    parser.add_argument("--emulator-dir", type=Path, default=None, help="emulator folder of make deploy-local (default .emulator/)")
    parser.add_argument("--apply", action="store_true", help="apply the saved plans in --out (target aws)")
    parser.add_argument("--skip-preflight", action="store_true",
                        help="target aws: plan even if the preflight (quotas, placeholder image) finds a shortfall")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.apply:
        return apply_saved(out)
    if args.target not in TARGETS:
        parser.error(f"PLAN_TARGET must be one of {', '.join(TARGETS)} (given {args.target!r})")
    started = time.monotonic()
    # Arguments and the user's own settings file first: nothing is started, synthesized or deleted before.
    try:
        check_stacks(args.stack)
        check_settings(args.settings)
    except UserError as error:
        return report_user_error("make plan", error, f"nothing was planned or deleted ({out} is unchanged)")
    if args.target == "aws" and not args.skip_preflight:
        # A settings file that cannot apply must not cost the last reviewed plans.
        from tooling import preflight

        code = preflight.run(args.settings, args.stack)
        if code != 0:
            print(f"make plan: the preflight found what would fail on apply; nothing was synthesized, planned or "
                  f"deleted ({out} is unchanged). Fix the lines above, or plan anyway with --skip-preflight.",
                  file=sys.stderr)
            return code
    with staging(out) as staged:
        if args.target == "emulator":
            from tooling import emulator as emu

            results, note = plan_on_emulator(staged, args.settings, args.stack, args.emulator_dir or emu.DEFAULT_DIR)
        else:
            results, note = plan_on_aws(staged, args.settings, args.stack)
            if args.skip_preflight:
                note += (" **The preflight was skipped (`--skip-preflight`)**: quotas and the placeholder image were not "
                         "checked; `make preflight` shows what the apply may hit.")
        write_combined(results, staged, note)
        (staged / MANIFEST).write_text(json.dumps({
            "target": args.target,
            "stacks": [{"stack": r.stack, "directory": str(r.directory), "error": r.error,
                        "changes": bool(r.summary and r.summary.has_changes)} for r in results],
        }, indent=1) + "\n")
        # Complete: only now do the previous run's files go.
        publish(staged, out, _previous_outputs(out))
    for r in results:
        if r.summary is not None:
            print(f"{r.stack}: {r.summary.counts()} ({r.seconds:.0f}s) -> {out / (r.stack + '.md')}")
        else:
            print(f"{r.stack}: PLAN FAILED\n{r.error}", file=sys.stderr)
    print(f"wrote {out / 'summary.md'} ({args.target}, {time.monotonic() - started:.0f}s)")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
