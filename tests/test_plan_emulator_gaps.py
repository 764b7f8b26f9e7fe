"""Emulator plans name the differences moto causes, after the change itself (tooling/plan.py)."""

from __future__ import annotations

import json

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


def test_emulator_gaps_are_listed_after_the_change_and_the_destroyed_resources(tmp_path):
    (tmp_path / "llm.json").write_text(json.dumps(PLAN))
    summary = summarize(PLAN, "llm")
    (tmp_path / "llm.md").write_text(render_stack(summary, heading="#"))
    result = StackPlan("llm", tmp_path, summary)

    assert note_emulator_gaps([result], tmp_path) is True
    text = write_combined([result], tmp_path, note="Planned on the emulator.")

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
