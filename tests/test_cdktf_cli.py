"""The cdktf CLI path, for real: `npx cdktf synth|diff|deploy|destroy` from the project root, offline.

1. pins: cdktf-cli 0.21.0 and a Node LTS (>= 22) in package.json, installed; cdktf.json runs the
   project's .venv python (not `pipenv run`, which outside make may pick another virtualenv);
2. (slow) `npx cdktf synth` and `make synth`, run from a shell whose PATH has the machine's node
   first (as a user's has), print no Node end-of-life box or error, run on the pinned Node, and
   write the same stacks with the same JSON; every npx-synthesized stack folder carries the lock
   from the local provider mirror, and Terraform accepts it;
3. (emulator) `eval "$(make -s emulator-env)"`, then `npx cdktf diff`, `deploy --auto-approve` and
   `destroy --auto-approve` of predictive-lambda-scaling: the function and its alias exist on the
   emulator after deploy (boto3 against its endpoint) and are gone after destroy.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from tooling.cdktf_cli import LOCK_FILE
from tooling.terraform import cli_config_env, find_provider_mirror, terraform

PACKAGE = json.loads((PROJECT_ROOT / "package.json").read_text())
NODE_BIN = PROJECT_ROOT / "node_modules" / ".bin"
STACK = "predictive-lambda-scaling"
EOL = re.compile(r"end[- ]of[- ]life|no longer supported|untested", re.IGNORECASE)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def user_env(**extra: str) -> dict[str, str]:
    """A user's shell: no parent make or `pipenv run` (the suite runs under both), neither node_modules/.bin
    nor .venv/bin on PATH, no JSII_NODE, no emulator variables."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "JSII_NODE", "CDKTF_OUTDIR", "SCALING_PATTERNS_SETTINGS",
                        "VIRTUAL_ENV", "PIPENV_ACTIVE")
           and not k.startswith(("AWS_ENDPOINT", "PYTEST", "TF_CLI_ARGS", "JSII_SILENCE"))}
    ours = {NODE_BIN, PROJECT_ROOT / ".venv" / "bin"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if Path(p) not in ours)
    env.update(extra)
    return env


def node_major(version: str) -> int:
    return int(version.strip().lstrip("v").split(".")[0])


# ---------------------------------------------------------------------------------------
# Pins (fast)
# ---------------------------------------------------------------------------------------


def test_cdktf_cli_and_a_node_lts_are_pinned_and_installed():
    dev = PACKAGE["devDependencies"]
    assert dev["cdktf-cli"] == "0.21.0"
    assert re.fullmatch(r"\d+\.\d+\.\d+", dev["node"]) and node_major(dev["node"]) >= 22, dev["node"]
    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/cdktf-cli"]["version"] == "0.21.0"
    assert lock["node_modules/node"]["version"] == dev["node"]
    installed = subprocess.run([str(NODE_BIN / "node"), "--version"], capture_output=True, text=True, timeout=30)
    assert installed.stdout.strip() == f"v{dev['node']}"
    assert (NODE_BIN / "cdktf").exists()


def test_cdktf_json_runs_the_project_virtualenv_not_pipenv():
    app = json.loads((PROJECT_ROOT / "cdktf.json").read_text())["app"]
    assert "pipenv" not in app
    assert app.split()[0] == ".venv/bin/python" and (PROJECT_ROOT / app.split()[0]).exists()


def test_the_makefile_no_longer_silences_the_node_end_of_life_warning():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "JSII_SILENCE_WARNING" not in makefile
    assert "JSII_SILENCE_WARNING" not in (PROJECT_ROOT / "tests" / "conftest.py").read_text()
    assert "node_modules/.bin:$(PATH)" in makefile


# ---------------------------------------------------------------------------------------
# Synth: npx cdktf synth == make synth (== python main.py), on the pinned Node
# ---------------------------------------------------------------------------------------


def stacks_of(outdir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(outdir.glob("stacks/*/cdk.tf.json"))}


@pytest.fixture(scope="module")
def synths(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    root = tmp_path_factory.mktemp("cdktf-synth")
    env = user_env(CHECKPOINT_DISABLE="1")
    npx_out, make_out = root / "npx", root / "make"
    npx = subprocess.run(["npx", "cdktf", "synth", "--output", str(npx_out)], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    make = subprocess.run(["make", "--no-print-directory", "synth", f"CDKTF_OUTDIR={make_out}"], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    return {"npx": (npx, npx_out), "make": (make, make_out)}


@pytest.mark.slow
@pytest.mark.parametrize("how", ["npx", "make"])
def test_synth_prints_no_node_end_of_life_warning(synths, how):
    run, outdir = synths[how]
    output = ANSI.sub("", run.stdout + run.stderr)
    assert run.returncode == 0, output[-3000:]
    assert not EOL.search(output), output[-3000:]
    assert len(stacks_of(outdir)) == 5


@pytest.mark.slow
def test_npx_and_make_run_the_pinned_node_not_the_machines():
    env = user_env()
    machine = shutil.which("node", path=env["PATH"])
    via_npx = subprocess.run(["npx", "node", "--version"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    via_make = subprocess.run(["make", "-s", "--no-print-directory", "--eval", "node-version: ; @node --version", "node-version"],
                              cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    want = f"v{PACKAGE['devDependencies']['node']}"
    assert via_npx.stdout.strip() == want, (machine, via_npx.stdout, via_npx.stderr)
    assert via_make.stdout.strip() == want, (machine, via_make.stdout, via_make.stderr)
    # A bare `.venv/bin/python main.py` (no make, no npx) starts jsii on the pinned node too.
    probe = subprocess.run([str(PROJECT_ROOT / ".venv" / "bin" / "python"), "-c",
                            "import os; from app.synth import use_project_node; use_project_node(); print(os.environ['JSII_NODE'])"],
                           cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    jsii_node = probe.stdout.strip()
    version = subprocess.run([jsii_node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    assert version == want and node_major(version) >= 22, (jsii_node, version, probe.stderr)


@pytest.mark.slow
def test_npx_cdktf_synth_writes_what_make_synth_writes(synths):
    (npx, npx_out), (make, make_out) = synths["npx"], synths["make"]
    assert npx.returncode == 0 and make.returncode == 0, (npx.stderr[-2000:], make.stderr[-2000:])
    from_npx, from_make = stacks_of(npx_out), stacks_of(make_out)
    assert sorted(from_npx) == sorted(from_make) == sorted(
        ["llm-request-scaling", "queue-depth-scaling", "inference-load-balancing", STACK, "queue-to-sagemaker"])
    for name in from_make:
        assert from_npx[name] == from_make[name], name


@pytest.mark.slow
@pytest.mark.skipif(find_provider_mirror() is None, reason="no local provider mirror: cdktf locks from the registry")
def test_npx_synth_locks_the_provider_from_the_mirror_and_terraform_accepts_the_lock(synths, tmp_path):
    _, outdir = synths["npx"]
    locks = {p.parent.name: p.read_text() for p in outdir.glob(f"stacks/*/{LOCK_FILE}")}
    assert sorted(locks) == sorted(stacks_of(outdir)), "every stack folder has the lock"
    lock = next(iter(locks.values()))
    assert 'provider "registry.terraform.io/hashicorp/aws"' in lock and 'version     = "5.100.0"' in lock and "h1:" in lock
    # Terraform installs the mirror's provider against that lock and leaves it as it is.
    stack = tmp_path / STACK
    shutil.copytree(outdir / "stacks" / STACK, stack)
    init = terraform(["init", "-backend=false", "-input=false", "-no-color"], stack, cli_config_env())
    assert init.ok, init.stdout + init.stderr
    assert (stack / LOCK_FILE).read_text() == locks[STACK]


# ---------------------------------------------------------------------------------------
# diff / deploy / destroy on the emulator, as a cdktf user runs them
# ---------------------------------------------------------------------------------------


def in_emulator_shell(emulator_dir: Path, command: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``eval "$(make -s emulator-env)"`` in a fresh bash, then ``command``."""
    script = f'set -e\neval "$(make -s emulator-env EMULATOR_DIR={shlex.quote(str(emulator_dir))})"\n{command}\n'
    return subprocess.run(["bash", "-c", script], cwd=PROJECT_ROOT, env=user_env(), capture_output=True, text=True,
                          timeout=timeout)


def test_emulator_env_with_bad_settings_names_the_users_file_and_starts_nothing(tmp_path):
    bad = tmp_path / "my-settings.toml"
    bad.write_text('[project]\nregion = 5\n\n[predictive-lambda-scaling]\nno_such_field = 1\n')
    emulator_dir = tmp_path / "emulator"
    try:
        run = subprocess.run(["make", "-s", "emulator-env", f"EMULATOR_DIR={emulator_dir}"], cwd=PROJECT_ROOT,
                             env=user_env(SCALING_PATTERNS_SETTINGS=str(bad)), capture_output=True, text=True, timeout=300)
    finally:
        from tooling import emulator as emu

        emu.stop(emulator_dir)  # should there be one (the bug this catches)
    assert run.returncode == 2, run.stderr
    assert run.stdout == "", "nothing for eval to run"
    problems = [line.strip() for line in run.stderr.splitlines() if line.startswith("  ")]
    assert len(problems) == 2, run.stderr
    assert problems[0].startswith(f"{bad}: [project] region:") and "(given 5)" in problems[0]
    assert problems[1].startswith(f"{bad}: [predictive-lambda-scaling] no_such_field:")
    assert "Traceback" not in run.stderr
    assert not emulator_dir.exists(), "no emulator started, nothing written"


@pytest.fixture(scope="module")
def emulator_dir(tmp_path_factory):
    from tooling import emulator as emu

    directory = tmp_path_factory.mktemp("cdktf-cli") / "emulator"
    yield directory
    emu.stop(directory)


@pytest.mark.emulator
def test_emulator_env_prints_only_shell_lines_for_the_emulator(emulator_dir):
    printed = subprocess.run(["make", "-s", "emulator-env", f"EMULATOR_DIR={emulator_dir}"], cwd=PROJECT_ROOT,
                             env=user_env(AWS_PROFILE="someone-real"), capture_output=True, text=True, timeout=300)
    assert printed.returncode == 0, printed.stderr[-3000:]
    lines = printed.stdout.splitlines()
    assert lines and all(re.match(r"(# |unset |export [A-Za-z_][A-Za-z0-9_]*=)", line) for line in lines), lines
    assert any(line.startswith("unset ") and "AWS_PROFILE" in line.split() for line in lines), lines
    run = in_emulator_shell(emulator_dir, 'env | grep -E "^(AWS_|CDKTF_|SCALING_|TF_)" | sort')
    assert run.returncode == 0, run.stderr[-3000:]
    env = dict(line.split("=", 1) for line in run.stdout.splitlines())
    from tooling import emulator as emu

    emulator = emu.load(emulator_dir)
    assert emulator is not None
    assert env["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL_S3"] == emulator.endpoint
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and "AWS_PROFILE" not in env
    assert env["CDKTF_OUTPUT"].startswith(str(emulator_dir.resolve()))
    assert env["SCALING_PATTERNS_SETTINGS"] == str((PROJECT_ROOT / "settings.toml").resolve()), "the user's own file"
    assert env["SCALING_PATTERNS_EMULATOR_WORKSPACE"].startswith(str(emulator_dir.resolve()))
    assert env["TF_CLI_ARGS_init"].startswith("-backend-config=")


@pytest.mark.emulator
def test_npx_cdktf_diff_deploy_destroy_on_the_emulator(emulator_dir):
    """diff synthesizes (as a user's first command does); deploy and destroy reuse that synth
    (``--skip-synth``: the same folder, 2 x ~10 s less) and run init, plan and apply as usual."""
    clean = lambda run: ANSI.sub("", run.stdout + run.stderr)  # noqa: E731
    marker = "=== deploy ==="
    run = in_emulator_shell(emulator_dir, f"npx cdktf diff {STACK}\necho '{marker}'\n"
                                          f"npx cdktf deploy {STACK} --auto-approve --skip-synth")
    diff, _, deploy = clean(run).partition(marker)
    assert run.returncode == 0, clean(run)[-4000:]
    assert re.search(r"Plan: \d+ to add, 0 to change, 0 to destroy", diff), diff[-4000:]
    assert "Could not retrieve providers" not in diff and not EOL.search(diff)
    assert "Apply complete!" in deploy, deploy[-4000:]

    from tooling import emulator as emu

    emulator = emu.load(emulator_dir)
    assert emulator is not None, "the emulator stopped"
    lam = emulator.client("lambda")
    assert lam.get_function(FunctionName="aiscale-pred-inference")["Configuration"]["FunctionName"] == "aiscale-pred-inference"
    assert lam.get_alias(FunctionName="aiscale-pred-inference", Name="live")["Name"] == "live"
    s3 = emulator.client("s3")  # the state is in the emulator's bucket, where deploy-local keeps it
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="scaling-patterns-local-state").get("Contents", [])]
    assert f"scaling-patterns/{STACK}.tfstate" in keys

    destroy = in_emulator_shell(emulator_dir, f"npx cdktf destroy {STACK} --auto-approve --skip-synth")
    assert destroy.returncode == 0, clean(destroy)[-4000:]
    assert "Destroy complete!" in clean(destroy)
    assert "aiscale-pred-inference" not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_alias(FunctionName="aiscale-pred-inference", Name="live")


def test_in_the_emulator_shell_each_synth_copies_the_users_settings_as_they_are_now(tmp_path, monkeypatch):
    """The emulator shell points at the user's own file: an edit after `eval "$(make -s emulator-env)"`
    reaches the next synth (a copy made once would keep planning the old settings)."""
    from scaling_patterns.core.settings import SettingsError
    from tooling.cdktf_cli import emulator_settings_copy

    mine = tmp_path / "mine.toml"
    mine.write_text("[predictive-lambda-scaling]\nmemory_mb = 512\n")
    monkeypatch.setenv("SCALING_PATTERNS_SETTINGS", str(mine))
    workspace = tmp_path / "emulator" / "cdktf"
    import tomllib

    copied = lambda: tomllib.loads(copy.read_text())  # noqa: E731
    copy = emulator_settings_copy(workspace)
    assert copied()["predictive-lambda-scaling"]["memory_mb"] == 512 and copied()["project"]["emulator"] is True

    mine.write_text("[predictive-lambda-scaling]\nmemory_mb = 1024\n")
    assert emulator_settings_copy(workspace) == copy and copied()["predictive-lambda-scaling"]["memory_mb"] == 1024

    mine.write_text("[predictive-lambda-scaling]\nmemory_mb = 1\n")
    with pytest.raises(SettingsError) as caught:
        emulator_settings_copy(workspace)
    assert caught.value.problems[0].startswith(f"{mine}: [predictive-lambda-scaling] memory_mb:")
    assert copied()["predictive-lambda-scaling"]["memory_mb"] == 1024, "a bad file leaves the last copy as it was"
