"""`make plan` on real plans: apply a stack on the local emulator, change settings, plan again.

The base deployment (custom event bus ``inference``) is applied exactly as ``make deploy-local``
does (emulator, S3 backend on it, ``project.emulator = true``); then ``tooling.plan`` (what
``make plan`` runs) plans the changed settings against that state. The changes:

* the rule moves back to the default bus: the bus is destroyed, and the rule, its target and
  the invoke permission (whose source ARN changes) are replaced;
* ``max_retry_attempts`` 2 -> 5, ``memory_mb`` 256 -> 512, ``scaling.max_capacity`` 4 -> 8:
  updates, the last one a scaling setting in plain words (of the scaler, which exists with a
  ``scaling_target``; its schedule rule is on the default bus and stays).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.emulator

STACK = "llm-request-scaling"
TARGET = {"type": "autoscaling_group", "name": "llm-workers"}
BASE = {"event_bus_name": "inference", "create_event_bus": True, "scaling_target": TARGET}
CHANGED = {"max_retry_attempts": 5, "memory_mb": 512, "scaling": {"max_capacity": 8}, "scaling_target": TARGET}


def _settings_file(path: Path, section: dict) -> Path:
    from tooling.deploy_local import to_toml

    path.write_text(to_toml({STACK: section}))
    return path


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    from app.config import load_config
    from app.synth import StackRequest, synthesize
    from scaling_patterns.registry import PATTERNS
    from tooling import deploy_local as local
    from tooling import emulator as emu
    from tooling import plan
    from tooling.terraform import terraform

    tmp = tmp_path_factory.mktemp("plan-review")
    emulator_dir = tmp / "emulator"
    emulator, _ = emu.start(emulator_dir)
    try:
        # 1. The base settings, applied like `make deploy-local` (one stack, synthesized in-process).
        ws = local.Workspace(emulator_dir / "base")
        data = local.write_settings(ws, _settings_file(tmp / "base.toml", BASE))
        local.ensure_state_bucket(emulator, local.project_region(data))
        local.write_backend_config(ws, emulator)
        config = load_config(ws.settings)
        spec = next(s for s in PATTERNS if s.name == STACK)
        synthesize(config.project, [StackRequest(spec, STACK, config.stacks[STACK])], ws.outdir)
        assert local.init_stack(ws, emulator, STACK).ok
        applied = terraform(["apply", "-auto-approve", "-input=false", "-no-color"], ws.stack_dir(STACK),
                            local.terraform_env(emulator), timeout=900)
        assert applied.ok, applied.stdout[-3000:] + applied.stderr

        # 2. `make plan` with the changed settings, against that state.
        out = tmp / "plans"
        code = plan.main(["--target", "emulator", "--stack", STACK, "--out", str(out),
                          "--settings", str(_settings_file(tmp / "changed.toml", CHANGED)),
                          "--emulator-dir", str(emulator_dir)])
        assert code == 0, (out / "summary.md").read_text() if (out / "summary.md").exists() else "no summary"
        yield out
    finally:
        emu.stop(emulator_dir)


@pytest.fixture(scope="module")
def stack_md(planned) -> str:
    return (planned / f"{STACK}.md").read_text()


@pytest.fixture(scope="module")
def summary_md(planned) -> str:
    return (planned / "summary.md").read_text()


def row(markdown: str, address_prefix: str) -> str:
    rows = [line for line in markdown.splitlines() if line.startswith(f"| `{address_prefix}")]
    assert len(rows) == 1, f"expected one table row for {address_prefix}, found {rows}"
    return rows[0]


def test_destroyed_and_replaced_resources_lead_in_bold(stack_md):
    lead = stack_md.split("Plan:", 1)[0]
    assert "**4 resources will be destroyed or replaced on AWS:**" in lead  # the plan has emulator gaps: AWS counts
    assert re.search(r"- \*\*destroy `aws_cloudwatch_event_bus\.llm_request_scaling_event_bus_\w+`\*\* .*no longer in the configuration", lead)
    assert re.search(r"- \*\*replace `aws_cloudwatch_event_rule\.llm_request_scaling_rule_\w+`\*\* .*because `event_bus_name` changes", lead)
    assert re.search(r"- \*\*replace `aws_cloudwatch_event_target\.llm_request_scaling_target_\w+`\*\*", lead)
    # The permission's statement id names the bus, so the new one is created before the old goes.
    assert re.search(r"- \*\*replace `aws_lambda_permission\.llm_request_scaling_allow_eventbridge_\w+`\*\* .*because `source_arn`, `statement_id` change", lead)
    assert "aws_lambda_function." not in lead  # updated in place: not in the warning


def test_counts_follow_the_warning_and_precede_the_table(stack_md):
    assert "\nPlan: 3 to add, 3 to change, 4 to destroy on AWS.\n" in stack_md
    assert stack_md.index("will be destroyed or replaced") < stack_md.index("Plan: 3 to add") < stack_md.index("| address |")


def test_table_shows_each_changed_attribute_old_to_new(stack_md):
    function = row(stack_md, "aws_lambda_function.llm_request_scaling_controller_function_")
    assert "| aws_lambda_function | update |" in function
    assert '`memory_size`: `256` -> `512`' in function
    scaler = row(stack_md, "aws_lambda_function.llm_request_scaling_scaler_function_")
    assert '`environment.0.variables.MAX_CAPACITY`: `"4"` -> `"8"`' in scaler
    assert '`environment.0.variables.EVENT_BUS_NAME`: `"inference"` -> (none)' in scaler  # MatchedEvents of a default-bus rule
    target = row(stack_md, "aws_cloudwatch_event_target.")
    assert "| **replace (create, then destroy)** |" in target  # no event dropped while the rule moves
    assert '`event_bus_name`: `"inference"` -> `"default"` **(forces replacement)**' in target
    assert "`retry_policy.0.maximum_retry_attempts`: `2` -> `5`" in target
    permission = row(stack_md, "aws_lambda_permission.")
    assert "`source_arn`: `\"arn:aws:events:us-east-1:123456789012:rule/inference/" in permission
    assert "-> (known after apply) **(forces replacement)**" in permission
    assert "| **destroy** |" in row(stack_md, "aws_cloudwatch_event_bus.")
    # destroyed and replaced rows come first, updates after
    assert stack_md.index("aws_cloudwatch_event_bus.") < stack_md.index("| `aws_lambda_function.")


def test_unchanged_resources_are_not_listed(stack_md):
    assert "| `aws_iam_role." not in stack_md
    assert "| `aws_cloudwatch_log_group." not in stack_md


def test_scaling_settings_in_plain_words(stack_md):
    scaling = stack_md.split("**Scaling settings that change:**", 1)[1]
    assert re.search(r"- Lambda function `aws_lambda_function\.llm_request_scaling_scaler_function_\w+`: "
                     r"controller's highest capacity: 4 -> 8\n", scaling)
    assert "memory" not in scaling  # memory is not a scaling setting


def test_combined_summary_leads_with_destruction_across_stacks(summary_md, stack_md):
    head = summary_md.split("| stack |", 1)[0]
    assert "Planned on the local emulator" in head and f"`{STACK}`" in head  # deployed stack named
    assert re.search(rf"- stack `{STACK}`: \*\*destroy `aws_cloudwatch_event_bus\.", head)
    assert "Plan: 3 to add, 3 to change, 4 to destroy in 1 stack on AWS." in head
    assert f"| {STACK} | 3 | 3 | 4 | 1 | 0 |" in summary_md  # no change is only an emulator gap
    own_section = stack_md.split("\n", 1)[1].split("\n## Emulator gaps")[0]  # gaps are listed once, at the end
    assert own_section in summary_md  # the stack's own section follows


def test_plan_json_and_manifest_are_saved(planned):
    plan = json.loads((planned / f"{STACK}.json").read_text())
    assert {rc["change"]["actions"][0] for rc in plan["resource_changes"]} >= {"delete", "update", "no-op"}
    manifest = json.loads((planned / "manifest.json").read_text())
    assert manifest["target"] == "emulator"
    assert manifest["stacks"][0]["stack"] == STACK and manifest["stacks"][0]["changes"] is True
    assert (planned / f"{STACK}.tfplan").is_file()
