"""Code of `queue-depth-scaling`: the job-intake Lambda and the queue worker, against moto.

The worker's scale-in path uses moto's Auto Scaling group, which (like AWS) does not remove
instances protected from scale-in when the desired capacity drops.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tests.conftest import load_function

intake = load_function("job_intake")
worker_code = load_function("queue_worker")

REGION = "us-east-1"
GROUP = "aiscale-queue-workers"
MOTO_AMI = "ami-12c6146b"  # one of moto's built-in images
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield


@pytest.fixture
def queues(aws):
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="jobs", Attributes={
        "VisibilityTimeout": "660",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    return sqs, url, dlq_url


@pytest.fixture
def group(aws):
    """An Auto Scaling group of two instances; returns (client, [instance ids])."""
    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.create_launch_template(LaunchTemplateName="workers", LaunchTemplateData={"ImageId": MOTO_AMI, "InstanceType": "t3.micro"})
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=GROUP, LaunchTemplate={"LaunchTemplateName": "workers"}, MinSize=0, MaxSize=4,
        DesiredCapacity=2, AvailabilityZones=[f"{REGION}a"])
    return autoscaling, instances(autoscaling)


def instances(autoscaling) -> list[str]:
    (found,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return [i["InstanceId"] for i in found["Instances"]]


def protected(autoscaling, instance_id) -> bool:
    (found,) = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return found["ProtectedFromScaleIn"]


def config(url, **overrides) -> "worker_code.Config":
    values = {"queue_url": url, "group_name": GROUP, "region": REGION, "job_timeout_seconds": 600,
              "retry_delay_seconds": 0, "wait_seconds": 0, "command": None, **overrides}
    return worker_code.Config.from_dict(values)


def send_job(sqs, url, job_id="job-1", **payload):
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job_id": job_id, "payload": payload}))


def count(sqs, url) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def visible(sqs, url) -> list[dict]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])


# --- job intake -----------------------------------------------------------------------------


def test_intake_queues_a_valid_job_with_an_id_and_submission_time(queues):
    sqs, url, _ = queues
    result = intake.intake({"payload": {"prompt": "hi"}, "type": "summarize"}, sqs, url, 262144, NOW)
    assert result["accepted"] is True
    (message,) = visible(sqs, url)
    assert message["MessageId"] == result["message_id"]
    body = json.loads(message["Body"])
    assert body == {"job_id": result["job_id"], "payload": {"prompt": "hi"}, "type": "summarize",
                    "submitted_at": "2025-01-02T03:04:05+00:00"}
    assert len(result["job_id"]) == 36  # generated uuid


def test_intake_keeps_a_given_job_id_and_reads_an_http_body(queues):
    sqs, url, _ = queues
    event = {"body": json.dumps({"job_id": "batch-7_a", "payload": {"n": 1}}), "headers": {}}
    assert intake.intake(event, sqs, url, 262144, NOW)["job_id"] == "batch-7_a"
    assert json.loads(visible(sqs, url)[0]["Body"])["job_id"] == "batch-7_a"


@pytest.mark.parametrize("event, error", [
    ({}, "payload is required and must be an object"),
    ({"payload": "text"}, "payload is required and must be an object"),
    ({"payload": {}, "job_id": "has space"}, "job_id must be 1-80 characters of A-Z a-z 0-9 _ - (given 'has space')"),
    ({"payload": {}, "type": ""}, "type must be a string of 1-64 characters (given '')"),
    ({"payload": {}, "priority": 1}, "unknown fields: priority (allowed: job_id, payload, type)"),
    (["payload"], "a job must be a JSON object (given list)"),
    ({"body": "{not json"}, "body is not valid JSON"),
])
def test_intake_rejects_an_invalid_job_and_sends_nothing(queues, event, error):
    sqs, url, _ = queues
    result = intake.intake(event, sqs, url, 262144, NOW)
    assert result == {"accepted": False, "errors": [error]}
    assert count(sqs, url) == 0


def test_intake_rejects_a_job_over_the_size_limit(queues):
    sqs, url, _ = queues
    result = intake.intake({"payload": {"text": "x" * 2000}}, sqs, url, 1024, NOW)
    assert result["accepted"] is False and result["errors"][0].endswith("the limit is 1024")
    assert count(sqs, url) == 0


def test_intake_handler_uses_the_queue_from_its_environment(queues, monkeypatch):
    sqs, url, _ = queues
    monkeypatch.setenv("QUEUE_URL", url)
    monkeypatch.setenv("MAX_JOB_BYTES", "262144")
    assert intake.handler({"payload": {"a": 1}}, None)["accepted"] is True
    assert count(sqs, url) == 1


# --- worker: the happy path and failures ------------------------------------------------------


def make_worker(sqs, url, autoscaling, instance_id, process=None, **overrides):
    protection = worker_code.ScaleInProtection(autoscaling, GROUP, instance_id)
    return worker_code.Worker(sqs=sqs, protection=protection, config=config(url, **overrides), process=process)


def test_worker_processes_a_job_then_deletes_it(queues, group):
    sqs, url, _ = queues
    autoscaling, (me, _) = group
    seen = []
    worker = make_worker(sqs, url, autoscaling, me, process=lambda job: seen.append(job) or worker_code.Outcome(True, "ok"))
    send_job(sqs, url, "job-1", prompt="hello")
    assert worker.poll_once() == "done"
    assert seen == [{"job_id": "job-1", "payload": {"prompt": "hello"}}]
    assert count(sqs, url) == 0


def test_worker_is_protected_from_scale_in_while_busy_and_released_after_the_job(queues, group):
    sqs, url, _ = queues
    autoscaling, (me, _) = group
    during = []
    worker = make_worker(sqs, url, autoscaling, me,
                         process=lambda job: during.append(protected(autoscaling, me)) or worker_code.Outcome(True, "ok"))
    send_job(sqs, url)
    assert worker.poll_once() == "done"
    assert during == [True] and protected(autoscaling, me) is False
    assert worker.poll_once() == "idle"
    assert protected(autoscaling, me) is False


def test_scale_in_during_a_job_removes_the_idle_worker_and_the_job_finishes(queues, group):
    sqs, url, _ = queues
    autoscaling, (me, other) = group

    def process(job):  # the scaling policy lowers the group while this job runs
        autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1)
        return worker_code.Outcome(True, "ok")

    worker = make_worker(sqs, url, autoscaling, me, process=process)
    send_job(sqs, url)
    assert worker.poll_once() == "done"
    assert instances(autoscaling) == [me]  # the busy worker survived, the idle one went
    assert count(sqs, url) == 0  # its job was finished and deleted
    worker.poll_once()  # idle: protection cleared ...
    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=0)
    assert instances(autoscaling) == []  # ... so the group can now scale in to zero


def test_worker_chosen_for_scale_in_before_protecting_itself_releases_the_job_and_stops(queues):
    sqs, url, _ = queues
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    stubber = Stubber(autoscaling)
    stubber.add_response("set_instance_protection", {})  # the clear before the receive
    stubber.add_client_error("set_instance_protection", service_error_code="ValidationError", http_status_code=400,
                             service_message="The instance i-0abc is not in InService or EnteringStandby or Standby.")
    processed = []
    worker = make_worker(sqs, url, autoscaling, "i-0abc", process=lambda job: processed.append(job))
    send_job(sqs, url)
    with stubber:
        assert worker.poll_once() == "leaving"
    assert processed == [] and worker.stop.is_set()
    (message,) = visible(sqs, url)  # visible again at once, for another worker
    assert json.loads(message["Body"])["job_id"] == "job-1"


def stub_protection(stubber, *results):
    """Queue SetInstanceProtection answers: "ok" or an error code."""
    for result in results:
        if result == "ok":
            stubber.add_response("set_instance_protection", {})
        else:
            stubber.add_client_error("set_instance_protection", service_error_code=result, http_status_code=400,
                                     service_message=f"{result} happened")


@pytest.mark.parametrize("code", ["Throttling", "AccessDenied"])
def test_a_failed_protection_call_releases_the_message_at_once_without_running_it(queues, code):
    sqs, url, _ = queues
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    stubber = Stubber(autoscaling)
    stub_protection(stubber, "ok", code)  # the clear before the receive, then the failed protect
    processed = []
    worker = make_worker(sqs, url, autoscaling, "i-0abc", process=lambda job: processed.append(job))
    send_job(sqs, url)
    with stubber:
        assert worker.poll_once() == "unprotected"
    assert processed == [] and not worker.stop.is_set()  # not mistaken for scale-in
    (message,) = visible(sqs, url)  # visible again at once, not after the 660 s visibility timeout
    assert json.loads(message["Body"])["job_id"] == "job-1"


def test_the_worker_backs_off_after_a_failed_protection_call_and_longer_when_it_fails_again(queues):
    sqs, _, _ = queues
    # Each release still counts a receive (SQS counts receives, not jobs): a queue without the
    # fixture's maxReceiveCount of 2, so the third receive is not the dead-letter queue's.
    url = sqs.create_queue(QueueName="jobs-roomy", Attributes={"VisibilityTimeout": "660"})["QueueUrl"]
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    stubber = Stubber(autoscaling)
    # clear, protect (throttled), clear again (state unknown after a failure), protect (throttled),
    # clear, protect, clear after the job
    stub_protection(stubber, "ok", "Throttling", "ok", "Throttling", "ok", "ok", "ok")
    waits, done = [], []
    worker = make_worker(sqs, url, autoscaling, "i-0abc", process=lambda job: done.append(job) or worker_code.Outcome(True, "ok"))
    worker.wait = waits.append
    send_job(sqs, url)
    with stubber:
        worker.run(error_backoff_seconds=0, max_polls=3)
        stubber.assert_no_pending_responses()
    assert len(waits) == 2  # one backoff per failed protection, none after the job that ran
    first, second = waits
    assert 0.5 * worker_code.PROTECTION_BACKOFF_SECONDS <= first <= worker_code.PROTECTION_BACKOFF_SECONDS
    assert first < second <= 2 * worker_code.PROTECTION_BACKOFF_SECONDS
    assert len(done) == 1 and count(sqs, url) == 0  # the third receive got it and finished it
    assert worker.protection_failures == 0


def test_a_failed_job_is_retried_then_moved_to_the_dead_letter_queue(queues, group):
    sqs, url, dlq_url = queues
    autoscaling, (me, _) = group
    attempts = []
    worker = make_worker(sqs, url, autoscaling, me,
                         process=lambda job: attempts.append(1) or worker_code.Outcome(False, "model crashed"))
    send_job(sqs, url)
    assert worker.poll_once() == "failed"
    assert worker.poll_once() == "failed"
    assert worker.poll_once() == "idle"  # maxReceiveCount 2: SQS moved it on the third receive
    assert len(attempts) == 2
    assert json.loads(visible(sqs, dlq_url)[0]["Body"])["job_id"] == "job-1"


def test_a_failed_job_waits_the_retry_delay(queues, group):
    sqs, url, _ = queues
    autoscaling, (me, _) = group
    worker = make_worker(sqs, url, autoscaling, me, process=lambda job: worker_code.Outcome(False, "busy"),
                         retry_delay_seconds=120)
    send_job(sqs, url)
    assert worker.poll_once() == "failed"
    assert visible(sqs, url) == [] and count(sqs, url) == 1


def test_a_processor_exception_counts_as_a_failure(queues, group):
    sqs, url, _ = queues
    autoscaling, (me, _) = group

    def process(job):
        raise RuntimeError("bug")

    worker = make_worker(sqs, url, autoscaling, me, process=process)
    send_job(sqs, url)
    assert worker.poll_once() == "failed"
    assert count(sqs, url) == 1


def test_a_message_that_is_not_a_job_is_released_towards_the_dead_letter_queue(queues, group):
    sqs, url, dlq_url = queues
    autoscaling, (me, _) = group
    worker = make_worker(sqs, url, autoscaling, me, process=lambda job: pytest.fail("must not run"))
    sqs.send_message(QueueUrl=url, MessageBody="not json")
    assert worker.poll_once() == "rejected"
    assert worker.poll_once() == "rejected"
    assert worker.poll_once() == "idle"
    assert visible(sqs, dlq_url)[0]["Body"] == "not json"


def test_after_sigterm_a_received_job_is_released_not_processed(queues, group):
    sqs, url, _ = queues
    autoscaling, (me, _) = group
    worker = make_worker(sqs, url, autoscaling, me, process=lambda job: pytest.fail("must not run"))
    send_job(sqs, url)
    worker.stop.set()
    assert worker.poll_once() == "released"
    assert len(visible(sqs, url)) == 1


def test_protection_is_cleared_between_jobs_even_when_the_queue_never_runs_dry(queues, group):
    sqs, url, _ = queues
    autoscaling, (me, _) = group
    during, calls = [], []
    autoscaling.meta.events.register("before-parameter-build.auto-scaling.SetInstanceProtection",
                                     lambda params, **_: calls.append(params["ProtectedFromScaleIn"]))

    def process(job):
        during.append(protected(autoscaling, me))
        return worker_code.Outcome(True, "ok")

    worker = make_worker(sqs, url, autoscaling, me, process=process)
    for n in range(3):
        send_job(sqs, url, f"job-{n}")
    assert worker.poll_once() == "done"
    calls.clear()  # from here on: steady state, a busy queue
    assert worker.poll_once() == "done"
    assert protected(autoscaling, me) is False  # between jobs: a scale-in or refresh may take it now
    assert worker.poll_once() == "done"
    assert during == [True, True, True]  # never during a job
    assert calls == [True, False, True, False]  # the API cost: two SetInstanceProtection calls per job


def test_an_instance_refresh_or_scale_in_between_jobs_takes_the_idle_worker_not_a_busy_one(queues, group):
    sqs, url, _ = queues
    autoscaling, (me, other) = group
    between = make_worker(sqs, url, autoscaling, me, process=lambda job: worker_code.Outcome(True, "ok"))
    send_job(sqs, url, "job-1")
    send_job(sqs, url, "job-2")
    assert between.poll_once() == "done"  # finished a job; job-2 waits, but this worker is unprotected now
    # the other instance's worker is in the middle of a job:
    autoscaling.set_instance_protection(AutoScalingGroupName=GROUP, InstanceIds=[other], ProtectedFromScaleIn=True)
    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1)
    assert instances(autoscaling) == [other]


def test_a_protection_left_by_a_crashed_worker_is_cleared_on_the_first_idle_poll(queues, group):
    sqs, url, _ = queues
    autoscaling, (me, _) = group
    autoscaling.set_instance_protection(AutoScalingGroupName=GROUP, InstanceIds=[me], ProtectedFromScaleIn=True)
    worker = make_worker(sqs, url, autoscaling, me)
    assert worker.poll_once() == "idle"
    assert protected(autoscaling, me) is False


def test_run_keeps_polling_through_errors_and_clears_protection_when_stopped(queues, group):
    sqs, url, _ = queues
    autoscaling, (me, _) = group
    calls = []

    class FlakySqs:
        def receive_message(self, **kwargs):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("AccessDenied (policy not attached yet)")
            return sqs.receive_message(**kwargs)

        def __getattr__(self, name):
            return getattr(sqs, name)

    worker = make_worker(FlakySqs(), url, autoscaling, me, process=lambda job: worker_code.Outcome(True, "ok"))
    send_job(sqs, url)
    worker.run(error_backoff_seconds=0, max_polls=3)
    assert len(calls) == 3 and count(sqs, url) == 0
    assert protected(autoscaling, me) is False


def test_sigterm_during_a_job_lets_the_job_finish_then_deletes_its_message_and_stops(queues, group, tmp_path):
    # systemd's KillMode=mixed sends SIGTERM to the worker process only: here, to this process,
    # while the job runs in its own subprocess, as on the instance.
    import os
    import signal
    import threading

    sqs, url, _ = queues
    autoscaling, (me, _) = group
    finished = tmp_path / "finished"
    job = [sys.executable, "-c", f"import time; time.sleep(1.0); open({str(finished)!r}, 'w').write('done')"]
    worker = make_worker(sqs, url, autoscaling, me, command=job)
    send_job(sqs, url)
    send_job(sqs, url, "job-2")  # must not be started after the signal
    previous = signal.signal(signal.SIGTERM, worker_code.stop_on_sigterm(worker))
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        worker.run(error_backoff_seconds=0, max_polls=5)
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert worker.stop.is_set()
    assert finished.read_text() == "done"  # the job in hand was not killed
    (left,) = visible(sqs, url)  # job-1 was deleted; job-2 is still queued, for another worker
    assert json.loads(left["Body"])["job_id"] == "job-2"
    assert protected(autoscaling, me) is False


# --- worker: running jobs -------------------------------------------------------------------------


def test_demo_job_sleeps_the_simulated_time():
    slept = []
    outcome = worker_code.run_job({"job_id": "j", "payload": {"simulate_seconds": 2.5}}, None, 600, sleep=slept.append)
    assert outcome.ok and slept == [2.5]
    assert not worker_code.run_job({"job_id": "j", "payload": {"simulate_seconds": 700}}, None, 600, sleep=slept.append).ok


def test_job_command_gets_the_job_on_stdin_and_succeeds_on_exit_zero():
    command = [sys.executable, "-c", "import json,sys; job=json.load(sys.stdin); sys.exit(0 if job['payload']['n']==1 else 3)"]
    assert worker_code.run_job({"job_id": "j", "payload": {"n": 1}}, command, 30).ok
    failed = worker_code.run_job({"job_id": "j", "payload": {"n": 2}}, command, 30)
    assert not failed.ok and failed.detail.startswith("exit status 3")


def test_job_command_over_the_timeout_fails():
    outcome = worker_code.run_job({"job_id": "j", "payload": {}}, [sys.executable, "-c", "import time; time.sleep(5)"], 1)
    assert outcome == worker_code.Outcome(False, "timed out after 1s")


def test_missing_job_command_fails_the_job_not_the_worker():
    outcome = worker_code.run_job({"job_id": "j", "payload": {}}, ["/nonexistent/run-job"], 5)
    assert not outcome.ok and "cannot run /nonexistent/run-job" in outcome.detail


@pytest.mark.parametrize("body", ["[]", '{"job_id": 1, "payload": {}}', '{"job_id": "a"}', "{"])
def test_parse_job_rejects_non_jobs(body):
    with pytest.raises(ValueError):
        worker_code.parse_job(body)


def test_instance_id_comes_from_imdsv2_with_a_token():
    requests = []

    class Response:
        def __init__(self, text):
            self.text = text

        def read(self):
            return self.text.encode()

    def opener(request, timeout):
        requests.append((request.get_method(), request.full_url, dict(request.header_items())))
        return Response("TOKEN" if request.full_url.endswith("/api/token") else "i-0123")

    assert worker_code.instance_id(opener) == "i-0123"
    (put, token_url, _), (get, id_url, headers) = requests
    assert (put, token_url) == ("PUT", "http://169.254.169.254/latest/api/token")
    assert (get, id_url) == ("GET", "http://169.254.169.254/latest/meta-data/instance-id")
    assert headers["X-aws-ec2-metadata-token"] == "TOKEN"


def test_config_file_written_by_user_data_loads(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"queue_url": "https://q", "group_name": GROUP, "region": REGION, "job_timeout_seconds": 900,
                                "retry_delay_seconds": 30, "wait_seconds": 20, "command": ["/opt/run", "${X}"]}))
    loaded = worker_code.Config.load(str(path))
    assert (loaded.job_timeout_seconds, loaded.command, loaded.wait_seconds) == (900, ["/opt/run", "${X}"], 20)


def test_json_log_lines_carry_extra_fields(capsys):
    import logging

    record = logging.makeLogRecord({"msg": "job done", "levelname": "INFO", "job_id": "j-1", "seconds": 1.5})
    entry = json.loads(worker_code.JsonFormatter().format(record))
    assert (entry["message"], entry["job_id"], entry["seconds"]) == ("job done", "j-1", 1.5)


def test_worker_code_parses_as_python_3_9_the_al2023_system_python():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(worker_code.__file__).read_text(), feature_version=(3, 9))
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Match)]
