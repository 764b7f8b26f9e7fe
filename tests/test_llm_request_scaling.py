"""Stack `llm-request-scaling`: given settings, when synthesized, then the Terraform has ..."""

from __future__ import annotations

import json

import pytest

STACK = "llm-request-scaling"


@pytest.fixture(scope="module")
def default(synth):
    return synth.stack(STACK)


@pytest.fixture(scope="module")
def asg(synth):
    return synth.stack("llm-asg-target")


@pytest.fixture(scope="module")
def sagemaker(synth):
    return synth.stack("llm-sagemaker-target")


def statements(stack):
    policy = json.loads(stack.one("aws_iam_role_policy")["policy"])
    return {s["Sid"]: s for s in policy["Statement"]}


def test_rule_matches_the_reference_event_pattern_by_default(default):
    rule = default.one("aws_cloudwatch_event_rule")
    assert json.loads(rule["event_pattern"]) == {"source": ["my.llm.service"], "detail-type": ["Inference Request"]}
    assert "event_bus_name" not in rule  # the account's default bus


def test_rule_targets_the_controller_function(default):
    target = default.one("aws_cloudwatch_event_target")
    assert target["rule"] == default.ref("aws_cloudwatch_event_rule", "name")
    assert target["arn"] == default.ref("aws_lambda_function", "arn")


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
    permission = default.one("aws_lambda_permission")
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["principal"] == "events.amazonaws.com"
    assert permission["source_arn"] == default.ref("aws_cloudwatch_event_rule", "arn")
    assert permission["function_name"] == default.ref("aws_lambda_function", "function_name")


def test_failed_async_invocations_also_reach_the_dead_letter_queue(default):
    config = default.one("aws_lambda_function_event_invoke_config")
    assert config["destination_config"]["on_failure"]["destination"] == default.ref("aws_sqs_queue", "arn")
    assert statements(default)["FailedInvocationsToDeadLetterQueue"]["Resource"] == default.ref("aws_sqs_queue", "arn")


def test_controller_runs_a_supported_python_with_json_logs_and_retention(default):
    function = default.one("aws_lambda_function")
    assert function["runtime"] == "python3.12"
    assert function["logging_config"]["log_format"] == "JSON"
    log_group = default.one("aws_cloudwatch_log_group")
    assert log_group["name"] == "/aws/lambda/aiscale-llm-controller"
    assert log_group["retention_in_days"] == 30
    assert default.address("aws_cloudwatch_log_group") in function["depends_on"]


def test_controller_code_is_a_hashed_asset(default):
    function = default.one("aws_lambda_function")
    assert function["filename"].startswith("assets/") and function["filename"].endswith(".zip")
    assert function["source_code_hash"] in function["filename"]  # content hash names the asset folder
    assert (default.dir / function["filename"]).is_file()


def test_packaged_code_is_the_handler_without_bytecode(default):
    import zipfile

    function = default.one("aws_lambda_function")
    names = zipfile.ZipFile(default.dir / function["filename"]).namelist()
    assert "handler.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_metrics_permission_is_limited_to_the_namespace(default):
    grant = statements(default)["PutMetricsInOwnNamespace"]
    assert grant["Action"] == "cloudwatch:PutMetricData"
    assert grant["Condition"] == {"StringEquals": {"cloudwatch:namespace": "LLM/Inference"}}


def test_logs_permission_is_limited_to_its_log_group(default):
    grant = statements(default)["WriteOwnLogs"]
    assert grant["Resource"] == default.ref("aws_cloudwatch_log_group", "arn") + ":*"


def test_without_a_scaling_target_the_controller_can_change_nothing(default):
    actions = [a for s in statements(default).values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not [a for a in actions if a.startswith(("autoscaling:", "sagemaker:"))]
    assert "TARGET_TYPE" not in default.one("aws_lambda_function")["environment"]["variables"]
    assert not default.data("aws_caller_identity")  # plans without an AWS account


def test_wildcard_resources_only_where_aws_has_no_resource_level_permissions(default, asg, sagemaker):
    allowed = {"cloudwatch:PutMetricData", "cloudwatch:GetMetricStatistics",
               "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities",
               "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    for stack in (default, asg, sagemaker):
        for statement in statements(stack).values():
            if statement["Resource"] == "*":
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert set(actions) <= allowed, statement


def test_outputs_name_the_function_and_the_rule(default):
    assert default.outputs["lambda_function_name"]["value"] == default.ref("aws_lambda_function", "function_name")
    assert default.outputs["event_rule_name"]["value"] == default.ref("aws_cloudwatch_event_rule", "name")


def test_default_tags_and_region_come_from_project_settings(default):
    provider = default.doc["provider"]["aws"][0]
    assert provider["region"] == "us-east-1"
    assert provider["default_tags"][0]["tags"]["Stack"] == STACK


# --- settings overrides ---------------------------------------------------------------


def test_custom_bus_is_created_and_used_by_rule_and_target(asg):
    bus = asg.one("aws_cloudwatch_event_bus")
    assert bus["name"] == "inference-bus"
    bus_ref = asg.ref("aws_cloudwatch_event_bus", "name")
    assert asg.one("aws_cloudwatch_event_rule")["event_bus_name"] == bus_ref
    assert asg.one("aws_cloudwatch_event_target")["event_bus_name"] == bus_ref


def test_detail_types_and_retries_follow_settings(asg):
    pattern = json.loads(asg.one("aws_cloudwatch_event_rule")["event_pattern"])
    assert pattern["detail-type"] == ["Inference Request", "Batch Inference Request"]
    assert asg.one("aws_cloudwatch_event_target")["retry_policy"]["maximum_retry_attempts"] == 5
    assert asg.one("aws_cloudwatch_log_group")["retention_in_days"] == 90


def test_asg_target_grants_set_desired_capacity_on_that_group_only(asg):
    grant = statements(asg)["ScaleAutoScalingGroup"]
    assert grant["Action"] == "autoscaling:SetDesiredCapacity"
    account = "${" + f"data.aws_caller_identity.{next(iter(asg.data('aws_caller_identity')))}.account_id" + "}"
    assert grant["Resource"] == (f"arn:aws:autoscaling:us-east-1:{account}:autoScalingGroup:*:"
                                 "autoScalingGroupName/llm-workers")
    assert statements(asg)["PutMetricsInOwnNamespace"]["Condition"]["StringEquals"]["cloudwatch:namespace"] == "Team/LLM"


def test_asg_target_policy_reaches_the_function_environment(asg):
    env = asg.one("aws_lambda_function")["environment"]["variables"]
    assert env == {"METRIC_NAMESPACE": "Team/LLM", "TARGET_TYPE": "autoscaling_group", "TARGET_NAME": "llm-workers",
                   "MIN_CAPACITY": "2", "MAX_CAPACITY": "12", "REQUESTS_PER_INSTANCE_PER_MINUTE": "30.0",
                   "COOLDOWN_SECONDS": "120", "RATE_WINDOW_MINUTES": "5"}


def test_custom_event_pattern_replaces_source_and_detail_type(sagemaker):
    pattern = json.loads(sagemaker.one("aws_cloudwatch_event_rule")["event_pattern"])
    assert pattern == {"source": ["acme.llm"], "detail": {"priority": ["high"]}}


def test_sagemaker_target_grants_only_on_that_endpoint(sagemaker):
    grant = statements(sagemaker)["ScaleEndpointVariant"]
    assert sorted(grant["Action"]) == ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"]
    assert grant["Resource"].endswith(":endpoint/chat-endpoint")  # SageMaker ARNs are lower case
    env = sagemaker.one("aws_lambda_function")["environment"]["variables"]
    assert (env["TARGET_TYPE"], env["TARGET_NAME"], env["VARIANT_NAME"]) == ("sagemaker_variant", "Chat-Endpoint", "blue")
