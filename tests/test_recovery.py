"""Recovering from a killed apply (tooling/recovery.py, `make apply`'s checks, `make unlock`).

No emulator here: Terraform output recorded from real runs (Terraform 1.11.4, hashicorp/aws
5.100.0, moto 5.2.5) in tests/data/, S3 locks read from moto in-process, and one real
Terraform apply on the local backend (``terraform_data``, no provider needed) killed with
SIGKILL. The emulator end-to-end runs are in tests/test_deploy_local.py.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from tooling import recovery
from tooling.plan import MANIFEST, apply_saved

DATA = Path(__file__).parent / "data"
LOCK_JSON = ('{"ID":"b36623a5-f340-451d-b905-9f019edc4be4","Operation":"OperationTypeApply","Info":"",'
             '"Who":"runner@fv-az123","Version":"1.11.4","Created":"2026-12-02T19:30:39.89408563Z",'
             '"Path":"acme-state/scaling-patterns/llm-request-scaling.tfstate"}')
NOW = datetime(2026, 12, 2, 19, 42, 40, tzinfo=timezone.utc)


# --- lock info ----------------------------------------------------------------------------


def test_the_lock_file_json_gives_id_owner_operation_and_age():
    lock = recovery.LockInfo.from_json(LOCK_JSON)
    assert lock.id == "b36623a5-f340-451d-b905-9f019edc4be4"
    assert lock.describe(NOW) == ("lock `b36623a5-f340-451d-b905-9f019edc4be4`: apply by runner@fv-az123, "
                                  "since 2026-12-02 19:30:39 UTC (12 min ago), Terraform 1.11.4")


def test_the_lock_info_of_terraforms_lock_error_is_read():
    lock = recovery.LockInfo.from_terraform_output((DATA / "apply-locked.txt").read_text())
    assert lock is not None
    assert (lock.id, lock.operation, lock.who) == ("64397197-ed74-6cb3-9e40-78179163846b", "OperationTypeApply", "root@vm")
    assert lock.created == datetime(2026, 12, 2, 19, 37, 7, 982908, tzinfo=timezone.utc)
    assert lock.path == "scaling-patterns-local-state/scaling-patterns/predictive-lambda-scaling.tfstate"
    assert recovery.LockInfo.from_terraform_output((DATA / "apply-already-exists.txt").read_text()) is None


@pytest.mark.parametrize("seconds, shown", [(5, "5 s"), (754, "12 min"), (3 * 3600 + 120, "3 h 2 min"), (5 * 86400, "5 days")])
def test_lock_ages_read_in_the_largest_sensible_unit(seconds, shown):
    from datetime import timedelta

    assert recovery.format_age(timedelta(seconds=seconds)) == shown


# --- "already exists" ---------------------------------------------------------------------


def _stack_dir(tmp_path: Path, resources: dict, backend: dict | None = None) -> Path:
    directory = tmp_path / "cdktf.out" / "stacks" / "predictive-lambda-scaling"
    directory.mkdir(parents=True)
    doc = {"terraform": {"backend": backend or {"local": {"path": str(tmp_path / "terraform.x.tfstate")}}},
           "resource": resources}
    (directory / "cdk.tf.json").write_text(json.dumps(doc))
    return directory


RECORDED_RESOURCES = {
    "aws_cloudwatch_log_group": {"predictive_lambda_scaling_inference_log_group_52C8D4D2": {"name": "/aws/lambda/aiscale-pred-inference"}},
    "aws_iam_role": {"predictive_lambda_scaling_inference_role_83C1E851": {"name": "aiscale-pred-inference-role"}},
}


def test_already_exists_errors_give_the_import_command_with_the_resources_id(tmp_path):
    directory = _stack_dir(tmp_path, RECORDED_RESOURCES)
    output = (DATA / "apply-already-exists.txt").read_text()
    problems = recovery.already_exists("predictive-lambda-scaling", directory, output, recovery.Commands("aws"))
    assert [p.kind for p in problems] == ["already-exists", "already-exists"]
    shown = recovery._shown(directory)
    assert problems[0].commands == [
        f"terraform -chdir={shown} import aws_cloudwatch_log_group.predictive_lambda_scaling_inference_log_group_52C8D4D2 "
        "/aws/lambda/aiscale-pred-inference"]
    assert problems[1].commands == [
        f"terraform -chdir={shown} import aws_iam_role.predictive_lambda_scaling_inference_role_83C1E851 aiscale-pred-inference-role"]
    assert "EntityAlreadyExists: Role with name aiscale-pred-inference-role already exists" in problems[1].what
    assert "delete it in AWS" in problems[1].note and "make plan TARGET=aws" in problems[1].note


def test_on_the_emulator_the_import_goes_through_make_terraform(tmp_path):
    directory = _stack_dir(tmp_path, RECORDED_RESOURCES)
    output = (DATA / "apply-already-exists.txt").read_text()
    problems = recovery.already_exists("predictive-lambda-scaling", directory, output, recovery.Commands("emulator", tmp_path / "emu"))
    assert problems[1].commands == [
        'make terraform STACK=predictive-lambda-scaling ARGS="import aws_iam_role.predictive_lambda_scaling_inference_role_83C1E851 '
        f'aiscale-pred-inference-role" EMULATOR_DIR={tmp_path / "emu"}']


def test_an_id_that_is_not_in_the_configuration_says_how_to_find_it(tmp_path):
    directory = _stack_dir(tmp_path, {"aws_lb_target_group": {"tg": {"name": "aiscale-lb-tg"}}})
    output = ("Error: creating ELBv2 Target Group (aiscale-lb-tg): operation error Elastic Load Balancing v2: "
              "CreateTargetGroup, DuplicateTargetGroupName: A target group with the same name 'aiscale-lb-tg' exists\n\n"
              "  with aws_lb_target_group.tg,\n  on cdk.tf.json line 3, in resource.aws_lb_target_group.tg:\n")
    [problem] = recovery.already_exists("s", directory, output, recovery.Commands("aws"))
    assert problem.commands[0].endswith("import aws_lb_target_group.tg '<ID>'   # <ID>: the target group ARN "
                                        "(`aws elbv2 describe-target-groups --names aiscale-lb-tg`)")


def test_every_named_resource_type_of_the_stacks_has_an_import_id_rule(synth):
    """A named resource is what fails with "already exists": each type needs its import ID."""
    named = {type_ for name in synth.names() for type_, items in synth.stack(name).doc.get("resource", {}).items()
             if any({"name", "function_name", "alarm_name", "bucket"} & set(body) for body in items.values())}
    missing = sorted(named - set(recovery.IMPORT_IDS) - set(recovery.LOOKUP_HINTS) - recovery.UPSERTS)
    assert missing == [], f"add these to tooling/recovery.py IMPORT_IDS (provider docs, 'Import'): {missing}"
    unfillable = sorted(t for t in named if t in recovery.IMPORT_IDS and t not in recovery.LOOKUP_HINTS
                        and t not in recovery.IMPORT_FORMATS and t not in recovery.UPSERTS
                        and any("${" in str(recovery.IMPORT_IDS[t](body)) for name in synth.names()
                                for body in synth.stack(name).resources(t).values()))
    assert unfillable == [], f"these IDs reference other resources: give IMPORT_FORMATS entries: {unfillable}"


# --- make apply: what stops it before it applies anything --------------------------------


def _manifest(out: Path, entries: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps({"target": "aws", "stacks": entries}))


@pytest.fixture
def s3(monkeypatch):
    from moto import mock_aws

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        import boto3

        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket="acme-state", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


S3_BACKEND = {"s3": {"bucket": "acme-state", "key": "scaling-patterns/llm-request-scaling.tfstate",
                     "region": "eu-west-1", "encrypt": True, "use_lockfile": True}}


def test_make_apply_stops_on_a_lock_with_its_owner_age_and_the_unlock_command(tmp_path, s3, capsys):
    directory = _stack_dir(tmp_path, {}, S3_BACKEND)
    s3.put_object(Bucket="acme-state", Key="scaling-patterns/llm-request-scaling.tfstate.tflock", Body=LOCK_JSON.encode())
    _manifest(tmp_path / "plans", [{"stack": "llm-request-scaling", "directory": str(directory), "error": "", "changes": True}])

    assert apply_saved(tmp_path / "plans", errored_dir=tmp_path / "errored-state") == 1
    out, err = capsys.readouterr()
    assert "applying" not in out
    assert "make apply STOPPED before applying anything" in err
    assert ("the state is LOCKED (s3://acme-state/scaling-patterns/llm-request-scaling.tfstate.tflock): "
            "lock `b36623a5-f340-451d-b905-9f019edc4be4`: apply by runner@fv-az123, since 2026-12-02 19:30:39 UTC") in err
    assert f"terraform -chdir={recovery._shown(directory)} force-unlock -force b36623a5-f340-451d-b905-9f019edc4be4" in err
    assert "make unlock STACK=llm-request-scaling LOCK_ID=b36623a5-f340-451d-b905-9f019edc4be4 TARGET=aws" in err
    assert "If that apply or plan is still running, wait for it" in err and "never released automatically" in err


def test_make_apply_stops_on_an_errored_state_kept_from_an_earlier_apply(tmp_path, s3, capsys):
    directory = _stack_dir(tmp_path, {}, S3_BACKEND)
    kept = tmp_path / "errored-state" / "llm-request-scaling.errored.tfstate"
    kept.parent.mkdir()
    kept.write_text("{}")
    _manifest(tmp_path / "plans", [{"stack": "llm-request-scaling", "directory": str(directory), "error": "", "changes": True}])

    assert apply_saved(tmp_path / "plans", errored_dir=tmp_path / "errored-state") == 1
    out, err = capsys.readouterr()
    assert "applying" not in out
    assert f"terraform -chdir={recovery._shown(directory)} state push {kept}" in err
    assert f"mv {recovery._shown(kept)} {recovery._shown(kept)}.pushed" in err


def test_make_apply_applies_nothing_when_any_plan_failed(tmp_path, capsys):
    first = _stack_dir(tmp_path, {})
    _manifest(tmp_path / "plans", [
        {"stack": "predictive-lambda-scaling", "directory": str(first), "error": "", "changes": True},
        {"stack": "queue-to-sagemaker", "directory": str(first), "error": "terraform plan failed", "changes": False}])
    assert apply_saved(tmp_path / "plans", errored_dir=tmp_path / "errored-state") == 1
    out, err = capsys.readouterr()
    assert "applying" not in out
    assert "the plan of queue-to-sagemaker failed; nothing was applied" in err


def test_a_failed_apply_keeps_its_errored_state_outside_the_folder_synthesis_replaces(tmp_path):
    directory = _stack_dir(tmp_path, RECORDED_RESOURCES)
    (directory / "errored.tfstate").write_text('{"serial": 9}')
    problems = recovery.after_failed_apply("predictive-lambda-scaling", directory, (DATA / "apply-locked.txt").read_text(),
                                           recovery.Commands("aws"), keep_errored_in=tmp_path / "errored-state")
    assert [p.kind for p in problems] == ["lock", "errored-state"]
    kept = tmp_path / "errored-state" / "predictive-lambda-scaling.errored.tfstate"
    assert kept.read_text() == '{"serial": 9}'
    assert str(kept) in problems[1].commands[0] and "state push" in problems[1].commands[0]
    assert "64397197-ed74-6cb3-9e40-78179163846b" in problems[0].commands[0]


# --- the local backend: the lock dies with the process ------------------------------------


def test_a_killed_apply_leaves_no_lock_on_the_local_backend(tmp_path):
    from tooling.terraform import cli_config_env, terraform

    state = tmp_path / "terraform.x.tfstate"
    (tmp_path / "main.tf").write_text(
        f'terraform {{\n  backend "local" {{ path = "{state}" }}\n}}\nresource "terraform_data" "a" {{ input = "one" }}\n')
    env = cli_config_env()
    assert terraform(["init", "-input=false", "-no-color"], tmp_path, env).ok
    assert terraform(["apply", "-auto-approve", "-no-color"], tmp_path, env).ok
    info = tmp_path / ".terraform.x.tfstate.lock.info"
    waiting = subprocess.Popen(["terraform", "apply", "-no-color", "-input=true", "-replace=terraform_data.a"], cwd=tmp_path,
                               env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert info.exists(), "the waiting apply never took the lock"
        held = terraform(["plan", "-no-color", "-lock-timeout=0s"], tmp_path, env)
        assert not held.ok and "Error acquiring the state lock" in held.stderr
    finally:
        os.killpg(waiting.pid, signal.SIGKILL)
        waiting.wait()
    assert info.exists(), "SIGKILL leaves the lock info file behind..."
    after = terraform(["plan", "-no-color", "-lock-timeout=0s"], tmp_path, env)
    assert after.ok, after.stderr  # ... but the OS lock died with the process
    assert not info.exists()
    assert recovery.backend_of_doc({"terraform": {"backend": {"local": {"path": str(state)}}}}).type == "local"


# --- make unlock / make terraform / make upgrade-check map to the tooling -----------------


def _make_dry_run(*args: str) -> str:
    # CI runs the suite under `make test`: a nested make inherits MAKELEVEL/MAKEFLAGS and prints
    # "Entering/Leaving directory" lines around the dry run unless told not to.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    run = subprocess.run(["make", "--no-print-directory", "-n", *args], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1]


def test_make_unlock_and_make_terraform_run_the_recovery_commands():
    line = _make_dry_run("unlock", "STACK=llm-request-scaling", "LOCK_ID=abc-123", "EMULATOR_DIR=/tmp/emu")
    assert shlex.split(line)[-9:] == ["-m", "tooling.recovery", "unlock", "--stack", "llm-request-scaling",
                                      "--lock-id", "abc-123", "--dir", "/tmp/emu"]
    line = _make_dry_run("unlock", "STACK=s", "LOCK_ID=i", "TARGET=aws")
    assert shlex.split(line)[-8:] == ["tooling.recovery", "unlock", "--stack", "s", "--lock-id", "i", "--target", "aws"]
    line = _make_dry_run("terraform", "STACK=s", "ARGS=import aws_iam_role.r 'my role'")
    assert shlex.split(line)[-7:] == ["terraform", "--stack", "s", "--", "import", "aws_iam_role.r", "my role"]
    line = _make_dry_run("upgrade-check", "BASE=origin/main", "STACKS=a b")
    assert shlex.split(line)[-7:] == ["tooling.upgrade_check", "--base", "origin/main", "--stack", "a", "--stack", "b"]
