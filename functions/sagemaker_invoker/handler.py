"""SQS -> SageMaker invoker (stack `queue-to-sagemaker`).

Invoked by an SQS event source mapping with ``ReportBatchItemFailures``. For each message:

1. check the payload (non-empty; valid JSON when ``CONTENT_TYPE`` is JSON);
2. ``InvokeEndpoint`` on ``SAGEMAKER_ENDPOINT_NAME``;
3. write the result to the destination (``RESULTS_DESTINATION``: ``queue`` -> send to
   ``RESULTS_QUEUE_URL``; ``s3`` -> put ``<RESULTS_PREFIX><message id>.json`` in
   ``RESULTS_BUCKET``).

Each failure is one of two kinds:

- *retryable* (throttling, 5xx, model not ready, timeouts, a failed result write, anything
  unexpected): the message id is returned in ``batchItemFailures``, so SQS delivers it again
  after the visibility timeout, and after ``maxReceiveCount`` receives moves it to the
  dead-letter queue. Retries are bounded by the queue, never infinite;
- *poison* (bad payload, or the model rejecting the input with a 4xx): retrying cannot help,
  so the message is sent to ``DEAD_LETTER_QUEUE_URL`` at once, with the reason as message
  attributes, and counts as handled (it is not returned as a failure).

Only failed message ids are returned; the rest of the batch is deleted by Lambda. Every
message produces one structured log record (message id, outcome, reason, receive count).

Logic is in pure functions and small adapters that take their boto3 client, so tests use
moto or botocore's Stubber.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

logger = logging.getLogger("sagemaker_invoker")
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

#: Error codes worth another attempt later (the message is fine; the endpoint is not, yet).
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "ServiceUnavailable",
    "ServiceUnavailableException", "InternalFailure", "InternalServerError", "InternalDependencyException",
    "ModelNotReadyException", "RequestTimeout", "RequestTimeoutException",
})
#: Error codes that mean "this input will never work".
POISON_CODES = frozenset({"ValidationError", "ValidationException"})
#: Stop taking new messages when less than this much time is left (s); they are retried.
TIME_RESERVE_SECONDS = 3.0


class PoisonMessage(Exception):
    """The message can never succeed: send it to the dead-letter queue, do not retry."""


class RetryableError(Exception):
    """The message may succeed later: report it as failed so SQS delivers it again."""


# ----------------------------------------------------------------------------------------
# Pure logic
# ----------------------------------------------------------------------------------------


def is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def payload_of(body: str | None, content_type: str) -> bytes:
    """The request bytes of a message body, or PoisonMessage when it cannot be sent."""
    if body is None or not body.strip():
        raise PoisonMessage("empty message body")
    if is_json(content_type):
        try:
            json.loads(body)
        except json.JSONDecodeError as exc:
            raise PoisonMessage(f"body is not JSON ({exc.msg} at position {exc.pos})") from None
    return body.encode("utf-8")


def classify(response: dict[str, Any]) -> str:
    """``"poison"`` or ``"retry"`` for a botocore error response of InvokeEndpoint."""
    code = response.get("Error", {}).get("Code", "")
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code == "ModelError":  # the container answered with an error status of its own
        original = int(response.get("OriginalStatusCode") or 0)
        return "poison" if 400 <= original < 500 and original not in (408, 429) else "retry"
    if code in POISON_CODES:
        return "poison"
    if code in RETRYABLE_CODES or status >= 500 or status == 429:
        return "retry"
    # Access denied, missing endpoint ...: a deployment problem, not the message's fault.
    # Retrying is bounded by maxReceiveCount, after which the message waits in the DLQ.
    return "retry"


def decode_result(body: bytes, content_type: str | None) -> dict[str, Any]:
    """Endpoint response as JSON-serializable data (parsed JSON, text, or base64)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {"content_type": content_type, "encoding": "base64", "body": base64.b64encode(body).decode("ascii")}
    if content_type and is_json(content_type):
        try:
            return {"content_type": content_type, "body": json.loads(text)}
        except json.JSONDecodeError:
            pass
    return {"content_type": content_type, "body": text}


@dataclass(frozen=True)
class Outcome:
    message_id: str
    status: str  # "ok", "poison" (sent to the DLQ), "retry" (reported as failed)
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "retry"


def batch_response(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """The partial batch response: only messages to deliver again."""
    return {"batchItemFailures": [{"itemIdentifier": o.message_id} for o in outcomes if o.failed]}


# ----------------------------------------------------------------------------------------
# Adapters (clients injected)
# ----------------------------------------------------------------------------------------


class Endpoint:
    def __init__(self, client: Any, name: str, content_type: str, accept: str):
        self.client, self.name, self.content_type, self.accept = client, name, content_type, accept

    def invoke(self, payload: bytes) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.invoke_endpoint(EndpointName=self.name, Body=payload,
                                                   ContentType=self.content_type, Accept=self.accept)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            reason = f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
            if classify(exc.response) == "poison":
                raise PoisonMessage(reason) from None
            raise RetryableError(reason) from None
        except BotoCoreError as exc:  # connection errors, read timeouts
            raise RetryableError(f"{type(exc).__name__}: {exc}") from None
        return decode_result(response["Body"].read(), response.get("ContentType"))


class Results(Protocol):
    def write(self, message_id: str, result: dict[str, Any]) -> None: ...


class QueueResults:
    def __init__(self, client: Any, queue_url: str):
        self.client, self.queue_url = client, queue_url

    def write(self, message_id: str, result: dict[str, Any]) -> None:
        self.client.send_message(
            QueueUrl=self.queue_url, MessageBody=json.dumps(result),
            MessageAttributes={"source_message_id": {"DataType": "String", "StringValue": message_id}})


class S3Results:
    def __init__(self, client: Any, bucket: str, prefix: str):
        self.client, self.bucket, self.prefix = client, bucket, prefix

    def write(self, message_id: str, result: dict[str, Any]) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}{message_id}.json",
                               Body=json.dumps(result).encode("utf-8"), ContentType="application/json")


class DeadLetters:
    def __init__(self, client: Any, queue_url: str):
        self.client, self.queue_url = client, queue_url

    def send(self, record: dict[str, Any], reason: str) -> None:
        self.client.send_message(
            QueueUrl=self.queue_url, MessageBody=record.get("body") or "(empty)",
            MessageAttributes={
                "error_kind": {"DataType": "String", "StringValue": "poison"},
                "error": {"DataType": "String", "StringValue": reason[:1024] or "unknown"},
                "source_message_id": {"DataType": "String", "StringValue": record["messageId"]},
            })


# ----------------------------------------------------------------------------------------
# Processing
# ----------------------------------------------------------------------------------------


def process_record(record: dict[str, Any], endpoint: Endpoint, results: Results, dead_letters: DeadLetters) -> Outcome:
    message_id = record["messageId"]
    try:
        result = endpoint.invoke(payload_of(record.get("body"), endpoint.content_type))
    except PoisonMessage as exc:
        try:
            dead_letters.send(record, str(exc))
        except Exception as send_error:  # noqa: BLE001 - keep it for a later receive instead of losing it
            return Outcome(message_id, "retry", f"poison ({exc}), but sending to the DLQ failed: {send_error}")
        return Outcome(message_id, "poison", str(exc))
    except RetryableError as exc:
        return Outcome(message_id, "retry", str(exc))
    try:
        results.write(message_id, {"source_message_id": message_id, "endpoint": endpoint.name, **result})
    except Exception as exc:  # noqa: BLE001 - the write is retried with the message
        return Outcome(message_id, "retry", f"writing the result failed: {exc}")
    return Outcome(message_id, "ok")


def process_batch(records: list[dict[str, Any]], endpoint: Endpoint, results: Results, dead_letters: DeadLetters,
                  time_left: Callable[[], float] = lambda: float("inf")) -> list[Outcome]:
    outcomes = []
    for record in records:
        started = time.monotonic()
        if time_left() < TIME_RESERVE_SECONDS:
            outcome = Outcome(record["messageId"], "retry", "not attempted: the invocation is running out of time")
        else:
            try:
                outcome = process_record(record, endpoint, results, dead_letters)
            except Exception as exc:  # noqa: BLE001 - one bad message must not fail the whole batch
                outcome = Outcome(record["messageId"], "retry", f"unexpected {type(exc).__name__}: {exc}")
        outcomes.append(outcome)
        log = logger.info if outcome.status == "ok" else logger.warning
        log("message processed", extra={
            "message_id": outcome.message_id, "outcome": outcome.status, "reason": outcome.reason,
            "receive_count": int(record.get("attributes", {}).get("ApproximateReceiveCount", 0) or 0),
            "duration_ms": round((time.monotonic() - started) * 1000, 1)})
    return outcomes


@dataclass(frozen=True)
class Config:
    endpoint_name: str
    content_type: str
    accept: str
    destination: str
    results_queue_url: str
    results_bucket: str
    results_prefix: str
    dead_letter_queue_url: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Config":
        env = dict(os.environ if env is None else env)
        return cls(
            endpoint_name=env["SAGEMAKER_ENDPOINT_NAME"],
            content_type=env.get("CONTENT_TYPE", "application/json"),
            accept=env.get("ACCEPT", "application/json"),
            destination=env.get("RESULTS_DESTINATION", "queue"),
            results_queue_url=env.get("RESULTS_QUEUE_URL", ""),
            results_bucket=env.get("RESULTS_BUCKET", ""),
            results_prefix=env.get("RESULTS_PREFIX", ""),
            dead_letter_queue_url=env["DEAD_LETTER_QUEUE_URL"],
        )


def build(config: Config, client_factory: Callable[..., Any]) -> tuple[Endpoint, Results, DeadLetters]:
    from botocore.config import Config as BotoConfig

    runtime = client_factory("sagemaker-runtime", config=BotoConfig(
        retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=20))
    sqs = client_factory("sqs")
    results: Results = (S3Results(client_factory("s3"), config.results_bucket, config.results_prefix)
                        if config.destination == "s3" else QueueResults(sqs, config.results_queue_url))
    return Endpoint(runtime, config.endpoint_name, config.content_type, config.accept), results, DeadLetters(sqs, config.dead_letter_queue_url)


_clients: tuple[Endpoint, Results, DeadLetters] | None = None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global _clients
    if _clients is None:  # once per execution environment
        import boto3

        _clients = build(Config.from_env(), boto3.client)
    endpoint, results, dead_letters = _clients
    time_left = (lambda: context.get_remaining_time_in_millis() / 1000) if context is not None else (lambda: float("inf"))
    outcomes = process_batch(event.get("Records", []), endpoint, results, dead_letters, time_left)
    response = batch_response(outcomes)
    logger.info("batch processed", extra={
        "records": len(outcomes), "ok": sum(o.status == "ok" for o in outcomes),
        "poison": sum(o.status == "poison" for o in outcomes), "retry": len(response["batchItemFailures"])})
    return response
