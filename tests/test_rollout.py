"""`make rollout-check` logic on small inputs (no Terraform): the settings space, the JSON diff,
what a plan says about each setting, the rules and the reviewed list.

The full run (every setting of every stack, planned by Terraform) is tests/test_rollout_check.py.
"""

from __future__ import annotations

import textwrap
from typing import Literal

import pytest
from pydantic import Field

from scaling_patterns.core.settings import Settings
from scaling_patterns.registry import PATTERNS
from tooling.rollout.check import (
    Outcome,
    RolloutError,
    Touch,
    attribute,
    describe,
    load_reviewed,
    modifications,
    touch,
)
from tooling.rollout.space import Change, settings_space

# --- the settings space ----------------------------------------------------------------------


class Inner(Settings):
    size: int = Field(2, ge=1, le=3)


class Demo(Settings):
    enabled: bool = True
    mode: Literal["a", "b"] = "a"
    count: int = Field(10, ge=1, le=10)
    name: str = Field("x", examples=["y"])
    inner: Inner = Field(default_factory=Inner)
    label: str | None = None  # no example: cannot be changed on its own


def test_every_field_is_changed_to_another_valid_value_within_its_bounds():
    space = settings_space([("demo", Demo)])
    changes = {c.setting: (c.before, c.after) for c in space.changes if not c.setting.startswith("project.")}
    assert changes == {"enabled": (True, False), "mode": ("a", "b"), "count": (10, 9), "name": ("x", "y"),
                       "inner.size": (2, 3)}
    assert [(u.setting, u.why) for u in space.unchangeable] == [("label", "no candidate value")]


def test_every_setting_of_every_stack_is_in_the_space():
    """Derived from the classes: a field added tomorrow is checked (or reported) tomorrow."""
    from tooling.rollout.space import _leaves

    space = settings_space([(s.name, s.load_settings_class()) for s in PATTERNS])
    seen = {(c.stack, c.setting.split("[")[0].split(".type")[0]) for c in space.changes}
    seen |= {(u.stack, u.setting.split("[")[0]) for u in space.unchangeable}
    for spec in PATTERNS:
        cls = spec.load_settings_class()
        for path, _, _ in _leaves(cls, cls.model_validate(_baseline_settings(spec.name))):
            assert (spec.name, ".".join(path)) in seen, f"{spec.name}: {'.'.join(path)} is never changed"


def _baseline_settings(stack: str) -> dict:
    from tooling.rollout.space import baseline_settings

    return baseline_settings(stack)


def test_a_union_gives_one_baseline_per_member():
    space = settings_space([(s.name, s.load_settings_class()) for s in PATTERNS if s.name == "queue-to-sagemaker"])
    assert {b.id for b in space.baselines} == {"default", "endpoint=existing", "results=s3"}
    existing = [c.setting for c in space.changes if c.baseline == "endpoint=existing"]
    assert existing == ["endpoint.name", "endpoint.variant_name"]  # only that member's fields are walked there


def test_a_change_that_needs_another_gets_it_as_a_recorded_companion():
    space = settings_space([(s.name, s.load_settings_class()) for s in PATTERNS if s.name == "llm-request-scaling"])
    bus = next(c for c in space.changes if c.setting == "create_event_bus" and c.baseline == "default")
    assert bus.companions == ("event_bus_name",) and bus.settings["create_event_bus"] is True


# --- what a setting touches ------------------------------------------------------------------


def _doc(**resources):
    return {"resource": {t: dict(items) for t, items in resources.items()}}


def test_touch_lists_changed_attribute_paths_and_created_or_removed_resources():
    base = _doc(aws_sqs_queue={"q": {"name": "q", "redrive": {"max": 5}}}, aws_sns_topic={"t": {"name": "t"}})
    variant = _doc(aws_sqs_queue={"q": {"name": "q", "redrive": {"max": 6}}}, aws_kms_key={"k": {}})
    t = touch(base, variant)
    assert t.updated == {"aws_sqs_queue.q": {("redrive", "max")}}
    assert (t.created, t.removed) == ({"aws_kms_key.k"}, {"aws_sns_topic.t"})
    assert touch(base, base).empty


def test_modifications_rebuild_a_change_on_its_baseline():
    base = {"endpoint": {"type": "create", "image_uri": "a"}}
    changed = {"endpoint": {"type": "create", "image_uri": "b"}, "autoscaling": {"max_capacity": 5}}
    assert modifications(base, changed) == [(("autoscaling", "max_capacity"), 5), (("endpoint", "image_uri"), "b")]
    # Switching a union member replaces the whole table.
    assert modifications(base, {"endpoint": {"type": "existing", "name": "e"}}) == [
        (("endpoint",), {"type": "existing", "name": "e"})]


# --- what a plan says about each setting -------------------------------------------------------


def _rc(address, actions, before=None, after=None, unknown=None, replace_paths=None, reason=None):
    rc = {"address": address, "mode": "managed", "type": address.split(".")[0],
          "change": {"actions": actions, "before": before or {}, "after": after or {}, "after_unknown": unknown or {}}}
    if replace_paths is not None:
        rc["change"]["replace_paths"] = replace_paths
    if reason:
        rc["action_reason"] = reason
    return rc


CONFIG = {"resource": {
    "aws_sagemaker_endpoint_configuration": {"config": {"name": "cfg-1", "production_variants": [{"instance_type": "ml.m5.large"}]}},
    "aws_sagemaker_endpoint": {"endpoint": {"name": "ep", "endpoint_config_name": "${aws_sagemaker_endpoint_configuration.config.name}"}},
}}
ORDER = ["aws_sagemaker_endpoint_configuration.config", "aws_sagemaker_endpoint.endpoint"]


def _outcome(setting, touched):
    return Outcome(Change("q2sm", "default", setting, None, None, {}, {}), touched)


def test_a_configuration_replaced_under_the_same_name_leaves_the_endpoint_on_the_old_one():
    """Case 1 of the day-two issue: the plan looks fine and the endpoint never changes."""
    plan = {"resource_changes": [
        _rc("aws_sagemaker_endpoint_configuration.config", ["delete", "create"], replace_paths=[["production_variants"]]),
        _rc("aws_sagemaker_endpoint.endpoint", ["no-op"])]}
    outcome = _outcome("endpoint.instance_type", Touch(updated={"aws_sagemaker_endpoint_configuration.config":
                                                                 {("production_variants", "instance_type")}}))
    attribute(outcome, plan, CONFIG, ORDER)
    verdicts = [v for v, _ in outcome.findings]
    assert verdicts == ["destroy-first", "consumer-unchanged"]
    assert "aws_sagemaker_endpoint.endpoint" in outcome.findings[1][1]


def test_a_configuration_replaced_first_under_a_new_name_rolls_the_endpoint_blue_green():
    plan = {"resource_changes": [
        _rc("aws_sagemaker_endpoint_configuration.config", ["create", "delete"], replace_paths=[["name"]]),
        _rc("aws_sagemaker_endpoint.endpoint", ["update"], {"endpoint_config_name": "cfg-1"}, {"endpoint_config_name": "cfg-2"})]}
    outcome = _outcome("endpoint.image_uri", Touch(updated={"aws_sagemaker_endpoint_configuration.config": {("name",)}}))
    attribute(outcome, plan, CONFIG, ORDER)
    assert outcome.findings == []
    assert [(e.address, e.action, e.follows) for e in outcome.effects] == [
        ("aws_sagemaker_endpoint_configuration.config", "replace-cbd", False),
        ("aws_sagemaker_endpoint.endpoint", "update", True)]
    assert outcome.level == "rolling"
    assert describe(outcome).startswith("replaced create-before-destroy: `aws_sagemaker_endpoint_configuration`; "
                                        "updated in place: `aws_sagemaker_endpoint`; SageMaker updates the endpoint blue/green")


ROLES = {"resource": {
    "aws_iam_role": {"role": {"name": "app-role", "path": "/"}},
    "aws_lambda_function": {"fn": {"function_name": "app", "role": "${aws_iam_role.role.arn}"}},
}}


def test_a_create_before_destroy_replacement_under_the_same_name_is_a_collision():
    """IAM role names are unique in the account whatever the path: a new role under the same
    name cannot exist beside the old one, though the plan says create-then-delete."""
    plan = {"resource_changes": [
        _rc("aws_iam_role.role", ["create", "delete"], {"name": "app-role", "path": "/"}, {"name": "app-role", "path": "/w/"},
            replace_paths=[["path"]]),
        _rc("aws_lambda_function.fn", ["update"], {"role": "arn:aws:iam::1:role/app-role"}, {}, {"role": True})]}
    outcome = _outcome("project.iam.role_path", Touch(updated={"aws_iam_role.role": {("path",)}}))
    attribute(outcome, plan, ROLES, ["aws_iam_role.role", "aws_lambda_function.fn"])
    assert [v for v, _ in outcome.findings] == ["name-collision"]
    assert "name = 'app-role'" in outcome.findings[0][1]
    renamed = {"resource_changes": [
        _rc("aws_iam_role.role", ["create", "delete"], {"name": "app-role", "path": "/"},
            {"name": "app-role-1a2b3c4d", "path": "/w/"}, replace_paths=[["name"], ["path"]]),
        _rc("aws_lambda_function.fn", ["update"], {"role": "arn:aws:iam::1:role/app-role"}, {}, {"role": True})]}
    outcome = _outcome("project.iam.role_path", Touch(updated={"aws_iam_role.role": {("path",), ("name",)}}))
    attribute(outcome, renamed, ROLES, ["aws_iam_role.role", "aws_lambda_function.fn"])
    assert outcome.findings == []


def test_a_replacement_forced_by_another_setting_of_the_same_plan_is_an_update_for_this_one():
    plan = {"resource_changes": [
        _rc("aws_sagemaker_endpoint_configuration.config", ["create", "delete"], replace_paths=[["name"]]),
        _rc("aws_sagemaker_endpoint.endpoint", ["update"], {"endpoint_config_name": "a"}, {"endpoint_config_name": "b"})]}
    outcome = _outcome("tags", Touch(updated={"aws_sagemaker_endpoint_configuration.config": {("tags", "Team")}}))
    attribute(outcome, plan, CONFIG, ORDER)
    assert [(e.address, e.action) for e in outcome.effects] == [("aws_sagemaker_endpoint_configuration.config", "update")]


def test_a_json_change_terraform_ignores_and_a_setting_that_touches_nothing_are_findings():
    ignored = _outcome("provisioned_concurrency", Touch(updated={"aws_sagemaker_endpoint.endpoint": {("x",)}}))
    attribute(ignored, {"resource_changes": [_rc("aws_sagemaker_endpoint.endpoint", ["no-op"])]}, CONFIG, ORDER)
    assert [v for v, _ in ignored.findings] == ["nothing"]
    dead = _outcome("backend", Touch())
    attribute(dead, {"resource_changes": []}, CONFIG, ORDER)
    assert [v for v, _ in dead.findings] == ["dead"]


# --- the reviewed list ---------------------------------------------------------------------------


def test_reviewed_entries_are_validated(tmp_path):
    bad = tmp_path / "reviewed.yaml"
    bad.write_text(textwrap.dedent("""\
        - stack: nope
          setting: internal
          verdict: maybe
          reason: short
        - {stack: queue-to-sagemaker, setting: x}
        """))
    with pytest.raises(RolloutError) as caught:
        load_reviewed(bad)
    assert caught.value.problems == [
        "reviewed.yaml: entry 1: unknown stack 'nope' (known: " + ", ".join(sorted(s.name for s in PATTERNS)) + ")",
        "reviewed.yaml: entry 1: verdict must be one of replacement, nothing, dead, destroy-first, "
        "consumer-unchanged, name-collision, unchangeable (given 'maybe')",
        "reviewed.yaml: entry 1: reason must say why in at least 20 characters (given 'short')",
        "reviewed.yaml: entry 2: needs exactly stack, setting, verdict, reason (given {'stack': 'queue-to-sagemaker', 'setting': 'x'})",
    ]


def test_a_reviewed_file_that_is_not_yaml_is_one_line(tmp_path):
    bad = tmp_path / "reviewed.yaml"
    bad.write_text("- stack: x\n  reason: a: b\n")
    with pytest.raises(RolloutError) as caught:
        load_reviewed(bad)
    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith("reviewed.yaml: not valid YAML: ")


def test_the_repository_reviewed_list_is_valid():
    entries = load_reviewed()
    assert entries, "rollout-reviewed.yaml is empty"
    assert len({(e.stack, e.setting, e.verdict) for e in entries}) == len(entries), "duplicate entries"
