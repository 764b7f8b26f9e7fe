"""functions/scaling_controller: the scaling decision as pure functions, and its AWS calls."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tests.conftest import load_function

h = load_function("scaling_controller")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


# --- rate -> capacity -------------------------------------------------------------------


@pytest.mark.parametrize("rate, expected", [(0, 1), (59, 1), (60, 1), (61, 2), (180, 3), (10_000, 8)])
def test_desired_capacity_is_rate_over_per_instance_rounded_up_and_clamped(rate, expected):
    assert h.desired_capacity(rate, per_instance_per_minute=60, minimum=1, maximum=8) == expected


def test_desired_capacity_can_reach_zero_when_minimum_is_zero():
    assert h.desired_capacity(0, 60, minimum=0, maximum=4) == 0


def test_desired_capacity_rejects_a_non_positive_per_instance_rate():
    with pytest.raises(ValueError):
        h.desired_capacity(10, 0, 1, 4)


# --- cooldown and busy targets ----------------------------------------------------------


def test_holds_inside_cooldown():
    state = h.TargetState(current=2, last_change=NOW - timedelta(seconds=100))
    decision = h.decide(state, desired=4, now=NOW, cooldown_seconds=300)
    assert decision.action == "hold" and "cooldown" in decision.reason


def test_scales_once_cooldown_has_passed():
    state = h.TargetState(current=2, last_change=NOW - timedelta(seconds=301))
    assert h.decide(state, desired=4, now=NOW, cooldown_seconds=300) == h.Decision("scale", 4, "2 -> 4")


def test_holds_while_target_is_updating_and_when_already_at_desired():
    assert h.decide(h.TargetState(2, None, busy=True), 3, NOW, 0).action == "hold"
    assert h.decide(h.TargetState(3, None), 3, NOW, 0).reason == "already at desired capacity"


def test_request_metrics_reads_model_and_tokens():
    assert h.request_metrics({"detail": {"model": "llama", "input_tokens": 10, "output_tokens": "5"}}) == ("llama", 15)
    assert h.request_metrics({"detail": {"tokens": 7}}) == ("unknown", 7)
    assert h.request_metrics({}) == ("unknown", 0)


def test_config_reads_the_environment_the_construct_sets():
    config = h.Config.from_env({"METRIC_NAMESPACE": "Team/LLM", "TARGET_TYPE": "autoscaling_group",
                                "TARGET_NAME": "workers", "MIN_CAPACITY": "2", "MAX_CAPACITY": "12",
                                "REQUESTS_PER_INSTANCE_PER_MINUTE": "30.0", "COOLDOWN_SECONDS": "120",
                                "RATE_WINDOW_MINUTES": "5"})
    assert (config.namespace, config.target_name, config.minimum, config.maximum) == ("Team/LLM", "workers", 2, 12)
    assert (config.per_instance_per_minute, config.cooldown_seconds) == (30.0, 120)


# --- AWS calls ----------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


def make_group(name: str, desired: int) -> None:
    ec2 = boto3.client("ec2")
    ec2.create_launch_template(LaunchTemplateName="workers-lt", LaunchTemplateData={"ImageId": "ami-12345678", "InstanceType": "t3.micro"})
    boto3.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": "workers-lt"}, MinSize=0, MaxSize=10,
        DesiredCapacity=desired, AvailabilityZones=["us-east-1a"])


def test_metrics_only_mode_records_requests_and_tokens_per_model_and_in_total(aws):
    cloudwatch = boto3.client("cloudwatch")
    config = h.Config.from_env({"METRIC_NAMESPACE": "LLM/Test"})
    event = {"id": "e-1", "detail": {"model": "llama", "tokens": 42}}
    result = h.process(event, config, h.Metrics(cloudwatch, "LLM/Test"), None, datetime.now(timezone.utc))
    assert result["action"] == "metrics_only"
    metrics = cloudwatch.list_metrics(Namespace="LLM/Test")["Metrics"]
    found = {(m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in metrics}
    assert found == {("RequestCount", (("Model", "llama"),)), ("Tokens", (("Model", "llama"),)),
                     ("TotalRequestCount", ()), ("TotalTokens", ())}


def test_asg_target_is_scaled_from_the_recent_request_rate(aws):
    make_group("workers", desired=1)
    cloudwatch, autoscaling = boto3.client("cloudwatch"), boto3.client("autoscaling")
    now = datetime.now(timezone.utc)
    metrics = h.Metrics(cloudwatch, "LLM/Test")
    for _ in range(599):  # 600 requests in the 5-minute window with this one = 120/min
        metrics.record_request("llama", 1, now - timedelta(seconds=30))
    config = h.Config.from_env({"METRIC_NAMESPACE": "LLM/Test", "TARGET_TYPE": "autoscaling_group",
                                "TARGET_NAME": "workers", "MIN_CAPACITY": "1", "MAX_CAPACITY": "10",
                                "REQUESTS_PER_INSTANCE_PER_MINUTE": "30", "COOLDOWN_SECONDS": "0"})
    target = h.AutoScalingGroupTarget(autoscaling, "workers")
    result = h.process({"detail": {"model": "llama"}}, config, metrics, target, now)
    assert result["action"] == "scale", result
    assert result["desired"] == 4  # ceil(600 / 5 / 30)
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["workers"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 4


def test_asg_target_holds_during_cooldown_after_its_last_scaling_activity():
    client = boto3.client("autoscaling", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [{
        "AutoScalingGroupName": "workers", "MinSize": 0, "MaxSize": 10, "DesiredCapacity": 2, "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a"], "HealthCheckType": "EC2", "CreatedTime": NOW}]},
        {"AutoScalingGroupNames": ["workers"]})
    stub.add_response("describe_scaling_activities", {"Activities": [{
        "ActivityId": "a-1", "AutoScalingGroupName": "workers", "Cause": "set by controller",
        "StartTime": NOW - timedelta(seconds=90), "StatusCode": "Successful"}]},
        {"AutoScalingGroupName": "workers", "MaxRecords": 1})
    with stub:
        state = h.AutoScalingGroupTarget(client, "workers").state()
    assert state == h.TargetState(current=2, last_change=NOW - timedelta(seconds=90), busy=False)
    decision = h.decide(state, desired=5, now=NOW, cooldown_seconds=300)
    assert decision.action == "hold" and "90s ago < 300s" in decision.reason


def test_sagemaker_target_updates_only_its_variant_when_in_service():
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    modified = NOW - timedelta(hours=1)
    stub.add_response("describe_endpoint", {
        "EndpointName": "chat", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/chat",
        "EndpointConfigName": "cfg", "EndpointStatus": "InService", "CreationTime": modified, "LastModifiedTime": modified,
        "ProductionVariants": [{"VariantName": "other", "CurrentInstanceCount": 5, "DesiredInstanceCount": 5},
                               {"VariantName": "blue", "CurrentInstanceCount": 1, "DesiredInstanceCount": 1}],
    }, {"EndpointName": "chat"})
    stub.add_response("update_endpoint_weights_and_capacities",
                      {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/chat"},
                      {"EndpointName": "chat", "DesiredWeightsAndCapacities": [{"VariantName": "blue", "DesiredInstanceCount": 3}]})
    with stub:
        target = h.SageMakerVariantTarget(client, "chat", "blue")
        state = target.state()
        assert (state.current, state.busy) == (1, False)
        decision = h.decide(state, 3, NOW, cooldown_seconds=300)
        assert decision.action == "scale"
        target.set_capacity(decision.desired)
    stub.assert_no_pending_responses()


def test_sagemaker_target_reports_busy_while_updating():
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response("describe_endpoint", {
        "EndpointName": "chat", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/chat",
        "EndpointStatus": "Updating", "CreationTime": NOW, "LastModifiedTime": NOW,
        "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 2}],
    }, {"EndpointName": "chat"})
    with stub:
        state = h.SageMakerVariantTarget(client, "chat", "AllTraffic").state()
    assert state.busy and state.current == 2
    assert h.decide(state, 4, NOW, 0).action == "hold"
