"""SQS -> SageMaker invoker (stack `queue-to-sagemaker`).

Invoked by an SQS event source mapping with ``ReportBatchItemFailures``. For each message:

1. check the payload (non-empty; valid JSON when ``CONTENT_TYPE`` is JSON);
2. ``InvokeEndpoint`` on ``SAGEMAKER_ENDPOINT_NAME``;
3. write the result to the destination (``RESULTS_DESTINATION``: ``queue`` -> send to
   ``RESULTS_QUEUE_URL``; ``s3`` -> put ``<RESULTS_PREFIX><message id>.json`` in
   ``RESULTS_BUCKET``), keyed by the source message id.

Each failure is one of three kinds:

- *poison* (bad payload, the model rejecting the input with a 4xx, a payload-related
  validation error such as an oversize body): retrying cannot help, so the message is sent
  to ``DEAD_LETTER_QUEUE_URL`` at once, with the reason as message attributes, and counts as
  handled (it is not returned as a failure);
- *deployment* (missing or misnamed endpoint or variant, access denied, bad credentials, a
  missing results queue or bucket): no message can succeed until the deployment is fixed, so
  the message and every record after it in the batch are reported as failed, the rest
  without being attempted, and the reason is logged once. Retries are bounded by ``maxReceiveCount``, after which SQS moves
  the messages to the dead-letter queue;
- *retryable* (throttling, 5xx, model not ready, timeouts, a failed result write, anything
  unexpected): the message id is returned in ``batchItemFailures``, so SQS delivers it again
  after the visibility timeout.

Time: every AWS call's budget comes from what is left of the invocation
(``context.get_remaining_time_in_millis()``). InvokeEndpoint waits at most
``min(INVOCATION_TIMEOUT_SECONDS, left - connect timeout - RESERVE_SECONDS)``; the reserve
holds one result write and the batch response. A record is not started when its inference
would get less than ``MIN_INFERENCE_SECONDS``. botocore never retries on its own
(``total_max_attempts`` 1); the few retries done here are bounded by the same budget. So the
handler returns its partial batch response before the function times out.

Only failed message ids are returned; the rest of the batch is deleted by Lambda. Every
message produces one structured log record (message id, outcome, reason, receive count).

Logic is in pure functions and small adapters that take their boto3 clients (through a
:class:`ClientPool`), so tests use moto, botocore's Stubber or a local HTTP server.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

logger = logging.getLogger("sagemaker_invoker")
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

# --- time budget (s) ---------------------------------------------------------------------
#: Connect timeout of every client (same region; a healthy connect takes milliseconds).
CONNECT_TIMEOUT_SECONDS = 2
#: Read timeout of one result or dead-letter write attempt.
WRITE_TIMEOUT_SECONDS = 3
#: Kept at the very end of the invocation to log and return the batch response.
RETURN_MARGIN_SECONDS = 1
#: Kept after an inference: one write attempt (connect + read) and the return margin.
RESERVE_SECONDS = CONNECT_TIMEOUT_SECONDS + WRITE_TIMEOUT_SECONDS + RETURN_MARGIN_SECONDS
#: A record is not started when its inference would get less than this read timeout.
MIN_INFERENCE_SECONDS = 1
#: Attempts of one InvokeEndpoint on throttling, 5xx or connection errors (never on a read
#: timeout: the model already had its full budget), each within what is left.
INVOKE_ATTEMPTS = 3
WRITE_ATTEMPTS = 2
#: Default when the environment does not say (SageMaker real-time endpoints: at most 60 s).
DEFAULT_INVOCATION_TIMEOUT_SECONDS = 60

#: Transient error codes: worth another attempt (now if time allows, else by redelivery).
TRANSIENT_CODES = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
    "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalServerError", "InternalError",
    "InternalDependencyException", "ModelNotReadyException", "RequestTimeout", "RequestTimeoutException",
    "SlowDown", "ConditionalRequestConflict",
})
#: Error codes that mean the deployment (not the message) is broken: every record would fail.
DEPLOYMENT_CODES = frozenset({
    "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidClientTokenId",
    "InvalidSignatureException", "SignatureDoesNotMatch", "ExpiredTokenException", "ExpiredToken",
    "MissingAuthenticationTokenException", "MissingAuthenticationToken", "IncompleteSignature",
    "IncompleteSignatureException", "NotAuthorized", "AuthFailure",
})
#: Write errors that mean the destination is missing: every record's write would fail too.
MISSING_DESTINATION_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NoSuchBucket"})
VALIDATION_CODES = frozenset({"ValidationError", "ValidationException"})
#: ValidationError messages about the request itself, e.g. "Request <id> has oversize body."
PAYLOAD_PROBLEM = re.compile(r"oversize|too large|exceed|content[ -]length|payload size|at 'body'|body (size|length)", re.I)
#: ValidationError messages about the deployment, e.g. "Endpoint foo of account 123456789012 not found."
DEPLOYMENT_PROBLEM = re.compile(r"not found|variant|inference component|multi-model|target model|not in service", re.I)


class PoisonMessage(Exception):
    """The message can never succeed: send it to the dead-letter queue, do not retry."""


class RetryableError(Exception):
    """The message may succeed later: report it as failed so SQS delivers it again."""


class DeploymentError(RetryableError):
    """No message can succeed until the deployment is fixed: stop invoking for this batch."""


class OutOfTime(RetryableError):
    """What is left of the invocation cannot hold the call."""


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


def _error(response: dict[str, Any]) -> tuple[str, int, str]:
    error = response.get("Error", {})
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return str(error.get("Code", "")), status, str(error.get("Message", ""))


def classify(response: dict[str, Any]) -> str:
    """``"poison"``, ``"deployment"`` or ``"retry"`` for a botocore error response of InvokeEndpoint."""
    code, status, message = _error(response)
    if code == "ModelError":  # the container answered with an error status of its own
        original = int(response.get("OriginalStatusCode") or 0)
        return "poison" if 400 <= original < 500 and original not in (408, 429) else "retry"
    if code in VALIDATION_CODES:
        # SageMaker answers a missing endpoint with ValidationError too: only a message about
        # the request itself makes the message poison.
        if PAYLOAD_PROBLEM.search(message):
            return "poison"
        return "deployment" if DEPLOYMENT_PROBLEM.search(message) else "retry"
    if code in DEPLOYMENT_CODES or status in (401, 403):
        return "deployment"
    if status == 413:  # request entity too large
        return "poison"
    return "retry"


def transient(exc: BaseException) -> bool:
    """Worth another attempt at once: throttling, 5xx, connection errors (not read timeouts)."""
    from botocore.exceptions import ClientError, ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError

    if isinstance(exc, ClientError):
        code, status, _ = _error(exc.response)
        return code != "ModelError" and (code in TRANSIENT_CODES or status >= 500 or status == 429)
    return isinstance(exc, (ConnectTimeoutError, EndpointConnectionError, ConnectionClosedError))


def deployment_failure(exc: BaseException) -> bool:
    """A write failed for a reason every record shares (access denied, queue or bucket missing)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code, status, _ = _error(response)
    return code in DEPLOYMENT_CODES or code in MISSING_DESTINATION_CODES or status in (401, 403)


def read_timeout_within(time_left: float, cap: float, keep: float) -> int | None:
    """Whole seconds a call may wait for its response: ``min(cap, time_left - connect - keep)``, or None below 1 s."""
    seconds = math.floor(min(cap, time_left - CONNECT_TIMEOUT_SECONDS - keep))
    return seconds if seconds >= 1 else None


def backoff_seconds(attempt: int) -> float:
    """Jittered exponential backoff between attempts in one invocation: 0.05-0.1 s, then 0.1-0.2 s."""
    return 0.1 * (2 ** attempt) * (0.5 + random.random() / 2)


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
    deployment: bool = False  # the failure is the deployment's: do not invoke for the rest of the batch

    @property
    def failed(self) -> bool:
        return self.status == "retry"


def batch_response(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """The partial batch response: only messages to deliver again."""
    return {"batchItemFailures": [{"itemIdentifier": o.message_id} for o in outcomes if o.failed]}


# ----------------------------------------------------------------------------------------
# Adapters (clients injected)
# ----------------------------------------------------------------------------------------

TimeLeft = Callable[[], float]


def no_deadline() -> float:
    return float("inf")


class ClientPool:
    """Clients of one service by read timeout (whole seconds), created once each.

    botocore fixes timeouts when a client is created, so a call that must fit in what is
    left of the invocation takes the client built for that many seconds. None retries on
    its own (``total_max_attempts`` 1): retries are decided here, within the budget.
    """

    def __init__(self, factory: Callable[..., Any], service: str):
        self.factory, self.service = factory, service
        self._clients: dict[int, Any] = {}

    def get(self, read_timeout: int) -> Any:
        client = self._clients.get(read_timeout)
        if client is None:
            from botocore.config import Config as BotoConfig

            client = self.factory(self.service, config=BotoConfig(
                connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=read_timeout,
                retries={"mode": "standard", "total_max_attempts": 1}))
            self._clients[read_timeout] = client
        return client

    def call(self, call: Callable[[Any], Any], *, cap: float, keep: float, time_left: TimeLeft, attempts: int,
             what: str, sleep: Callable[[float], None] = time.sleep) -> Any:
        """``call(client)`` with a read timeout that fits in ``time_left() - keep``; transient errors retried while time allows."""
        for attempt in range(attempts):
            timeout = read_timeout_within(time_left(), cap, keep)
            if timeout is None:
                raise OutOfTime(f"not attempted: too little of the invocation left for {what}"
                                + (f" (after {attempt} attempts)" if attempt else ""))
            try:
                return call(self.get(timeout))
            except Exception as exc:  # noqa: BLE001 - re-raised unless transient and time allows another attempt
                if attempt + 1 >= attempts or not transient(exc):
                    raise
                pause = backoff_seconds(attempt)
                if read_timeout_within(time_left() - pause, cap, keep) is None:
                    raise
                sleep(pause)
        raise AssertionError("unreachable")


def _client_error_reason(exc: Any) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()


class Endpoint:
    def __init__(self, clients: ClientPool, name: str, content_type: str, accept: str,
                 invocation_timeout_seconds: int = DEFAULT_INVOCATION_TIMEOUT_SECONDS):
        self.clients, self.name, self.content_type, self.accept = clients, name, content_type, accept
        self.invocation_timeout_seconds = invocation_timeout_seconds

    def invoke(self, payload: bytes, time_left: TimeLeft = no_deadline) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        def call(client: Any) -> dict[str, Any]:
            response = client.invoke_endpoint(EndpointName=self.name, Body=payload,
                                              ContentType=self.content_type, Accept=self.accept)
            return decode_result(response["Body"].read(), response.get("ContentType"))

        try:
            return self.clients.call(call, cap=self.invocation_timeout_seconds, keep=RESERVE_SECONDS,
                                     time_left=time_left, attempts=INVOKE_ATTEMPTS, what="an inference")
        except ClientError as exc:
            reason = _client_error_reason(exc)
            kind = classify(exc.response)
            if kind == "poison":
                raise PoisonMessage(reason) from None
            if kind == "deployment":
                raise DeploymentError(reason) from None
            raise RetryableError(reason) from None
        except BotoCoreError as exc:  # connection errors, read timeouts
            raise RetryableError(f"{type(exc).__name__}: {exc}") from None


class Results(Protocol):
    def write(self, message_id: str, result: dict[str, Any], time_left: TimeLeft = no_deadline) -> str: ...


def _write(clients: ClientPool, call: Callable[[Any], Any], time_left: TimeLeft, what: str) -> Any:
    return clients.call(call, cap=WRITE_TIMEOUT_SECONDS, keep=RETURN_MARGIN_SECONDS, time_left=time_left,
                        attempts=WRITE_ATTEMPTS, what=what)


class QueueResults:
    """One message per result; body field and message attribute ``source_message_id`` are the deduplication key."""

    def __init__(self, clients: ClientPool, queue_url: str):
        self.clients, self.queue_url = clients, queue_url

    def write(self, message_id: str, result: dict[str, Any], time_left: TimeLeft = no_deadline) -> str:
        body = json.dumps({**result, "source_message_id": message_id})
        _write(self.clients, lambda client: client.send_message(
            QueueUrl=self.queue_url, MessageBody=body,
            MessageAttributes={"source_message_id": {"DataType": "String", "StringValue": message_id}}),
            time_left, "writing the result")
        return "written"


class S3Results:
    """One object per source message, ``<prefix><message id>.json``, written only if absent.

    The put is conditional (``If-None-Match: *``): a redelivered message whose result is
    already there keeps the first result instead of replacing it with a second, different one.
    """

    def __init__(self, clients: ClientPool, bucket: str, prefix: str):
        self.clients, self.bucket, self.prefix = clients, bucket, prefix

    def key(self, message_id: str) -> str:
        return f"{self.prefix}{message_id}.json"

    def write(self, message_id: str, result: dict[str, Any], time_left: TimeLeft = no_deadline) -> str:
        from botocore.exceptions import ClientError

        body = json.dumps({**result, "source_message_id": message_id}).encode("utf-8")

        def put(client: Any) -> None:
            extra = {"IfNoneMatch": "*"} if _supports_if_none_match(client) else {}
            client.put_object(Bucket=self.bucket, Key=self.key(message_id), Body=body,
                              ContentType="application/json", **extra)

        try:
            _write(self.clients, put, time_left, "writing the result")
        except ClientError as exc:
            code, status, _ = _error(exc.response)
            if code == "PreconditionFailed" or status == 412:
                return "kept"  # written by an earlier delivery of the same message
            raise
        return "written"


def _supports_if_none_match(client: Any) -> bool:
    """Conditional puts need a botocore from August 2024 or later (an older Lambda runtime SDK: a plain put)."""
    try:
        return "IfNoneMatch" in client.meta.service_model.operation_model("PutObject").input_shape.members
    except Exception:  # noqa: BLE001 - a client without a service model (tests' fakes): plain put
        return False


class DeadLetters:
    def __init__(self, clients: ClientPool, queue_url: str):
        self.clients, self.queue_url = clients, queue_url

    def send(self, record: dict[str, Any], reason: str, time_left: TimeLeft = no_deadline) -> None:
        _write(self.clients, lambda client: client.send_message(
            QueueUrl=self.queue_url, MessageBody=record.get("body") or "(empty)",
            MessageAttributes={
                "error_kind": {"DataType": "String", "StringValue": "poison"},
                "error": {"DataType": "String", "StringValue": reason[:1024] or "unknown"},
                "source_message_id": {"DataType": "String", "StringValue": record["messageId"]},
            }), time_left, "the dead-letter queue")


# ----------------------------------------------------------------------------------------
# Processing
# ----------------------------------------------------------------------------------------


def process_record(record: dict[str, Any], endpoint: Endpoint, results: Results, dead_letters: DeadLetters,
                   time_left: TimeLeft = no_deadline) -> Outcome:
    message_id = record["messageId"]
    try:
        result = endpoint.invoke(payload_of(record.get("body"), endpoint.content_type), time_left)
    except PoisonMessage as exc:
        try:
            dead_letters.send(record, str(exc), time_left)
        except Exception as send_error:  # noqa: BLE001 - keep it for a later receive instead of losing it
            return Outcome(message_id, "retry", f"poison ({exc}), but sending to the DLQ failed: {send_error}",
                           deployment=deployment_failure(send_error))
        return Outcome(message_id, "poison", str(exc))
    except DeploymentError as exc:
        return Outcome(message_id, "retry", str(exc), deployment=True)
    except RetryableError as exc:
        return Outcome(message_id, "retry", str(exc))
    try:
        written = results.write(message_id, {"endpoint": endpoint.name, **result}, time_left)
    except Exception as exc:  # noqa: BLE001 - the write is retried with the message
        return Outcome(message_id, "retry", f"writing the result failed: {exc}", deployment=deployment_failure(exc))
    return Outcome(message_id, "ok", "" if written == "written" else "result already written by an earlier delivery; kept")


def _receive_count(record: dict[str, Any]) -> int:
    return int(record.get("attributes", {}).get("ApproximateReceiveCount", 0) or 0)


def process_batch(records: list[dict[str, Any]], endpoint: Endpoint, results: Results, dead_letters: DeadLetters,
                  time_left: TimeLeft = no_deadline) -> list[Outcome]:
    outcomes: list[Outcome] = []
    broken: Outcome | None = None  # the first deployment failure of this batch
    for record in records:
        started = time.monotonic()
        message_id = record["messageId"]
        if broken is not None:
            outcome = Outcome(message_id, "retry", "not attempted: a deployment problem earlier in this batch (logged once)")
        elif read_timeout_within(time_left(), MIN_INFERENCE_SECONDS, RESERVE_SECONDS) is None:
            outcome = Outcome(message_id, "retry", "not attempted: the invocation is running out of time")
        else:
            try:
                outcome = process_record(record, endpoint, results, dead_letters, time_left)
            except Exception as exc:  # noqa: BLE001 - one bad message must not fail the whole batch
                outcome = Outcome(message_id, "retry", f"unexpected {type(exc).__name__}: {exc}")
            if outcome.deployment:
                broken = outcome
        outcomes.append(outcome)
        log = logger.info if outcome.status == "ok" else logger.warning
        log("message processed", extra={
            "message_id": message_id, "outcome": outcome.status, "reason": outcome.reason,
            "receive_count": _receive_count(record), "duration_ms": round((time.monotonic() - started) * 1000, 1)})
    if broken is not None:
        skipped = [o.message_id for o in outcomes[outcomes.index(broken) + 1:]]
        logger.error("deployment problem: the rest of the batch was not attempted and will be retried", extra={
            "endpoint": endpoint.name, "reason": broken.reason, "first_message_id": broken.message_id,
            "not_invoked": len(skipped), "not_invoked_message_ids": skipped})
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
    invocation_timeout_seconds: int = DEFAULT_INVOCATION_TIMEOUT_SECONDS

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
            invocation_timeout_seconds=int(env.get("INVOCATION_TIMEOUT_SECONDS", DEFAULT_INVOCATION_TIMEOUT_SECONDS)),
        )


def build(config: Config, client_factory: Callable[..., Any]) -> tuple[Endpoint, Results, DeadLetters]:
    sqs = ClientPool(client_factory, "sqs")
    results: Results = (S3Results(ClientPool(client_factory, "s3"), config.results_bucket, config.results_prefix)
                        if config.destination == "s3" else QueueResults(sqs, config.results_queue_url))
    endpoint = Endpoint(ClientPool(client_factory, "sagemaker-runtime"), config.endpoint_name, config.content_type,
                        config.accept, config.invocation_timeout_seconds)
    return endpoint, results, DeadLetters(sqs, config.dead_letter_queue_url)


def time_left_of(context: Any) -> TimeLeft:
    """Seconds left of the invocation, read from the Lambda context at each call."""
    if context is None:
        return no_deadline
    return lambda: context.get_remaining_time_in_millis() / 1000


_clients: tuple[Endpoint, Results, DeadLetters] | None = None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global _clients
    if _clients is None:  # once per execution environment
        import boto3

        _clients = build(Config.from_env(), boto3.session.Session().client)  # one session: clients share its loaders
    endpoint, results, dead_letters = _clients
    outcomes = process_batch(event.get("Records", []), endpoint, results, dead_letters, time_left_of(context))
    response = batch_response(outcomes)
    logger.info("batch processed", extra={
        "records": len(outcomes), "ok": sum(o.status == "ok" for o in outcomes),
        "poison": sum(o.status == "poison" for o in outcomes), "retry": len(response["batchItemFailures"])})
    return response
