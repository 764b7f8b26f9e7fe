"""functions/sagemaker_invoker: partial batch responses, poison vs deployment vs retryable, time budget, results.

SageMaker Runtime is stubbed with botocore's Stubber (moto does not run models), or served by
a local HTTP server that answers InvokeEndpoint after a delay, so botocore's own timeouts and
retry settings are exercised for real; SQS and S3 are moto. Time comes from a fake Lambda
context whose remaining time runs down with the real clock.
"""

from __future__ import annotations

import io
import json
import logging
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws

from tests.conftest import load_function

h = load_function("sagemaker_invoker")
REGION = "us-east-1"
ENDPOINT = "scorer"
MISSING_ENDPOINT = f"Endpoint {ENDPOINT} of account 123456789012 not found."


def record(message_id: str, body: str | None, receive_count: int = 1) -> dict:
    return {"messageId": message_id, "receiptHandle": f"rh-{message_id}", "body": body,
            "attributes": {"ApproximateReceiveCount": str(receive_count)},
            "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:requests"}


def ok_response(payload: dict) -> dict:
    raw = json.dumps(payload).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"}


def expect_ok(stubber: Stubber, body: str, payload: dict) -> None:
    stubber.add_response("invoke_endpoint", ok_response(payload),
                         {"EndpointName": ENDPOINT, "Body": body.encode(), "ContentType": "application/json",
                          "Accept": "application/json"})


def expect_error(stubber: Stubber, code: str, status: int, message: str | None = None, **modeled) -> None:
    stubber.add_client_error("invoke_endpoint", service_error_code=code, service_message=message or f"{code} happened",
                             http_status_code=status, expected_params={"EndpointName": ENDPOINT, "Body": ANY,
                                                                       "ContentType": ANY, "Accept": ANY},
                             modeled_fields=modeled or None)


class Context:
    """A Lambda context whose remaining time runs down with the real clock."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    def left(self) -> float:
        return self.get_remaining_time_in_millis() / 1000


def fixed(client):
    """A client pool that hands out ``client`` whatever the timeout (a Stubber is bound to one client)."""
    return h.ClientPool(lambda service, config=None: client, "any")


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        runtime = boto3.client("sagemaker-runtime", region_name=REGION)
        calls = []
        runtime.meta.events.register("before-parameter-build.sagemaker-runtime.InvokeEndpoint",  # runs before the Stubber answers
                                     lambda params, **_: calls.append(params["Body"]))
        queues = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("results", "requests-dlq")}
        with Stubber(runtime) as stubber:
            yield {"sqs": sqs, "runtime": runtime, "stubber": stubber, "invocations": calls, **queues}
            stubber.assert_no_pending_responses()


def parts(aws, invocation_timeout=60):
    return (h.Endpoint(fixed(aws["runtime"]), ENDPOINT, "application/json", "application/json", invocation_timeout),
            h.QueueResults(fixed(aws["sqs"]), aws["results"]), h.DeadLetters(fixed(aws["sqs"]), aws["requests-dlq"]))


def drain(sqs, url) -> list[dict]:
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            return messages
        messages += batch
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def failures(outcomes) -> list[str]:
    return [f["itemIdentifier"] for f in h.batch_response(outcomes)["batchItemFailures"]]


# --- a model server that answers after a delay (real HTTP, real botocore timeouts) ------------


class _SlowModel(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server = self.server
        with server.lock:
            delay = server.delays.pop(0) if server.delays else 0.0
            server.requests.append(time.monotonic())
        if server.release.wait(delay):
            return  # test over: nobody is listening any more
        body = json.dumps({"score": len(server.requests)}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (read timeout)

    def log_message(self, *args):
        pass


@pytest.fixture
def model():
    """A local "endpoint": ``model.delays`` are the seconds each request waits before its answer."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowModel)
    server.daemon_threads = True
    server.delays, server.requests, server.lock, server.release = [], [], threading.Lock(), threading.Event()
    server.url = f"http://127.0.0.1:{server.server_port}"
    server.configs = []  # (service, read timeout) of every client the pools created

    def factory(service, config=None):
        server.configs.append((service, config.read_timeout))
        if service == "sagemaker-runtime":
            return boto3.client(service, region_name=REGION, endpoint_url=server.url, config=config)
        return boto3.client(service, region_name=REGION, config=config)

    server.factory = factory
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def served_parts(aws, model, invocation_timeout=60):
    return (h.Endpoint(h.ClientPool(model.factory, "sagemaker-runtime"), ENDPOINT, "application/json", "application/json",
                       invocation_timeout),
            h.QueueResults(h.ClientPool(model.factory, "sqs"), aws["results"]),
            h.DeadLetters(h.ClientPool(model.factory, "sqs"), aws["requests-dlq"]))


def runtime_timeouts(model) -> list[int]:
    return [timeout for service, timeout in model.configs if service == "sagemaker-runtime"]


# --- the batch contract ---------------------------------------------------------------------


def test_a_batch_with_some_failures_returns_exactly_the_retryable_ids(aws):
    stubber = aws["stubber"]
    expect_ok(stubber, '{"x": 1}', {"score": 0.9})
    expect_error(stubber, "ModelError", 424, OriginalStatusCode=503)
    expect_ok(stubber, '{"x": 3}', {"score": 0.1})
    expect_error(stubber, "ModelError", 424, OriginalStatusCode=500)
    records = [record("m1", '{"x": 1}'), record("m2", '{"x": 2}'), record("m3", '{"x": 3}'), record("m4", '{"x": 4}')]
    outcomes = h.process_batch(records, *parts(aws))
    assert failures(outcomes) == ["m2", "m4"]
    results = drain(aws["sqs"], aws["results"])
    assert sorted(json.loads(m["Body"])["source_message_id"] for m in results) == ["m1", "m3"]
    assert drain(aws["sqs"], aws["requests-dlq"]) == []


def test_a_fully_successful_batch_reports_no_failures_and_writes_every_result(aws):
    expect_ok(aws["stubber"], '{"x": 1}', {"score": 0.42})
    outcomes = h.process_batch([record("m1", '{"x": 1}')], *parts(aws))
    assert h.batch_response(outcomes) == {"batchItemFailures": []}
    (message,) = drain(aws["sqs"], aws["results"])
    assert json.loads(message["Body"]) == {"source_message_id": "m1", "endpoint": ENDPOINT,
                                           "content_type": "application/json", "body": {"score": 0.42}}
    assert message["MessageAttributes"]["source_message_id"]["StringValue"] == "m1"


# --- poison messages are not retried --------------------------------------------------------


@pytest.mark.parametrize("body, reason", [
    ("not json at all", "body is not JSON"),
    ("", "empty message body"),
    (None, "empty message body"),
])
def test_bad_payloads_go_to_the_dead_letter_queue_at_once_without_invoking(aws, body, reason):
    outcomes = h.process_batch([record("bad", body)], *parts(aws))
    assert aws["invocations"] == []
    assert h.batch_response(outcomes) == {"batchItemFailures": []}  # handled: SQS deletes it, no redelivery
    (dead,) = drain(aws["sqs"], aws["requests-dlq"])
    assert dead["MessageAttributes"]["error_kind"]["StringValue"] == "poison"
    assert reason in dead["MessageAttributes"]["error"]["StringValue"]
    assert dead["MessageAttributes"]["source_message_id"]["StringValue"] == "bad"
    assert drain(aws["sqs"], aws["results"]) == []


@pytest.mark.parametrize("code, status, message, modeled", [
    ("ModelError", 424, None, {"OriginalStatusCode": 400}),
    ("ModelError", 424, None, {"OriginalStatusCode": 422}),
    ("ValidationError", 400, "Request 5f1c6a3e-0d7b-4c1e-9a61-0b9e2f6c1d2a has oversize body.", {}),
])
def test_inputs_the_model_or_sagemaker_rejects_are_poison(aws, code, status, message, modeled):
    expect_error(aws["stubber"], code, status, message, **modeled)
    outcomes = h.process_batch([record("rejected", '{"x": "wrong shape"}', receive_count=1)], *parts(aws))
    assert outcomes[0].status == "poison"
    assert h.batch_response(outcomes)["batchItemFailures"] == []
    (dead,) = drain(aws["sqs"], aws["requests-dlq"])
    assert dead["Body"] == '{"x": "wrong shape"}'
    assert code in dead["MessageAttributes"]["error"]["StringValue"]


def test_a_poison_message_that_cannot_reach_the_dead_letter_queue_is_retried_not_lost(aws):
    endpoint, results, _ = parts(aws)
    gone = h.DeadLetters(fixed(aws["sqs"]), aws["requests-dlq"] + "-deleted")
    outcomes = h.process_batch([record("bad", "{")], endpoint, results, gone)
    assert failures(outcomes) == ["bad"]
    assert "sending to the DLQ failed" in outcomes[0].reason


# --- deployment problems: retried, and the rest of the batch is not invoked --------------------


@pytest.mark.parametrize("code, status, message", [
    ("ValidationError", 400, MISSING_ENDPOINT),
    ("ValidationError", 400, f"Variant blue not found for endpoint {ENDPOINT}."),
    ("AccessDeniedException", 400, "User: arn:aws:sts::123456789012:assumed-role/invoker is not authorized to perform: "
                                   "sagemaker:InvokeEndpoint"),
])
def test_a_deployment_problem_is_retried_not_dead_lettered_and_stops_the_batch(aws, caplog, code, status, message):
    expect_error(aws["stubber"], code, status, message)
    records = [record("m1", '{"x": 1}', receive_count=2), record("m2", '{"x": 2}'), record("m3", "not json")]
    with caplog.at_level(logging.WARNING, logger="sagemaker_invoker"):
        outcomes = h.process_batch(records, *parts(aws))
    assert failures(outcomes) == ["m1", "m2", "m3"]  # all delivered again, bounded by maxReceiveCount
    assert len(aws["invocations"]) == 1  # m2 and m3 were not invoked
    assert drain(aws["sqs"], aws["requests-dlq"]) == []  # nothing dead-lettered at once
    assert message in outcomes[0].reason
    assert all(o.reason.startswith("not attempted: a deployment problem") for o in outcomes[1:])
    (why,) = [r for r in caplog.records if r.getMessage().startswith("deployment problem")]  # logged once
    assert (why.reason, why.not_invoked_message_ids) == (outcomes[0].reason, ["m2", "m3"])


def test_a_missing_results_queue_is_a_deployment_problem_too(aws):
    expect_ok(aws["stubber"], '{"x": 1}', {"score": 1})
    endpoint, _, dead_letters = parts(aws)
    broken = h.QueueResults(fixed(aws["sqs"]), aws["results"] + "-deleted")
    outcomes = h.process_batch([record("m1", '{"x": 1}'), record("m2", '{"x": 2}')], endpoint, broken, dead_letters)
    assert failures(outcomes) == ["m1", "m2"]
    assert "writing the result failed" in outcomes[0].reason
    assert len(aws["invocations"]) == 1  # no second inference whose result could not be written either


def test_an_unrecognised_validation_error_fails_only_its_own_message(aws):
    expect_error(aws["stubber"], "ValidationError", 400, "Something about this request is odd.")
    expect_ok(aws["stubber"], '{"x": 2}', {"score": 2})
    outcomes = h.process_batch([record("m1", '{"x": 1}'), record("m2", '{"x": 2}')], *parts(aws))
    assert failures(outcomes) == ["m1"]
    assert drain(aws["sqs"], aws["requests-dlq"]) == []


# --- retryable failures ------------------------------------------------------------------------


@pytest.mark.parametrize("code, status, modeled", [
    ("ModelError", 424, {"OriginalStatusCode": 503}),
    ("ModelError", 424, {"OriginalStatusCode": 429}),
    ("ModelError", 424, {"OriginalStatusCode": 408}),
])
def test_model_errors_that_may_pass_later_are_retried_by_redelivery_not_at_once(aws, code, status, modeled):
    expect_error(aws["stubber"], code, status, **modeled)
    outcomes = h.process_batch([record("m1", '{"x": 1}')], *parts(aws))
    assert failures(outcomes) == ["m1"]
    assert len(aws["invocations"]) == 1
    assert drain(aws["sqs"], aws["requests-dlq"]) == []


@pytest.mark.parametrize("code, status", [
    ("ThrottlingException", 400), ("ServiceUnavailable", 503), ("InternalFailure", 500), ("ModelNotReadyException", 429),
])
def test_transient_errors_are_retried_within_the_invocation_then_reported(aws, code, status):
    for _ in range(h.INVOKE_ATTEMPTS):
        expect_error(aws["stubber"], code, status)
    outcomes = h.process_batch([record("m1", '{"x": 1}')], *parts(aws))
    assert failures(outcomes) == ["m1"]
    assert len(aws["invocations"]) == h.INVOKE_ATTEMPTS
    assert drain(aws["sqs"], aws["requests-dlq"]) == []


def test_a_throttled_call_that_passes_on_a_second_attempt_succeeds(aws):
    expect_error(aws["stubber"], "ThrottlingException", 400)
    expect_ok(aws["stubber"], '{"x": 1}', {"score": 1})
    outcomes = h.process_batch([record("m1", '{"x": 1}')], *parts(aws))
    assert failures(outcomes) == [] and len(aws["invocations"]) == 2


def test_no_second_attempt_when_the_invocation_has_no_time_for_it(aws):
    expect_error(aws["stubber"], "ThrottlingException", 400)
    start = h.CONNECT_TIMEOUT_SECONDS + h.RESERVE_SECONDS + h.MIN_INFERENCE_SECONDS  # just enough to start

    def time_left():  # room for one 1 s call, then (after the throttle) not for another
        return start - 0.1 if aws["invocations"] else start + 0.5

    outcomes = h.process_batch([record("m1", '{"x": 1}')], *parts(aws), time_left=time_left)
    assert failures(outcomes) == ["m1"] and len(aws["invocations"]) == 1


def test_a_failed_result_write_is_retried(aws):
    expect_ok(aws["stubber"], '{"x": 1}', {"score": 1})
    endpoint, _, dead_letters = parts(aws)
    broken = h.QueueResults(fixed(aws["sqs"]), aws["results"] + "-deleted")
    outcomes = h.process_batch([record("m1", '{"x": 1}')], endpoint, broken, dead_letters)
    assert failures(outcomes) == ["m1"]
    assert "writing the result failed" in outcomes[0].reason


# --- time: every call budgeted from the invocation ------------------------------------------------


def test_messages_are_not_started_when_the_invocation_runs_out_of_time(aws):
    expect_ok(aws["stubber"], '{"x": 1}', {"score": 1})
    def time_left():  # 30 s until m1 is invoked, then 8.5 s: m1 may write its result, m2 must not start
        return 8.5 if aws["invocations"] else 30.0

    outcomes = h.process_batch([record("m1", '{"x": 1}'), record("m2", '{"x": 2}')], *parts(aws), time_left=time_left)
    assert failures(outcomes) == ["m2"]
    assert outcomes[1].reason == "not attempted: the invocation is running out of time"
    assert len(aws["invocations"]) == 1


@pytest.mark.parametrize("left, setting, expected", [
    (200.0, 60, 60),  # time enough: the setting (no fixed 20 s: real-time endpoints may take 60 s)
    (200.0, 25, 25),
    (20.9, 60, math.floor(20.9 - h.CONNECT_TIMEOUT_SECONDS - h.RESERVE_SECONDS)),  # what is left, minus the reserve
])
def test_the_inference_read_timeout_is_the_setting_or_what_is_left(aws, model, left, setting, expected):
    context = Context(left)
    outcomes = h.process_batch([record("m1", '{"x": 1}')], *served_parts(aws, model, setting), time_left=context.left)
    assert failures(outcomes) == []
    (timeout,) = runtime_timeouts(model)
    assert timeout == expected and timeout <= context.left()


def test_clients_are_created_once_per_timeout_not_per_record(aws, model):
    records = [record(f"m{i}", '{"x": 1}') for i in range(5)]
    outcomes = h.process_batch(records, *served_parts(aws, model, 30))
    assert failures(outcomes) == [] and len(model.requests) == 5
    assert runtime_timeouts(model) == [30]
    assert [t for s, t in model.configs if s == "sqs"] == [h.WRITE_TIMEOUT_SECONDS]


def test_a_slow_inference_times_out_within_the_invocation_and_is_not_retried_by_the_sdk(aws, model):
    model.delays = [30.0]  # far longer than the invocation has
    context = Context(h.CONNECT_TIMEOUT_SECONDS + h.RESERVE_SECONDS + 1.8)  # room for a 1 s inference
    started = time.monotonic()
    outcomes = h.process_batch([record("m1", '{"x": 1}'), record("m2", '{"x": 2}')], *served_parts(aws, model),
                               time_left=context.left)
    assert failures(outcomes) == ["m1", "m2"]
    assert "ReadTimeoutError" in outcomes[0].reason
    assert outcomes[1].reason == "not attempted: the invocation is running out of time"
    assert len(model.requests) == 1  # one attempt: no SDK retry of a read timeout
    assert time.monotonic() - started < 2.5 and context.left() > h.RESERVE_SECONDS
    assert drain(aws["sqs"], aws["results"]) == []


def test_the_handler_returns_its_batch_response_before_the_deadline(aws, model, monkeypatch):
    # m1 answers in 0.3 s; m2 would take 30 s; m3 finds too little time left to start.
    model.delays = [0.3, 30.0]
    for key, value in {"SAGEMAKER_ENDPOINT_NAME": ENDPOINT, "DEAD_LETTER_QUEUE_URL": aws["requests-dlq"],
                       "RESULTS_QUEUE_URL": aws["results"], "INVOCATION_TIMEOUT_SECONDS": "60"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(h, "_clients", h.build(h.Config.from_env(), model.factory))
    context = Context(11.0)
    response = h.handler({"Records": [record("m1", '{"x": 1}'), record("m2", '{"x": 2}'), record("m3", '{"x": 3}')]},
                         context)
    assert context.left() >= h.RETURN_MARGIN_SECONDS  # returned in time: Lambda got the partial response
    assert response == {"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}
    assert len(model.requests) == 2
    (result,) = drain(aws["sqs"], aws["results"])
    assert json.loads(result["Body"])["source_message_id"] == "m1"
    # the read timeouts were what was left minus connect and reserve, not the 60 s setting
    assert max(runtime_timeouts(model)) <= 11.0 - h.CONNECT_TIMEOUT_SECONDS - h.RESERVE_SECONDS


def test_the_settings_overhead_leaves_one_full_inference_to_the_first_record(aws, model):
    from scaling_patterns.patterns.queue_to_sagemaker.settings import INVOKER_OVERHEAD_SECONDS

    # A function timeout of exactly invocation_timeout_seconds + the overhead the settings require:
    context = Context(45 + INVOKER_OVERHEAD_SECONDS - 0.5)  # minus what a cold start may take first
    outcomes = h.process_batch([record("m1", '{"x": 1}')], *served_parts(aws, model, 45), time_left=context.left)
    assert failures(outcomes) == []
    assert runtime_timeouts(model) == [45]


# --- results: one per source message -------------------------------------------------------------


def test_queue_results_carry_the_source_message_id_as_attribute_and_body_field_on_every_delivery(aws):
    expect_ok(aws["stubber"], '{"x": 1}', {"text": "first"})
    expect_ok(aws["stubber"], '{"x": 1}', {"text": "second"})  # a sampling model answers differently
    h.process_batch([record("m1", '{"x": 1}')], *parts(aws))
    h.process_batch([record("m1", '{"x": 1}', receive_count=2)], *parts(aws))  # SQS delivered it again
    results = drain(aws["sqs"], aws["results"])
    assert [json.loads(m["Body"])["source_message_id"] for m in results] == ["m1", "m1"]
    assert [m["MessageAttributes"]["source_message_id"]["StringValue"] for m in results] == ["m1", "m1"]


@pytest.fixture
def bucket(aws):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="results")
    return s3


def test_s3_results_are_objects_named_after_the_source_message(bucket):
    assert h.S3Results(fixed(bucket), "results", "scores/").write("m1", {"body": {"score": 1}}) == "written"
    body = bucket.get_object(Bucket="results", Key="scores/m1.json")["Body"].read()
    assert json.loads(body) == {"body": {"score": 1}, "source_message_id": "m1"}


def test_a_redelivered_message_keeps_its_first_s3_result(aws, bucket):
    expect_ok(aws["stubber"], '{"x": 1}', {"text": "first"})
    expect_ok(aws["stubber"], '{"x": 1}', {"text": "second"})
    endpoint, _, dead_letters = parts(aws)
    results = h.S3Results(fixed(bucket), "results", "scores/")
    first = h.process_batch([record("m1", '{"x": 1}')], endpoint, results, dead_letters)
    again = h.process_batch([record("m1", '{"x": 1}', receive_count=2)], endpoint, results, dead_letters)
    assert failures(first) == failures(again) == []  # the redelivery is done: deleted, not retried
    assert again[0].reason == "result already written by an earlier delivery; kept"
    stored = json.loads(bucket.get_object(Bucket="results", Key="scores/m1.json")["Body"].read())
    assert stored["body"] == {"text": "first"} and stored["source_message_id"] == "m1"


# --- classification, pure ------------------------------------------------------------------------


def test_classify_tells_poison_from_deployment_problems_and_retries():
    def response(code, status, original=None, message=""):
        body = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return body | ({"OriginalStatusCode": original} if original else {})

    assert h.classify(response("ModelError", 424, 400)) == "poison"
    assert h.classify(response("ModelError", 424, 408)) == "retry"
    assert h.classify(response("ModelError", 424, 500)) == "retry"
    assert h.classify(response("ValidationError", 400, message="Request abc has oversize body.")) == "poison"
    assert h.classify(response("ValidationError", 400, message=MISSING_ENDPOINT)) == "deployment"
    assert h.classify(response("ValidationError", 400, message="Something else.")) == "retry"
    assert h.classify(response("AccessDeniedException", 400)) == "deployment"
    assert h.classify(response("ExpiredTokenException", 400)) == "deployment"
    assert h.classify(response("SomethingNew", 502)) == "retry"


def test_non_json_content_types_pass_any_non_empty_body():
    assert h.payload_of("1.0,2.0,3.0", "text/csv") == b"1.0,2.0,3.0"
    with pytest.raises(h.PoisonMessage):
        h.payload_of("1.0,2.0", "application/json; charset=utf-8")


def test_binary_results_are_base64_encoded():
    assert h.decode_result(b"\xff\xfe", "application/octet-stream") == {
        "content_type": "application/octet-stream", "encoding": "base64", "body": "//4="}


def test_handler_reads_its_configuration_from_the_environment_and_answers_with_a_batch_response(monkeypatch, aws):
    monkeypatch.setenv("SAGEMAKER_ENDPOINT_NAME", ENDPOINT)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", aws["requests-dlq"])
    monkeypatch.setenv("RESULTS_QUEUE_URL", aws["results"])
    monkeypatch.setenv("INVOCATION_TIMEOUT_SECONDS", "45")
    config = h.Config.from_env()
    assert (config.destination, config.content_type, config.invocation_timeout_seconds) == ("queue", "application/json", 45)
    monkeypatch.setattr(h, "_clients", parts(aws))
    response = h.handler({"Records": [record("bad", "{")]}, Context(30))
    assert response == {"batchItemFailures": []}
    assert len(drain(aws["sqs"], aws["requests-dlq"])) == 1
