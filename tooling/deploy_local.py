"""`make deploy-local` / `make destroy-local`: every stack, really applied, on a local emulator.

    python -m tooling.deploy_local deploy  [--dir .emulator] [--settings FILE] [--jobs 2] [--stack NAME ...]
    python -m tooling.deploy_local destroy [--dir .emulator]

deploy (after checking ``--stack`` and your settings file: one line per problem naming it, exit 2,
nothing started; steps 2 and 3 run before step 1, so a setting the stacks reject starts nothing either):
1. starts the emulator (moto server on 127.0.0.1, see tooling/emulator.py) or reuses the
   running one, and creates the state bucket on it (versioned, as recommended for real use);
2. writes ``<dir>/settings.toml``: your settings file (``$SCALING_PATTERNS_SETTINGS`` or
   ``settings.toml``) with ``[project] emulator = true`` and an S3 backend on that bucket
   with ``use_lockfile = true``: the same backend path a team uses;
3. synthesizes all stacks in one ``python main.py`` run into ``<dir>/cdktf.out`` (your
   ``cdktf.out`` is untouched);
4. per stack (two at a time): ``terraform init`` with the emulator's S3 endpoint given as
   ``-backend-config`` (``<dir>/backend.hcl``), ``apply``, prints the outputs, then a second
   ``terraform plan -detailed-exitcode`` that must show no changes, then the wiring checks
   of scaling_patterns/verify.py through boto3;
5. prints a summary table; exits 1 if anything failed.

Before step 3 it looks for what a killed or failed earlier deploy left (tooling/recovery.py):
a ``.tflock`` object beside a stack's state (stale lock) or an ``errored.tfstate`` in a
stack's folder. Either stops the deploy before anything is applied, with the exact command
that fixes it (``make unlock STACK=... LOCK_ID=...``, ``make terraform STACK=... ARGS="state
push errored.tfstate"``); a lock is never released automatically. An apply that fails with
"already exists" prints the ``terraform import`` command for the resource.

The AWS provider is pointed at the emulator through the environment only (AWS_ENDPOINT_URL,
fake credentials, no shared AWS config; see tooling/emulator.aws_env): the synthesized
stacks are exactly what a real deploy applies.

destroy: ``terraform destroy`` of every stack that has state on the emulator (reverse
registry order), a scan of the emulator for anything left with the project's name prefix,
then stops the emulator and removes ``<dir>``. Both commands are safe to run twice.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from app.config import PROJECT_ROOT, SETTINGS_ENV, settings_path
from scaling_patterns.core.settings import read_toml
from scaling_patterns.registry import PATTERNS
from scaling_patterns.verify import Check, CheckContext, leftovers, run_checks
from tooling import emulator as emu
from tooling import recovery
from tooling.outputs import UserError, check_settings, check_stacks, given_settings, report_user_error
from tooling.terraform import Run, cli_config_env, find_provider_mirror, terraform

STATE_BUCKET = "scaling-patterns-local-state"
KEY_PREFIX = "scaling-patterns"

def _blank(value: Any) -> bool:
    """What the provider reads back when the emulator returned nothing: null, "", 0, false,
    or a block whose every value is blank."""
    if isinstance(value, dict):
        return all(_blank(v) for v in value.values())
    if isinstance(value, list):
        return all(_blank(v) for v in value)
    return value in (None, "", 0, False)


def _returned_nothing(before: Any, after: Any) -> bool:
    return _blank(before)


def _extra_launch_template_tags(before: Any, after: Any) -> bool:
    kept = [spec for spec in before or [] if spec.get("resource_type") != "launch-template"]
    return kept == after and len(kept) < len(before or [])


def _same_json(before: Any, after: Any) -> bool:
    try:
        return before != after and json.loads(before) == json.loads(after)
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Gap:
    reason: str
    #: (before, after) -> True when the difference is the emulator's doing. Default: the
    #: emulator returned nothing for the attribute. Anything else is a perpetual diff.
    applies: Callable[[Any, Any], bool] = _returned_nothing


#: Plan differences caused by the emulator, not by the configuration: (resource type,
#: attribute) -> why. On real AWS these attributes read back as configured.
EMULATOR_GAPS: dict[tuple[str, str], Gap] = {
    ("aws_lambda_function", "logging_config"):
        Gap("moto 5.2.5 accepts LoggingConfig on CreateFunction but never returns it from GetFunction"),
    ("aws_autoscaling_group", "capacity_reservation_specification"):
        Gap("moto 5.2.5 does not return CapacityReservationSpecification from DescribeAutoScalingGroups"),
    ("aws_autoscaling_group", "default_instance_warmup"):
        Gap("moto 5.2.5 does not return DefaultInstanceWarmup from DescribeAutoScalingGroups"),
    ("aws_autoscaling_policy", "enabled"):
        Gap("moto 5.2.5 does not return Enabled from DescribePolicies"),
    ("aws_autoscaling_policy", "predictive_scaling_configuration"):
        Gap("moto 5.2.5 returns an empty PredictiveScalingConfiguration block for target-tracking policies"),
    ("aws_launch_template", "tag_specifications"):
        Gap("moto 5.2.5 returns the launch template's own tags as an extra 'launch-template' tag specification",
            _extra_launch_template_tags),
    ("aws_sqs_queue", "redrive_policy"):
        Gap("moto 5.2.5 returns RedrivePolicy re-serialized with spaces; the same JSON (SQS returns it compact)", _same_json),
    ("aws_sagemaker_endpoint_configuration", "data_capture_config"):
        Gap("moto 5.2.5 returns a disabled DataCaptureConfig when none is configured (a replacement on every plan)"),
    ("aws_sagemaker_model", "vpc_config"):
        Gap("moto 5.2.5 returns an empty VpcConfig when none is configured (a replacement on every plan)"),
    ("aws_vpc_security_group_ingress_rule", "description"):
        Gap("moto 5.2.5 does not return the description of a security group rule"),
    ("aws_vpc_security_group_egress_rule", "description"):
        Gap("moto 5.2.5 does not return the description of a security group rule"),
}


#: (resource type, attribute) whose new value comes from resources of another type (a new version of them).
FOLLOWS_FROM: dict[tuple[str, str], str] = {
    ("aws_autoscaling_group", "launch_template"): "aws_launch_template",
    ("aws_autoscaling_group", "mixed_instances_policy"): "aws_launch_template",
    ("aws_lambda_alias", "function_version"): "aws_lambda_function",
    ("aws_sagemaker_endpoint", "endpoint_config_name"): "aws_sagemaker_endpoint_configuration",
}


def _known(value: Any, unknown: Any) -> Any:
    """``value`` with the parts Terraform cannot know until apply (``after_unknown``) removed."""
    if unknown is True:
        return None
    if isinstance(value, dict) and isinstance(unknown, dict):
        return {k: _known(v, unknown.get(k)) for k, v in value.items() if unknown.get(k) is not True}
    if isinstance(value, list) and isinstance(unknown, list):
        return [_known(v, unknown[i] if i < len(unknown) else None) for i, v in enumerate(value)]
    return value


def _same_where_known(before: Any, after: Any, unknown: Any) -> bool:
    """True when ``after`` differs from ``before`` only in values unknown until apply."""
    if unknown is True:
        return True
    if isinstance(before, dict) and isinstance(after, dict):
        u = unknown if isinstance(unknown, dict) else {}
        return all(_same_where_known(before.get(k), after.get(k), u.get(k)) for k in set(before) | set(after))
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        u = unknown if isinstance(unknown, list) else []
        return all(_same_where_known(b, a, u[i] if i < len(u) else None) for i, (b, a) in enumerate(zip(before, after)))
    return before == after


_print_lock = threading.Lock()


def say(*parts: Any) -> None:
    with _print_lock:
        print(*parts, flush=True)


# ---------------------------------------------------------------------------------------
# Workspace and settings
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    dir: Path

    @property
    def settings(self) -> Path:
        return self.dir / "settings.toml"

    @property
    def outdir(self) -> Path:
        return self.dir / "cdktf.out"

    @property
    def backend_config(self) -> Path:
        return self.dir / "backend.hcl"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    def stack_dir(self, name: str) -> Path:
        return self.outdir / "stacks" / name


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and not (isinstance(value, float) and not math.isfinite(value)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data: dict[str, dict[str, Any]]) -> str:
    """A settings document (tables of keys) as TOML; nested tables become inline tables."""
    lines = ["# Generated by `make deploy-local` (tooling/deploy_local.py); do not edit."]
    for section, values in data.items():
        lines.append(f"\n[{json.dumps(section)}]")
        lines.extend(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in values.items())
    return "\n".join(lines) + "\n"


#: Settings that name a file relative to the settings file; the generated copy lives elsewhere
#: (``<dir>/settings.toml``), so it gets them as absolute paths.
FILE_SETTINGS = ("csv_path",)


def _absolute_files(value: Any, base_dir: Path) -> Any:
    if isinstance(value, dict):
        return {k: (str(base_dir / v) if k in FILE_SETTINGS and isinstance(v, str) and not Path(v).is_absolute()
                    else _absolute_files(v, base_dir)) for k, v in value.items()}
    if isinstance(value, list):
        return [_absolute_files(v, base_dir) for v in value]
    return value


def emulator_settings(base: dict[str, Any], base_dir: Path | None = None) -> dict[str, Any]:
    """``base`` with ``project.emulator = true`` and the S3 backend on the emulator's state bucket;
    with ``base_dir`` (the folder of the file ``base`` came from), relative file settings made absolute."""
    data = {section: dict(values) for section, values in base.items()}
    if base_dir is not None:
        data = _absolute_files(data, base_dir)
    project = data.setdefault("project", {})
    project["emulator"] = True
    project["backend"] = {"type": "s3", "bucket": STATE_BUCKET, "key_prefix": KEY_PREFIX, "use_lockfile": True}
    return data


def write_settings(ws: Workspace, base_settings: Path | None) -> dict[str, Any]:
    source = (base_settings or settings_path()).resolve()
    data = emulator_settings(read_toml(source), source.parent)
    ws.dir.mkdir(parents=True, exist_ok=True)
    ws.settings.write_text(to_toml(data))
    return data


def project_region(data: dict[str, Any]) -> str:
    return data.get("project", {}).get("region", emu.REGION)


def write_backend_config(ws: Workspace, emulator: emu.Emulator) -> None:
    """S3 backend settings for the emulator, given to ``terraform init -backend-config=``."""
    ws.backend_config.write_text(
        "# Generated by tooling/deploy_local.py: the S3 backend on the local emulator.\n"
        f'endpoints = {{\n  s3  = "{emulator.endpoint}"\n  sts = "{emulator.endpoint}"\n  iam = "{emulator.endpoint}"\n}}\n'
        "use_path_style = true\n")


def ensure_state_bucket(emulator: emu.Emulator, region: str) -> None:
    s3 = emulator.client("s3", region)
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    if STATE_BUCKET not in existing:
        extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=STATE_BUCKET, **extra)
    s3.put_bucket_versioning(Bucket=STATE_BUCKET, VersioningConfiguration={"Status": "Enabled"})


def state_key(stack: str) -> str:
    return f"{KEY_PREFIX}/{stack}.tfstate"


def synthesize(ws: Workspace, root: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    """All stacks in one process, through ``<root>/main.py``, exactly as `make synth` does.

    ``root`` is another checkout of the project (upgrade-check runs the base revision's own
    code); the current interpreter runs it, with that checkout's library (``<root>/modules``)
    ahead of the one installed in the virtualenv."""
    env = dict(os.environ, **{
        SETTINGS_ENV: str(ws.settings), "CDKTF_OUTDIR": str(ws.outdir)})
    if (root / "modules" / "scaling_patterns").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root / "modules"), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "main.py"], cwd=root, env=env, capture_output=True, text=True, timeout=600)


def synthesized_stacks(ws: Workspace) -> list[str]:
    """Synthesized stack names in registry order (then any others, sorted)."""
    present = {p.parent.name for p in ws.outdir.glob("stacks/*/cdk.tf.json")}
    ordered = [spec.name for spec in PATTERNS if spec.name in present]
    return ordered + sorted(present - set(ordered))


# ---------------------------------------------------------------------------------------
# Terraform against the emulator
# ---------------------------------------------------------------------------------------


def terraform_env(emulator: emu.Emulator, for_init: bool = False) -> dict[str, str]:
    """Terraform's environment: emulator endpoints, fake credentials, offline provider mirror.

    The guard proxy (any request not for 127.0.0.1 fails) is on for every command except an
    ``init`` that has to download the provider from the registry (no local mirror).
    """
    guard = not for_init or find_provider_mirror() is not None
    return cli_config_env(emulator.env(guard=guard))


def _log(ws: Workspace, stack: str, step: str, run: Run) -> None:
    ws.logs.mkdir(parents=True, exist_ok=True)
    (ws.logs / f"{stack}.{step}.log").write_text(f"$ {' '.join(run.command)}\n# exit {run.returncode}\n{run.stdout}\n{run.stderr}")


def _tail(run: Run, lines: int = 25) -> str:
    text = (run.stderr.strip() or run.stdout.strip()).splitlines()
    return "\n".join("    " + line for line in text[-lines:])


def init_stack(ws: Workspace, emulator: emu.Emulator, stack: str) -> Run:
    run = terraform(["init", "-input=false", "-no-color", "-reconfigure", f"-backend-config={ws.backend_config}"],
                    ws.stack_dir(stack), terraform_env(emulator, for_init=True))
    _log(ws, stack, "init", run)
    return run


@dataclass
class PlanResult:
    returncode: int
    diffs: list[str] = field(default_factory=list)  # perpetual diffs: bugs
    gaps: list[str] = field(default_factory=list)  # differences the emulator causes (EMULATOR_GAPS)
    error: str = ""

    @property
    def clean(self) -> bool:
        return self.returncode in (0, 2) and not self.diffs and not self.error

    @property
    def label(self) -> str:
        if self.error:
            return "error"
        if not self.clean:
            return "NO"
        return "yes*" if self.gaps else "yes"


@dataclass
class PlanGaps:
    """A plan read for what the emulator causes (:func:`emulator_gaps`)."""

    diffs: list[str] = field(default_factory=list)  # perpetual diffs / real changes, one line each
    gaps: list[str] = field(default_factory=list)  # emulator gaps, one line each
    #: Addresses whose whole change is the emulator's doing (on AWS: no change).
    gap_only: set[str] = field(default_factory=set)
    #: (address, top-level attribute) differences the emulator causes, also inside real changes.
    gap_attributes: set[tuple[str, str]] = field(default_factory=set)


def emulator_gaps(plan: dict[str, Any]) -> PlanGaps:
    """Perpetual diffs and emulator gaps in a ``terraform show -json`` plan, per line and per resource.

    An update whose only differences are values unknown until apply (e.g. an alias's
    ``function_version`` after its function shows an emulator gap) follows from another
    change: it counts as a gap when every other change is one, else as a diff.
    """
    found = PlanGaps()
    diffs, gaps = found.diffs, found.gaps
    consequences: list[tuple[str, str]] = []
    follow_ups: list[tuple[str, str, str]] = []  # (address, type, attribute known only after apply) in other changes
    changed_by_type: dict[str, set[str]] = {}
    for change in plan.get("resource_changes", []):
        if change["change"]["actions"] not in (["no-op"], ["read"]):
            changed_by_type.setdefault(change["type"], set()).add(change["address"])
    for change in plan.get("resource_changes", []):
        actions = change["change"]["actions"]
        if actions in (["no-op"], ["read"]):
            continue
        address = change["address"]
        before = change["change"].get("before") or {}
        after = change["change"].get("after") or {}
        unknown = change["change"].get("after_unknown") or {}
        if actions in (["delete", "create"], ["create", "delete"]):
            # A replacement is the emulator's doing only when every attribute forcing it is a gap.
            heads = {path[0] for path in change["change"].get("replace_paths") or [] if path}
            known = {key: EMULATOR_GAPS.get((change["type"], key)) for key in heads}
            if heads and all(gap is not None and gap.applies(before.get(key), _known(after.get(key), unknown.get(key)))
                             for key, gap in known.items()):
                gaps.extend(f"{address}.{key} (forces replacement): {gap.reason}" for key, gap in sorted(known.items()))
                found.gap_only.add(address)
                found.gap_attributes.update((address, key) for key in heads)
            else:
                diffs.append(f"{address}: {'/'.join(actions)} (forced by {', '.join(sorted(map(str, heads))) or 'unknown'})")
            continue
        if actions != ["update"]:
            diffs.append(f"{address}: {'/'.join(actions)}")
            continue
        changed = sorted(k for k in set(before) | set(after) if not _same_where_known(before.get(k), after.get(k), unknown.get(k)))
        if not changed:
            pending = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            consequences.append((address, f"{address}: values known only after apply ({', '.join(pending)}) follow from another change"))
            continue
        follow_ups.extend((address, change["type"], k) for k in set(before) | set(after)
                       if k not in changed and before.get(k) != after.get(k))
        real = False
        for key in changed:
            gap = EMULATOR_GAPS.get((change["type"], key))
            if gap is not None and gap.applies(before.get(key), _known(after.get(key), unknown.get(key))):
                gaps.append(f"{address}.{key}: {gap.reason}")
                found.gap_attributes.add((address, key))
            else:
                real = True
                diffs.append(f"{address}.{key}: {json.dumps(before.get(key))} -> {json.dumps(_known(after.get(key), unknown.get(key)))}")
        if not real:
            found.gap_only.add(address)
    for name, change in plan.get("output_changes", {}).items():
        if change.get("actions") not in (["no-op"], None):
            diffs.append(f"output {name}: {'/'.join(change['actions'])}")
    if consequences:
        if gaps and not diffs:
            gaps.extend(line for _, line in consequences)
            found.gap_only.update(address for address, _ in consequences)
        else:
            diffs.extend(line for _, line in consequences)
    # A value known only after apply that follows from gap-only changes (an Auto Scaling group's launch
    # template version, after moto's extra tag specification updates the template) is a gap too.
    for address, type_, key in follow_ups:
        source = FOLLOWS_FROM.get((type_, key))
        if source and changed_by_type.get(source) and changed_by_type[source] <= found.gap_only:
            found.gap_attributes.add((address, key))
    return found


def classify_plan(plan: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(perpetual diffs, emulator gaps) in a ``terraform show -json`` plan (:func:`emulator_gaps`)."""
    found = emulator_gaps(plan)
    return found.diffs, found.gaps


def plan_after_apply(ws: Workspace, emulator: emu.Emulator, stack: str) -> PlanResult:
    env = terraform_env(emulator)
    directory = ws.stack_dir(stack)
    run = terraform(["plan", "-detailed-exitcode", "-input=false", "-no-color", "-out=after-apply.tfplan"], directory, env)
    _log(ws, stack, "plan", run)
    if run.returncode == 0:
        return PlanResult(0)
    if run.returncode != 2:
        return PlanResult(run.returncode, error=_tail(run))
    shown = terraform(["show", "-json", "after-apply.tfplan"], directory, env)
    diffs, gaps = classify_plan(json.loads(shown.stdout))
    return PlanResult(2, diffs, gaps)


def state_resources(ws: Workspace, emulator: emu.Emulator, stack: str) -> list[dict[str, Any]]:
    run = terraform(["show", "-json", "-no-color"], ws.stack_dir(stack), terraform_env(emulator))
    if not run.ok:
        raise RuntimeError(f"terraform show failed:\n{_tail(run)}")
    values = json.loads(run.stdout).get("values") or {}
    return values.get("root_module", {}).get("resources", [])


def stack_outputs(ws: Workspace, emulator: emu.Emulator, stack: str) -> dict[str, Any]:
    run = terraform(["output", "-json", "-no-color"], ws.stack_dir(stack), terraform_env(emulator))
    if not run.ok:
        raise RuntimeError(f"terraform output failed:\n{_tail(run)}")
    return {k: ("(sensitive)" if v.get("sensitive") else v.get("value")) for k, v in json.loads(run.stdout).items()}


# ---------------------------------------------------------------------------------------
# deploy
# ---------------------------------------------------------------------------------------


@dataclass
class StackReport:
    name: str
    resources: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    plan: PlanResult | None = None
    checks: list[Check] = field(default_factory=list)
    error: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    #: What to do about a failed apply (lock, errored.tfstate, "already exists"), with commands.
    problems: list[recovery.Problem] = field(default_factory=list)
    verified: bool = True  # second plan and wiring checks ran (deploy(verify=False) skips them)

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def ok(self) -> bool:
        if not self.verified:
            return not self.error
        return not self.error and self.plan is not None and self.plan.clean and not self.failed_checks


@dataclass
class DeployReport:
    stacks: list[StackReport]
    emulator: emu.Emulator | None
    seconds: dict[str, float] = field(default_factory=dict)
    error: str = ""
    #: Found before applying anything (stale lock, errored.tfstate): nothing was applied.
    problems: list[recovery.Problem] = field(default_factory=list)
    #: Stacks asked for (``stacks=``) that the checkout does not synthesize (``missing_ok=True``).
    missing: list[str] = field(default_factory=list)
    #: This deploy started the emulator (it was not running before).
    started_emulator: bool = False
    #: Exit status of a failed synthesis (2: the settings are rejected by the stacks).
    synth_exit: int = 0

    @property
    def ok(self) -> bool:
        return not self.error and not self.problems and all(s.ok for s in self.stacks)


def recovery_commands(ws: Workspace) -> recovery.Commands:
    """Recovery commands (`make unlock`, `make terraform`) for this emulator folder."""
    return recovery.Commands("emulator", ws.dir)


def errored_states(ws: Workspace, stacks: list[str] | None) -> list[recovery.Problem]:
    """errored.tfstate files an earlier failed apply left in ``<dir>/cdktf.out``: the only record of
    what it created, so they must be pushed before synthesis replaces that folder."""
    commands = recovery_commands(ws)
    return [recovery.errored_state_problem(errored.parent.name, errored.parent, errored, commands)
            for errored in sorted(ws.outdir.glob(f"stacks/*/{recovery.ERRORED_STATE}"))
            if not stacks or errored.parent.name in stacks]


def stale_locks(ws: Workspace, emulator: emu.Emulator, region: str, stacks: list[str] | None) -> list[recovery.Problem]:
    """Stale locks (``.tflock`` objects) beside the stacks' state on the emulator."""
    commands = recovery_commands(ws)
    problems = []
    s3 = emulator.client("s3", region)
    listed = s3.list_objects_v2(Bucket=STATE_BUCKET, Prefix=f"{KEY_PREFIX}/").get("Contents", [])
    for obj in listed:
        if not obj["Key"].endswith(".tfstate.tflock"):
            continue
        stack = obj["Key"][len(KEY_PREFIX) + 1:-len(".tfstate.tflock")]
        if stacks and stack not in stacks:
            continue
        lock = recovery.read_s3_lock(s3, STATE_BUCKET, obj["Key"])
        if lock is not None:
            problems.append(recovery.lock_problem(stack, ws.stack_dir(stack), lock, f"s3://{STATE_BUCKET}/{obj['Key']}", commands))
    return problems


def check_before_deploy(ws: Workspace, emulator: emu.Emulator, region: str, stacks: list[str] | None) -> list[recovery.Problem]:
    """Stale locks on the emulator's state and errored.tfstate files left by an earlier deploy."""
    return stale_locks(ws, emulator, region, stacks) + errored_states(ws, stacks)


def deploy_stack(ws: Workspace, emulator: emu.Emulator, stack: str, region: str, verify: bool = True) -> StackReport:
    report = StackReport(stack, verified=verify)

    def timed(step: str, function: Callable[[], Any]) -> Any:
        started = time.monotonic()
        try:
            return function()
        finally:
            report.seconds[step] = time.monotonic() - started

    init = timed("init", lambda: init_stack(ws, emulator, stack))
    if not init.ok:
        report.error = f"terraform init failed:\n{_tail(init)}"
        return report
    say(f"[{stack}] applying ...")
    apply = timed("apply", lambda: terraform(["apply", "-auto-approve", "-input=false", "-no-color"],
                                             ws.stack_dir(stack), terraform_env(emulator), timeout=1800))
    _log(ws, stack, "apply", apply)
    try:
        report.resources = sum(1 for r in state_resources(ws, emulator, stack) if r.get("mode") == "managed")
        report.outputs = stack_outputs(ws, emulator, stack)
    except (RuntimeError, json.JSONDecodeError) as exc:
        report.error = str(exc)
    if not apply.ok:
        report.error = f"terraform apply failed (log: {ws.logs / (stack + '.apply.log')}):\n{_tail(apply)}"
        report.problems = recovery.after_failed_apply(stack, ws.stack_dir(stack), apply.stdout + apply.stderr,
                                                      recovery_commands(ws))
        return report
    say(f"[{stack}] applied {report.resources} resources in {report.seconds['apply']:.0f}s; outputs:\n"
        + "\n".join(f"    {k} = {json.dumps(v)}" for k, v in sorted(report.outputs.items())))
    if not verify:
        return report
    report.plan = timed("plan", lambda: plan_after_apply(ws, emulator, stack))
    plan = report.plan
    say(f"[{stack}] plan after apply: " + {"yes": "no changes", "yes*": "no changes except emulator gaps",
                                           "NO": "CHANGES (perpetual diff)", "error": "FAILED"}[plan.label]
        + "".join(f"\n    diff: {d}" for d in plan.diffs) + "".join(f"\n    emulator gap: {g}" for g in plan.gaps)
        + (f"\n{plan.error}" if plan.error else ""))

    def checks() -> None:
        ctx = CheckContext(stack, json.loads((ws.stack_dir(stack) / "cdk.tf.json").read_text()),
                           state_resources(ws, emulator, stack), report.outputs,
                           lambda service: emulator.client(service, region))
        report.checks = run_checks(ctx)

    try:
        timed("checks", checks)
    except Exception as exc:  # noqa: BLE001 - reported in the summary
        report.error = f"checks could not run: {type(exc).__name__}: {exc}"
    failed = report.failed_checks
    say(f"[{stack}] wiring checks: {len(report.checks) - len(failed)}/{len(report.checks)} passed"
        + "".join(f"\n    FAILED {c.name}: {c.detail}" for c in failed))
    return report


def deploy(workdir: Path = emu.DEFAULT_DIR, base_settings: Path | None = None, jobs: int = 2,
           stacks: list[str] | None = None, root: Path = PROJECT_ROOT, verify: bool = True,
           missing_ok: bool = False) -> DeployReport:
    """Apply ``stacks`` (default: every synthesized stack) of the project checkout ``root``.

    ``verify=False`` skips the second plan and the wiring checks (upgrade-check only needs the
    stacks applied); ``missing_ok`` skips asked-for stacks the checkout does not have."""
    ws = Workspace(workdir.resolve())
    started = time.monotonic()
    seconds: dict[str, float] = {}
    data = write_settings(ws, base_settings)
    region = project_region(data)
    # Synthesis before the emulator starts (a setting the stacks reject stops the run with nothing
    # started), unless an errored.tfstate waits: synthesis would replace it.
    synthesized = not errored_states(ws, stacks)
    if synthesized:
        t = time.monotonic()
        synth = synthesize(ws, root)
        seconds["synth"] = time.monotonic() - t
        if synth.returncode != 0:
            return DeployReport([], None, seconds, f"synth failed:\n{synth.stdout}{synth.stderr}", synth_exit=synth.returncode)
    emulator, fresh = emu.start(ws.dir)
    say(f"emulator {'started' if fresh else 'reused'}: {emulator.endpoint} (pid {emulator.pid}; log {ws.dir / 'moto.log'})")
    ensure_state_bucket(emulator, region)
    write_backend_config(ws, emulator)
    say(f"state bucket s3://{STATE_BUCKET} on the emulator; settings {ws.settings}")

    problems = check_before_deploy(ws, emulator, region, stacks)
    if problems or not synthesized:
        return DeployReport([], emulator, seconds, problems=problems, started_emulator=fresh)
    say(synth.stdout.rstrip())

    names = synthesized_stacks(ws)
    missing: list[str] = []
    if stacks:
        missing = [name for name in stacks if name not in names]
        if missing and not missing_ok:
            return DeployReport([], emulator, seconds, f"unknown stack(s): {', '.join(missing)} (synthesized: {', '.join(names)})",
                                started_emulator=fresh)
        names = [n for n in names if n in stacks]
    t = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        reports = list(pool.map(lambda name: deploy_stack(ws, emulator, name, region, verify), names))
    seconds["stacks"] = time.monotonic() - t
    seconds["total"] = time.monotonic() - started
    return DeployReport(reports, emulator, seconds, missing=missing, started_emulator=fresh)


def summary(report: DeployReport) -> str:
    rows = [("stack", "resources", "outputs", "plan after apply clean", "checks passed", "apply s", "status")]
    for s in report.stacks:
        passed = len(s.checks) - len(s.failed_checks)
        rows.append((s.name, str(s.resources), str(len(s.outputs)), s.plan.label if s.plan else "-",
                     f"{passed}/{len(s.checks)}", f"{s.seconds.get('apply', 0):.0f}", "ok" if s.ok else "FAILED"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    if any(s.plan and s.plan.gaps for s in report.stacks):
        lines.append("yes* = no changes except emulator gaps (listed above; see docs/deploy.md)")
    for s in report.stacks:
        if s.error:
            lines.append(f"{s.name}: {s.error}")
        if s.problems:
            lines.append(f"{s.name}: to recover:\n" + recovery.render(s.problems))
    lines.append(f"synth {report.seconds.get('synth', 0):.0f}s, stacks {report.seconds.get('stacks', 0):.0f}s, "
                 f"total {report.seconds.get('total', 0):.0f}s")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# destroy
# ---------------------------------------------------------------------------------------


@dataclass
class DestroyReport:
    destroyed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    was_running: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.leftovers


def stacks_with_state(emulator: emu.Emulator, region: str) -> list[str]:
    s3 = emulator.client("s3", region)
    try:
        objects = s3.list_objects_v2(Bucket=STATE_BUCKET, Prefix=f"{KEY_PREFIX}/").get("Contents", [])
    except s3.exceptions.NoSuchBucket:
        return []
    return [o["Key"][len(KEY_PREFIX) + 1:-len(".tfstate")] for o in objects if o["Key"].endswith(".tfstate")]


def destroy(workdir: Path = emu.DEFAULT_DIR, base_settings: Path | None = None) -> DestroyReport:
    ws = Workspace(workdir.resolve())
    started = time.monotonic()
    report = DestroyReport()
    emulator = emu.load(ws.dir)
    if emulator is None:
        emu.stop(ws.dir)  # drop a stale record
        say("emulator not running: nothing is deployed (all state lived in the emulator)")
        shutil.rmtree(ws.dir, ignore_errors=True)
        report.seconds = time.monotonic() - started
        return report
    report.was_running = True
    data = read_toml(ws.settings) if ws.settings.exists() else write_settings(ws, base_settings)
    region = project_region(data)
    prefix = data.get("project", {}).get("name_prefix", "aiscale") + "-"
    with_state = stacks_with_state(emulator, region)
    if with_state and not synthesized_stacks(ws):
        synth = synthesize(ws)
        if synth.returncode != 0:
            report.errors.append(f"synth failed:\n{synth.stdout}{synth.stderr}")
    write_backend_config(ws, emulator)
    synthesized = synthesized_stacks(ws)
    for stack in [s for s in reversed(synthesized) if s in with_state]:
        t = time.monotonic()
        init = init_stack(ws, emulator, stack)
        if not init.ok:
            report.errors.append(f"{stack}: terraform init failed:\n{_tail(init)}")
            continue
        run = terraform(["destroy", "-auto-approve", "-input=false", "-no-color"], ws.stack_dir(stack),
                        terraform_env(emulator), timeout=1800)
        _log(ws, stack, "destroy", run)
        if not run.ok:
            report.errors.append(f"{stack}: terraform destroy failed:\n{_tail(run)}")
            continue
        remaining = terraform(["state", "list"], ws.stack_dir(stack), terraform_env(emulator)).stdout.split()
        if remaining:
            report.errors.append(f"{stack}: state still lists {remaining}")
        report.destroyed.append(stack)
        say(f"[{stack}] destroyed in {time.monotonic() - t:.0f}s")
    for stack in with_state:
        if stack not in synthesized:
            report.errors.append(f"{stack}: has state on the emulator but is no longer synthesized; not destroyed")
    report.leftovers = leftovers(lambda service: emulator.client(service, region), prefix, keep_buckets=[STATE_BUCKET])
    for item in report.leftovers:
        say(f"LEFT BEHIND: {item}")
    emu.stop(ws.dir)
    say("emulator stopped")
    if report.ok:
        shutil.rmtree(ws.dir, ignore_errors=True)
    else:
        say(f"kept {ws.dir} (logs) because something went wrong")
    report.seconds = time.monotonic() - started
    return report


# ---------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tooling.deploy_local")
    parser.add_argument("command", choices=["deploy", "destroy"])
    parser.add_argument("--dir", type=Path, default=emu.DEFAULT_DIR, help="working folder (default: .emulator/)")
    parser.add_argument("--settings", type=Path, default=None,
                        help=f"settings to deploy (default: ${SETTINGS_ENV} or settings.toml); project.emulator and the backend are replaced")
    parser.add_argument("--jobs", type=int, default=2, help="stacks applied at the same time (default 2)")
    parser.add_argument("--stack", action="append", help="deploy only this stack (repeatable; deploy only)")
    args = parser.parse_args(argv)
    if args.command == "deploy":
        # The user's own file and the stack names, before the emulator starts or the generated copy is written.
        try:
            check_stacks(args.stack)
            check_settings(args.settings)
        except UserError as error:
            return report_user_error("deploy-local", error, "nothing was started or applied")
        report = deploy(args.dir, args.settings, args.jobs, stacks=args.stack)
        if report.error and not report.stacks:
            # Stopped before applying anything (synth failed, unknown stack): no table; an emulator this
            # command started is stopped again.
            if report.started_emulator:
                emu.stop(args.dir)
            what = ("no emulator was started" if report.emulator is None else
                    "the emulator it started was stopped" if report.started_emulator else "the emulator keeps running")
            given = str(given_settings(args.settings))
            error = report.error.replace(str(Workspace(args.dir.resolve()).settings), given).strip()
            if report.synth_exit == 2:  # the stacks reject a combination of settings (main.py exits 2)
                error = error.removeprefix("synth failed:").strip()
                print(f"deploy-local: the stacks reject the settings in {given}; nothing was applied, {what}:", file=sys.stderr)
            else:
                print(f"deploy-local: applied nothing; {what}:", file=sys.stderr)
            print("  " + error.replace("\n", "\n  "), file=sys.stderr)
            return 2 if report.synth_exit == 2 else 1
        if report.problems:
            print("deploy-local STOPPED before applying anything:\n" + recovery.render(report.problems), file=sys.stderr)
            print("\ndeploy-local applied nothing. The emulator keeps running.")
            return 1
        if report.error:
            print(report.error, file=sys.stderr)
        print("\n" + summary(report))
        if not report.ok:
            print("\ndeploy-local FAILED; logs in", args.dir / "logs", file=sys.stderr)
        print("The emulator keeps running; `make destroy-local` destroys every stack and stops it.")
        return 0 if report.ok else 1
    report = destroy(args.dir, args.settings)
    for error in report.errors:
        print(error, file=sys.stderr)
    print(f"destroy-local: {len(report.destroyed)} stacks destroyed, {len(report.leftovers)} resources left behind, "
          f"{report.seconds:.0f}s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
