"""Job intake (stack `queue-depth-scaling`): validate a job and put it on the work queue.

Invoke it with the job as the event (``aws lambda invoke``, SDK, Step Functions), or with an
API-Gateway/function-URL style event whose ``body`` is the job as a JSON string::

    {"payload": {...}, "job_id": "optional-id", "type": "optional-kind"}

- ``payload`` (object, required): what the worker gets;
- ``job_id`` (optional, 1-80 of ``A-Z a-z 0-9 _ -``): generated when absent;
- ``type`` (optional string, 1-64 characters).

Returns ``{"accepted": true, "job_id", "message_id"}`` or ``{"accepted": false, "errors": [...]}``
(nothing is sent). The queued message is the job plus ``submitted_at``. Validation is a pure
function; the SQS client is injected.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger("job_intake")
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
ALLOWED_KEYS = {"job_id", "type", "payload"}


def validate_job(event: Any, max_bytes: int, now: datetime, new_id: Any = uuid.uuid4) -> tuple[dict[str, Any] | None, list[str]]:
    """(message body, []) for a valid job, else (None, problems)."""
    if isinstance(event, dict) and isinstance(event.get("body"), str) and "payload" not in event:
        try:
            event = json.loads(event["body"])
        except ValueError:
            return None, ["body is not valid JSON"]
    if not isinstance(event, dict):
        return None, [f"a job must be a JSON object (given {type(event).__name__})"]
    errors = []
    unknown = sorted(set(event) - ALLOWED_KEYS)
    if unknown:
        errors.append(f"unknown fields: {', '.join(unknown)} (allowed: {', '.join(sorted(ALLOWED_KEYS))})")
    if not isinstance(event.get("payload"), dict):
        errors.append("payload is required and must be an object")
    job_id = event.get("job_id")
    if job_id is not None and not (isinstance(job_id, str) and JOB_ID.fullmatch(job_id)):
        errors.append(f"job_id must be 1-80 characters of A-Z a-z 0-9 _ - (given {job_id!r})")
    job_type = event.get("type")
    if job_type is not None and not (isinstance(job_type, str) and 1 <= len(job_type) <= 64):
        errors.append(f"type must be a string of 1-64 characters (given {job_type!r})")
    if errors:
        return None, errors
    message = {"job_id": job_id or str(new_id()), "payload": event["payload"],
               "submitted_at": now.isoformat(timespec="seconds")}
    if job_type is not None:
        message["type"] = job_type
    size = len(json.dumps(message).encode())
    if size > max_bytes:
        return None, [f"job is {size} bytes; the limit is {max_bytes}"]
    return message, []


def enqueue(sqs: Any, queue_url: str, message: dict[str, Any]) -> str:
    response = sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))
    return response["MessageId"]


def intake(event: Any, sqs: Any, queue_url: str, max_bytes: int, now: datetime) -> dict[str, Any]:
    message, errors = validate_job(event, max_bytes, now)
    if message is None:
        logger.warning("job rejected", extra={"errors": errors})
        return {"accepted": False, "errors": errors}
    message_id = enqueue(sqs, queue_url, message)
    logger.info("job queued", extra={"job_id": message["job_id"], "message_id": message_id})
    return {"accepted": True, "job_id": message["job_id"], "message_id": message_id}


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    import boto3  # imported here so the pure functions above load without the SDK

    return intake(event, boto3.client("sqs"), os.environ["QUEUE_URL"], int(os.environ.get("MAX_JOB_BYTES", "262144")),
                  datetime.now(timezone.utc))
