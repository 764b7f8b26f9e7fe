"""Stack `predictive-lambda-scaling`: given settings, when synthesized, then the Terraform has ..."""

from __future__ import annotations

import json

import pytest

from app.config import load_config
from scaling_patterns.core.settings import SettingsError
from tests.conftest import load_function

STACK = "predictive-lambda-scaling"
SCHEDULED = "pred-scheduled"
TARGET = "aws_appautoscaling_target"


@pytest.fixture(scope="module")
def default(synth):
    return synth.stack(STACK)


@pytest.fixture(scope="module")
def scheduled(synth):
    return synth.stack(SCHEDULED)


@pytest.fixture(scope="module")
def from_csv(synth):
    return synth.stack("pred-csv")


@pytest.fixture(scope="module")
def emulated(emulator_synth):
    """The default stack as `make deploy-local` builds it (project.emulator = true)."""
    return emulator_synth.stack(STACK)


def settings_problems(section: dict) -> list[str]:
    with pytest.raises(SettingsError) as error:
        load_config(data={STACK: section})
    return error.value.problems


# --- function, alias, provisioned concurrency ------------------------------------------


def test_function_is_published_and_the_alias_points_at_the_published_version(default):
    function = default.one("aws_lambda_function")
    assert function["publish"] is True
    assert function["runtime"] == "python3.12"
    alias = default.one("aws_lambda_alias")
    assert alias["name"] == "live"
    assert alias["function_name"] == default.ref("aws_lambda_function", "function_name")
    assert alias["function_version"] == default.ref("aws_lambda_function", "version")


def test_provisioned_concurrency_is_on_the_alias_never_latest_and_starts_at_ten(default):
    config = default.one("aws_lambda_provisioned_concurrency_config")
    assert config["qualifier"] == default.ref("aws_lambda_alias", "name")
    assert config["function_name"] == default.ref("aws_lambda_function", "function_name")
    assert config["provisioned_concurrent_executions"] == 10


def test_terraform_leaves_autoscaled_provisioned_concurrency_alone(default):
    config = default.one("aws_lambda_provisioned_concurrency_config")
    assert config["lifecycle"] == {"ignore_changes": ["provisioned_concurrent_executions"]}


def test_scalable_target_is_the_alias_provisioned_concurrency_within_settings_bounds(default):
    target = default.one(TARGET)
    assert target["service_namespace"] == "lambda"
    assert target["scalable_dimension"] == "lambda:function:ProvisionedConcurrency"
    assert target["resource_id"] == (f"function:{default.ref('aws_lambda_function', 'function_name')}:"
                                     f"{default.ref('aws_lambda_alias', 'name')}")
    assert (target["min_capacity"], target["max_capacity"]) == (10, 100)
    assert default.address("aws_lambda_provisioned_concurrency_config") in target["depends_on"]


def test_without_a_schedule_terraform_owns_the_minimum(default):
    assert "lifecycle" not in default.one(TARGET)
    assert not default.resources("aws_appautoscaling_scheduled_action")


def test_target_tracking_on_provisioned_concurrency_utilization(default):
    policy = default.one("aws_appautoscaling_policy")
    assert policy["policy_type"] == "TargetTrackingScaling"
    assert policy["resource_id"] == default.ref(TARGET, "resource_id")
    tracking = policy["target_tracking_scaling_policy_configuration"]
    assert tracking["predefined_metric_specification"]["predefined_metric_type"] == "LambdaProvisionedConcurrencyUtilization"
    assert tracking["target_value"] == 0.7
    assert (tracking["scale_in_cooldown"], tracking["scale_out_cooldown"]) == (300, 60)


def test_spillover_alarm_watches_the_alias_without_notifications_by_default(default):
    alarm = default.one("aws_cloudwatch_metric_alarm")
    assert (alarm["namespace"], alarm["metric_name"]) == ("AWS/Lambda", "ProvisionedConcurrencySpilloverInvocations")
    function_name = default.ref("aws_lambda_function", "function_name")
    assert alarm["dimensions"] == {"FunctionName": function_name,
                                   "Resource": f"{function_name}:{default.ref('aws_lambda_alias', 'name')}"}
    assert (alarm["statistic"], alarm["comparison_operator"], alarm["threshold"]) == ("Sum", "GreaterThanThreshold", 0)
    assert alarm["treat_missing_data"] == "notBreaching"
    assert "alarm_actions" not in alarm
    assert not default.resources("aws_sns_topic")


def test_default_has_no_scaling_plan_and_plans_without_an_aws_account(default):
    assert not default.resources("aws_autoscalingplans_scaling_plan")
    assert not default.doc.get("data")


def test_function_may_only_write_its_own_logs_and_traces(default):
    policy = json.loads(default.one("aws_iam_role_policy")["policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["WriteOwnLogs", "WriteTraces"]


def test_outputs_are_the_reference_exports_and_the_scalable_target(default):
    outputs = default.outputs
    assert outputs["lambda_function_arn"]["value"] == default.ref("aws_lambda_function", "arn")
    assert outputs["lambda_alias_arn"]["value"] == default.ref("aws_lambda_alias", "arn")
    assert outputs["scalable_target_id"]["value"] == default.ref(TARGET, "id")


def test_emulator_leaves_out_provisioned_concurrency_and_app_autoscaling_only(emulated, default):
    for type_ in ("aws_lambda_provisioned_concurrency_config", TARGET, "aws_appautoscaling_policy"):
        assert not emulated.resources(type_), type_
    assert "scalable_target_id" not in emulated.outputs
    kept = set(default.doc["resource"]) - {"aws_lambda_provisioned_concurrency_config", TARGET, "aws_appautoscaling_policy"}
    assert kept == set(emulated.doc["resource"])


# --- predicted schedule -----------------------------------------------------------------


def test_schedule_becomes_scheduled_actions_in_the_time_zone(scheduled):
    actions = {a["name"]: a for a in scheduled.resources("aws_appautoscaling_scheduled_action").values()}
    # Weekdays 9-12 at 40 and 12-14 at 25 merge; Saturday 23:00 and Sunday 00:00 merge across midnight.
    expected = {
        "aiscale-pred-raise-mon-fri-0840": ("cron(40 8 ? * MON-FRI *)", "40"),
        "aiscale-pred-lower-mon-fri-1400": ("cron(0 14 ? * MON-FRI *)", "5"),
        "aiscale-pred-raise-sat-2240": ("cron(40 22 ? * SAT *)", "30"),
        "aiscale-pred-lower-sun-0100": ("cron(0 1 ? * SUN *)", "5"),
    }
    assert {name: (a["schedule"], a["scalable_target_action"]["min_capacity"]) for name, a in actions.items()} == expected
    for action in actions.values():
        assert action["timezone"] == "Europe/Berlin"
        assert action["resource_id"] == scheduled.ref(TARGET, "resource_id")
        assert "max_capacity" not in action["scalable_target_action"]


def test_scheduled_minimum_is_not_reset_by_later_applies(scheduled):
    target = scheduled.one(TARGET)
    assert target["lifecycle"] == {"ignore_changes": ["min_capacity"]}
    assert (target["min_capacity"], target["max_capacity"]) == (5, 80)


def test_policy_and_scheduled_actions_are_applied_one_at_a_time(scheduled):
    dependencies = {scheduled.address("aws_appautoscaling_policy"): scheduled.one("aws_appautoscaling_policy")["depends_on"]}
    for name, action in scheduled.resources("aws_appautoscaling_scheduled_action").items():
        dependencies[f"aws_appautoscaling_scheduled_action.{name}"] = action["depends_on"]
    # One predecessor each, no two alike, starting at the target: a single chain.
    assert all(len(deps) == 1 for deps in dependencies.values()), dependencies
    predecessors = [deps[0] for deps in dependencies.values()]
    assert len(set(predecessors)) == len(predecessors)
    assert scheduled.address(TARGET) in predecessors
    assert set(predecessors) - {scheduled.address(TARGET)} <= set(dependencies)


def test_csv_profile_is_read_and_scheduled_in_its_time_zone(from_csv):
    actions = {a["name"]: (a["schedule"], a["scalable_target_action"]["min_capacity"])
               for a in from_csv.resources("aws_appautoscaling_scheduled_action").values()}
    # Observed (UTC, EDT = UTC-4): Mon 07-09Z 31/44/38, Tue 07-09Z 29/52.4/35, Sat 20Z 27;
    # lead 30 minutes, no gap merging, baseline 10.
    assert actions == {
        "aiscale-pred-raise-mon-0230": ("cron(30 2 ? * MON *)", "44"),
        "aiscale-pred-raise-tue-0230": ("cron(30 2 ? * TUE *)", "53"),
        "aiscale-pred-lower-mon-tue-0600": ("cron(0 6 ? * MON,TUE *)", "10"),
        "aiscale-pred-raise-sat-1530": ("cron(30 15 ? * SAT *)", "27"),
        "aiscale-pred-lower-sat-1700": ("cron(0 17 ? * SAT *)", "10"),
    }
    assert {a["timezone"] for a in from_csv.resources("aws_appautoscaling_scheduled_action").values()} == {"America/New_York"}


# --- alarm notifications and the scaling plan --------------------------------------------


def test_created_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(scheduled):
    topic = scheduled.one("aws_sns_topic")
    assert topic["kms_master_key_id"] == scheduled.ref("aws_kms_key", "arn")
    key = scheduled.one("aws_kms_key")
    assert key["enable_key_rotation"] is True
    statements = {s["Sid"]: s for s in json.loads(key["policy"])["Statement"]}
    assert statements["CloudWatchAlarmsEncrypt"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(statements["CloudWatchAlarmsEncrypt"]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_alarm_notifies_the_created_topic_which_only_that_alarm_may_publish_to(scheduled):
    alarm = scheduled.one("aws_cloudwatch_metric_alarm")
    assert alarm["alarm_actions"] == alarm["ok_actions"] == [scheduled.ref("aws_sns_topic", "arn")]
    assert alarm["threshold"] == 5
    (statement,) = json.loads(scheduled.one("aws_sns_topic_policy")["policy"])["Statement"]
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": scheduled.ref("aws_cloudwatch_metric_alarm", "arn")}}
    subscription = scheduled.one("aws_sns_topic_subscription")
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "oncall@example.com")
    assert scheduled.outputs["alarm_topic_arn"]["value"] == scheduled.ref("aws_sns_topic", "arn")


def test_existing_topic_is_notified_and_nothing_is_created(from_csv):
    alarm = from_csv.one("aws_cloudwatch_metric_alarm")
    assert alarm["alarm_actions"] == ["arn:aws:sns:us-east-1:123456789012:platform-alerts"]
    assert not from_csv.resources("aws_sns_topic") and not from_csv.resources("aws_kms_key")


def test_scaling_plan_finds_resources_by_tag_and_forecasts_the_auto_scaling_group(scheduled):
    plan = scheduled.one("aws_autoscalingplans_scaling_plan")
    assert plan["application_source"]["tag_filter"] == [{"key": "Application", "values": ["inference"]}]
    group, table = plan["scaling_instruction"]
    assert (group["service_namespace"], group["resource_id"]) == ("autoscaling", "autoScalingGroup/feature-workers")
    assert group["predictive_scaling_mode"] == "ForecastAndScale"
    assert group["predefined_load_metric_specification"] == {"predefined_load_metric_type": "ASGTotalCPUUtilization"}
    assert (group["min_capacity"], group["max_capacity"]) == (2, 8)
    assert (table["service_namespace"], table["resource_id"]) == ("dynamodb", "table/inference-sessions")
    assert table["scalable_dimension"] == "dynamodb:table:WriteCapacityUnits"
    assert table["target_tracking_configuration"][0]["predefined_scaling_metric_specification"] == {
        "predefined_scaling_metric_type": "DynamoDBWriteCapacityUtilization"}
    assert "predictive_scaling_mode" not in table  # scaling plans forecast only Auto Scaling groups


def test_alias_name_follows_settings(scheduled):
    assert scheduled.one("aws_lambda_alias")["name"] == "prod"
    assert scheduled.one("aws_lambda_provisioned_concurrency_config")["provisioned_concurrent_executions"] == 5


# --- settings errors ---------------------------------------------------------------------


@pytest.mark.parametrize("section, expected", [
    ({"schedule": {"timezone": "Europe/Atlantis"}},
     "schedule.timezone: must be an IANA time zone name such as UTC, Europe/Berlin or America/New_York (given 'Europe/Atlantis')"),
    ({"provisioned_concurrency": 200},
     "provisioned_concurrency must be between scaling.min_capacity and scaling.max_capacity (given provisioned_concurrency=200, min_capacity=10, max_capacity=100)"),
    ({"scaling": {"min_capacity": 20, "max_capacity": 5}},
     "scaling: min_capacity must be <= max_capacity (given min_capacity=20, max_capacity=5)"),
    ({"schedule": {"peaks": [{"hours": [9], "concurrency": 500}]}},
     "schedule: the profile's highest peak must be <= scaling.max_capacity (given peak concurrency=500, max_capacity=100)"),
    ({"schedule": {"peaks": [{"hours": list(range(24)), "concurrency": 30}]}},
     "raise the minimum to 30 instead of scheduling it (given scaling.min_capacity=10)"),
    ({"schedule": {"peaks": [{"hours": [25], "concurrency": 30}]}},
     "schedule.peaks[0].hours[0]: Input should be less than or equal to 23 (given 25)"),
    ({"schedule": {"peaks": [{"days": ["someday"], "hours": [9], "concurrency": 30}]}},
     "schedule.peaks[0].days[0]: Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun' (given 'someday')"),
    ({"schedule": {"csv_path": "tests/data/missing.csv"}},
     "schedule: csv_path: file not found"),
    ({"schedule": {"csv_path": "examples/settings/observed-hourly-peaks.csv", "peaks": [{"hours": [9], "concurrency": 30}]}},
     "schedule: set peaks or csv_path, not both (given 1 peaks and csv_path='examples/settings/observed-hourly-peaks.csv')"),
    ({"spillover_alarm": {"create_topic": True, "topic_arn": "arn:aws:sns:us-east-1:123456789012:x"}},
     "spillover_alarm: set create_topic or topic_arn, not both"),
    ({"spillover_alarm": {"email_subscriptions": ["a@example.com"]}},
     "spillover_alarm: email_subscriptions and topic_kms_key_arn need create_topic = true (given create_topic=false)"),
    ({"scaling_plan": {"tag_key": "App", "tag_values": ["x"], "resources": []}},
     "scaling_plan.resources: List should have at least 1 item after validation, not 0"),
    ({"scaling_plan": {"tag_key": "App", "tag_values": ["x"],
                       "resources": [{"type": "autoscaling_group", "name": "g", "min_capacity": 5, "max_capacity": 2}]}},
     "scaling_plan.resources[0]: min_capacity must be <= max_capacity (given min_capacity=5, max_capacity=2)"),
    ({"alias_name": "123"}, "alias_name: must be 1-128 characters of A-Z a-z 0-9 - _ and not only digits (given '123')"),
])
def test_bad_settings_are_reported_with_the_field_and_value(section, expected):
    problems = settings_problems(section)
    assert any(expected in line for line in problems), problems


def test_csv_errors_name_the_file_line_and_value(tmp_path):
    bad = tmp_path / "peaks.csv"
    bad.write_text("day,hour,concurrency\nmon,9,40\nmon,31,40\n")
    problems = settings_problems({"schedule": {"csv_path": str(bad)}})
    assert any(f"csv_path '{bad}': line 3: hour must be 0-23 (given '31')" in line for line in problems), problems


# --- the inference function ----------------------------------------------------------------


def test_inference_function_scores_vectors_and_rejects_bad_input():
    h = load_function("predictive_inference")
    assert h.predict({"weights": [1.0, 0.0], "bias": 0.0}, [[0.0, 5.0]]) == [0.5]
    body = h.handler({"body": json.dumps({"inputs": [1, 2, 3]})})
    assert len(body["predictions"]) == 1 and body["model_version"] == "demo-1"
    assert h.handler({"inputs": [[1, 2]]})["statusCode"] == 400
    assert h.handler({"body": "not json"})["statusCode"] == 400


# --- documentation --------------------------------------------------------------------------


@pytest.mark.parametrize("document", [f"docs/patterns/{STACK}.md"])
def test_documented_example_profile_produces_the_documented_schedule(document):
    import tomllib
    from pathlib import Path

    from scaling_patterns.core.settings import validate_section
    from scaling_patterns.patterns.predictive_lambda_scaling.schedule import render_table
    from scaling_patterns.patterns.predictive_lambda_scaling.settings import PredictiveLambdaScalingSettings

    doc = (Path(__file__).resolve().parent.parent / document).read_text()
    example = doc.split("### Example: a profile and the schedule it produces", 1)[1]
    settings_toml = example.split("```toml", 1)[1].split("```", 1)[0]
    settings = validate_section(STACK, PredictiveLambdaScalingSettings, tomllib.loads(settings_toml)[STACK])
    assert render_table(settings.scheduled_changes, settings.schedule.timezone) in example
