"""Stack `queue-to-sagemaker`: given settings, when synthesized, then the Terraform has ..."""

from __future__ import annotations

import json
import re

import pytest

from app.config import load_config
from scaling_patterns.core.settings import SettingsError
from tests.conftest import ref

STACK = "queue-to-sagemaker"
TARGET = "aws_appautoscaling_target"


@pytest.fixture(scope="module")
def default(synth):
    return synth.stack(STACK)


@pytest.fixture(scope="module")
def existing(synth):
    return synth.stack("q2sm-existing-endpoint")


@pytest.fixture(scope="module")
def custom(synth):
    return synth.stack("q2sm-custom-model")


@pytest.fixture(scope="module")
def emulated(emulator_synth):
    """The default stack as `make deploy-local` builds it (project.emulator = true)."""
    return emulator_synth.stack(STACK)


def queue(stack, suffix):
    """The SQS queue named ``aiscale-q2sm-<suffix>`` and its Terraform address."""
    for key, body in stack.resources("aws_sqs_queue").items():
        if body["name"] == f"aiscale-q2sm-{suffix}":
            return f"aws_sqs_queue.{key}", body
    raise AssertionError(f"no queue {suffix}")


def role_statements(stack, policy_name_fragment):
    for key, body in stack.resources("aws_iam_role_policy").items():
        if policy_name_fragment in key:
            return {s["Sid"]: s for s in json.loads(body["policy"])["Statement"]}
    raise AssertionError(policy_name_fragment)


def invoker_statements(stack):
    return role_statements(stack, "invoker")


def model_statements(stack):
    return role_statements(stack, "execution_policy")


# --- queue and event source mapping ------------------------------------------------------


def test_request_queue_has_the_reference_attributes_encryption_and_a_dead_letter_queue(default):
    _, body = queue(default, "requests")
    assert (body["delay_seconds"], body["max_message_size"], body["message_retention_seconds"]) == (0, 262144, 345600)
    assert body["sqs_managed_sse_enabled"] is True
    dlq_address, dlq = queue(default, "requests-dlq")
    assert dlq["sqs_managed_sse_enabled"] is True
    assert json.loads(body["redrive_policy"]) == {"deadLetterTargetArn": ref(dlq_address, "arn"), "maxReceiveCount": 5}
    assert body["visibility_timeout_seconds"] == 420  # 6x the function timeout (AWS's recommendation)


def test_event_source_mapping_reports_partial_batches_with_bounded_concurrency(default):
    mapping = default.one("aws_lambda_event_source_mapping")
    requests, _ = queue(default, "requests")
    assert mapping["event_source_arn"] == ref(requests, "arn")
    assert mapping["function_name"] == default.ref("aws_lambda_function", "arn")
    assert mapping["batch_size"] == 10
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["scaling_config"] == {"maximum_concurrency": 5}


def test_function_defaults_and_environment_are_wired_to_the_endpoint_and_queues(default):
    function = default.one("aws_lambda_function")
    assert (function["timeout"], function["memory_size"], function["runtime"]) == (70, 512, "python3.12")
    env = function["environment"]["variables"]
    assert env["SAGEMAKER_ENDPOINT_NAME"] == default.ref("aws_sagemaker_endpoint", "name")
    assert env["DEAD_LETTER_QUEUE_URL"] == ref(queue(default, "requests-dlq")[0], "url")
    assert env["RESULTS_DESTINATION"] == "queue"
    assert env["RESULTS_QUEUE_URL"] == ref(queue(default, "results")[0], "url")
    assert (env["CONTENT_TYPE"], env["ACCEPT"]) == ("application/json", "application/json")
    assert env["INVOCATION_TIMEOUT_SECONDS"] == "60"  # SageMaker real-time's limit; the 70 s timeout holds one plus 10 s


def test_invocation_timeout_and_derived_visibility_timeout_follow_settings(existing, custom):
    assert existing.one("aws_lambda_function")["environment"]["variables"]["INVOCATION_TIMEOUT_SECONDS"] == "45"
    function = custom.one("aws_lambda_function")
    assert (function["timeout"], function["environment"]["variables"]["INVOCATION_TIMEOUT_SECONDS"]) == (40, "20")
    assert queue(custom, "requests")[1]["visibility_timeout_seconds"] == 6 * 40 + 2  # unset: 6x timeout + batching window
    assert queue(existing, "requests")[1]["visibility_timeout_seconds"] == 360  # set: as given


def test_results_queue_is_encrypted_with_its_own_dead_letter_queue(default):
    _, body = queue(default, "results")
    dlq_address, dlq = queue(default, "results-dlq")
    assert body["sqs_managed_sse_enabled"] is True and dlq["sqs_managed_sse_enabled"] is True
    assert json.loads(body["redrive_policy"])["deadLetterTargetArn"] == ref(dlq_address, "arn")


# --- function IAM -------------------------------------------------------------------------


def test_function_may_invoke_only_this_endpoint(default):
    grant = invoker_statements(default)["InvokeEndpoint"]
    assert grant["Action"] == "sagemaker:InvokeEndpoint"
    assert grant["Resource"] == default.ref("aws_sagemaker_endpoint", "arn")


def test_function_queue_permissions_are_limited_to_its_queues(default):
    statements = invoker_statements(default)
    assert statements["ConsumeRequests"]["Resource"] == ref(queue(default, "requests")[0], "arn")
    assert statements["PoisonMessagesToDeadLetterQueue"] == {
        "Sid": "PoisonMessagesToDeadLetterQueue", "Effect": "Allow", "Action": "sqs:SendMessage",
        "Resource": ref(queue(default, "requests-dlq")[0], "arn")}
    assert statements["SendResults"]["Resource"] == ref(queue(default, "results")[0], "arn")
    assert set(statements) == {"WriteOwnLogs", "WriteTraces", "ConsumeRequests", "PoisonMessagesToDeadLetterQueue", "InvokeEndpoint", "SendResults"}


def test_no_wildcard_resource_except_ecr_login_and_namespaced_metrics(default, existing, custom):
    allowed = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    for stack in (default, existing, custom):
        for policy in stack.policies():
            for statement in policy["Statement"]:
                if statement["Resource"] == "*":
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    assert set(actions) <= allowed, statement


# --- SageMaker -----------------------------------------------------------------------------


def test_model_endpoint_configuration_and_endpoint_are_chained(default):
    model = default.one("aws_sagemaker_model")
    assert model["primary_container"] == {"image": "${local." + next(iter(default.doc["locals"])) + "}"}
    assert list(default.doc["locals"].values()) == ["123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:latest"]
    assert model["execution_role_arn"] == ref(_address_of_role(default, "model-role"), "arn")
    (variant,) = default.one("aws_sagemaker_endpoint_configuration")["production_variants"]
    assert variant == {"variant_name": "AllTraffic", "model_name": default.ref("aws_sagemaker_model", "name"),
                       "instance_type": "ml.m5.large", "initial_instance_count": 1, "initial_variant_weight": 1}
    assert "kms_key_arn" not in default.one("aws_sagemaker_endpoint_configuration")
    endpoint = default.one("aws_sagemaker_endpoint")
    assert endpoint["endpoint_config_name"] == default.ref("aws_sagemaker_endpoint_configuration", "name")


def test_model_and_configuration_names_change_with_their_content_so_replacements_can_coexist(default, custom):
    for stack in (default, custom):
        model, config = stack.one("aws_sagemaker_model"), stack.one("aws_sagemaker_endpoint_configuration")
        assert re.fullmatch(r"aiscale-q2sm-model-[0-9a-f]{8}", model["name"]), model["name"]
        assert re.fullmatch(r"aiscale-q2sm-endpoint-config-[0-9a-f]{8}", config["name"]), config["name"]
        assert model["lifecycle"]["create_before_destroy"] is True
        assert config["lifecycle"] == {"create_before_destroy": True}
    # Another image, environment and instance type: other names (a model change reaches the endpoint).
    assert default.one("aws_sagemaker_model")["name"] != custom.one("aws_sagemaker_model")["name"]
    assert default.one("aws_sagemaker_endpoint_configuration")["name"] != custom.one("aws_sagemaker_endpoint_configuration")["name"]
    # The endpoint itself keeps its name: it is updated in place to the new configuration.
    assert default.one("aws_sagemaker_endpoint")["name"] == custom.one("aws_sagemaker_endpoint")["name"] == "aiscale-q2sm-endpoint"


def test_the_names_hash_exactly_what_forces_a_replacement():
    from scaling_patterns.core.naming import content_hash

    container = {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:latest", "model_data_url": None,
                 "environment": {}, "execution_role": "aiscale-q2sm-model-role"}
    assert content_hash(container) == content_hash(dict(reversed(list(container.items()))))  # order does not matter
    assert content_hash(container) != content_hash({**container, "environment": {"A": "1"}})


def test_a_placeholder_image_stops_a_plan_against_aws_with_one_line(default, emulated):
    (check,) = default.one("aws_sagemaker_model")["lifecycle"]["precondition"]
    local = next(iter(default.doc["locals"]))
    assert check["condition"] == '${local.%s != "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:latest"}' % local
    assert check["error_message"] == ("queue-to-sagemaker: endpoint.image_uri is the placeholder "
                                      "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:latest; "
                                      "set [queue-to-sagemaker] endpoint.image_uri to your model image in ECR")
    assert "precondition" not in emulated.one("aws_sagemaker_model")["lifecycle"]  # the emulator pulls no image


def test_an_image_of_your_own_has_no_precondition(custom):
    model = custom.one("aws_sagemaker_model")
    assert "precondition" not in model["lifecycle"] and "locals" not in custom.doc
    assert model["primary_container"]["image"].startswith("111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/llm-server@sha256:")


def test_scaling_is_deregistered_around_an_instance_type_change(default):
    config = default.address("aws_sagemaker_endpoint_configuration")
    target = default.one(TARGET)
    assert target["lifecycle"] == {"replace_triggered_by": [f"{config}.production_variants[0].instance_type"]}
    assert default.one("aws_appautoscaling_policy")["lifecycle"] == target["lifecycle"]  # goes with it, and only then


def _address_of_role(stack, name_suffix):
    for key, body in stack.resources("aws_iam_role").items():
        if body["name"].endswith(name_suffix):
            return f"aws_iam_role.{key}"
    raise AssertionError(name_suffix)


def test_model_role_is_trusted_by_sagemaker_and_limited_to_its_image(default):
    role = default.resources("aws_iam_role")[_address_of_role(default, "model-role").split(".", 1)[1]]
    assert json.loads(role["assume_role_policy"])["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    statements = model_statements(default)
    assert statements["PullModelImage"]["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/my-model"
    assert "ReadModelData" not in statements  # no model data by default: no S3 access
    assert statements["PutMetricsInOwnNamespace"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}}
    log_groups = {b["name"]: k for k, b in default.resources("aws_cloudwatch_log_group").items()}
    endpoint_logs = log_groups["/aws/sagemaker/Endpoints/aiscale-q2sm-endpoint"]
    assert statements["WriteEndpointLogs"]["Resource"] == ref(f"aws_cloudwatch_log_group.{endpoint_logs}", "arn") + ":*"


def test_variant_autoscaling_tracks_invocations_per_instance(default):
    target = default.one(TARGET)
    assert target["service_namespace"] == "sagemaker"
    assert target["scalable_dimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target["resource_id"] == f"endpoint/{default.ref('aws_sagemaker_endpoint', 'name')}/variant/AllTraffic"
    assert (target["min_capacity"], target["max_capacity"]) == (1, 4)
    tracking = default.one("aws_appautoscaling_policy")["target_tracking_scaling_policy_configuration"]
    assert tracking["predefined_metric_specification"]["predefined_metric_type"] == "SageMakerVariantInvocationsPerInstance"
    assert tracking["target_value"] == 100


def test_outputs_name_the_queue_function_and_endpoint(default):
    assert default.outputs["sqs_queue_url"]["value"] == ref(queue(default, "requests")[0], "url")
    assert default.outputs["lambda_function_name"]["value"] == default.ref("aws_lambda_function", "function_name")
    assert default.outputs["sagemaker_endpoint_name"]["value"] == default.ref("aws_sagemaker_endpoint", "name")


def test_default_plans_without_an_aws_account(default):
    assert not default.doc.get("data")


def test_emulator_leaves_out_application_auto_scaling_and_redrive_allow_policies_only(emulated, default):
    assert not emulated.resources(TARGET) and not emulated.resources("aws_appautoscaling_policy")
    left_out = {TARGET, "aws_appautoscaling_policy", "aws_sqs_queue_redrive_allow_policy"}
    assert set(default.doc["resource"]) - left_out == set(emulated.doc["resource"])


# --- existing endpoint and other settings ---------------------------------------------------


def test_existing_endpoint_creates_nothing_sagemaker_and_is_invoked_by_name(existing):
    for type_ in ("aws_sagemaker_model", "aws_sagemaker_endpoint_configuration", "aws_sagemaker_endpoint"):
        assert not existing.resources(type_), type_
    assert existing.one("aws_lambda_function")["environment"]["variables"]["SAGEMAKER_ENDPOINT_NAME"] == "Fraud-Scorer"
    assert existing.outputs["sagemaker_endpoint_name"]["value"] == "Fraud-Scorer"


def test_existing_endpoint_grant_names_its_arn_in_lower_case(existing):
    account = "${" + f"data.aws_caller_identity.{next(iter(existing.data('aws_caller_identity')))}.account_id" + "}"
    assert invoker_statements(existing)["InvokeEndpoint"]["Resource"] == \
        f"arn:aws:sagemaker:us-east-1:{account}:endpoint/fraud-scorer"


def test_existing_endpoint_variant_is_autoscaled_with_settings(existing):
    target = existing.one(TARGET)
    assert target["resource_id"] == "endpoint/Fraud-Scorer/variant/blue"
    assert (target["min_capacity"], target["max_capacity"]) == (2, 10)
    assert existing.one("aws_appautoscaling_policy")["target_tracking_scaling_policy_configuration"]["target_value"] == 250


def test_s3_results_are_written_only_under_the_prefix(existing):
    statements = invoker_statements(existing)
    assert statements["WriteResults"] == {"Sid": "WriteResults", "Effect": "Allow", "Action": "s3:PutObject",
                                          "Resource": "arn:aws:s3:::inference-results/fraud/scores/*"}
    assert "SendResults" not in statements
    env = existing.one("aws_lambda_function")["environment"]["variables"]
    assert (env["RESULTS_DESTINATION"], env["RESULTS_BUCKET"], env["RESULTS_PREFIX"]) == ("s3", "inference-results", "fraud/scores/")
    assert {q["name"] for q in existing.resources("aws_sqs_queue").values()} == {"aiscale-q2sm-requests", "aiscale-q2sm-requests-dlq"}


def test_customer_managed_queue_key_is_used_and_granted(existing):
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    for body in existing.resources("aws_sqs_queue").values():
        assert body["kms_master_key_id"] == key and "sqs_managed_sse_enabled" not in body
    assert invoker_statements(existing)["UseQueueKey"]["Resource"] == key


def test_batching_concurrency_and_retries_follow_settings(existing):
    mapping = existing.one("aws_lambda_event_source_mapping")
    assert (mapping["batch_size"], mapping["maximum_batching_window_in_seconds"]) == (50, 5)
    assert mapping["scaling_config"] == {"maximum_concurrency": 20}
    _, body = queue(existing, "requests")
    assert json.loads(body["redrive_policy"])["maxReceiveCount"] == 3
    assert body["visibility_timeout_seconds"] == 360


def test_custom_model_may_read_only_its_model_archive_and_has_encrypted_volumes(custom):
    model = custom.one("aws_sagemaker_model")
    assert model["primary_container"] == {
        "image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/llm-server@sha256:" + "a" * 64,
        "model_data_url": "s3://ml-artifacts-111122223333/llm/v7/model.tar.gz",
        "environment": {"MAX_TOKENS": "512"}}
    statements = model_statements(custom)
    assert statements["ReadModelData"] == {"Sid": "ReadModelData", "Effect": "Allow", "Action": "s3:GetObject",
                                           "Resource": "arn:aws:s3:::ml-artifacts-111122223333/llm/v7/model.tar.gz"}
    assert statements["PullModelImage"]["Resource"] == "arn:aws:ecr:eu-west-1:111122223333:repository/team/llm-server"
    config = custom.one("aws_sagemaker_endpoint_configuration")
    assert config["kms_key_arn"] == "arn:aws:kms:us-east-1:123456789012:key/abcd1234-12ab-34cd-56ef-1234567890ab"
    assert config["production_variants"][0]["instance_type"] == "ml.g5.xlarge"
    assert config["production_variants"][0]["initial_instance_count"] == 2


def test_autoscaling_can_be_turned_off(custom):
    assert not custom.resources(TARGET) and not custom.resources("aws_appautoscaling_policy")
    assert "scalable_target_id" not in custom.outputs
    assert custom.one("aws_lambda_function")["environment"]["variables"]["CONTENT_TYPE"] == "text/csv"


# --- settings errors -------------------------------------------------------------------------


def test_a_shorter_invocation_timeout_allows_a_shorter_function_timeout():
    s = load_config(data={STACK: {"invocation_timeout_seconds": 20, "timeout_seconds": 30}}).stacks[STACK]
    assert (s.timeout_seconds, s.visibility_timeout_seconds) == (30, 180)


@pytest.mark.parametrize("section, expected", [
    ({"timeout_seconds": 300, "queue": {"visibility_timeout_seconds": 180}},
     "queue.visibility_timeout_seconds must be >= timeout_seconds, or messages are received again while still being processed (given visibility_timeout_seconds=180, timeout_seconds=300)"),
    ({"timeout_seconds": 30},
     "timeout_seconds must be >= invocation_timeout_seconds + 10, so one full inference, its result write and the batch response fit in one invocation (given timeout_seconds=30, invocation_timeout_seconds=60)"),
    ({"invocation_timeout_seconds": 90, "timeout_seconds": 120}, "invocation_timeout_seconds: Input should be less than or equal to 60 (given 90)"),
    ({"invocation_timeout_seconds": 0}, "invocation_timeout_seconds: Input should be greater than or equal to 1 (given 0)"),
    ({"batch_size": 100}, "batch_size above 10 needs max_batching_window_seconds >= 1 (given batch_size=100, max_batching_window_seconds=0)"),
    ({"max_concurrency": 1}, "max_concurrency: Input should be greater than or equal to 2 (given 1)"),
    ({"queue": {"max_message_size": 300000}}, "queue.max_message_size: Input should be less than or equal to 262144 (given 300000)"),
    ({"endpoint": {"type": "existing"}}, "endpoint.name: required setting is missing"),
    ({"endpoint": {"type": "create", "image_uri": "docker.io/library/python:3"}},
     "endpoint.image_uri: must be an ECR image URI like 123456789012.dkr.ecr.us-east-1.amazonaws.com/repository:tag (given 'docker.io/library/python:3')"),
    ({"endpoint": {"type": "create", "model_data_url": "s3://bucket/models/"}},
     "endpoint.model_data_url: must be an S3 object URL like s3://bucket/path/model.tar.gz (given 's3://bucket/models/')"),
    ({"endpoint": {"type": "create", "instance_type": "m5.large"}},
     "endpoint.instance_type: must be a SageMaker instance type such as ml.m5.large or ml.g5.xlarge (given 'm5.large')"),
    ({"endpoint": {"type": "create", "initial_instance_count": 6}},
     "endpoint.initial_instance_count must be between autoscaling.min_capacity and autoscaling.max_capacity (given initial_instance_count=6, min_capacity=1, max_capacity=4)"),
    ({"autoscaling": {"min_capacity": 5, "max_capacity": 2}},
     "autoscaling: min_capacity must be <= max_capacity (given min_capacity=5, max_capacity=2)"),
    ({"results": {"type": "s3", "bucket": "results", "prefix": "no-slash"}},
     "results.prefix: must be empty or path segments ending in '/'"),
    ({"results": {"type": "topic"}}, "results: Input tag 'topic' found using 'type' does not match any of the expected tags"),
])
def test_bad_settings_are_reported_with_the_field_and_value(section, expected):
    with pytest.raises(SettingsError) as error:
        load_config(data={STACK: section})
    assert any(expected in line for line in error.value.problems), error.value.problems
