"""Stack `queue-depth-scaling`: given settings, when synthesized, then the Terraform has ..."""

from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
import subprocess

import pytest

from app.config import load_config
from scaling_patterns.core.settings import SettingsError
from tests.conftest import ROOT, named, ref

STACK = "queue-depth-scaling"
AL2023 = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


@pytest.fixture(scope="module")
def default(synth):
    return synth.stack(STACK)


@pytest.fixture(scope="module")
def alarms(synth):
    return synth.stack("queue-alarm-steps")


@pytest.fixture(scope="module")
def tuned(synth):
    return synth.stack("queue-tuned")


def queue(stack):
    return named(stack, "aws_sqs_queue", "aiscale-queue-jobs")


def role_policy(stack, name, role_suffix="workers"):
    role_address, _ = named(stack, "aws_iam_role", f"aiscale-queue-{role_suffix}-instance" if role_suffix == "workers"
                            else f"aiscale-queue-{role_suffix}-role")
    for body in stack.resources("aws_iam_role_policy").values():
        if body["role"] == ref(role_address, "id") and body["name"] == name:
            return json.loads(body["policy"])
    raise AssertionError(f"no policy {name} on {role_address}")


def policies(stack, type_="aws_autoscaling_policy"):
    return {body["name"]: body for body in stack.resources(type_).values()}


# --- queue -------------------------------------------------------------------------------


def test_work_queue_is_encrypted_long_polled_and_dead_letters_after_five_receives(default):
    address, body = queue(default)
    dlq_address, dlq = named(default, "aws_sqs_queue", "aiscale-queue-jobs-dlq")
    assert body["sqs_managed_sse_enabled"] is True and dlq["sqs_managed_sse_enabled"] is True
    assert body["receive_wait_time_seconds"] == 20
    assert json.loads(body["redrive_policy"]) == {"deadLetterTargetArn": ref(dlq_address, "arn"), "maxReceiveCount": 5}


def test_visibility_timeout_is_the_job_timeout_plus_a_minute(default, tuned):
    assert queue(default)[1]["visibility_timeout_seconds"] == 600 + 60
    assert queue(tuned)[1]["visibility_timeout_seconds"] == 1800 + 60
    assert json.loads(queue(tuned)[1]["redrive_policy"])["maxReceiveCount"] == 3


# --- intake ------------------------------------------------------------------------------


def test_intake_function_may_only_send_to_this_queue(default):
    address, _ = queue(default)
    function = default.one("aws_lambda_function")
    assert function["function_name"] == "aiscale-queue-intake"
    assert function["runtime"] == "python3.12"
    assert function["environment"]["variables"] == {"QUEUE_URL": ref(address, "url"), "MAX_JOB_BYTES": "262144"}
    statements = role_policy(default, "least-privilege", "intake")["Statement"]
    on_sqs = [s for s in statements if any(a.startswith("sqs:") for a in actions(s))]
    assert on_sqs == [{"Sid": "EnqueueJobs", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": ref(address, "arn")}]


def test_intake_code_is_the_job_intake_handler(default):
    import zipfile

    function = default.one("aws_lambda_function")
    names = zipfile.ZipFile(default.dir / function["filename"]).namelist()
    assert names == ["handler.py"]
    text = zipfile.ZipFile(default.dir / function["filename"]).read("handler.py").decode()
    assert text == (ROOT / "functions" / "job_intake" / "handler.py").read_text()


# --- worker fleet ----------------------------------------------------------------------------


def test_workers_launch_the_al2023_ami_resolved_at_launch_with_imdsv2_and_encrypted_root(default):
    template = default.one("aws_launch_template")
    assert template["image_id"] == AL2023
    assert template["metadata_options"] == {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1}
    (volume,) = template["block_device_mappings"]
    assert volume == {"device_name": "/dev/xvda", "ebs": {"encrypted": "true", "volume_type": "gp3", "volume_size": 20,
                                                          "delete_on_termination": "true"}}
    assert template["iam_instance_profile"]["arn"] == default.ref("aws_iam_instance_profile", "arn")
    assert template["vpc_security_group_ids"] == [default.ref("aws_security_group", "id")]


def test_worker_group_spans_two_created_subnets_and_publishes_group_metrics(default):
    group = default.one("aws_autoscaling_group")
    assert group["name"] == "aiscale-queue-workers"
    assert (group["min_size"], group["max_size"]) == (0, 4)
    assert "desired_capacity" not in group  # owned by the scaling policies
    subnets = default.resources("aws_subnet")
    assert group["vpc_zone_identifier"] == [ref(f"aws_subnet.{key}", "id") for key in subnets]
    assert sorted(s["availability_zone"] for s in subnets.values()) == ["us-east-1a", "us-east-1b"]
    assert group["launch_template"] == {"id": default.ref("aws_launch_template", "id"),
                                        "version": default.ref("aws_launch_template", "latest_version")}
    assert "GroupInServiceInstances" in group["enabled_metrics"] and group["metrics_granularity"] == "1Minute"


def test_created_network_is_public_subnets_behind_an_internet_gateway_and_no_nat(default):
    assert default.one("aws_vpc")["cidr_block"] == "10.0.0.0/16"
    assert sorted(s["cidr_block"] for s in default.resources("aws_subnet").values()) == ["10.0.0.0/20", "10.0.16.0/20"]
    (route,) = default.one("aws_route_table")["route"]
    assert route["cidr_block"] == "0.0.0.0/0" and route["gateway_id"] == default.ref("aws_internet_gateway", "id")
    assert not default.resources("aws_nat_gateway") and not default.resources("aws_vpc_endpoint")
    assert default.one("aws_default_security_group")["ingress"] == [] == default.one("aws_default_security_group")["egress"]


def test_workers_accept_no_inbound_traffic_and_send_only_https(default):
    assert not default.resources("aws_vpc_security_group_ingress_rule")
    egress = default.one("aws_vpc_security_group_egress_rule")
    assert (egress["from_port"], egress["to_port"], egress["ip_protocol"], egress["cidr_ipv4"]) == (443, 443, "tcp", "0.0.0.0/0")
    assert egress["security_group_id"] == default.ref("aws_security_group", "id")


def test_instance_role_may_exactly_receive_delete_and_change_visibility_on_this_queue(default):
    address, _ = queue(default)
    role = default.resources("aws_iam_role")
    trust = [json.loads(r["assume_role_policy"]) for r in role.values() if r["name"] == "aiscale-queue-workers-instance"][0]
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    (statement,) = role_policy(default, "least-privilege")["Statement"]
    assert statement["Action"] == ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
    assert statement["Resource"] == ref(address, "arn")


def test_instances_may_protect_themselves_only_in_their_own_group(default):
    (statement,) = role_policy(default, "scale-in-protection")["Statement"]
    assert statement["Action"] == "autoscaling:SetInstanceProtection"
    assert statement["Resource"] == default.ref("aws_autoscaling_group", "arn")


def actions(statement) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def test_wildcard_resources_only_where_aws_has_no_resource_level_permissions(default, alarms, tuned):
    allowed = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}  # the intake function's tracing
    for stack in (default, alarms, tuned):
        for document in stack.policies():
            for statement in document["Statement"]:
                if statement["Resource"] == "*":
                    assert set(actions(statement)) <= allowed, statement


# --- worker user data ------------------------------------------------------------------------


_scripts: dict[str, str] = {}


def user_data_script(stack) -> str:
    """The boot script exactly as EC2 receives it, evaluated by Terraform (queue URL stubbed)."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH")
    if stack.name not in _scripts:
        _scripts[stack.name] = _evaluate_user_data(stack)
    return _scripts[stack.name]


def _evaluate_user_data(stack) -> str:
    expression = stack.one("aws_launch_template")["user_data"]
    assert expression.startswith("${base64encode(join(") and expression.endswith(")}")
    inner = re.sub(r"aws_sqs_queue\.[A-Za-z0-9_]+\.url", '"https://sqs.example/queue"', expression[2:-1])
    result = subprocess.run(["terraform", "console"], input=f"jsonencode({inner})\n", capture_output=True, text=True,
                            cwd=stack.dir.parent.parent, timeout=60, check=True)
    return base64.b64decode(json.loads(json.loads(result.stdout))).decode()


def embedded_config(script: str) -> dict:
    return json.loads(script.split("<<'CONFIG'\n", 1)[1].split("\nCONFIG\n", 1)[0])


def test_user_data_installs_the_worker_code_from_functions_and_runs_it_as_a_service(default):
    script = user_data_script(default)
    packed = re.search(r"echo '([A-Za-z0-9+/=]+)' \| base64 -d \| gunzip > /opt/queue-worker/worker.py", script).group(1)
    assert gzip.decompress(base64.b64decode(packed)) == (ROOT / "functions" / "queue_worker" / "handler.py").read_bytes()
    assert "dnf install -y python3-boto3\n" in script
    assert "ExecStart=/usr/bin/python3 /opt/queue-worker/worker.py /etc/queue-worker/config.json" in script
    assert "TimeoutStopSec=630" in script  # the job in hand may finish on shutdown
    assert "systemctl enable --now queue-worker.service" in script


def test_stopping_the_worker_service_signals_the_worker_only_so_the_job_in_hand_finishes(default):
    unit = user_data_script(default).split("<<'UNIT'\n", 1)[1].split("\nUNIT\n", 1)[0]
    settings = [line for line in unit.splitlines() if not line.startswith("#")]
    assert "KillMode=mixed" in settings  # SIGTERM to the worker, not the job's subprocess; SIGKILL only after:
    assert "TimeoutStopSec=630" in settings


def test_worker_config_names_the_queue_the_group_and_the_job_timing(default):
    assert embedded_config(user_data_script(default)) == {
        "queue_url": "https://sqs.example/queue", "group_name": "aiscale-queue-workers", "region": "us-east-1",
        "job_timeout_seconds": 600, "retry_delay_seconds": 30, "wait_seconds": 20, "command": None}


def test_worker_command_reaches_the_instance_verbatim(tuned):
    # Quotes and "${...}" survive Terraform: nothing in a setting is interpolated.
    config = embedded_config(user_data_script(tuned))
    assert config["command"] == ["/opt/app/run-job", "--model", "${MODEL}", "say \"hi\""]
    assert config["job_timeout_seconds"] == 1800


def test_user_data_fits_the_16_kib_limit(default):
    assert len(user_data_script(default).encode()) < 16 * 1024


# --- scaling: backlog per instance (default) ----------------------------------------------------


def test_default_scaling_tracks_jobs_waiting_or_in_flight_per_in_service_worker_at_latency_over_job_time(default):
    address, _ = queue(default)
    policy = policies(default)["aiscale-queue-backlog-per-instance"]
    assert policy["policy_type"] == "TargetTrackingScaling"
    assert policy["autoscaling_group_name"] == default.ref("aws_autoscaling_group", "name")
    tracking = policy["target_tracking_configuration"]
    assert tracking["target_value"] == 10  # 300 s latency goal / 30 s per job
    assert tracking["disable_scale_in"] is False
    metrics = tracking["customized_metric_specification"]["metrics"]
    assert [m["id"] for m in metrics] == ["visible", "in_flight", "in_service", "backlog_per_instance"]
    visible, in_flight, in_service, backlog = metrics
    assert visible["metric_stat"] == {"stat": "Sum", "metric": {
        "namespace": "AWS/SQS", "metric_name": "ApproximateNumberOfMessagesVisible",
        "dimensions": [{"name": "QueueName", "value": ref(address, "name")}]}}
    # Received, not yet deleted: the job each busy worker holds (KEDA's SQS scaler counts it too).
    assert in_flight["metric_stat"] == {"stat": "Sum", "metric": {
        "namespace": "AWS/SQS", "metric_name": "ApproximateNumberOfMessagesNotVisible",
        "dimensions": [{"name": "QueueName", "value": ref(address, "name")}]}}
    assert in_service["metric_stat"] == {"stat": "Average", "metric": {
        "namespace": "AWS/AutoScaling", "metric_name": "GroupInServiceInstances",
        "dimensions": [{"name": "AutoScalingGroupName", "value": default.ref("aws_autoscaling_group", "name")}]}}
    assert [m["return_data"] for m in metrics] == [False, False, False, True]
    assert backlog["expression"] == "IF(in_service > 0, (visible + in_flight) / in_service, visible + in_flight)"


def test_backlog_mode_has_no_step_alarms(default):
    assert set(policies(default)) == {"aiscale-queue-backlog-per-instance", "aiscale-queue-wake-from-zero"}


def test_backlog_target_follows_settings(tuned):
    tracking = policies(tuned)["aiscale-queue-backlog-per-instance"]["target_tracking_configuration"]
    assert tracking["target_value"] == round(600 / 45, 3)
    assert tracking["disable_scale_in"] is True


def test_an_empty_group_wakes_for_the_first_job(default):
    address, _ = queue(default)
    wake_address, wake = named(default, "aws_autoscaling_policy", "aiscale-queue-wake-from-zero")
    assert (wake["adjustment_type"], wake["scaling_adjustment"]) == ("ExactCapacity", 1)
    _, alarm = named(default, "aws_cloudwatch_metric_alarm", "aiscale-queue-jobs-waiting-no-worker", key="alarm_name")
    assert alarm["alarm_actions"] == [ref(wake_address, "arn")]
    queries = {q["id"]: q for q in alarm["metric_query"]}
    assert queries["visible"]["metric"]["dimensions"] == {"QueueName": ref(address, "name")}
    assert queries["desired"]["metric"]["metric_name"] == "GroupDesiredCapacity"
    # Visible jobs only: a job in flight at desired 0 has a worker (finishing it under scale-in protection).
    assert sorted(q["metric"]["metric_name"] for q in alarm["metric_query"] if "metric" in q) == [
        "ApproximateNumberOfMessagesVisible", "GroupDesiredCapacity"]
    assert queries["waiting_without_worker"]["expression"] == "IF(visible > 0 AND desired == 0, 1, 0)"
    assert (alarm["threshold"], alarm["comparison_operator"], alarm["evaluation_periods"]) == (1, "GreaterThanOrEqualToThreshold", 1)


def test_a_group_that_never_reaches_zero_needs_no_wake_alarm(tuned):
    assert not tuned.resources("aws_cloudwatch_metric_alarm")
    assert set(policies(tuned)) == {"aiscale-queue-backlog-per-instance"}


# --- scaling: the reference's alarm steps -------------------------------------------------------


def test_alarm_mode_scales_out_by_two_after_two_minutes_at_ten_or_more_visible(alarms):
    address, _ = queue(alarms)
    policy_address, policy = named(alarms, "aws_autoscaling_policy", "aiscale-queue-scale-out")
    assert (policy["policy_type"], policy["adjustment_type"], policy["scaling_adjustment"], policy["cooldown"]) == (
        "SimpleScaling", "ChangeInCapacity", 2, 300)
    _, alarm = named(alarms, "aws_cloudwatch_metric_alarm", "aiscale-queue-queue-deep", key="alarm_name")
    assert {k: alarm[k] for k in ("namespace", "metric_name", "dimensions", "statistic", "period", "evaluation_periods",
                                  "threshold", "comparison_operator", "alarm_actions")} == {
        "namespace": "AWS/SQS", "metric_name": "ApproximateNumberOfMessagesVisible", "dimensions": {"QueueName": ref(address, "name")},
        "statistic": "Sum", "period": 60, "evaluation_periods": 2, "threshold": 10,
        "comparison_operator": "GreaterThanOrEqualToThreshold", "alarm_actions": [ref(policy_address, "arn")]}


def test_alarm_mode_scales_in_by_one_after_two_minutes_at_two_or_fewer_jobs_and_no_worker_starting(alarms):
    address, _ = queue(alarms)
    group = alarms.ref("aws_autoscaling_group", "name")
    policy_address, policy = named(alarms, "aws_autoscaling_policy", "aiscale-queue-scale-in")
    assert (policy["adjustment_type"], policy["scaling_adjustment"], policy["cooldown"]) == ("ChangeInCapacity", -1, 300)
    _, alarm = named(alarms, "aws_cloudwatch_metric_alarm", "aiscale-queue-queue-shallow", key="alarm_name")
    assert (alarm["threshold"], alarm["comparison_operator"], alarm["evaluation_periods"], alarm["treat_missing_data"]) == (
        1, "GreaterThanOrEqualToThreshold", 2, "notBreaching")
    assert "metric_name" not in alarm and "statistic" not in alarm  # metric math, not the reference's single metric
    assert alarm["alarm_actions"] == [ref(policy_address, "arn")]
    queries = alarm["metric_query"]
    assert [q["id"] for q in queries] == ["visible", "in_flight", "in_service", "desired", "few_jobs_none_starting"]
    metrics = {q["id"]: (q["metric"]["namespace"], q["metric"]["metric_name"], q["metric"]["dimensions"], q["metric"]["stat"],
                         q["metric"]["period"], q["return_data"]) for q in queries[:4]}
    assert metrics == {
        "visible": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": ref(address, "name")}, "Sum", 60, False),
        "in_flight": ("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", {"QueueName": ref(address, "name")}, "Sum", 60, False),
        # Lowest in service against highest desired in the period: a worker starting at any time in it blocks scale-in.
        "in_service": ("AWS/AutoScaling", "GroupInServiceInstances", {"AutoScalingGroupName": group}, "Minimum", 60, False),
        "desired": ("AWS/AutoScaling", "GroupDesiredCapacity", {"AutoScalingGroupName": group}, "Maximum", 60, False),
    }
    assert queries[4]["return_data"] is True
    assert queries[4]["expression"] == "IF(in_service >= desired AND visible + in_flight <= 2, 1, 0)"


def test_alarm_mode_scale_in_condition_follows_threshold_statistic_and_period(synth):
    stack = synth.stack("queue-alarm-steps-tuned")
    _, alarm = named(stack, "aws_cloudwatch_metric_alarm", "aiscale-queue-queue-shallow", key="alarm_name")
    assert alarm["evaluation_periods"] == 3
    stats = {q["id"]: (q["metric"]["stat"], q["metric"]["period"]) for q in alarm["metric_query"] if "metric" in q}
    assert stats == {"visible": ("Average", 300), "in_flight": ("Average", 300), "in_service": ("Minimum", 300),
                     "desired": ("Maximum", 300)}
    assert alarm["metric_query"][-1]["expression"] == "IF(in_service >= desired AND visible + in_flight <= 0, 1, 0)"
    assert alarm["alarm_description"] == "Jobs visible + in flight <= 0 and no worker starting: remove 2 workers"


def test_alarm_mode_has_no_target_tracking(alarms):
    assert "aiscale-queue-backlog-per-instance" not in policies(alarms)
    assert all(p["policy_type"] == "SimpleScaling" for p in policies(alarms).values())


# --- defaults, outputs, no account needed --------------------------------------------------------


def test_default_stack_plans_without_an_aws_account(default):
    assert "data" not in default.doc


def test_existing_subnets_replace_the_created_network(tuned):
    assert not tuned.resources("aws_vpc") and not tuned.resources("aws_subnet")
    group = tuned.one("aws_autoscaling_group")
    assert group["vpc_zone_identifier"] == ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1", "subnet-0123456789abcdef2"]
    assert tuned.one("aws_security_group")["vpc_id"] == "vpc-0123456789abcdef0"
    template = tuned.one("aws_launch_template")
    assert template["instance_type"] == "g5.xlarge"
    assert template["image_id"].startswith("resolve:ssm:/aws/service/deeplearning/")
    assert template["block_device_mappings"][0]["ebs"]["volume_size"] == 200


def test_outputs_name_queue_dlq_group_and_intake(default):
    address, _ = queue(default)
    dlq_address, _ = named(default, "aws_sqs_queue", "aiscale-queue-jobs-dlq")
    outputs = {name: body["value"] for name, body in default.outputs.items()}
    assert outputs == {
        "queue_url": ref(address, "url"), "queue_name": ref(address, "name"), "dead_letter_queue_url": ref(dlq_address, "url"),
        "autoscaling_group_name": default.ref("aws_autoscaling_group", "name"),
        "intake_function_name": default.ref("aws_lambda_function", "function_name")}


# --- settings errors -----------------------------------------------------------------------------


def problems(settings: dict) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_config(data={STACK: settings})
    return caught.value.problems


def test_min_size_above_max_size_is_rejected():
    assert problems({"fleet": {"min_size": 5, "max_size": 2}}) == [
        "settings.toml: [queue-depth-scaling] fleet: min_size must be <= max_size (given min_size=5, max_size=2)"]


def test_one_subnet_is_rejected():
    (line,) = problems({"network": {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0"]}})
    assert "network: subnet_ids needs at least two different subnets (given ['subnet-0123456789abcdef0'])" in line


def test_subnets_without_their_vpc_are_rejected():
    (line,) = problems({"network": {"subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}})
    assert "vpc_id and subnet_ids must be set together" in line


def test_alarm_thresholds_in_the_wrong_order_are_rejected():
    (line,) = problems({"scaling": {"type": "alarm_steps", "scale_out_threshold": 5, "scale_in_threshold": 5}})
    assert line == ("settings.toml: [queue-depth-scaling] scaling: scale_in_threshold must be < scale_out_threshold, or the two "
                    "alarms fire together (given scale_in_threshold=5, scale_out_threshold=5)")


def test_latency_goal_shorter_than_one_job_is_rejected():
    (line,) = problems({"scaling": {"target_latency_seconds": 10, "seconds_per_job": 30.0}})
    assert "target_latency_seconds must be >= seconds_per_job" in line and "target_latency_seconds=10" in line


def test_unknown_scaling_mode_and_bad_values_are_reported_together():
    lines = problems({"scaling": {"type": "cpu"}, "job_timeout_seconds": 43200, "fleet": {"instance_type": "big"}})
    assert len(lines) == 3
    assert any("scaling" in line and "'backlog_per_instance', 'alarm_steps'" in line for line in lines)
    assert any("job_timeout_seconds" in line and "43140" in line for line in lines)
    assert any("fleet.instance_type: must be an EC2 instance type" in line for line in lines)


def test_scale_in_adjustment_must_remove_instances():
    (line,) = problems({"scaling": {"type": "alarm_steps", "scale_in_adjustment": 1}})
    assert "scaling.scale_in_adjustment" in line and "(given 1)" in line
