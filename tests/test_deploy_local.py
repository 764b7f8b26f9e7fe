"""`make deploy-local` / `make destroy-local`, for real: every stack applied on the local emulator.

The module runs the same command the Makefile runs (``python -m tooling.deploy_local``) in a
temporary working folder with the default settings, in this order:

1. deploy: every stack applies, its second plan is clean (emulator gaps aside) and its wiring
   checks pass through the AWS API;
2. two applies of one stack at once: the second fails on the S3 lock and the state is intact;
3. recovery from a killed apply (tooling/recovery.py): a SIGKILLed apply's stale lock stops the
   next deploy before it applies anything, with the command that releases it; an
   ``errored.tfstate`` stops it until pushed; a resource missing from state fails with "already
   exists" and the printed import command fixes it; each printed command is run as printed;
4. deploy again: safe, still clean;
5. destroy: nothing left on the emulator; destroy again: safe, nothing to do.

The first tests classify hand-written plan JSON (no emulator): what counts as an emulator gap
and what is a perpetual diff, i.e. a bug.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from scaling_patterns.registry import PATTERNS
from tooling.deploy_local import classify_plan

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# ---------------------------------------------------------------------------------------
# Plan classification (no emulator)
# ---------------------------------------------------------------------------------------


def _change(address: str, actions: list[str], before: dict, after: dict, unknown: dict | None = None,
            replace_paths: list | None = None) -> dict:
    type_ = address.split(".")[0]
    change = {"actions": actions, "before": before, "after": after, "after_unknown": unknown or {}}
    if replace_paths is not None:
        change["replace_paths"] = replace_paths
    return {"address": address, "type": type_, "change": change}


def test_an_attribute_the_emulator_never_returns_is_a_gap():
    plan = {"resource_changes": [_change("aws_lambda_function.f", ["update"],
                                         {"logging_config": [], "memory_size": 256},
                                         {"logging_config": [{"log_format": "JSON"}], "memory_size": 256})]}
    diffs, gaps = classify_plan(plan)
    assert diffs == []
    assert gaps == ["aws_lambda_function.f.logging_config: moto 5.2.5 accepts LoggingConfig on CreateFunction "
                    "but never returns it from GetFunction"]


def test_a_gap_attribute_with_a_different_value_read_back_is_a_perpetual_diff():
    plan = {"resource_changes": [_change("aws_lambda_function.f", ["update"],
                                         {"logging_config": [{"log_format": "Text"}]},
                                         {"logging_config": [{"log_format": "JSON"}]})]}
    diffs, gaps = classify_plan(plan)
    assert gaps == []
    assert diffs == ['aws_lambda_function.f.logging_config: [{"log_format": "Text"}] -> [{"log_format": "JSON"}]']


def test_any_other_attribute_is_a_perpetual_diff():
    plan = {"resource_changes": [_change("aws_sqs_queue.q", ["update"], {"delay_seconds": 0}, {"delay_seconds": 5})]}
    assert classify_plan(plan) == (["aws_sqs_queue.q.delay_seconds: 0 -> 5"], [])


def test_json_spelled_differently_is_a_gap_but_different_json_is_a_diff():
    same = _change("aws_sqs_queue.a", ["update"], {"redrive_policy": '{"maxReceiveCount": 5}'},
                   {"redrive_policy": '{"maxReceiveCount":5}'})
    other = _change("aws_sqs_queue.b", ["update"], {"redrive_policy": '{"maxReceiveCount": 5}'},
                    {"redrive_policy": '{"maxReceiveCount":3}'})
    diffs, gaps = classify_plan({"resource_changes": [same, other]})
    assert [g.split(":")[0] for g in gaps] == ["aws_sqs_queue.a.redrive_policy"]
    assert diffs == ['aws_sqs_queue.b.redrive_policy: "{\\"maxReceiveCount\\": 5}" -> "{\\"maxReceiveCount\\":3}"']


def test_a_replacement_is_a_gap_only_when_every_forcing_attribute_is_one():
    by_gap = _change("aws_sagemaker_model.m", ["delete", "create"],
                     {"vpc_config": [{"security_group_ids": [], "subnets": []}], "name": "m"},
                     {"vpc_config": [], "name": "m"}, replace_paths=[["vpc_config"]])
    by_name = _change("aws_sagemaker_model.n", ["delete", "create"],
                      {"vpc_config": [{"security_group_ids": [], "subnets": []}], "name": "n"},
                      {"vpc_config": [], "name": "n2"}, replace_paths=[["vpc_config"], ["name"]])
    diffs, gaps = classify_plan({"resource_changes": [by_gap, by_name]})
    assert gaps == ["aws_sagemaker_model.m.vpc_config (forces replacement): moto 5.2.5 returns an empty VpcConfig "
                    "when none is configured (a replacement on every plan)"]
    assert diffs == ["aws_sagemaker_model.n: delete/create (forced by name, vpc_config)"]


def test_values_known_only_after_apply_follow_the_other_changes():
    follower = _change("aws_lambda_alias.a", ["update"], {"function_version": "1"}, {}, {"function_version": True})
    gap = _change("aws_lambda_function.f", ["update"], {"logging_config": []}, {"logging_config": [{"log_format": "JSON"}]})
    diff = _change("aws_lambda_function.g", ["update"], {"timeout": 3}, {"timeout": 30})

    diffs, gaps = classify_plan({"resource_changes": [follower, gap]})
    assert diffs == [] and len(gaps) == 2 and gaps[1].startswith("aws_lambda_alias.a: values known only after apply")

    diffs, gaps = classify_plan({"resource_changes": [follower, diff]})
    assert gaps == [] and len(diffs) == 2

    diffs, gaps = classify_plan({"resource_changes": [follower]})
    assert gaps == [] and diffs[0].startswith("aws_lambda_alias.a: values known only after apply")


def test_created_destroyed_resources_and_changed_outputs_are_diffs():
    plan = {"resource_changes": [_change("aws_sqs_queue.q", ["create"], {}, {"name": "q"})],
            "output_changes": {"queue_url": {"actions": ["update"]}, "same": {"actions": ["no-op"]}}}
    assert classify_plan(plan) == (["aws_sqs_queue.q: create", "output queue_url: update"], [])


# ---------------------------------------------------------------------------------------
# The full cycle on the emulator
# ---------------------------------------------------------------------------------------

LOCK_STACK = "llm-request-scaling"


def _deploy_local(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "tooling.deploy_local", *args], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=timeout)
    print(f"$ python -m tooling.deploy_local {' '.join(args)}  # exit {run.returncode}, {time.monotonic() - started:.0f}s")
    print(run.stdout[-6000:], run.stderr[-3000:])
    return run


def _summary_rows(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] in {s.name for s in PATTERNS}:
            rows[cells[0]] = cells
    return rows


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("deploy-local") / "emulator"
    settings = directory.parent / "settings.toml"
    settings.write_text("# defaults only\n")
    yield directory
    from tooling import emulator as emu

    emu.stop(directory)  # whatever happened above, never leave a moto server running


@pytest.fixture(scope="module")
def first_deploy(workdir: Path) -> subprocess.CompletedProcess:
    return _deploy_local("deploy", "--dir", str(workdir), "--settings", str(workdir.parent / "settings.toml"))


@pytest.mark.emulator
def test_deploy_local_applies_every_stack_cleanly(first_deploy):
    assert first_deploy.returncode == 0, first_deploy.stdout[-4000:] + first_deploy.stderr[-2000:]
    rows = _summary_rows(first_deploy.stdout)
    assert sorted(rows) == sorted(s.name for s in PATTERNS)
    for name, (_, resources, outputs, clean, checks, _, status) in rows.items():
        passed, total = map(int, checks.split("/"))
        assert status == "ok" and clean in ("yes", "yes*"), rows[name]
        assert int(resources) > 0 and int(outputs) >= 3, rows[name]
        assert passed == total >= 5, f"{name}: only {checks} wiring checks"
    # Outputs are printed per stack, e.g. the queue URL on the emulator.
    assert '    sqs_queue_url = "http://127.0.0.1:' in first_deploy.stdout


@pytest.mark.emulator
def test_a_second_apply_of_a_stack_fails_on_the_lock_and_leaves_state_intact(first_deploy, workdir):
    from tooling import deploy_local as local
    from tooling import emulator as emu
    from tooling.terraform import terraform

    assert first_deploy.returncode == 0
    emulator = emu.load(workdir)
    assert emulator is not None
    ws = local.Workspace(workdir)
    directory = ws.stack_dir(LOCK_STACK)
    env = local.terraform_env(emulator)
    s3 = emulator.client("s3")
    key = local.state_key(LOCK_STACK)
    serial = json.loads(s3.get_object(Bucket=local.STATE_BUCKET, Key=key)["Body"].read())["serial"]

    # The first apply takes the lock, then waits at its approval prompt, holding it.
    first = subprocess.Popen(["terraform", "apply", "-no-color", "-input=true"], cwd=directory, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            listed = s3.list_objects_v2(Bucket=local.STATE_BUCKET, Prefix=key).get("Contents", [])
            if any(o["Key"] == f"{key}.tflock" for o in listed):
                break
            assert first.poll() is None, first.stdout.read()
            time.sleep(1)
        else:
            pytest.fail("the first apply never wrote its lock file")

        second = terraform(["apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=0s"], directory, env)
        assert second.returncode != 0
        assert "Error acquiring the state lock" in second.stderr + second.stdout, second.stderr[-2000:]
    finally:
        out, _ = first.communicate("no\n", timeout=300)
    assert first.returncode != 0 and "Apply cancelled" in out, out[-2000:]

    state = json.loads(s3.get_object(Bucket=local.STATE_BUCKET, Key=key)["Body"].read())
    assert state["serial"] == serial, "a refused apply must not write state"
    assert not [o for o in s3.list_objects_v2(Bucket=local.STATE_BUCKET, Prefix=key).get("Contents", [])
                if o["Key"].endswith(".tflock")], "the lock must be released"
    assert local.plan_after_apply(ws, emulator, LOCK_STACK).clean


RECOVERY_STACK = "predictive-lambda-scaling"  # applies in ~10 s


def _serials(s3) -> dict[str, int]:
    from tooling import deploy_local as local

    listed = s3.list_objects_v2(Bucket=local.STATE_BUCKET, Prefix=f"{local.KEY_PREFIX}/").get("Contents", [])
    return {o["Key"]: json.loads(s3.get_object(Bucket=local.STATE_BUCKET, Key=o["Key"])["Body"].read())["serial"]
            for o in listed if o["Key"].endswith(".tfstate")}


def _printed(output: str, start: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith(start)]


def _run_printed(line: str) -> subprocess.CompletedProcess:
    """A `make unlock` / `make terraform` / `mv` line the deploy printed, run as printed. ``make``
    lines run their recipe's command (tests/test_recovery.py checks the Makefile maps them so),
    because `make` would first run `make install`."""
    words = shlex.split(line)
    if words[0] == "mv":
        shutil.move(words[1], words[2])
        return subprocess.CompletedProcess(words, 0, "", "")
    assert words[0] == "make" and words[1] in ("unlock", "terraform"), line
    given = dict(word.split("=", 1) for word in words[2:])
    args = [words[1], "--stack", given["STACK"]]
    if words[1] == "unlock":
        args += ["--lock-id", given["LOCK_ID"]]
    if "EMULATOR_DIR" in given:
        args += ["--dir", given["EMULATOR_DIR"]]
    if words[1] == "terraform":
        args += ["--", *shlex.split(given["ARGS"])]
    run = subprocess.run([sys.executable, "-m", "tooling.recovery", *args], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=600)
    print(f"$ {line}  # exit {run.returncode}\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    return run


def _deploy_one(workdir: Path) -> subprocess.CompletedProcess:
    return _deploy_local("deploy", "--dir", str(workdir), "--settings", str(workdir.parent / "settings.toml"),
                         "--stack", RECOVERY_STACK)


@pytest.mark.emulator
def test_a_killed_apply_leaves_a_stale_lock_that_stops_the_deploy_until_make_unlock_releases_it(first_deploy, workdir):
    from tooling import deploy_local as local
    from tooling import emulator as emu

    assert first_deploy.returncode == 0
    emulator = emu.load(workdir)
    ws = local.Workspace(workdir)
    s3 = emulator.client("s3")
    lock_key = local.state_key(RECOVERY_STACK) + ".tflock"
    serials = _serials(s3)

    # An apply takes the lock and waits at its prompt; then it dies as a vanished CI runner does.
    apply = subprocess.Popen(["terraform", "apply", "-no-color", "-input=true"], cwd=ws.stack_dir(RECOVERY_STACK),
                             env=local.terraform_env(emulator), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not s3.list_objects_v2(Bucket=local.STATE_BUCKET, Prefix=lock_key).get("Contents"):
            assert apply.poll() is None and time.monotonic() < deadline, "the apply never took the lock"
            time.sleep(0.5)
    finally:
        os.killpg(apply.pid, signal.SIGKILL)
        apply.wait()
    lock = json.loads(s3.get_object(Bucket=local.STATE_BUCKET, Key=lock_key)["Body"].read())

    stopped = _deploy_local("deploy", "--dir", str(workdir), "--settings", str(workdir.parent / "settings.toml"))
    assert stopped.returncode == 1
    assert "deploy-local STOPPED before applying anything" in stopped.stderr
    assert f"[{RECOVERY_STACK}] the state is LOCKED (s3://{local.STATE_BUCKET}/{lock_key}): lock `{lock['ID']}`: " \
           f"apply by {lock['Who']}, since " in stopped.stderr
    assert " ago), Terraform " in stopped.stderr and "never released automatically" in stopped.stderr
    assert "applying" not in stopped.stdout and "deploy-local applied nothing" in stopped.stdout
    assert _serials(s3) == serials, "a stopped deploy must not write any state"

    [unlock] = _printed(stopped.stderr, "make unlock")
    assert unlock == f"make unlock STACK={RECOVERY_STACK} LOCK_ID={lock['ID']} EMULATOR_DIR={workdir}"
    released = _run_printed(unlock)
    assert released.returncode == 0 and "successfully unlocked" in released.stdout, released.stderr
    assert not s3.list_objects_v2(Bucket=local.STATE_BUCKET, Prefix=lock_key).get("Contents")
    assert local.plan_after_apply(ws, emulator, RECOVERY_STACK).clean


@pytest.mark.emulator
def test_an_errored_state_file_stops_the_deploy_until_it_is_pushed(first_deploy, workdir):
    from tooling import deploy_local as local
    from tooling import emulator as emu

    assert first_deploy.returncode == 0
    emulator = emu.load(workdir)
    ws = local.Workspace(workdir)
    s3 = emulator.client("s3")
    key = local.state_key(RECOVERY_STACK)
    state = json.loads(s3.get_object(Bucket=local.STATE_BUCKET, Key=key)["Body"].read())
    state["serial"] += 1  # what Terraform writes when it cannot reach the backend: a newer state
    errored = ws.stack_dir(RECOVERY_STACK) / "errored.tfstate"
    errored.write_text(json.dumps(state))

    stopped = _deploy_one(workdir)
    assert stopped.returncode == 1 and "deploy-local STOPPED before applying anything" in stopped.stderr
    assert f"{errored} exists: an earlier apply could not write its state" in stopped.stderr
    [push] = _printed(stopped.stderr, "make terraform")
    assert push == f'make terraform STACK={RECOVERY_STACK} ARGS="state push errored.tfstate" EMULATOR_DIR={workdir}'
    assert errored.exists(), "the deploy must not re-synthesize (and so delete) the stack folder"
    assert _run_printed(push).returncode == 0
    pushed = json.loads(s3.get_object(Bucket=local.STATE_BUCKET, Key=key)["Body"].read())
    assert pushed["lineage"] == state["lineage"] and pushed["serial"] >= state["serial"], "the newer state is on the backend"
    [move] = _printed(stopped.stderr, "mv ")
    assert _run_printed(move).returncode == 0 and not errored.exists()


@pytest.mark.emulator
def test_a_resource_missing_from_state_fails_with_already_exists_and_the_printed_import_fixes_it(first_deploy, workdir):
    from tooling import deploy_local as local

    assert first_deploy.returncode == 0
    ws = local.Workspace(workdir)
    [role] = json.loads((ws.stack_dir(RECOVERY_STACK) / "cdk.tf.json").read_text())["resource"]["aws_iam_role"]
    address = f"aws_iam_role.{role}"
    # What an apply killed between CreateRole and its next state write leaves: the role, not in state.
    forgot = _run_printed(f'make terraform STACK={RECOVERY_STACK} ARGS="state rm {address}" EMULATOR_DIR={workdir}')
    assert forgot.returncode == 0

    failed = _deploy_one(workdir)
    assert failed.returncode == 1
    assert f"`{address}` (aiscale-pred-inference-role) already exists in AWS but not in the state" in failed.stdout
    [command] = _printed(failed.stdout, "make terraform")
    assert command == (f'make terraform STACK={RECOVERY_STACK} ARGS="import {address} aiscale-pred-inference-role" '
                       f"EMULATOR_DIR={workdir}")
    assert _run_printed(command).returncode == 0

    fixed = _deploy_one(workdir)
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-2000:]
    assert _summary_rows(fixed.stdout)[RECOVERY_STACK][6] == "ok"


@pytest.mark.emulator
def test_deploy_local_twice_is_safe(first_deploy, workdir):
    assert first_deploy.returncode == 0
    again = _deploy_local("deploy", "--dir", str(workdir), "--settings", str(workdir.parent / "settings.toml"))
    assert again.returncode == 0, again.stdout[-4000:]
    assert "emulator reused" in again.stdout
    assert all(row[6] == "ok" for row in _summary_rows(again.stdout).values())


@pytest.mark.emulator
def test_destroy_local_leaves_nothing_behind_and_twice_is_safe(first_deploy, workdir):
    from tooling import emulator as emu

    destroyed = _deploy_local("destroy", "--dir", str(workdir))
    assert destroyed.returncode == 0, destroyed.stdout[-4000:] + destroyed.stderr[-3000:]
    assert f"destroy-local: {len(PATTERNS)} stacks destroyed, 0 resources left behind" in destroyed.stdout
    assert emu.load(workdir) is None and not workdir.exists()

    again = _deploy_local("destroy", "--dir", str(workdir))
    assert again.returncode == 0
    assert "nothing is deployed" in again.stdout


def test_an_emulator_client_ignores_the_callers_aws_profile(monkeypatch, tmp_path):
    """A profile this machine lacks (AWS_PROFILE from the user's shell) must not stop the emulator's
    clients: they use explicit fake credentials and the emulator's endpoint, nothing of the profile."""
    from tooling import emulator as emu

    monkeypatch.setenv("AWS_PROFILE", "a-profile-this-machine-lacks")
    client = emu.Emulator(pid=0, port=1, workdir=tmp_path).client("sqs")
    assert client.meta.endpoint_url == "http://127.0.0.1:1"
    assert client._request_signer._credentials.access_key == emu.FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]
