"""functions/sagemaker_invoker: partial batch responses, retryable vs poison, result writing.

SageMaker Runtime is stubbed with botocore's Stubber (moto does not run models); SQS and S3
are moto.
"""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws

from tests.conftest import load_function

h = load_function("sagemaker_invoker")
REGION = "us-east-1"
ENDPOINT = "scorer"


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


def expect_error(stubber: Stubber, code: str, status: int, **modeled) -> None:
    stubber.add_client_error("invoke_endpoint", service_error_code=code, service_message=f"{code} happened",
                             http_status_code=status, expected_params={"EndpointName": ENDPOINT, "Body": ANY,
                                                                       "ContentType": ANY, "Accept": ANY},
                             modeled_fields=modeled or None)


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        runtime = boto3.client("sagemaker-runtime", region_name=REGION)
        queues = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("results", "requests-dlq")}
        with Stubber(runtime) as stubber:
            yield {"sqs": sqs, "runtime": runtime, "stubber": stubber, **queues}
            stubber.assert_no_pending_responses()


def parts(aws):
    return (h.Endpoint(aws["runtime"], ENDPOINT, "application/json", "application/json"),
            h.QueueResults(aws["sqs"], aws["results"]), h.DeadLetters(aws["sqs"], aws["requests-dlq"]))


def drain(sqs, url) -> list[dict]:
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            return messages
        messages += batch
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


# --- the batch contract ---------------------------------------------------------------------


def test_a_batch_with_some_failures_returns_exactly_the_retryable_ids(aws):
    stubber = aws["stubber"]
    expect_ok(stubber, '{"x": 1}', {"score": 0.9})
    expect_error(stubber, "ThrottlingException", 400)
    expect_ok(stubber, '{"x": 3}', {"score": 0.1})
    expect_error(stubber, "ServiceUnavailable", 503)
    expect_error(stubber, "ModelError", 424, OriginalStatusCode=500)
    records = [record("m1", '{"x": 1}'), record("m2", '{"x": 2}'), record("m3", '{"x": 3}'),
               record("m4", '{"x": 4}'), record("m5", '{"x": 5}')]
    outcomes = h.process_batch(records, *parts(aws))
    assert h.batch_response(outcomes) == {"batchItemFailures": [
        {"itemIdentifier": "m2"}, {"itemIdentifier": "m4"}, {"itemIdentifier": "m5"}]}
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
    outcomes = h.process_batch([record("bad", body)], *parts(aws))  # no stubbed call: the endpoint is not invoked
    assert h.batch_response(outcomes) == {"batchItemFailures": []}  # handled: SQS deletes it, no redelivery
    (dead,) = drain(aws["sqs"], aws["requests-dlq"])
    assert dead["MessageAttributes"]["error_kind"]["StringValue"] == "poison"
    assert reason in dead["MessageAttributes"]["error"]["StringValue"]
    assert dead["MessageAttributes"]["source_message_id"]["StringValue"] == "bad"
    assert drain(aws["sqs"], aws["results"]) == []


@pytest.mark.parametrize("code, status, modeled", [
    ("ModelError", 424, {"OriginalStatusCode": 400}),
    ("ModelError", 424, {"OriginalStatusCode": 422}),
    ("ValidationError", 400, {}),
])
def test_inputs_the_model_rejects_are_poison(aws, code, status, modeled):
    expect_error(aws["stubber"], code, status, **modeled)
    outcomes = h.process_batch([record("rejected", '{"x": "wrong shape"}', receive_count=1)], *parts(aws))
    assert outcomes[0].status == "poison"
    assert h.batch_response(outcomes)["batchItemFailures"] == []
    (dead,) = drain(aws["sqs"], aws["requests-dlq"])
    assert dead["Body"] == '{"x": "wrong shape"}'
    assert code in dead["MessageAttributes"]["error"]["StringValue"]


def test_a_poison_message_that_cannot_reach_the_dead_letter_queue_is_retried_not_lost(aws):
    endpoint, results, _ = parts(aws)
    gone = h.DeadLetters(aws["sqs"], aws["requests-dlq"] + "-deleted")
    outcomes = h.process_batch([record("bad", "{")], endpoint, results, gone)
    assert h.batch_response(outcomes) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert "sending to the DLQ failed" in outcomes[0].reason


# --- retryable failures ------------------------------------------------------------------------


@pytest.mark.parametrize("code, status, modeled", [
    ("ThrottlingException", 400, {}),
    ("ServiceUnavailable", 503, {}),
    ("InternalFailure", 500, {}),
    ("ModelNotReadyException", 429, {}),
    ("ModelError", 424, {"OriginalStatusCode": 503}),
    ("ModelError", 424, {"OriginalStatusCode": 429}),
    ("AccessDeniedException", 400, {}),  # a deployment problem: bounded retries, then the DLQ by redrive
])
def test_retryable_errors_are_reported_as_failures_and_not_dead_lettered(aws, code, status, modeled):
    expect_error(aws["stubber"], code, status, **modeled)
    outcomes = h.process_batch([record("m1", '{"x": 1}')], *parts(aws))
    assert h.batch_response(outcomes) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert drain(aws["sqs"], aws["requests-dlq"]) == []


def test_a_failed_result_write_is_retried(aws):
    expect_ok(aws["stubber"], '{"x": 1}', {"score": 1})
    endpoint, _, dead_letters = parts(aws)
    broken = h.QueueResults(aws["sqs"], aws["results"] + "-deleted")
    outcomes = h.process_batch([record("m1", '{"x": 1}')], endpoint, broken, dead_letters)
    assert h.batch_response(outcomes) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert "writing the result failed" in outcomes[0].reason


def test_messages_are_not_started_when_the_invocation_runs_out_of_time(aws):
    expect_ok(aws["stubber"], '{"x": 1}', {"score": 1})
    clock = iter([30.0, 1.0])
    outcomes = h.process_batch([record("m1", '{"x": 1}'), record("m2", '{"x": 2}')], *parts(aws),
                               time_left=lambda: next(clock))
    assert h.batch_response(outcomes) == {"batchItemFailures": [{"itemIdentifier": "m2"}]}


# --- classification and results, pure ------------------------------------------------------------


def test_classify_reads_the_original_status_of_model_errors():
    def response(code, status, original=None):
        body = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return body | ({"OriginalStatusCode": original} if original else {})

    assert h.classify(response("ModelError", 424, 400)) == "poison"
    assert h.classify(response("ModelError", 424, 408)) == "retry"
    assert h.classify(response("ModelError", 424, 500)) == "retry"
    assert h.classify(response("ValidationError", 400)) == "poison"
    assert h.classify(response("SomethingNew", 502)) == "retry"


def test_non_json_content_types_pass_any_non_empty_body():
    assert h.payload_of("1.0,2.0,3.0", "text/csv") == b"1.0,2.0,3.0"
    with pytest.raises(h.PoisonMessage):
        h.payload_of("1.0,2.0", "application/json; charset=utf-8")


def test_binary_results_are_base64_encoded():
    assert h.decode_result(b"\xff\xfe", "application/octet-stream") == {
        "content_type": "application/octet-stream", "encoding": "base64", "body": "//4="}


@mock_aws
def test_s3_results_are_objects_named_after_the_message(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="results")
    h.S3Results(s3, "results", "scores/").write("m1", {"body": {"score": 1}})
    body = s3.get_object(Bucket="results", Key="scores/m1.json")["Body"].read()
    assert json.loads(body) == {"body": {"score": 1}}


def test_handler_reads_its_configuration_from_the_environment_and_answers_with_a_batch_response(monkeypatch, aws):
    monkeypatch.setenv("SAGEMAKER_ENDPOINT_NAME", ENDPOINT)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", aws["requests-dlq"])
    monkeypatch.setenv("RESULTS_QUEUE_URL", aws["results"])
    config = h.Config.from_env()
    assert (config.destination, config.content_type) == ("queue", "application/json")
    monkeypatch.setattr(h, "_clients", parts(aws))
    response = h.handler({"Records": [record("bad", "{")]})
    assert response == {"batchItemFailures": []}
    assert len(drain(aws["sqs"], aws["requests-dlq"])) == 1
