"""Stack `llm-request-scaling`: given settings, when synthesized, then the Terraform has ...

Two paths: the request function (``<prefix>-llm-controller``, target of the inference-request
rule, records metrics as EMF, no AWS permission beyond its logs and DLQ) and, only with a
``scaling_target``, the scaler (``<prefix>-llm-scaler``, run once a minute by a schedule rule,
the only principal that may change the target).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.config import load_config
from scaling_patterns.core.settings import SettingsError
from tests.conftest import load_function, named, ref

STACK = "llm-request-scaling"
REQUEST_FUNCTION = "aiscale-llm-controller"
SCALER = "aiscale-llm-scaler"
h = load_function("scaling_controller")


@pytest.fixture(scope="module")
def default(synth):
    return synth.stack(STACK)


@pytest.fixture(scope="module")
def asg(synth):
    return synth.stack("llm-asg-target")


@pytest.fixture(scope="module")
def sagemaker(synth):
    return synth.stack("llm-sagemaker-target")


@pytest.fixture(scope="module")
def reserved(synth):
    return synth.stack("llm-existing-bus-reserved")


def function(stack, function_name):
    """(address, body) of the Lambda function named ``function_name``."""
    return named(stack, "aws_lambda_function", function_name, key="function_name")


def statements(stack, function_name=REQUEST_FUNCTION):
    """The function's role policy statements by Sid."""
    _, body = function(stack, function_name)
    role = body["role"].removeprefix("${aws_iam_role.").removesuffix(".arn}")
    (policy,) = [p for p in stack.resources("aws_iam_role_policy").values() if p["role"] == ref(f"aws_iam_role.{role}", "id")]
    return {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}


def actions(statement):
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def schedule_rule(stack):
    return named(stack, "aws_cloudwatch_event_rule", "aiscale-llm-scaling-schedule")


def rule_address(stack):
    return named(stack, "aws_cloudwatch_event_rule", "aiscale-llm-inference-requests")[0]


def targets_of(stack, rule_address_):
    return [t for t in stack.resources("aws_cloudwatch_event_target").values() if t["rule"] == ref(rule_address_, "name")]


def invoke_config(stack, function_address):
    (config,) = [c for c in stack.resources("aws_lambda_function_event_invoke_config").values()
                 if c["function_name"] == ref(function_address, "function_name")]
    return config


def permission(stack, function_address):
    (found,) = [p for p in stack.resources("aws_lambda_permission").values()
                if p["function_name"] == ref(function_address, "function_name")]
    return found


# --- the request path (every deployment) --------------------------------------------------


def test_rule_matches_the_reference_event_pattern_by_default(default):
    rule = default.one("aws_cloudwatch_event_rule")
    assert json.loads(rule["event_pattern"]) == {"source": ["my.llm.service"], "detail-type": ["Inference Request"]}
    assert "event_bus_name" not in rule  # the account's default bus


def test_rule_targets_the_request_function(default):
    target = default.one("aws_cloudwatch_event_target")
    assert target["rule"] == default.ref("aws_cloudwatch_event_rule", "name")
    assert target["arn"] == default.ref("aws_lambda_function", "arn")
    assert default.one("aws_lambda_function")["handler"] == "handler.handler"


def test_target_retries_then_dead_letters_to_an_encrypted_queue(default):
    target = default.one("aws_cloudwatch_event_target")
    assert target["retry_policy"] == {"maximum_retry_attempts": 2, "maximum_event_age_in_seconds": 3600}
    assert target["dead_letter_config"]["arn"] == default.ref("aws_sqs_queue", "arn")
    assert default.one("aws_sqs_queue")["sqs_managed_sse_enabled"] is True


def test_dead_letter_queue_accepts_only_this_rule(default):
    policy = json.loads(default.one("aws_sqs_queue_policy")["policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == default.ref("aws_sqs_queue", "arn")
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": default.ref("aws_cloudwatch_event_rule", "arn")}}


def test_invoke_permission_is_scoped_to_the_rule_arn(default):
    permission_ = default.one("aws_lambda_permission")
    assert permission_["action"] == "lambda:InvokeFunction"
    assert permission_["principal"] == "events.amazonaws.com"
    assert permission_["source_arn"] == default.ref("aws_cloudwatch_event_rule", "arn")
    assert permission_["function_name"] == default.ref("aws_lambda_function", "function_name")


def test_failed_async_invocations_of_requests_are_retried_then_reach_the_dead_letter_queue(default):
    config = default.one("aws_lambda_function_event_invoke_config")
    assert config["maximum_retry_attempts"] == 2
    assert config["destination_config"]["on_failure"]["destination"] == default.ref("aws_sqs_queue", "arn")
    assert statements(default)["FailedInvocationsToDeadLetterQueue"]["Resource"] == default.ref("aws_sqs_queue", "arn")


def test_request_function_runs_a_supported_python_with_json_logs_and_retention(default):
    function_ = default.one("aws_lambda_function")
    assert function_["runtime"] == "python3.12"
    assert function_["logging_config"]["log_format"] == "JSON"  # EMF lines are printed, so they pass through as is
    log_group = default.one("aws_cloudwatch_log_group")
    assert log_group["name"] == f"/aws/lambda/{REQUEST_FUNCTION}"
    assert log_group["retention_in_days"] == 30
    assert default.address("aws_cloudwatch_log_group") in function_["depends_on"]


def test_function_code_is_a_hashed_asset(default):
    function_ = default.one("aws_lambda_function")
    assert function_["filename"].startswith("assets/") and function_["filename"].endswith(".zip")
    assert function_["source_code_hash"] in function_["filename"]  # content hash names the asset folder
    assert (default.dir / function_["filename"]).is_file()


def test_packaged_code_is_the_handler_without_bytecode(default):
    import zipfile

    function_ = default.one("aws_lambda_function")
    names = zipfile.ZipFile(default.dir / function_["filename"]).namelist()
    assert "handler.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_request_function_may_write_only_its_logs_traces_and_dead_letters(default):
    # EMF goes through the function's own log group: no CloudWatch permission, no API call per request.
    assert set(statements(default)) == {"WriteOwnLogs", "WriteTraces", "FailedInvocationsToDeadLetterQueue"}
    assert statements(default)["WriteOwnLogs"]["Resource"] == default.ref("aws_cloudwatch_log_group", "arn") + ":*"


def test_request_function_environment_is_only_the_metric_namespace(default, asg):
    assert default.one("aws_lambda_function")["environment"]["variables"] == {"METRIC_NAMESPACE": "LLM/Inference"}
    _, body = function(asg, REQUEST_FUNCTION)
    assert body["environment"]["variables"] == {"METRIC_NAMESPACE": "Team/LLM"}


def test_without_a_scaling_target_the_stack_is_metrics_only(default):
    assert len(default.resources("aws_cloudwatch_event_rule")) == 1  # no schedule
    assert len(default.resources("aws_lambda_function")) == 1  # no scaler
    actions_ = [a for s in statements(default).values() for a in actions(s)]
    assert not [a for a in actions_ if a.startswith(("autoscaling:", "sagemaker:", "cloudwatch:"))]
    assert not default.data("aws_caller_identity")  # plans without an AWS account
    assert "scaler_function_name" not in default.outputs and "schedule_rule_name" not in default.outputs


def test_existing_deployments_keep_every_address_and_name(default):
    # What deployments before the scheduled scaler have in state: an apply updates these in place.
    addresses = {f"{t}.{n}" for t, resources in default.doc["resource"].items() for n in resources}
    assert addresses == {
        "aws_cloudwatch_event_rule.llm_request_scaling_rule_13A68FB9",
        "aws_cloudwatch_event_target.llm_request_scaling_target_5E7DB846",
        "aws_cloudwatch_log_group.llm_request_scaling_controller_log_group_CFCD8B9F",
        "aws_iam_role.llm_request_scaling_controller_role_148A725C",
        "aws_iam_role_policy.llm_request_scaling_controller_policy_7C4873B0",
        "aws_lambda_function.llm_request_scaling_controller_function_130CB322",
        "aws_lambda_function_event_invoke_config.llm_request_scaling_async_failures_B1299C1C",
        "aws_lambda_permission.llm_request_scaling_allow_eventbridge_FD69EBF2",
        "aws_sqs_queue.llm_request_scaling_dead_letter_queue_69B46354",
        "aws_sqs_queue_policy.llm_request_scaling_dead_letter_queue_policy_2F12D3C5",
    }
    # Attributes that force a replacement keep their values (a replaced target drops events).
    target = default.one("aws_cloudwatch_event_target")
    assert (target["target_id"], target["rule"]) == ("scaling-controller", default.ref("aws_cloudwatch_event_rule", "name"))
    assert default.one("aws_lambda_function")["function_name"] == REQUEST_FUNCTION
    assert default.one("aws_iam_role")["name"] == f"{REQUEST_FUNCTION}-role"


def test_moving_the_rule_to_another_bus_creates_the_new_rule_target_and_permission_first(synth, default):
    for type_ in ("aws_cloudwatch_event_rule", "aws_cloudwatch_event_target", "aws_lambda_permission"):
        bodies = [b for b in default.resources(type_).values() if "schedule" not in json.dumps(b.get("//", {}))]
        assert all(b["lifecycle"] == {"create_before_destroy": True} for b in bodies), type_
    # The invoke permission's statement id names the bus, so the new one can exist beside the old.
    other = synth.stack("llm-asg-target")
    ids = [next(b["statement_id"] for b in s.resources("aws_lambda_permission").values()
                if b["statement_id"].startswith("AllowInferenceRequestRule")) for s in (default, other)]
    assert all(re.fullmatch(r"AllowInferenceRequestRule-[0-9a-f]{8}", i) for i in ids) and ids[0] != ids[1]


def test_outputs_name_the_function_and_the_rule(default):
    assert default.outputs["lambda_function_name"]["value"] == default.ref("aws_lambda_function", "function_name")
    assert default.outputs["event_rule_name"]["value"] == default.ref("aws_cloudwatch_event_rule", "name")


def test_default_tags_and_region_come_from_project_settings(default):
    provider = default.doc["provider"]["aws"][0]
    assert provider["region"] == "us-east-1"
    assert provider["default_tags"][0]["tags"]["Stack"] == STACK


# --- the decision path (with a scaling target) ---------------------------------------------


def test_a_schedule_rule_on_the_default_bus_runs_the_scaler_every_minute(asg):
    address, rule = schedule_rule(asg)
    assert rule["schedule_expression"] == "rate(1 minute)" == f"rate({h.TICK_SECONDS // 60} minute)"
    assert "event_bus_name" not in rule  # schedules exist only on the default bus, even when requests use a custom one
    assert "event_pattern" not in rule
    (target,) = targets_of(asg, address)
    scaler_address, _ = function(asg, SCALER)
    assert target["arn"] == ref(scaler_address, "arn")
    assert "event_bus_name" not in target


def test_ticks_are_never_retried_and_expire_after_one_interval(asg):
    address, _ = schedule_rule(asg)
    (target,) = targets_of(asg, address)
    assert target["retry_policy"] == {"maximum_retry_attempts": 0, "maximum_event_age_in_seconds": 60}
    assert "dead_letter_config" not in target  # a late tick is worth nothing: the next one decides
    scaler_address, scaler = function(asg, SCALER)
    config = invoke_config(asg, scaler_address)
    assert (config["maximum_retry_attempts"], config["maximum_event_age_in_seconds"]) == (0, 60)
    assert "destination_config" not in config
    assert scaler["timeout"] == 20 < h.TICK_SECONDS  # one tick ends before the next starts
    assert scaler["handler"] == "handler.scheduled"


def test_only_the_schedule_rule_may_invoke_the_scaler(asg):
    scaler_address, _ = function(asg, SCALER)
    permission_ = permission(asg, scaler_address)
    assert permission_["principal"] == "events.amazonaws.com" and permission_["action"] == "lambda:InvokeFunction"
    assert permission_["source_arn"] == ref(schedule_rule(asg)[0], "arn")


def test_the_scaler_is_the_only_writer_of_the_target(asg, sagemaker):
    for stack in (asg, sagemaker):
        writers = {f for f in (REQUEST_FUNCTION, SCALER)
                   if any(a in ("autoscaling:SetDesiredCapacity", "sagemaker:UpdateEndpointWeightsAndCapacities")
                          for s in statements(stack, f).values() for a in actions(s))}
        assert writers == {SCALER}, stack.name
        assert set(statements(stack, REQUEST_FUNCTION)) == {"WriteOwnLogs", "WriteTraces", "FailedInvocationsToDeadLetterQueue"}


def test_asg_scaler_statements_are_exactly_what_it_needs(asg):
    grants = statements(asg, SCALER)
    assert set(grants) == {"WriteOwnLogs", "WriteTraces", "ReadRequestRate", "ScaleAutoScalingGroup", "DescribeAutoScalingGroup"}
    assert (grants["ReadRequestRate"]["Action"], grants["ReadRequestRate"]["Resource"]) == ("cloudwatch:GetMetricData", "*")
    assert grants["ScaleAutoScalingGroup"]["Action"] == "autoscaling:SetDesiredCapacity"
    account = "${" + f"data.aws_caller_identity.{next(iter(asg.data('aws_caller_identity')))}.account_id" + "}"
    assert grants["ScaleAutoScalingGroup"]["Resource"] == (f"arn:aws:autoscaling:us-east-1:{account}:autoScalingGroup:*:"
                                                          "autoScalingGroupName/llm-workers")
    assert sorted(actions(grants["DescribeAutoScalingGroup"])) == ["autoscaling:DescribeAutoScalingGroups",
                                                                    "autoscaling:DescribeScalingActivities"]
    _, log_group = named(asg, "aws_cloudwatch_log_group", f"/aws/lambda/{SCALER}")
    assert log_group["retention_in_days"] == 90


def test_asg_scaler_environment_names_the_rule_its_bus_and_the_policy(asg):
    _, scaler = function(asg, SCALER)
    assert scaler["environment"]["variables"] == {
        "RULE_NAME": ref(rule_address(asg), "name"),
        "EVENT_BUS_NAME": asg.ref("aws_cloudwatch_event_bus", "name"),  # MatchedEvents of a custom-bus rule
        "TARGET_TYPE": "autoscaling_group", "TARGET_NAME": "llm-workers",
        "MIN_CAPACITY": "2", "MAX_CAPACITY": "12", "REQUESTS_PER_INSTANCE_PER_MINUTE": "30.0",
        "COOLDOWN_SECONDS": "120", "RATE_WINDOW_MINUTES": "5"}
    config = h.Config.from_env({k: v for k, v in scaler["environment"]["variables"].items()})
    assert (config.target_type, config.minimum, config.maximum, config.cooldown_seconds) == ("autoscaling_group", 2, 12, 120)


def test_sagemaker_scaler_grants_only_on_that_endpoint_and_reads_the_default_bus_rule(sagemaker):
    grants = statements(sagemaker, SCALER)
    assert set(grants) == {"WriteOwnLogs", "WriteTraces", "ReadRequestRate", "ScaleEndpointVariant"}
    grant = grants["ScaleEndpointVariant"]
    assert sorted(grant["Action"]) == ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"]
    assert grant["Resource"].endswith(":endpoint/chat-endpoint")  # SageMaker ARNs are lower case
    env = function(sagemaker, SCALER)[1]["environment"]["variables"]
    assert (env["TARGET_TYPE"], env["TARGET_NAME"], env["VARIANT_NAME"]) == ("sagemaker_variant", "Chat-Endpoint", "blue")
    assert "EVENT_BUS_NAME" not in env  # a default-bus rule's MatchedEvents has RuleName only


def test_scaler_reserves_no_concurrency_unless_asked(asg, sagemaker, reserved):
    for stack in (asg, sagemaker):
        assert "reserved_concurrent_executions" not in function(stack, SCALER)[1], stack.name
    _, scaler = function(reserved, SCALER)
    assert scaler["reserved_concurrent_executions"] == 1
    assert scaler["timeout"] == 45
    assert scaler["environment"]["variables"]["EVENT_BUS_NAME"] == "shared-bus"  # an existing bus, by name
    assert "reserved_concurrent_executions" not in function(reserved, REQUEST_FUNCTION)[1]


def test_outputs_name_the_scaler_and_its_schedule(asg):
    assert asg.outputs["scaler_function_name"]["value"] == ref(function(asg, SCALER)[0], "function_name")
    assert asg.outputs["schedule_rule_name"]["value"] == ref(schedule_rule(asg)[0], "name")


def test_wildcard_resources_only_where_aws_has_no_resource_level_permissions(default, asg, sagemaker, reserved):
    allowed = {"cloudwatch:GetMetricData", "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities",
               "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    for stack in (default, asg, sagemaker, reserved):
        for policy in stack.policies():
            for statement in policy["Statement"]:
                if statement["Resource"] == "*":
                    assert set(actions(statement)) <= allowed, (stack.name, statement)


# --- settings of the scaler ------------------------------------------------------------------


def problems(settings: dict) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_config(Path("settings.toml"), data={STACK: settings})
    return caught.value.problems


def test_reserving_scaler_concurrency_needs_a_scaling_target():
    (line,) = problems({"scaler_reserved_concurrency": True})
    assert line == ("settings.toml: [llm-request-scaling] (section): scaler_reserved_concurrency = true needs scaling_target: without a "
                    "target there is no scaler (given scaler_reserved_concurrency=true, scaling_target=none)")


@pytest.mark.parametrize("value", [9, 56, 60])
def test_scaler_timeout_stays_below_the_tick_interval(value):
    (line,) = problems({"scaler_timeout_seconds": value})
    assert line.startswith("settings.toml: [llm-request-scaling] scaler_timeout_seconds: ") and f"(given {value})" in line


def test_requests_per_instance_has_a_finite_range():
    (line,) = problems({"scaling": {"requests_per_instance_per_minute": float("inf")}})
    assert line.startswith("settings.toml: [llm-request-scaling] scaling.requests_per_instance_per_minute: ")


# --- applied on the local emulator (minutes) ---------------------------------------------------

#: A scaling target on a custom bus created by the stack: every path of the wiring at once.
APPLIED = {"event_bus_name": "inference", "create_event_bus": True,
           "scaling_target": {"type": "autoscaling_group", "name": "llm-workers"}}


@pytest.mark.emulator
@pytest.mark.parametrize("section", [{}, APPLIED], ids=["metrics-only", "asg-target-custom-bus"])
def test_the_stack_applies_on_the_emulator_and_its_wiring_checks_pass(tmp_path, section):
    from app.synth import StackRequest, synthesize
    from scaling_patterns.registry import PATTERNS
    from tooling import deploy_local as local
    from tooling import emulator as emu

    emulator_dir = tmp_path / "emulator"
    emulator, _ = emu.start(emulator_dir)
    try:
        ws = local.Workspace(emulator_dir / "deploy")
        settings_file = tmp_path / "settings.toml"
        settings_file.write_text(local.to_toml({STACK: section}))
        data = local.write_settings(ws, settings_file)
        region = local.project_region(data)
        local.ensure_state_bucket(emulator, region)
        local.write_backend_config(ws, emulator)
        config = load_config(ws.settings)
        spec = next(s for s in PATTERNS if s.name == STACK)
        synthesize(config.project, [StackRequest(spec, STACK, config.stacks[STACK])], ws.outdir)

        report = local.deploy_stack(ws, emulator, STACK, region)

        assert not report.error, report.error
        assert report.plan is not None and report.plan.clean, (report.plan.diffs if report.plan else None)
        assert report.failed_checks == [], [f"{c.name}: {c.detail}" for c in report.failed_checks]
        names = {c.name for c in report.checks}
        assert "the request function's role may not change capacity or call CloudWatch" in names
        if section:
            assert {"the scaler is the only writer of the target", "ticks are not retried and expire after a minute"} <= names
            assert set(report.outputs) >= {"scaler_function_name", "schedule_rule_name"}
        else:
            assert "metrics only (no scaling_target): no schedule, no scaler" in names
        configured = json.loads((ws.stack_dir(STACK) / "cdk.tf.json").read_text())["resource"]
        assert report.resources == sum(len(resources) for resources in configured.values())  # every resource applied
    finally:
        emu.stop(emulator_dir)
