"""functions/scaling_controller: the request path (EMF, no AWS call), the scheduled scaler, and their pure logic."""

from __future__ import annotations

import io
import json
import math
from datetime import datetime, timedelta, timezone

import boto3
import botocore.client
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tests.conftest import load_function

h = load_function("scaling_controller")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
RULE = "aiscale-llm-inference-requests"


# --- rate -> capacity -------------------------------------------------------------------


@pytest.mark.parametrize("rate, expected", [(0, 1), (59, 1), (60, 1), (61, 2), (180, 3), (10_000, 8)])
def test_desired_capacity_is_rate_over_per_instance_rounded_up_and_clamped(rate, expected):
    assert h.desired_capacity(rate, per_instance_per_minute=60, minimum=1, maximum=8) == expected


def test_desired_capacity_can_reach_zero_when_minimum_is_zero():
    assert h.desired_capacity(0, 60, minimum=0, maximum=4) == 0


def test_desired_capacity_rejects_a_non_positive_per_instance_rate():
    with pytest.raises(ValueError):
        h.desired_capacity(10, 0, 1, 4)


def test_rate_window_is_the_last_whole_minutes():
    start, end = h.rate_window(datetime(2026, 11, 23, 12, 3, 27, 500, tzinfo=timezone.utc), 5)
    assert (start, end) == (datetime(2026, 11, 23, 11, 58, tzinfo=timezone.utc), datetime(2026, 11, 23, 12, 3, tzinfo=timezone.utc))
    # Two ticks in the same minute read the same window, so they decide the same capacity.
    assert h.rate_window(datetime(2026, 11, 23, 12, 3, 59, tzinfo=timezone.utc), 5) == (start, end)


def test_minutes_without_requests_count_as_zero_in_the_rate():
    assert h.rate_per_minute([600.0], 5) == 120.0  # one busy minute, four empty ones
    assert h.rate_per_minute([], 5) == 0.0  # traffic stopped: no datapoint at all


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


def test_a_tick_a_whole_interval_late_is_stale():
    assert h.is_stale({"time": "2026-11-23T11:59:00Z"}, NOW)  # 60 s: the next tick is due
    assert not h.is_stale({"time": "2026-11-23T11:59:30Z"}, NOW)
    assert not h.is_stale({}, NOW) and not h.is_stale({"time": "yesterday"}, NOW)  # manual invoke: acts


def test_request_metrics_reads_model_and_tokens():
    assert h.request_metrics({"detail": {"model": "llama", "input_tokens": 10, "output_tokens": "5"}}) == ("llama", 15)
    assert h.request_metrics({"detail": {"tokens": 7}}) == ("unknown", 7)
    assert h.request_metrics({}) == ("unknown", 0)
    assert h.request_metrics({"detail": "not an object"}) == ("unknown", 0)
    assert h.request_metrics({"detail": {"model": "  ", "tokens": True}}) == ("unknown", 0)  # EMF rejects empty dimension values


def test_the_signal_of_a_rule_has_its_bus_as_a_dimension_only_on_a_custom_bus():
    assert h.signal_dimensions(RULE, None) == [{"Name": "RuleName", "Value": RULE}]
    assert h.signal_dimensions(RULE, "default") == [{"Name": "RuleName", "Value": RULE}]
    assert h.signal_dimensions(RULE, "inference") == [{"Name": "EventBusName", "Value": "inference"},
                                                      {"Name": "RuleName", "Value": RULE}]


def test_config_reads_the_environment_the_construct_sets():
    config = h.Config.from_env({"RULE_NAME": RULE, "EVENT_BUS_NAME": "inference", "TARGET_TYPE": "autoscaling_group",
                                "TARGET_NAME": "workers", "MIN_CAPACITY": "2", "MAX_CAPACITY": "12",
                                "REQUESTS_PER_INSTANCE_PER_MINUTE": "30.0", "COOLDOWN_SECONDS": "120",
                                "RATE_WINDOW_MINUTES": "5"})
    assert (config.rule_name, config.event_bus_name, config.target_name) == (RULE, "inference", "workers")
    assert (config.minimum, config.maximum, config.per_instance_per_minute, config.cooldown_seconds) == (2, 12, 30.0, 120)


# --- the request path: one EMF line, no AWS call ----------------------------------------------

#: CloudWatch units an EMF metric may declare (Specification: Embedded metric format, MetricDefinition).
EMF_UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
             "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
             "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
             "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}


def emf_problems(line: str) -> list[str]:
    """What makes ``line`` not an EMF document CloudWatch Logs extracts metrics from (empty: valid)."""
    if "\n" in line.strip():
        return ["more than one line: Lambda would log each line as its own event"]
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as exc:
        return [f"not JSON: {exc}"]
    meta = doc.get("_aws")
    if not isinstance(doc, dict) or not isinstance(meta, dict):
        return ["no _aws metadata object"]
    found = []
    stamp = meta.get("Timestamp")
    if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp < 10**12:
        found.append(f"_aws.Timestamp must be epoch milliseconds (given {stamp!r})")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return found + ["_aws.CloudWatchMetrics must be a non-empty array"]
    for d in directives:
        if not isinstance(d.get("Namespace"), str) or not 1 <= len(d["Namespace"]) <= 255:
            found.append(f"bad Namespace {d.get('Namespace')!r}")
        for dimension_set in d.get("Dimensions", []):
            if not isinstance(dimension_set, list) or len(dimension_set) > 30:
                found.append(f"bad dimension set {dimension_set!r}")
                continue
            for key in dimension_set:
                value = doc.get(key)
                if not isinstance(value, str) or not value or len(value) > 1024:
                    found.append(f"dimension {key!r} must be a non-empty root string (given {value!r})")
        metrics = d.get("Metrics")
        if not isinstance(metrics, list) or not 1 <= len(metrics) <= 100:
            found.append("Metrics must hold 1-100 definitions")
            continue
        for m in metrics:
            value = doc.get(m.get("Name"))
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                found.append(f"metric {m.get('Name')!r} must be a number at the root (given {value!r})")
            if m.get("Unit", "None") not in EMF_UNITS:
                found.append(f"metric {m.get('Name')!r}: unit {m.get('Unit')!r} is not a CloudWatch unit")
    return found


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


@pytest.fixture
def api_calls(monkeypatch):
    """Every AWS API call made through botocore (any client, any service), as (service, operation)."""
    calls: list[tuple[str, str]] = []
    original = botocore.client.BaseClient._make_api_call

    def spy(self, operation, params):
        calls.append((self.meta.service_model.service_name, operation))
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    return calls


class Context:
    """The Lambda context the handlers read: the time left of the invocation."""

    def __init__(self, seconds_left: float = 15.0):
        self.seconds_left = seconds_left

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds_left * 1000)


EVENT = {"id": "e-1", "source": "my.llm.service", "detail-type": "Inference Request",
         "detail": {"model": "llama-3-8b", "input_tokens": 812, "output_tokens": 240}}


def test_request_path_makes_no_aws_call_and_prints_one_valid_emf_line(aws, api_calls, monkeypatch, capsys):
    monkeypatch.setenv("METRIC_NAMESPACE", "Team/LLM")
    result = h.handler(EVENT, Context())
    assert api_calls == []  # no PutMetricData (or anything else) per request: nothing to throttle
    (line,) = capsys.readouterr().out.splitlines()
    assert emf_problems(line) == []
    doc = json.loads(line)
    per_model, total = doc["_aws"]["CloudWatchMetrics"]
    assert (per_model["Namespace"], per_model["Dimensions"]) == ("Team/LLM", [["Model"]])
    assert [m["Name"] for m in per_model["Metrics"]] == ["RequestCount", "Tokens"]
    assert (total["Namespace"], total["Dimensions"]) == ("Team/LLM", [[]])  # no dimensions: totals
    assert [m["Name"] for m in total["Metrics"]] == ["TotalRequestCount", "TotalTokens"]
    assert (doc["Model"], doc["RequestCount"], doc["Tokens"], doc["TotalRequestCount"], doc["TotalTokens"]) == (
        "llama-3-8b", 1, 1052, 1, 1052)
    assert doc["event_id"] == "e-1" and result["action"] == "recorded"
    assert boto3.client("cloudwatch").list_metrics(Namespace="Team/LLM")["Metrics"] == []


def test_emf_check_rejects_what_cloudwatch_would_not_extract():
    good = h.emf_document("LLM/Inference", "m", 3, NOW, "e-1")
    assert emf_problems(json.dumps(good)) == []
    assert emf_problems(json.dumps(good, indent=2))  # pretty-printed: many log events
    bad = json.loads(json.dumps(good))
    bad["Model"] = ""
    assert emf_problems(json.dumps(bad)) == ["dimension 'Model' must be a non-empty root string (given '')"]
    bad = json.loads(json.dumps(good))
    del bad["Tokens"]
    assert emf_problems(json.dumps(bad)) == ["metric 'Tokens' must be a number at the root (given None)"]


def test_record_writes_one_line_to_the_stream_it_is_given():
    out = io.StringIO()
    h.record({"detail": {"model": "m\nx", "tokens": 2}}, "LLM/Inference", NOW, out)
    (line,) = out.getvalue().splitlines()  # a newline inside a value is escaped by JSON
    assert emf_problems(line) == [] and json.loads(line)["Model"] == "m\nx"
    assert json.loads(line)["_aws"]["Timestamp"] == int(NOW.timestamp() * 1000)


# --- the scheduled path, against moto ---------------------------------------------------------


def make_group(name: str, desired: int) -> None:
    ec2 = boto3.client("ec2")
    ec2.create_launch_template(LaunchTemplateName="workers-lt", LaunchTemplateData={"ImageId": "ami-12345678", "InstanceType": "t3.micro"})
    boto3.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": "workers-lt"}, MinSize=0, MaxSize=10,
        DesiredCapacity=desired, AvailabilityZones=["us-east-1a"])


def desired_of(name: str) -> int:
    return boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["DesiredCapacity"]


def put_metric(name: str, per_minute: float, minutes: int, before: datetime, dimensions: list[dict], namespace: str = "AWS/Events") -> None:
    """``per_minute`` in each of the ``minutes`` whole minutes before ``before`` (as EventBridge publishes them)."""
    end = before.replace(second=0, microsecond=0)
    boto3.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": name, "Dimensions": dimensions, "Timestamp": end - timedelta(minutes=i + 1) + timedelta(seconds=5),
         "Value": per_minute, "Unit": "Count"} for i in range(minutes)])


def matched(per_minute: float, minutes: int, before: datetime, bus: str | None = None) -> None:
    put_metric("MatchedEvents", per_minute, minutes, before, h.signal_dimensions(RULE, bus))


def scaler_config(**overrides: str) -> object:
    env = {"RULE_NAME": RULE, "TARGET_TYPE": "autoscaling_group", "TARGET_NAME": "workers", "MIN_CAPACITY": "1",
           "MAX_CAPACITY": "10", "REQUESTS_PER_INSTANCE_PER_MINUTE": "30", "COOLDOWN_SECONDS": "600",
           "RATE_WINDOW_MINUTES": "5", **overrides}
    return h.Config.from_env(env)


class RecordedActivities:
    """The moto Auto Scaling client, except DescribeScalingActivities, which moto 5.2.5 answers with no
    activity ever: that call goes to a botocore Stubber holding the activities AWS would return."""

    def __init__(self, moto_client):
        self.moto = moto_client
        self.recorded = boto3.client("autoscaling", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        self.stub = Stubber(self.recorded)
        self.stub.activate()

    def last_activity(self, start: datetime | None) -> None:
        activities = [] if start is None else [{"ActivityId": "a-1", "AutoScalingGroupName": "workers", "StatusCode": "Successful",
                                                "Cause": "set by the scaler", "StartTime": start}]
        self.stub.add_response("describe_scaling_activities", {"Activities": activities},
                               {"AutoScalingGroupName": "workers", "MaxRecords": 1})

    def describe_scaling_activities(self, **kwargs):
        return self.recorded.describe_scaling_activities(**kwargs)

    def __getattr__(self, name):
        return getattr(self.moto, name)


def test_scaler_scales_out_on_matched_events_then_in_to_the_minimum_after_the_cooldown(aws):
    make_group("workers", desired=1)
    config = scaler_config()
    signal = h.MatchedEvents(boto3.client("cloudwatch"), RULE)
    client = RecordedActivities(boto3.client("autoscaling"))
    target = h.AutoScalingGroupTarget(client, "workers")
    t0 = datetime.now(timezone.utc).replace(second=30, microsecond=0)
    matched(120, 5, before=t0)  # 600 requests in the window = 120/min

    client.last_activity(None)
    out = h.tick({"time": t0.isoformat()}, config, signal, target, t0)
    assert (out["requests"], out["rate_per_minute"], out["action"], out["desired"]) == (600, 120.0, "scale", 4)
    assert desired_of("workers") == 4  # ceil(120 / 30)

    # Traffic stops. No request, no event, but the schedule still runs: the window holds no datapoint.
    t1 = t0 + timedelta(minutes=6)
    client.last_activity(t0)  # the scale-out above is the group's latest activity
    out = h.tick({"time": t1.isoformat()}, config, signal, target, t1)
    assert (out["requests"], out["desired"], out["action"]) == (0, 1, "hold")
    assert out["reason"] == "cooldown: last change 360s ago < 600s"
    assert desired_of("workers") == 4

    t2 = t0 + timedelta(minutes=11)
    client.last_activity(t0)
    out = h.tick({"time": t2.isoformat()}, config, signal, target, t2)
    assert (out["action"], out["reason"]) == ("scale", "4 -> 1")
    assert desired_of("workers") == 1  # scaled in to the minimum
    client.stub.assert_no_pending_responses()


def test_a_retried_or_duplicated_event_does_not_change_the_rate(aws, capsys):
    make_group("workers", desired=1)
    t0 = datetime.now(timezone.utc).replace(second=30, microsecond=0)
    matched(120, 5, before=t0)  # EventBridge counts each matched event once ...
    bus = h.signal_dimensions(RULE, None)
    put_metric("InvocationAttempts", 360, 5, t0, bus)  # ... however often it delivered it (here 3x)
    put_metric("RetryInvocationAttempts", 240, 5, t0, bus)
    put_metric("TotalRequestCount", 240, 5, t0, [], namespace="LLM/Inference")  # the request path ran twice per event
    for _ in range(2):  # a duplicate delivery is recorded again by the request path: at-least-once metrics ...
        h.record(EVENT, "LLM/Inference", t0)
    assert len(capsys.readouterr().out.splitlines()) == 2

    out = h.tick({"time": t0.isoformat()}, scaler_config(COOLDOWN_SECONDS="0"), h.MatchedEvents(boto3.client("cloudwatch"), RULE),
                 h.AutoScalingGroupTarget(boto3.client("autoscaling"), "workers"), t0)
    assert (out["requests"], out["rate_per_minute"], out["desired"]) == (600, 120.0, 4)  # ... but the rate is exact


def test_a_custom_bus_rule_is_read_with_its_bus_dimension(aws):
    make_group("workers", desired=1)
    t0 = datetime.now(timezone.utc).replace(second=30, microsecond=0)
    matched(1200, 5, before=t0)  # a rule of the same name on the default bus
    matched(30, 5, before=t0, bus="inference")
    config = scaler_config(EVENT_BUS_NAME="inference", COOLDOWN_SECONDS="0")
    out = h.tick({}, config, h.MatchedEvents(boto3.client("cloudwatch"), RULE, config.event_bus_name),
                 h.AutoScalingGroupTarget(boto3.client("autoscaling"), "workers"), t0)
    assert (out["requests"], out["rate_per_minute"], out["desired"], out["action"]) == (150, 30.0, 1, "hold")


def test_two_ticks_in_one_minute_write_once(aws, api_calls):
    make_group("workers", desired=1)
    t0 = datetime.now(timezone.utc).replace(second=10, microsecond=0)
    matched(90, 5, before=t0)
    config = scaler_config(COOLDOWN_SECONDS="0")
    signal = h.MatchedEvents(boto3.client("cloudwatch"), RULE)
    target = h.AutoScalingGroupTarget(boto3.client("autoscaling"), "workers")
    first = h.tick({"time": t0.isoformat()}, config, signal, target, t0)
    second = h.tick({"time": t0.isoformat()}, config, signal, target, t0 + timedelta(seconds=40))  # a duplicate tick
    assert (first["action"], first["desired"]) == ("scale", 3)
    assert (second["action"], second["reason"]) == ("hold", "already at desired capacity")
    assert api_calls.count(("autoscaling", "SetDesiredCapacity")) == 1


def test_a_stale_tick_changes_nothing(aws, api_calls):
    make_group("workers", desired=1)
    t0 = datetime.now(timezone.utc)
    matched(300, 5, before=t0)
    out = h.tick({"time": (t0 - timedelta(seconds=75)).isoformat()}, scaler_config(COOLDOWN_SECONDS="0"),
                 h.MatchedEvents(boto3.client("cloudwatch"), RULE), h.AutoScalingGroupTarget(boto3.client("autoscaling"), "workers"), t0)
    assert out["action"] == "skip" and out["reason"].startswith("stale tick: fired 75s ago")
    assert ("autoscaling", "SetDesiredCapacity") not in api_calls and ("cloudwatch", "GetMetricData") not in api_calls
    assert desired_of("workers") == 1


def test_no_write_is_started_without_the_time_to_finish_it(aws):
    make_group("workers", desired=1)
    t0 = datetime.now(timezone.utc)
    matched(300, 5, before=t0)
    out = h.tick({}, scaler_config(COOLDOWN_SECONDS="0"), h.MatchedEvents(boto3.client("cloudwatch"), RULE),
                 h.AutoScalingGroupTarget(boto3.client("autoscaling"), "workers"), t0, time_left=lambda: 2.0)
    assert out["action"] == "hold" and out["reason"].startswith("out of time: 2.0s left")
    assert desired_of("workers") == 1


def test_the_scheduled_entry_point_reads_its_environment_and_logs_the_decision(aws, monkeypatch, caplog):
    make_group("workers", desired=1)
    for key, value in {"RULE_NAME": RULE, "TARGET_TYPE": "autoscaling_group", "TARGET_NAME": "workers",
                       "MIN_CAPACITY": "1", "MAX_CAPACITY": "10", "REQUESTS_PER_INSTANCE_PER_MINUTE": "30",
                       "COOLDOWN_SECONDS": "0", "RATE_WINDOW_MINUTES": "5"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(h, "_scaler", None)  # clients are built once per execution environment
    now = datetime.now(timezone.utc)
    matched(60, 5, before=now)
    with caplog.at_level("INFO", logger="scaling_controller"):
        out = h.scheduled({"source": "aws.events", "detail-type": "Scheduled Event", "time": now.isoformat()}, Context())
    if out["window_end"] != now.replace(second=0, microsecond=0).isoformat():
        pytest.skip("the minute turned during the test")
    assert (out["requests"], out["desired"], out["action"]) == (300, 2, "scale")
    assert desired_of("workers") == 2
    (record,) = [r for r in caplog.records if r.getMessage() == "scaling decision"]
    assert record.decision["desired"] == 2


def test_the_scheduled_entry_point_refuses_to_run_without_a_target(aws, monkeypatch):
    monkeypatch.delenv("TARGET_TYPE", raising=False)
    monkeypatch.setenv("RULE_NAME", RULE)
    monkeypatch.setattr(h, "_scaler", None)
    with pytest.raises(RuntimeError, match="needs TARGET_TYPE"):
        h.scheduled({}, Context())


# --- targets, with recorded AWS responses ---------------------------------------------------


def test_asg_target_holds_during_cooldown_after_its_last_scaling_activity():
    client = boto3.client("autoscaling", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [{
        "AutoScalingGroupName": "workers", "MinSize": 0, "MaxSize": 10, "DesiredCapacity": 2, "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a"], "HealthCheckType": "EC2", "CreatedTime": NOW}]},
        {"AutoScalingGroupNames": ["workers"]})
    stub.add_response("describe_scaling_activities", {"Activities": [{
        "ActivityId": "a-1", "AutoScalingGroupName": "workers", "Cause": "set by the scaler",
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


def test_matched_events_follows_next_tokens():
    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    start, end = h.rate_window(NOW, 5)
    query = [{"Id": "matched", "MetricStat": {"Metric": {"Namespace": "AWS/Events", "MetricName": "MatchedEvents",
                                                         "Dimensions": [{"Name": "RuleName", "Value": RULE}]},
                                              "Period": 60, "Stat": "Sum", "Unit": "Count"}, "ReturnData": True}]
    stub.add_response("get_metric_data", {"MetricDataResults": [{"Id": "matched", "Values": [5.0, 7.0], "StatusCode": "PartialData"}],
                                          "NextToken": "t1"}, {"MetricDataQueries": query, "StartTime": start, "EndTime": end})
    stub.add_response("get_metric_data", {"MetricDataResults": [{"Id": "matched", "Values": [11.0], "StatusCode": "Complete"}]},
                      {"MetricDataQueries": query, "StartTime": start, "EndTime": end, "NextToken": "t1"})
    with stub:
        assert h.MatchedEvents(client, RULE).counts(start, end) == [5.0, 7.0, 11.0]
    stub.assert_no_pending_responses()
