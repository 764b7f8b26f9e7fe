"""Recovering from a killed or failed apply: stale state locks, ``errored.tfstate``, resources
that exist in AWS but not in state.

    python -m tooling.recovery unlock --stack NAME --lock-id ID [--target emulator|aws] [--dir .emulator]
    python -m tooling.recovery terraform --stack NAME [--target emulator|aws] [--dir .emulator] -- ARGS...

(``make unlock STACK=... LOCK_ID=...`` and ``make terraform STACK=... ARGS="..."``.)

A ``terraform apply`` that is killed (SIGKILL, a CI runner that vanished) can leave:

* the **lock**: on the S3 backend with ``use_lockfile`` a ``<key>.tflock`` object beside the
  state holding the lock info (ID, Operation, Who, Created); every later plan or apply fails
  with "Error acquiring the state lock" until it is released with ``terraform force-unlock``.
  A local-backend lock is an OS file lock: it ends with the process (the
  ``.terraform.<stack>.tfstate.lock.info`` file left beside the state is ignored and replaced).
* ``errored.tfstate`` in the stack's folder when Terraform could not write state to the backend
  (expired credentials, network): it is the only record of what that apply created and must be
  pushed with ``terraform state push`` before anything else runs.
* resources that exist in AWS but not in state (created after the last state write): the next
  apply fails with "already exists"; import them or delete them.

:func:`check_before_apply` finds the first two before `make deploy-local` or `make apply`
applies anything; :func:`after_failed_apply` reads a failed apply's output for all three.
Each :class:`Problem` carries the exact commands that fix it. Nothing here removes a lock by
itself: a lock may belong to an apply that is still running, so the report gives its owner and
age and leaves the decision to a person.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from app.config import PROJECT_ROOT

ERRORED_STATE = "errored.tfstate"
#: Where `make apply` keeps a copy of a stack's errored.tfstate: cdktf.out/ is replaced by the
#: next synthesis (`make plan`), which would delete the file from the stack's folder.
ERRORED_DIR = PROJECT_ROOT / "errored-state"
TARGETS = ("emulator", "aws")


# ---------------------------------------------------------------------------------------
# Lock info
# ---------------------------------------------------------------------------------------


def _parse_time(text: str) -> datetime | None:
    """Terraform's lock times: ``2026-12-02T19:26:49.014780572Z`` (lock file JSON) or
    ``2026-12-02 19:26:49.014780572 +0000 UTC`` (the "Lock Info" of an error message)."""
    match = re.match(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?", text.strip())
    if not match:
        return None
    day, clock, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    offset = timezone.utc
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        offset = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return datetime.fromisoformat(f"{day}T{clock}.{micro}").replace(tzinfo=offset)


def format_age(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} days"


@dataclass(frozen=True)
class LockInfo:
    id: str
    operation: str = ""
    who: str = ""
    created: datetime | None = None
    version: str = ""
    path: str = ""

    @classmethod
    def from_json(cls, text: str | bytes) -> "LockInfo":
        data = json.loads(text)
        return cls(str(data.get("ID", "")), str(data.get("Operation", "")), str(data.get("Who", "")),
                   _parse_time(str(data.get("Created", ""))), str(data.get("Version", "")), str(data.get("Path", "")))

    @classmethod
    def from_terraform_output(cls, text: str) -> "LockInfo | None":
        """The "Lock Info:" block Terraform prints with "Error acquiring the state lock"."""
        if "Error acquiring the state lock" not in text:
            return None
        fields = dict(re.findall(r"^[\s│]*(ID|Path|Operation|Who|Version|Created):\s*(.*?)\s*$", text, re.MULTILINE))
        if not fields.get("ID"):
            return None
        return cls(fields["ID"], fields.get("Operation", ""), fields.get("Who", ""),
                   _parse_time(fields.get("Created", "")), fields.get("Version", ""), fields.get("Path", ""))

    def describe(self, now: datetime | None = None) -> str:
        operation = self.operation.removeprefix("OperationType").lower() or "unknown operation"
        parts = [f"lock `{self.id}`: {operation} by {self.who or 'unknown'}"]
        if self.created is not None:
            age = (now or datetime.now(timezone.utc)) - self.created
            parts.append(f"since {self.created.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC ({format_age(age)} ago)")
        if self.version:
            parts.append(f"Terraform {self.version}")
        return ", ".join(parts)


# ---------------------------------------------------------------------------------------
# The stack's backend, as synthesized
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    type: str
    bucket: str = ""
    key: str = ""
    region: str = ""
    use_lockfile: bool = False
    path: str = ""  # local backend

    @property
    def lock_key(self) -> str:
        return f"{self.key}.tflock"


def backend_of(stack_dir: Path) -> Backend:
    """The backend block of ``<stack_dir>/cdk.tf.json`` (what ``terraform init`` configures)."""
    return backend_of_doc(json.loads((stack_dir / "cdk.tf.json").read_text()))


def backend_of_doc(doc: dict[str, Any]) -> Backend:
    backends = doc.get("terraform", {}).get("backend", {})
    if "s3" in backends:
        s3 = backends["s3"]
        return Backend("s3", s3.get("bucket", ""), s3.get("key", ""), s3.get("region", ""), bool(s3.get("use_lockfile")))
    if "local" in backends:
        return Backend("local", path=backends["local"].get("path", "terraform.tfstate"))
    return Backend(next(iter(backends), "local"))


def read_s3_lock(s3: Any, bucket: str, key: str) -> LockInfo | None:
    """The lock info in ``s3://bucket/key`` (a ``.tflock`` object), None when there is no lock."""
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    try:
        return LockInfo.from_json(body)
    except ValueError:
        return LockInfo(id="(unreadable lock file)", path=f"{bucket}/{key}")


# ---------------------------------------------------------------------------------------
# Problems and the commands that fix them
# ---------------------------------------------------------------------------------------


def _shown(path: Path) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Commands:
    """How to spell a recovery command for one target.

    ``emulator``: through ``make`` (the emulator's endpoints and fake credentials are needed);
    ``aws``: plain Terraform in the stack's folder, with your own credentials.
    """

    target: str
    emulator_dir: Path | None = None  # emulator target: its folder when not the default .emulator/

    def _make_extra(self) -> str:
        from tooling import emulator as emu

        extra = ""
        if self.target == "aws":
            extra += " TARGET=aws"
        elif self.emulator_dir is not None and Path(self.emulator_dir).resolve() != emu.DEFAULT_DIR.resolve():
            extra += f" EMULATOR_DIR={shlex.quote(str(self.emulator_dir))}"
        return extra

    def unlock(self, stack: str, stack_dir: Path, lock_id: str) -> list[str]:
        make = f"make unlock STACK={stack} LOCK_ID={lock_id}{self._make_extra()}"
        plain = f"terraform -chdir={shlex.quote(_shown(stack_dir))} force-unlock -force {lock_id}"
        if self.target == "aws":
            return [plain, f"(or: {make})"]
        return [make, f"(runs `{plain}` with the emulator's endpoints and fake credentials)"]

    def terraform(self, stack: str, stack_dir: Path, args: list[str]) -> str:
        if self.target == "aws":
            return f"terraform -chdir={shlex.quote(_shown(stack_dir))} " + " ".join(shlex.quote(a) for a in args)
        quoted = " ".join(shlex.quote(a) for a in args)
        return f'make terraform STACK={stack} ARGS="{quoted}"{self._make_extra()}'

    @property
    def again(self) -> str:
        return "make plan TARGET=aws, review, make apply" if self.target == "aws" else "make deploy-local"


@dataclass
class Problem:
    stack: str
    kind: str  # "lock", "errored-state", "already-exists", "check-failed"
    what: str
    commands: list[str] = field(default_factory=list)
    note: str = ""

    def render(self) -> str:
        lines = [f"[{self.stack}] {self.what}"]
        lines += [f"    {c}" for c in self.commands]
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(lines)


def lock_problem(stack: str, stack_dir: Path, lock: LockInfo, where: str, commands: Commands,
                 now: datetime | None = None) -> Problem:
    return Problem(
        stack, "lock",
        f"the state is LOCKED ({where}): {lock.describe(now)}.\n"
        "  If that apply or plan is still running, wait for it to finish. If it was killed "
        "(SIGKILL, Ctrl-C twice, a CI runner that vanished), release the lock:",
        commands.unlock(stack, stack_dir, lock.id),
        "Locks are never released automatically: a lock can belong to a run that is still working. "
        f"After releasing it, run `{commands.again}`; a killed apply may have created resources it could not "
        "record (they fail with \"already exists\", see docs/deploy.md).")


def errored_state_problem(stack: str, stack_dir: Path, errored: Path, commands: Commands) -> Problem:
    in_dir = errored.parent.resolve() == stack_dir.resolve() and errored.name == ERRORED_STATE
    push = commands.terraform(stack, stack_dir, ["state", "push", ERRORED_STATE if in_dir else str(errored.resolve())])
    return Problem(
        stack, "errored-state",
        f"{_shown(errored)} exists: an earlier apply could not write its state to the backend, and this file is "
        "the only record of what it created. Push it first, then move it aside:",
        [push, f"mv {shlex.quote(_shown(errored))} {shlex.quote(_shown(errored))}.pushed"],
        "`state push` refuses a state whose lineage differs or whose serial is older than the backend's; "
        "read docs/deploy.md before adding -force.")


#: Import ID of a resource type, from the provider's documentation ("Import" section of each
#: resource), as a function of the resource's configuration; None when it must be looked up.
#: Types not listed get the generic advice (their provider page's "Import" section).
IMPORT_IDS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "aws_iam_role": lambda b: b.get("name"),
    "aws_iam_policy": lambda b: None,  # the policy ARN
    "aws_iam_role_policy": lambda b: f"{b.get('role')}:{b.get('name')}",
    "aws_lambda_function": lambda b: b.get("function_name"),
    "aws_lambda_alias": lambda b: f"{b.get('function_name')}/{b.get('name')}",
    "aws_lambda_permission": lambda b: f"{b.get('function_name')}/{b.get('statement_id')}",
    "aws_cloudwatch_log_group": lambda b: b.get("name"),
    "aws_cloudwatch_event_bus": lambda b: b.get("name"),
    "aws_cloudwatch_event_rule": lambda b: (f"{b['event_bus_name']}/{b.get('name')}"
                                            if b.get("event_bus_name") not in (None, "default") else b.get("name")),
    "aws_cloudwatch_metric_alarm": lambda b: b.get("alarm_name"),
    "aws_autoscaling_group": lambda b: b.get("name"),
    "aws_autoscaling_policy": lambda b: f"{b.get('autoscaling_group_name')}/{b.get('name')}",
    "aws_appautoscaling_target": lambda b: f"{b.get('service_namespace')}/{b.get('resource_id')}/{b.get('scalable_dimension')}",
    "aws_appautoscaling_policy": lambda b: (f"{b.get('service_namespace')}/{b.get('resource_id')}/"
                                            f"{b.get('scalable_dimension')}/{b.get('name')}"),
    "aws_iam_instance_profile": lambda b: b.get("name"),
    "aws_kms_alias": lambda b: b.get("name"),
    "aws_autoscalingplans_scaling_plan": lambda b: b.get("name"),
    "aws_lambda_function_event_invoke_config": lambda b: b.get("function_name"),
    "aws_lambda_provisioned_concurrency_config": lambda b: f"{b.get('function_name')},{b.get('qualifier')}",
    "aws_sagemaker_model": lambda b: b.get("name"),
    "aws_sagemaker_endpoint_configuration": lambda b: b.get("name"),
    "aws_sagemaker_endpoint": lambda b: b.get("name"),
    "aws_s3_bucket": lambda b: b.get("bucket"),
    "aws_sqs_queue": lambda b: None,  # the queue URL
    "aws_sns_topic": lambda b: None,  # the topic ARN
    "aws_launch_template": lambda b: None,  # the template id lt-...
    "aws_lb": lambda b: None,  # the load balancer ARN
    "aws_lb_target_group": lambda b: None,  # the target group ARN
    "aws_security_group": lambda b: None,  # the group id sg-...
}
#: Types whose create call is a put that overwrites (PutRule, PutMetricAlarm, PutScalingPolicy,
#: PutScheduledAction, PutBucketPolicy, ...): they never fail with "already exists".
UPSERTS: frozenset[str] = frozenset({
    "aws_cloudwatch_event_rule", "aws_cloudwatch_metric_alarm", "aws_autoscaling_policy", "aws_appautoscaling_policy",
    "aws_appautoscaling_scheduled_action", "aws_iam_role_policy", "aws_lambda_function_event_invoke_config",
    "aws_lambda_provisioned_concurrency_config", "aws_s3_bucket_policy", "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_ownership_controls", "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_lifecycle_configuration",
})
#: How to find an ID that is not a name in the configuration.
LOOKUP_HINTS: dict[str, str] = {
    "aws_iam_policy": "the policy ARN (`aws iam list-policies --scope Local`)",
    "aws_sqs_queue": "the queue URL (`aws sqs get-queue-url --queue-name {name}`)",
    "aws_sns_topic": "the topic ARN (`aws sns list-topics`)",
    "aws_launch_template": "the template id lt-... (`aws ec2 describe-launch-templates --launch-template-names {name}`)",
    "aws_lb": "the load balancer ARN (`aws elbv2 describe-load-balancers --names {name}`)",
    "aws_lb_target_group": "the target group ARN (`aws elbv2 describe-target-groups --names {name}`)",
    "aws_security_group": "the group id sg-... (`aws ec2 describe-security-groups --filters Name=group-name,Values={name}`)",
    "aws_lambda_event_source_mapping": "the mapping UUID (`aws lambda list-event-source-mappings --function-name {function_name}`)",
}
#: Where the configuration does not hold the whole ID (it references another resource), the
#: provider's format, to fill in from the failed apply's error message or the console.
IMPORT_FORMATS: dict[str, str] = {
    "aws_iam_role_policy": "<role name>:<policy name>",
    "aws_lambda_alias": "<function name>/<alias>",
    "aws_lambda_permission": "<function name>/<statement id>",
    "aws_cloudwatch_event_rule": "<bus name>/<rule name> (just <rule name> on the default bus)",
    "aws_autoscaling_policy": "<group name>/<policy name>",
    "aws_appautoscaling_target": "<service namespace>/<resource id>/<scalable dimension>",
    "aws_appautoscaling_policy": "<service namespace>/<resource id>/<scalable dimension>/<policy name>",
    "aws_lambda_function_event_invoke_config": "<function name>",
    "aws_lambda_provisioned_concurrency_config": "<function name>,<alias or version>",
}

_EXISTS = re.compile(r"already exists|AlreadyExists|EntityAlreadyExists|ResourceConflictException|Duplicate", re.IGNORECASE)


def _error_blocks(output: str) -> list[str]:
    """Terraform's error diagnostics (no-color output), one string each."""
    text = output.replace("│", " ").replace("╷", " ").replace("╵", " ")
    starts = [m.start() for m in re.finditer(r"^\s*Error: ", text, re.MULTILINE)]
    return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]


def _resource(doc: dict[str, Any], address: str) -> dict[str, Any]:
    type_, _, name = address.partition(".")
    return doc.get("resource", {}).get(type_, {}).get(name.split("[")[0], {})


def already_exists(stack: str, stack_dir: Path, output: str, commands: Commands) -> list[Problem]:
    """One problem per "already exists" error of a failed apply, with the import command."""
    try:
        doc = json.loads((stack_dir / "cdk.tf.json").read_text())
    except (OSError, ValueError):
        doc = {}
    problems = []
    for block in _error_blocks(output):
        if not _EXISTS.search(block):
            continue
        match = re.search(r"^\s*with ([A-Za-z0-9_]+\.[A-Za-z0-9_\-]+(?:\[[^\]]+\])?),", block, re.MULTILINE)
        if not match:
            continue
        address = match.group(1)
        type_ = address.split(".")[0]
        body = _resource(doc, address)
        name = next((str(body[k]) for k in ("name", "function_name", "alarm_name", "bucket") if isinstance(body.get(k), str)), "")
        summary = block.strip().splitlines()[0].removeprefix("Error: ").strip()
        import_id = None
        if type_ == "aws_lambda_event_source_mapping":
            uuid = re.search(r"UUID\s+([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", block)
            import_id = uuid.group(1) if uuid else None
        elif type_ in IMPORT_IDS:
            found = IMPORT_IDS[type_](body)
            import_id = found if found and "${" not in found and "None" not in re.split(r"[/:,]", found) else None
        if import_id:
            command = commands.terraform(stack, stack_dir, ["import", address, import_id])
            how = [command]
        else:
            hint = LOOKUP_HINTS.get(type_) or (f"`{IMPORT_FORMATS[type_]}`" if type_ in IMPORT_FORMATS else
                                               f"the ID the provider's `{type_}` page gives under \"Import\"")
            try:
                hint = hint.format(name=name or "<name>", function_name=body.get("function_name", "<function>"))
            except (KeyError, IndexError):
                pass
            how = [commands.terraform(stack, stack_dir, ["import", address, "<ID>"]) + f"   # <ID>: {hint}"]
        problems.append(Problem(
            stack, "already-exists",
            f"`{address}`{f' ({name})' if name else ''} already exists in AWS but not in the state "
            f"(e.g. an apply created it and was killed before recording it): {summary}\n"
            "  If it is this stack's (created by an earlier apply of this stack), import it into the state:",
            how,
            f"Or, if it holds nothing you need, delete it in AWS. Then run `{commands.again}` again."))
    return problems


def check_before_apply(stack: str, stack_dir: Path, commands: Commands, s3_client: Callable[[str], Any] | None,
                       extra_errored: list[Path] = ()) -> list[Problem]:
    """What stops an apply of ``stack`` before it starts: errored state files, a lock on its S3 state.

    ``s3_client(region)`` gives an S3 client for the backend's bucket (None: do not read locks).
    A lock that cannot be read (no permission) is reported as a note; Terraform checks it anyway.
    """
    problems = []
    for errored in [stack_dir / ERRORED_STATE, *extra_errored]:
        if errored.is_file():
            problems.append(errored_state_problem(stack, stack_dir, errored, commands))
    if s3_client is None or not (stack_dir / "cdk.tf.json").is_file():
        return problems
    backend = backend_of(stack_dir)
    if backend.type != "s3" or not backend.use_lockfile:
        return problems
    try:
        lock = read_s3_lock(s3_client(backend.region), backend.bucket, backend.lock_key)
    except Exception as exc:  # noqa: BLE001 - reading the lock is a courtesy; terraform enforces it
        print(f"[{stack}] note: could not read s3://{backend.bucket}/{backend.lock_key} ({type(exc).__name__}: {exc}); "
              "Terraform checks the lock when it applies", file=sys.stderr)
        return problems
    if lock is not None:
        problems.append(lock_problem(stack, stack_dir, lock, f"s3://{backend.bucket}/{backend.lock_key}", commands))
    return problems


def after_failed_apply(stack: str, stack_dir: Path, output: str, commands: Commands,
                       keep_errored_in: Path | None = None) -> list[Problem]:
    """What a failed apply's output (and folder) says to do next: lock, errored state, already exists.

    ``keep_errored_in``: copy ``errored.tfstate`` there (as ``<stack>.errored.tfstate``) because
    the stack folder will be replaced by the next synthesis.
    """
    problems: list[Problem] = []
    lock = LockInfo.from_terraform_output(output)
    if lock is not None:
        problems.append(lock_problem(stack, stack_dir, lock, lock.path or "state lock", commands))
    errored = stack_dir / ERRORED_STATE
    if errored.is_file():
        if keep_errored_in is not None:
            keep_errored_in.mkdir(parents=True, exist_ok=True)
            kept = keep_errored_in / f"{stack}.{ERRORED_STATE}"
            shutil.copy2(errored, kept)
            errored = kept
        problems.append(errored_state_problem(stack, stack_dir, errored, commands))
    problems += already_exists(stack, stack_dir, output, commands)
    return problems


def render(problems: list[Problem]) -> str:
    return "\n".join(p.render() for p in problems)


# ---------------------------------------------------------------------------------------
# make unlock / make terraform
# ---------------------------------------------------------------------------------------


def _context(target: str, stack: str, emulator_dir: Path):
    """(stack folder, terraform environment, s3 client factory, init) for ``target``."""
    from tooling.terraform import cli_config_env, terraform

    if target == "aws":
        stack_dir = PROJECT_ROOT / "cdktf.out" / "stacks" / stack
        if not (stack_dir / "cdk.tf.json").is_file():
            raise SystemExit(f"{_shown(stack_dir)}/cdk.tf.json not found: run `make synth` first (same settings as the apply)")
        env = cli_config_env()

        def s3(region: str):
            import boto3

            return boto3.client("s3", region_name=region or None)

        def init():
            if (stack_dir / ".terraform").is_dir():
                return None
            return terraform(["init", "-input=false", "-no-color"], stack_dir, env)

        return stack_dir, env, s3, init
    from tooling import deploy_local as local
    from tooling import emulator as emu

    emulator = emu.load(emulator_dir)
    if emulator is None:
        raise SystemExit(f"the emulator recorded in {_shown(emulator_dir)} is not running: its state (and lock) went with it")
    ws = local.Workspace(emulator_dir.resolve())
    stack_dir = ws.stack_dir(stack)
    if not (stack_dir / "cdk.tf.json").is_file():
        raise SystemExit(f"{_shown(stack_dir)}/cdk.tf.json not found: `make deploy-local` has not synthesized {stack}")
    local.write_backend_config(ws, emulator)
    return (stack_dir, local.terraform_env(emulator), lambda region: emulator.client("s3", region or emu.REGION),
            lambda: local.init_stack(ws, emulator, stack))


def unlock(target: str, stack: str, lock_id: str, emulator_dir: Path) -> int:
    """``terraform force-unlock`` after checking that ``lock_id`` is the lock there now."""
    from tooling.terraform import terraform

    stack_dir, env, s3, init = _context(target, stack, emulator_dir)
    backend = backend_of(stack_dir)
    if backend.type == "s3" and backend.use_lockfile:
        lock = read_s3_lock(s3(backend.region), backend.bucket, backend.lock_key)
        if lock is None:
            print(f"[{stack}] not locked (no s3://{backend.bucket}/{backend.lock_key}): nothing to release")
            return 0
        if lock.id != lock_id:
            print(f"[{stack}] refusing: `{lock_id}` is not the lock there now ({lock.describe()}); "
                  "a newer run may hold it: check it before releasing it.", file=sys.stderr)
            return 1
        print(f"[{stack}] releasing {lock.describe()}")
    elif backend.type == "local":
        print(f"[{stack}] local backend: its lock is an OS file lock, released when the process holding it ended; "
              "if a command still fails on the lock, that process is still running", file=sys.stderr)
        return 1
    run = init()
    if run is not None and not run.ok:
        print(f"terraform init failed:\n{run.stdout}{run.stderr}", file=sys.stderr)
        return 1
    run = terraform(["force-unlock", "-force", "-no-color", lock_id], stack_dir, env)
    print((run.stdout + run.stderr).strip())
    return run.returncode


def run_terraform(target: str, stack: str, args: list[str], emulator_dir: Path) -> int:
    """Any Terraform command in the stack's folder with the target's environment (state push, import)."""
    import subprocess

    from tooling.terraform import terraform_binary

    stack_dir, env, _, init = _context(target, stack, emulator_dir)
    run = init()
    if run is not None and not run.ok:
        print(f"terraform init failed:\n{run.stdout}{run.stderr}", file=sys.stderr)
        return 1
    print(f"$ terraform -chdir={_shown(stack_dir)} {' '.join(shlex.quote(a) for a in args)}", flush=True)
    return subprocess.run([terraform_binary(), *args], cwd=stack_dir, env=env).returncode


def main(argv: list[str]) -> int:
    import argparse

    from tooling import emulator as emu

    parser = argparse.ArgumentParser(prog="python -m tooling.recovery", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("unlock", "release a stale state lock (checks its ID first)"),
                           ("terraform", "run a Terraform command in the stack's folder with the target's environment")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--stack", required=True)
        p.add_argument("--target", choices=TARGETS, default="emulator")
        p.add_argument("--dir", type=Path, default=emu.DEFAULT_DIR, help="emulator folder (default .emulator/)")
        if name == "unlock":
            p.add_argument("--lock-id", required=True)
        else:
            p.add_argument("args", nargs=argparse.REMAINDER, help="after --: the Terraform arguments")
    args = parser.parse_args(argv)
    if args.command == "unlock":
        return unlock(args.target, args.stack, args.lock_id, args.dir)
    tf_args = args.args[1:] if args.args[:1] == ["--"] else args.args
    if not tf_args:
        parser.error("give the Terraform arguments, e.g. -- state list")
    return run_terraform(args.target, args.stack, tf_args, args.dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
