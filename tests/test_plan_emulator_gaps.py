"""Emulator plans name the differences moto causes, after the change itself (tooling/plan.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tooling.plan import StackPlan, note_emulator_gaps, write_combined
from tooling.plan_summary import render_stack, summarize

FUNCTION = "aws_lambda_function.controller_function_130CB322"
RULE = "aws_cloudwatch_event_rule.rule_13A68FB9"

#: One real change (memory 256 -> 512, a rule replaced) and one emulator gap: moto never
#: returns LoggingConfig, so the provider plans to set it again.
PLAN = {
    "format_version": "1.2",
    "resource_changes": [
        {"address": FUNCTION, "type": "aws_lambda_function", "name": "controller_function_130CB322", "mode": "managed",
         "change": {"actions": ["update"],
                    "before": {"memory_size": 256, "logging_config": []},
                    "after": {"memory_size": 512, "logging_config": [{"log_format": "JSON", "log_group": "/aws/lambda/x"}]},
                    "after_unknown": {}, "before_sensitive": {}, "after_sensitive": {}}},
        {"address": RULE, "type": "aws_cloudwatch_event_rule", "name": "rule_13A68FB9", "mode": "managed",
         "change": {"actions": ["delete", "create"],
                    "before": {"event_bus_name": "default"}, "after": {"event_bus_name": "inference"},
                    "after_unknown": {}, "before_sensitive": {}, "after_sensitive": {},
                    "replace_paths": [["event_bus_name"]]}},
    ],
}


def _noted(plan: dict, stack: str, out: Path) -> tuple[StackPlan, str]:
    """``plan`` saved and summarized as `make plan` does on the emulator; (the stack's result, summary.md)."""
    (out / f"{stack}.json").write_text(json.dumps(plan))
    summary = summarize(plan, stack)
    (out / f"{stack}.md").write_text(render_stack(summary, heading="#"))
    result = StackPlan(stack, out, summary)
    assert note_emulator_gaps([result], out) is True
    return result, write_combined([result], out, note="Planned on the emulator.")


def test_emulator_gaps_are_listed_after_the_change_and_the_destroyed_resources(tmp_path):
    result, text = _noted(PLAN, "llm", tmp_path)

    gap = (f"`{FUNCTION}.logging_config`: moto 5.2.5 accepts LoggingConfig on CreateFunction "
           "but never returns it from GetFunction")
    assert result.emulator_gaps == [f"- {gap}"]
    assert text.index(f"**replace `{RULE}`**") < text.index("## Emulator gaps")
    assert text.rstrip().endswith(f"- stack `llm`: {gap}")
    stack_md = (tmp_path / "llm.md").read_text()
    assert stack_md.index("`memory_size`: `256` -> `512`") < stack_md.index("## Emulator gaps")
    assert stack_md.rstrip().endswith(f"- {gap}")


def test_a_plan_without_emulator_gaps_gets_no_gap_section(tmp_path):
    plan = {"format_version": "1.2", "resource_changes": PLAN["resource_changes"][1:]}
    (tmp_path / "llm.json").write_text(json.dumps(plan))
    summary = summarize(plan, "llm")
    (tmp_path / "llm.md").write_text(render_stack(summary, heading="#"))
    result = StackPlan("llm", tmp_path, summary)

    assert note_emulator_gaps([result], tmp_path) is False
    assert "Emulator gaps" not in write_combined([result], tmp_path, note="")
    assert "Emulator gaps" not in (tmp_path / "llm.md").read_text()


def _rc(address, actions, before, after, replace_paths=None):
    type_, name = address.split(".", 1)
    change = {"actions": actions, "before": before, "after": after, "after_unknown": {}, "before_sensitive": {},
              "after_sensitive": {}}
    if replace_paths:
        change["replace_paths"] = replace_paths
    return {"address": address, "type": type_, "name": name, "mode": "managed", "change": change}


GROUP = "aws_autoscaling_group.workers_group_1A2B"
#: Three real destructive changes, two replacements moto causes (it returns an empty VpcConfig and a
#: disabled DataCaptureConfig that were never configured), and a scaling change the user made
#: (max_size 4 -> 8) next to one they did not: moto never returns DefaultInstanceWarmup, so the
#: provider plans 0 -> 300 on every plan.
MIXED = {"format_version": "1.2", "resource_changes": [
    _rc("aws_sqs_queue.jobs", ["delete"], {"name": "jobs"}, None),
    _rc("aws_sqs_queue.dlq", ["delete", "create"], {"name": "a"}, {"name": "b"}, [["name"]]),
    _rc(RULE, ["delete", "create"], {"event_bus_name": "default"}, {"event_bus_name": "inference"}, [["event_bus_name"]]),
    _rc("aws_sagemaker_model.model", ["delete", "create"], {"vpc_config": [{"subnets": [], "security_group_ids": []}]},
        {"vpc_config": []}, [["vpc_config"]]),
    _rc("aws_sagemaker_endpoint_configuration.config", ["delete", "create"],
        {"data_capture_config": [{"enable_capture": False, "initial_sampling_percentage": 0}]}, {"data_capture_config": []},
        [["data_capture_config"]]),
    _rc(GROUP, ["update"], {"max_size": 4, "default_instance_warmup": 0}, {"max_size": 8, "default_instance_warmup": 300}),
]}


@pytest.fixture
def mixed(tmp_path):
    result, combined = _noted(MIXED, "demo", tmp_path)
    return result, (tmp_path / "demo.md").read_text(), combined


def test_the_headline_counts_only_what_would_happen_on_aws_and_names_the_gaps_apart(mixed):
    result, stack_md, _ = mixed
    lines = stack_md.splitlines()
    lead = lines.index("**3 resources will be destroyed or replaced on AWS:**")
    assert [line.split("**")[1] for line in lines[lead + 1:lead + 4]] == [
        "destroy `aws_sqs_queue.jobs`", "replace `aws_cloudwatch_event_rule.rule_13A68FB9`", "replace `aws_sqs_queue.dlq`"]
    assert lines[lead + 4] == ""
    assert lines[lead + 5] == "2 more changes are emulator gaps (listed below), not yours."
    assert "Plan: 2 to add, 1 to change, 3 to destroy on AWS." in lines  # 2 replacements + 1 delete; 1 update
    assert "Emulator gaps (not yours): 2 to add, 0 to change, 2 to destroy." in lines
    assert result.summary.counts() == "2 to add, 1 to change, 3 to destroy"
    # Never hidden: the gap replacements stay in the table, marked, not bold, and in the gap section.
    assert "| `aws_sagemaker_model.model` | aws_sagemaker_model | replace (destroy, then create) (emulator gap) |" in stack_md
    assert "`aws_sagemaker_model.model.vpc_config (forces replacement)`" in stack_md.split("## Emulator gaps")[1]


def test_a_scaling_value_the_emulator_reads_back_differently_is_a_gap_not_a_scaling_change(mixed):
    _, stack_md, _ = mixed
    scaling = stack_md.split("**Scaling settings that change:**")[1].split("\n\n")[0]
    assert "maximum instances: 4 -> 8" in scaling and "warm-up" not in scaling
    gap_part = stack_md.split("only the emulator shows")[1].split("\n\n")[0]
    assert f"`{GROUP}`: instance warm-up (s): 0 -> 300" in gap_part
    assert "`default_instance_warmup`: `0` -> `300` (emulator gap)" in stack_md
    assert "`max_size`: `4` -> `8` (emulator gap)" not in stack_md


def test_the_pr_comment_keeps_the_same_separation(mixed):
    _, _, combined = mixed
    assert "**3 resources will be destroyed or replaced on AWS:**" in combined
    assert "2 more changes are emulator gaps (listed below), not yours." in combined
    assert "**5 resources" not in combined
    assert "Plan: 2 to add, 1 to change, 3 to destroy in 1 stack on AWS." in combined
    assert "| stack | to add | to change | to destroy | scaling settings changed | emulator gaps |" in combined
    assert "| demo | 2 | 1 | 3 | 1 | 2 |" in combined  # the 2 gap replacements
    head = combined.split("## demo")[0]
    assert "sagemaker" not in head.split("Plan:")[0]  # gaps are not in the destroyed list


def test_only_gaps_say_nothing_changes_on_aws(tmp_path):
    plan = {"format_version": "1.2", "resource_changes": MIXED["resource_changes"][3:5]}
    (tmp_path / "demo.json").write_text(json.dumps(plan))
    result = StackPlan("demo", tmp_path, summarize(plan, "demo"))
    note_emulator_gaps([result], tmp_path)
    combined = write_combined([result], tmp_path, note="")
    assert "Nothing is destroyed or replaced on AWS; 2 changes are emulator gaps (listed below), not yours." in combined
    assert "No changes on AWS. The infrastructure matches the configuration." in (tmp_path / "demo.md").read_text()
    assert not result.summary.has_changes


def test_a_recorded_emulator_plan_of_no_change_says_nothing_happens_on_aws(tmp_path):
    """Recorded (Terraform 1.11.4, moto 5.2.5): queue-to-sagemaker planned on the emulator with no change;
    moto's empty VpcConfig and disabled DataCaptureConfig force two replacements on every plan."""
    from pathlib import Path

    plan = json.loads((Path(__file__).parent / "data" / "upgrade-noop-queue-to-sagemaker.plan.json").read_text())
    (tmp_path / "queue-to-sagemaker.json").write_text(json.dumps(plan))
    result = StackPlan("queue-to-sagemaker", tmp_path, summarize(plan, "queue-to-sagemaker"))
    note_emulator_gaps([result], tmp_path)
    combined = write_combined([result], tmp_path, note="")
    gap_changes = len(result.summary.gap_changes)
    assert gap_changes >= 2 and result.summary.destructive == [] and not result.summary.has_changes
    assert (f"Nothing is destroyed or replaced on AWS; {gap_changes} changes are emulator gaps (listed below), not yours."
            in combined)
    assert "will be destroyed or replaced" not in combined
    assert "Plan: 0 to add, 0 to change, 0 to destroy in 1 stack on AWS." in combined
    assert "replace (create, then destroy) (emulator gap)" in combined or "replace (destroy, then create) (emulator gap)" in combined


def test_the_unrequested_scaling_change_on_the_emulator_is_moto_not_returning_the_instance_warm_up(tmp_path):
    """Recorded (Terraform 1.11, moto 5.2.5): queue-depth-scaling applied by `make deploy-local`, then
    `make plan` with the same settings. moto does not return DefaultInstanceWarmup, so every plan sets the
    warm-up 0 -> 120 again: before, the summary listed it under "Scaling settings that change"."""
    from pathlib import Path

    plan = json.loads((Path(__file__).parent / "data" / "emulator-noop-queue-depth-scaling.plan.json").read_text())
    (tmp_path / "queue-depth-scaling.json").write_text(json.dumps(plan))
    result = StackPlan("queue-depth-scaling", tmp_path, summarize(plan, "queue-depth-scaling"))
    assert [s.words for s in result.summary.scaling] == ["instance warm-up (s)"]  # what the summary saw
    note_emulator_gaps([result], tmp_path)
    stack_md = (tmp_path / "queue-depth-scaling.md").read_text()
    assert result.summary.real_scaling == [] and "Scaling settings that change" not in stack_md
    gap_part = stack_md.split("only the emulator shows")[1].split("\n\n")[0]
    assert "instance warm-up (s): 0 -> 120" in gap_part
    assert ".default_instance_warmup`: moto 5.2.5 does not return DefaultInstanceWarmup" in stack_md.split("## Emulator gaps")[1]
    assert "No changes on AWS." in stack_md
    combined = write_combined([result], tmp_path, note="")
    assert "| queue-depth-scaling | 0 | 0 | 0 | 0 | 6 |" in combined


def test_a_launch_template_version_that_follows_from_a_gap_is_not_a_running_instances_effect(tmp_path):
    """Recorded (Terraform 1.11, moto 5.2.5): queue-depth-scaling deployed with defaults, then planned with
    fleet.max_size 4 -> 10 and target_latency_seconds 300 -> 120. The launch template is updated only
    because moto returns its tags as an extra tag specification; the group's launch template version is
    then known only after apply, which read as "running instances keep the old launch template"."""
    from pathlib import Path

    plan = json.loads((Path(__file__).parent / "data" / "emulator-change-queue-depth-scaling.plan.json").read_text())
    (tmp_path / "queue-depth-scaling.json").write_text(json.dumps(plan))
    result = StackPlan("queue-depth-scaling", tmp_path, summarize(plan, "queue-depth-scaling"))
    assert [r[2] for r in result.summary.rollouts] == [
        "running instances keep the old launch template; only instances launched from now on get it"]
    note_emulator_gaps([result], tmp_path)
    stack_md = (tmp_path / "queue-depth-scaling.md").read_text()
    assert "What running resources will do" not in stack_md
    gap_part = stack_md.split("only the emulator shows")[1].split("\n\n")[0]
    assert "running instances keep the old launch template" in gap_part
    assert "instance warm-up (s): 0 -> 120" in gap_part
    scaling = stack_md.split("**Scaling settings that change:**")[1].split("\n\n")[0]
    assert "maximum instances: 4 -> 10" in scaling and "target value: 10 -> 4" in scaling and "warm-up" not in scaling
    assert "Plan: 0 to add, 2 to change, 0 to destroy on AWS." in stack_md  # the group and the policy
    assert "`launch_template.0.version`: `\"1\"` -> (known after apply) (emulator gap)" in stack_md
