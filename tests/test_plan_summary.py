"""The plan summarizer on small synthetic plans: edge cases the real plans do not cover."""

from __future__ import annotations

import json

import pytest

from tooling.plan_summary import (
    RESOURCE_NOUNS,
    SCALING_LABELS,
    main,
    redact_plan,
    render_combined,
    render_stack,
    summarize,
)


def rc(address, actions, before=None, after=None, **change):
    type_, name = address.split(".", 1)
    body = {"actions": actions, "before": before, "after": after, "after_unknown": change.pop("after_unknown", {}),
            "before_sensitive": change.pop("before_sensitive", {}), "after_sensitive": change.pop("after_sensitive", {}),
            **change}
    return {"address": address, "mode": "managed", "type": type_, "name": name, "change": body}


def plan(*changes, **extra):
    return {"format_version": "1.2", "resource_changes": list(changes), **extra}


def md(*changes, **extra) -> str:
    return render_stack(summarize(plan(*changes, **extra), "demo"))


def test_no_changes():
    text = md(rc("aws_sqs_queue.q", ["no-op"], {"name": "q"}, {"name": "q"}))
    assert "No changes. The infrastructure matches the configuration." in text
    assert "| address |" not in text and "destroyed" not in text and "Plan:" not in text


def test_empty_plan_of_a_stack_without_resources():
    summary = summarize({"format_version": "1.2"}, "empty")
    assert not summary.has_changes and summary.counts() == "0 to add, 0 to change, 0 to destroy"


def test_delete_only_leads_in_bold_and_counts():
    text = md(rc("aws_sqs_queue.q", ["delete"], {"name": "q", "visibility_timeout_seconds": 30}, None,
                 ), rc("aws_sqs_queue.r", ["delete"], {"name": "r"}, None))
    lines = text.splitlines()
    assert lines[2] == "**2 resources will be destroyed or replaced:**"
    assert lines[3] == "- **destroy `aws_sqs_queue.q`** (aws_sqs_queue)"
    assert lines[4] == "- **destroy `aws_sqs_queue.r`** (aws_sqs_queue)"
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in text
    assert "| `aws_sqs_queue.q` | aws_sqs_queue | **destroy** | removed |" in text


def test_sensitive_values_are_never_printed():
    change = rc("aws_db_instance.db", ["update"],
                {"password": "old-secret", "tags": {"a": "1"}, "endpoint": "x"},
                {"password": "new-secret", "tags": {"a": "1"}, "endpoint": "x"},
                before_sensitive={"password": True}, after_sensitive={"password": True})
    env = rc("aws_lambda_function.f", ["update"],
             {"environment": [{"variables": {"TOKEN": "t1", "MAX_CAPACITY": "2"}}]},
             {"environment": [{"variables": {"TOKEN": "t2", "MAX_CAPACITY": "3"}}]},
             before_sensitive={"environment": [{"variables": {"TOKEN": True}}]},
             after_sensitive={"environment": [{"variables": {"TOKEN": True}}]})
    text = md(change, env)
    assert "secret" not in text and "t1" not in text and "t2" not in text
    assert "`password`: (sensitive) -> (sensitive)" in text
    assert "`environment.0.variables.TOKEN`: (sensitive) -> (sensitive)" in text
    assert "controller's highest capacity: 2 -> 3" in text


def test_unchanged_sensitive_value_is_not_a_change():
    change = rc("aws_db_instance.db", ["update"], {"password": "s", "port": 1}, {"password": "s", "port": 2},
                before_sensitive={"password": True}, after_sensitive={"password": True})
    text = md(change)
    assert "password" not in text and "`port`: `1` -> `2`" in text


def test_value_becoming_sensitive_shows_only_the_marker():
    change = rc("aws_ssm_parameter.p", ["update"], {"value": "plain"}, {"value": "hidden"}, after_sensitive={"value": True})
    assert "`value`: `\"plain\"` -> (sensitive)" in md(change)


def test_redact_plan_removes_sensitive_values_everywhere():
    raw = plan(
        rc("aws_db_instance.db", ["update"], {"password": "old-secret", "port": 1}, {"password": "new-secret", "port": 2},
           before_sensitive={"password": True}, after_sensitive={"password": True}),
        planned_values={"root_module": {"resources": [{"address": "aws_db_instance.db", "values": {"password": "new-secret", "port": 2},
                                                       "sensitive_values": {"password": True}}]},
                        "outputs": {"pw": {"sensitive": True, "value": "new-secret"}}},
        prior_state={"values": {"root_module": {"resources": [{"values": {"password": "old-secret"}, "sensitive_values": {"password": True}}]}}},
        output_changes={"pw": {"actions": ["update"], "before": "old-secret", "after": "new-secret",
                               "before_sensitive": True, "after_sensitive": True}},
    )
    redacted = json.dumps(redact_plan(raw))
    assert "secret" not in redacted
    assert json.loads(redacted)["resource_changes"][0]["change"]["after"]["port"] == 2
    assert "secret" in json.dumps(raw)  # a copy; the input is untouched


def test_unknown_values_and_forced_replacement():
    change = rc("aws_lambda_permission.p", ["delete", "create"], {"source_arn": "arn:old", "statement_id": "s"},
                {"source_arn": None, "statement_id": "s"}, after_unknown={"source_arn": True},
                replace_paths=[["source_arn"]])
    change["action_reason"] = "replace_because_cannot_update"
    text = md(change)
    assert "- **replace `aws_lambda_permission.p`** (aws_lambda_permission) because `source_arn` changes" in text
    assert "`source_arn`: `\"arn:old\"` -> (known after apply) **(forces replacement)**" in text
    assert "Plan: 1 to add, 0 to change, 1 to destroy." in text
    assert "| **replace (destroy, then create)** |" in text


def test_create_before_destroy_and_moves():
    replace = rc("aws_launch_template.lt", ["create", "delete"], {"instance_type": "g5.xlarge"}, {"instance_type": "g5.2xlarge"})
    moved = rc("aws_sqs_queue.new_name", ["no-op"], {"name": "q"}, {"name": "q"})
    moved["previous_address"] = "aws_sqs_queue.old_name"
    text = md(replace, moved)
    assert "| **replace (create, then destroy)** |" in text
    assert "moved from `aws_sqs_queue.old_name`" in text
    assert "launch template `aws_launch_template.lt`: instance type: g5.xlarge -> g5.2xlarge" in text


def test_null_empty_and_absent_are_not_differences():
    change = rc("aws_sqs_queue.q", ["update"], {"tags": None, "policy": "", "layers": None, "delay_seconds": 0},
                {"tags": {}, "policy": None, "layers": [], "delay_seconds": 5})
    text = md(change)
    assert "tags" not in text and "policy" not in text and "layers" not in text
    assert "`delay_seconds`: `0` -> `5`" in text


def test_json_documents_are_compared_as_json():
    before = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:a"}]})
    after = json.dumps({"Statement": [{"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": "arn:b"}], "Version": "2012-10-17"})
    text = md(rc("aws_iam_role_policy.p", ["update"], {"policy": before}, {"policy": after}))
    assert '`policy.Statement.0.Resource`: `"arn:a"` -> `"arn:b"`' in text
    assert "Version" not in text  # key order alone is no change


def test_pipes_in_values_do_not_break_the_table():
    text = md(rc("aws_cloudwatch_event_rule.r", ["update"], {"description": "a|b"}, {"description": "c|d"}))
    (line,) = [l for l in text.splitlines() if l.startswith("| `aws_cloudwatch_event_rule.r`")]
    assert '`"a\\|b"` -> `"c\\|d"`' in line
    assert line.count(" | ") == 3  # four cells


def test_scaling_settings_of_every_kind_in_plain_words():
    text = md(
        rc("aws_autoscaling_group.workers", ["update"], {"min_size": 1, "max_size": 4, "desired_capacity": 2},
           {"min_size": 1, "max_size": 8, "desired_capacity": 2}),
        rc("aws_cloudwatch_metric_alarm.backlog", ["update"], {"threshold": 100, "evaluation_periods": 2, "period": 60},
           {"threshold": 50, "evaluation_periods": 3, "period": 60}),
        rc("aws_appautoscaling_target.variant", ["update"], {"min_capacity": 1, "max_capacity": 2}, {"min_capacity": 2, "max_capacity": 6}),
        rc("aws_appautoscaling_policy.track", ["update"],
           {"target_tracking_scaling_policy_configuration": [{"target_value": 70, "scale_in_cooldown": 300}]},
           {"target_tracking_scaling_policy_configuration": [{"target_value": 50, "scale_in_cooldown": 600}]}),
        rc("aws_appautoscaling_scheduled_action.morning", ["update"],
           {"schedule": "cron(0 8 * * ? *)", "scalable_target_action": [{"min_capacity": 2, "max_capacity": 4}]},
           {"schedule": "cron(0 7 * * ? *)", "scalable_target_action": [{"min_capacity": 3, "max_capacity": 4}]}),
        rc("aws_lambda_provisioned_concurrency_config.pc", ["update"], {"provisioned_concurrent_executions": 5},
           {"provisioned_concurrent_executions": 10}),
        rc("aws_lambda_event_source_mapping.esm", ["update"], {"batch_size": 10, "scaling_config": [{"maximum_concurrency": 5}]},
           {"batch_size": 20, "scaling_config": [{"maximum_concurrency": 10}]}),
        rc("aws_lambda_function.f", ["update"], {"reserved_concurrent_executions": -1}, {"reserved_concurrent_executions": 20}),
    )
    scaling = text.split("**Scaling settings that change:**", 1)[1]
    for sentence in (
        "Auto Scaling group `aws_autoscaling_group.workers`: maximum instances: 4 -> 8",
        "alarm `aws_cloudwatch_metric_alarm.backlog`: threshold: 100 -> 50",
        "alarm `aws_cloudwatch_metric_alarm.backlog`: evaluation periods: 2 -> 3",
        "scalable target `aws_appautoscaling_target.variant`: minimum capacity: 1 -> 2",
        "scalable target `aws_appautoscaling_target.variant`: maximum capacity: 2 -> 6",
        "scaling policy `aws_appautoscaling_policy.track`: target value: 70 -> 50",
        "scaling policy `aws_appautoscaling_policy.track`: scale-in cooldown (s): 300 -> 600",
        "scheduled action `aws_appautoscaling_scheduled_action.morning`: schedule: cron(0 8 * * ? *) -> cron(0 7 * * ? *)",
        "scheduled action `aws_appautoscaling_scheduled_action.morning`: scheduled minimum capacity: 2 -> 3",
        "provisioned concurrency `aws_lambda_provisioned_concurrency_config.pc`: provisioned concurrency: 5 -> 10",
        "event source mapping `aws_lambda_event_source_mapping.esm`: batch size: 10 -> 20",
        "event source mapping `aws_lambda_event_source_mapping.esm`: maximum concurrent invocations: 5 -> 10",
        "Lambda function `aws_lambda_function.f`: reserved concurrency (-1 = none): -1 -> 20",
    ):
        assert f"- {sentence}\n" in scaling, sentence
    assert "desired instances" not in scaling and "period (s)" not in scaling  # unchanged
    assert "scheduled maximum capacity" not in scaling


def test_repeated_blocks_are_numbered_and_new_and_removed_resources_show_their_settings():
    steps = lambda *adj: [{"scaling_adjustment": a, "metric_interval_lower_bound": str(i * 10)} for i, a in enumerate(adj)]  # noqa: E731
    text = md(
        rc("aws_autoscaling_policy.steps", ["update"], {"step_adjustment": steps(1, 2)}, {"step_adjustment": steps(1, 3, 5)}),
        rc("aws_cloudwatch_metric_alarm.new", ["create"], None, {"threshold": 10, "alarm_name": "x"}),
        rc("aws_cloudwatch_metric_alarm.old", ["delete"], {"threshold": 20, "alarm_name": "y"}, None),
    )
    assert "scaling policy `aws_autoscaling_policy.steps`: step adjustment #2: 2 -> 3" in text
    assert "scaling policy `aws_autoscaling_policy.steps`: step adjustment #3: (none) -> 5" in text
    assert "scaling policy `aws_autoscaling_policy.steps`: step lower bound #3: (none) -> 20" in text
    assert "alarm `aws_cloudwatch_metric_alarm.new`: threshold: (none) -> 10" in text
    assert "alarm `aws_cloudwatch_metric_alarm.old`: threshold: 20 -> (removed)" in text


def test_data_sources_and_irrelevant_drift_are_left_out():
    read = {"address": "data.aws_caller_identity.me", "mode": "data", "type": "aws_caller_identity", "name": "me",
            "change": {"actions": ["read"], "before": None, "after": {}}}
    drift = rc("aws_sqs_queue.q", ["update"], {"policy": ""}, {"policy": "{}"})
    relevant_drift = rc("aws_autoscaling_group.g", ["update"], {"desired_capacity": 2}, {"desired_capacity": 5})
    summary = summarize(plan(read, resource_drift=[drift, relevant_drift],
                             relevant_attributes=[{"resource": "aws_autoscaling_group.g", "attribute": ["desired_capacity"]}]), "s")
    assert summary.changes == [] and summary.drift == ["aws_autoscaling_group.g"]


def test_combined_summary_puts_every_stacks_destruction_first():
    a = summarize(plan(rc("aws_sqs_queue.q", ["update"], {"delay_seconds": 0}, {"delay_seconds": 1})), "alpha")
    b = summarize(plan(rc("aws_sqs_queue.gone", ["delete"], {"name": "gone"}, None)), "beta")
    c = summarize(plan(), "gamma")
    text = render_combined([a, b, c], note="Planned somewhere.")
    assert text.startswith("# Terraform plan summary\n\nPlanned somewhere.\n\n**1 resource will be destroyed or replaced:**\n"
                           "- stack `beta`: **destroy `aws_sqs_queue.gone`** (aws_sqs_queue)\n")
    assert "Plan: 0 to add, 1 to change, 1 to destroy in 3 stacks." in text
    assert "| alpha | 0 | 1 | 0 | 0 |" in text and "| gamma | 0 | 0 | 0 | 0 |" in text
    assert text.index("## alpha") < text.index("## beta") < text.index("## gamma")


def test_nothing_destroyed_is_said_plainly():
    text = render_combined([summarize(plan(rc("aws_sqs_queue.q", ["create"], None, {"name": "q"})), "alpha")])
    assert "Nothing is destroyed or replaced." in text and "**" not in text.split("## alpha")[0]


def test_every_scaling_label_names_a_known_resource_type_and_paths_are_unique():
    keys = [(label.type, label.path) for label in SCALING_LABELS]
    assert len(keys) == len(set(keys))
    assert {label.type for label in SCALING_LABELS} <= set(RESOURCE_NOUNS)


def test_command_line_writes_per_stack_files_and_summary(tmp_path, capsys):
    path = tmp_path / "alpha.json"
    path.write_text(json.dumps(plan(rc("aws_sqs_queue.q", ["create"], None, {"name": "q"}))))
    assert main([str(path), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "alpha.md").read_text().startswith("# alpha\n")
    assert "| alpha | 1 | 0 | 0 | 0 |" in (tmp_path / "out" / "summary.md").read_text()


@pytest.mark.parametrize("actions, word", [(["create"], "create"), (["update"], "update"), (["forget"], "forget")])
def test_action_words(actions, word):
    assert f"| {word}" in md(rc("aws_sqs_queue.q", actions, {"name": "a"} if actions != ["create"] else None,
                                {"name": "b"} if actions != ["forget"] else None))


# --- what running resources will do (tooling/runtime_effects.py) --------------------------


def _group(version_after, refresh):
    after = {"launch_template": [{"id": "lt-1", "version": version_after}],
             "instance_refresh": [{"strategy": "Rolling", "preferences": [{"min_healthy_percentage": 100,
                                                                           "max_healthy_percentage": 200}]}] if refresh else []}
    return rc("aws_autoscaling_group.workers", ["update"], {"launch_template": [{"id": "lt-1", "version": "3"}],
                                                              "instance_refresh": after["instance_refresh"]},
              after, after_unknown={"launch_template": [{"version": version_after is None}]})


def test_a_launch_template_change_says_the_instance_refresh_replaces_running_instances():
    text = md(_group(None, refresh=True))
    assert ("- **`aws_autoscaling_group.workers`** (rolling): an instance refresh replaces the running instances "
            "(in service >= 100%, at most 200% of desired capacity)") in text
    assert text.index("What running resources will do") < text.index("Plan:")


def test_without_an_instance_refresh_the_summary_says_running_instances_keep_the_old_template():
    text = md(_group(None, refresh=False))
    assert "- `aws_autoscaling_group.workers` (none): running instances keep the old launch template" in text


def test_a_group_update_that_leaves_the_launch_template_alone_says_nothing_about_instances():
    change = rc("aws_autoscaling_group.workers", ["update"], {"max_size": 4, "launch_template": [{"version": "3"}]},
                {"max_size": 8, "launch_template": [{"version": "3"}]})
    assert "What running resources will do" not in md(change)


def test_an_endpoint_moving_to_a_new_configuration_is_a_blue_green_update():
    change = rc("aws_sagemaker_endpoint.e", ["update"], {"endpoint_config_name": "c-1"}, {"endpoint_config_name": "c-2"})
    text = md(change)
    assert "- **`aws_sagemaker_endpoint.e`** (rolling): SageMaker updates the endpoint blue/green" in text
    combined = render_combined([summarize(plan(change), "q2sm")])
    assert "- stack `q2sm`: **`aws_sagemaker_endpoint.e`** (rolling)" in combined
