"""Queue worker (stack `queue-depth-scaling`): runs on every instance of the worker group.

Not a Lambda function: user data installs this file as ``/opt/queue-worker/worker.py`` and a
systemd service runs ``main()`` with the JSON config the stack writes to
``/etc/queue-worker/config.json``. It must run on the AMI's Python (3.9 on Amazon Linux
2023) with boto3, so it uses nothing newer.

Loop: long-poll one job (``WaitTimeSeconds`` 20) -> process -> delete.

- Success (exit status 0 / no exception): the message is deleted.
- Failure or timeout (``job_timeout_seconds``): the message becomes visible again after
  ``retry_delay_seconds``; after ``max_receive_count`` receives SQS moves it to the DLQ.
- A message that is not a job (bad JSON, no ``job_id``/``payload``) is released at once so
  it reaches the DLQ after its receives instead of waiting out the visibility timeout.

Scale-in safety: before working on a message the instance sets *scale-in protection* on
itself, and clears it again as soon as the message is deleted or released, before the next
receive (two SetInstanceProtection calls per job). The Auto Scaling group therefore never
picks a busy worker for scale-in, and a scale-in or an instance refresh that waits for
protected instances can take the instance between two jobs even when the queue never runs
dry. If the instance is already leaving the group when it tries to protect itself (it was
chosen between the receive and the protection call), SetInstanceProtection fails with
ValidationError, the worker releases the message (visibility 0, another worker takes it) and
stops: nothing is lost, nothing is processed twice beyond SQS's at-least-once delivery. Any
other failure of that call (throttling, a network error) releases the message at once too,
and the worker backs off before its next receive.

Shutdown: systemd stops the service with ``KillMode=mixed``, so SIGTERM reaches only this
process, not the job's subprocess. The worker then finishes the job in hand, deletes its
message, clears its protection and exits; a message received after the signal is released.

Logic is in small classes taking their boto3 clients, so tests run it against moto.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

logger = logging.getLogger("queue_worker")

DEFAULT_CONFIG_PATH = "/etc/queue-worker/config.json"
IMDS = "http://169.254.169.254"


# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    queue_url: str
    group_name: str
    region: str
    job_timeout_seconds: int = 600
    retry_delay_seconds: int = 30
    wait_seconds: int = 20
    command: Optional[List[str]] = None

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Config":
        return cls(
            queue_url=str(data["queue_url"]),
            group_name=str(data["group_name"]),
            region=str(data["region"]),
            job_timeout_seconds=int(data.get("job_timeout_seconds", 600)),
            retry_delay_seconds=int(data.get("retry_delay_seconds", 30)),
            wait_seconds=int(data.get("wait_seconds", 20)),
            command=list(data["command"]) if data.get("command") else None,
        )

    @classmethod
    def load(cls, path: str) -> "Config":
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))


# ----------------------------------------------------------------------------------------
# Jobs (pure)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str


def parse_job(body: str) -> Dict[str, Any]:
    """The job in a message body; ValueError when it is not one."""
    try:
        job = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if not isinstance(job, dict) or not isinstance(job.get("job_id"), str) or not isinstance(job.get("payload"), dict):
        raise ValueError("body must be a JSON object with a string job_id and an object payload")
    return job


def run_job(job: Dict[str, Any], command: Optional[List[str]], timeout_seconds: int,
            sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Run one job: ``command`` with the job JSON on stdin, or the built-in demo."""
    if command is None:
        # Demo: "work" for payload.simulate_seconds (capped by the timeout), then succeed.
        seconds = float(job["payload"].get("simulate_seconds", 0) or 0)
        if seconds > timeout_seconds:
            return Outcome(False, f"simulated job of {seconds}s exceeds the {timeout_seconds}s timeout")
        sleep(max(seconds, 0.0))
        return Outcome(True, f"demo job done in {seconds}s")
    try:
        result = subprocess.run(command, input=json.dumps(job).encode(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=timeout_seconds, check=False)
    except subprocess.TimeoutExpired:
        return Outcome(False, f"timed out after {timeout_seconds}s")
    except OSError as exc:
        return Outcome(False, f"cannot run {command[0]}: {exc}")
    if result.returncode != 0:
        return Outcome(False, f"exit status {result.returncode}: {result.stderr.decode(errors='replace')[-500:]}")
    return Outcome(True, "exit status 0")


# ----------------------------------------------------------------------------------------
# AWS adapters (clients injected)
# ----------------------------------------------------------------------------------------


class InstanceLeavingGroup(Exception):
    """The instance is terminating (or detached): it must not take new work."""


class ProtectionFailed(Exception):
    """SetInstanceProtection failed for another reason (throttling, network): try again later."""


class ScaleInProtection:
    """Sets and clears scale-in protection of this instance, calling AWS only on a change.

    The state starts unknown, so the first idle poll clears a protection left behind by a
    worker that crashed mid-job (otherwise that instance could never be scaled in).
    """

    def __init__(self, client: Any, group_name: str, instance_id: str):
        self.client, self.group_name, self.instance_id = client, group_name, instance_id
        self.protected: Optional[bool] = None

    def set(self, protected: bool) -> None:
        """Set (True) or clear (False) the protection; InstanceLeavingGroup or ProtectionFailed when AWS refuses."""
        if protected == self.protected:
            return
        try:
            self.client.set_instance_protection(
                AutoScalingGroupName=self.group_name, InstanceIds=[self.instance_id], ProtectedFromScaleIn=protected)
        except Exception as exc:  # botocore ClientError: ValidationError when not InService
            self.protected = None  # unknown: the next change calls AWS again
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if protected and code == "ValidationError":
                raise InstanceLeavingGroup(str(exc)) from exc
            raise ProtectionFailed(f"{type(exc).__name__}: {exc}") from exc
        self.protected = protected


#: Backoff after a failed SetInstanceProtection: doubles per consecutive failure up to the cap (s).
PROTECTION_BACKOFF_SECONDS = 2.0
PROTECTION_BACKOFF_MAX_SECONDS = 60.0


@dataclass
class Worker:
    sqs: Any
    protection: ScaleInProtection
    config: Config
    process: Callable[[Dict[str, Any]], Outcome] = field(default=None)  # type: ignore[assignment]
    stop: threading.Event = field(default_factory=threading.Event)
    #: How the worker waits between polls (returns early when stopped); tests pass their own.
    wait: Callable[[float], Any] = field(default=None)  # type: ignore[assignment]
    protection_failures: int = 0

    def __post_init__(self) -> None:
        if self.process is None:
            self.process = lambda job: run_job(job, self.config.command, self.config.job_timeout_seconds)
        if self.wait is None:
            self.wait = self.stop.wait

    def poll_once(self) -> str:
        """One receive and what followed.

        ``idle``, ``done``, ``failed``, ``rejected``, ``released`` (stopping), ``leaving``
        (the instance is leaving the group) or ``unprotected`` (the protection call failed;
        the message was released at once).
        """
        self._clear_protection()  # between jobs: a scale-in or refresh may take this instance now
        response = self.sqs.receive_message(
            QueueUrl=self.config.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=self.config.wait_seconds,
            AttributeNames=["ApproximateReceiveCount"])
        messages = response.get("Messages", [])
        if not messages:
            return "idle"
        message = messages[0]
        if self.stop.is_set():
            self._release(message, 0)
            return "released"
        try:
            self.protection.set(True)
        except InstanceLeavingGroup as exc:
            self._release(message, 0)
            logger.warning("instance is leaving the group; job released", extra={"reason": str(exc)})
            self.stop.set()
            return "leaving"
        except ProtectionFailed as exc:
            # Not protected, so not safe to start: give the message back now rather than
            # leaving it invisible (and a receive spent) for the whole visibility timeout.
            self._release(message, 0)
            self.protection_failures += 1
            logger.warning("could not protect the instance from scale-in; job released", extra={
                "message_id": message["MessageId"], "reason": str(exc), "consecutive_failures": self.protection_failures})
            return "unprotected"
        self.protection_failures = 0
        try:
            return self._handle(message)
        finally:
            self._clear_protection()

    def _clear_protection(self) -> None:
        try:
            self.protection.set(False)
        except Exception as exc:  # noqa: BLE001 - retried before the next receive; the job is done either way
            logger.warning("could not clear scale-in protection", extra={"error": str(exc)})

    def backoff_seconds(self) -> float:
        """Jittered, doubling wait after consecutive protection failures (so many workers do not retry in step)."""
        base = min(PROTECTION_BACKOFF_MAX_SECONDS, PROTECTION_BACKOFF_SECONDS * 2 ** max(self.protection_failures - 1, 0))
        return base * (0.5 + random.random() / 2)

    def _handle(self, message: Dict[str, Any]) -> str:
        receives = message.get("Attributes", {}).get("ApproximateReceiveCount")
        try:
            job = parse_job(message["Body"])
        except ValueError as exc:
            logger.error("not a job; released towards the dead-letter queue",
                         extra={"message_id": message["MessageId"], "receive_count": receives, "error": str(exc)})
            self._release(message, 0)
            return "rejected"
        started = time.monotonic()
        try:
            outcome = self.process(job)
        except Exception as exc:  # a processor bug must not kill the worker
            outcome = Outcome(False, f"{type(exc).__name__}: {exc}")
        took = round(time.monotonic() - started, 3)
        fields = {"job_id": job["job_id"], "message_id": message["MessageId"], "receive_count": receives,
                  "seconds": took, "detail": outcome.detail}
        if outcome.ok:
            self.sqs.delete_message(QueueUrl=self.config.queue_url, ReceiptHandle=message["ReceiptHandle"])
            logger.info("job done", extra=fields)
            return "done"
        self._release(message, self.config.retry_delay_seconds)
        logger.error("job failed; retried later", extra=fields)
        return "failed"

    def _release(self, message: Dict[str, Any], delay_seconds: int) -> None:
        self.sqs.change_message_visibility(QueueUrl=self.config.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                           VisibilityTimeout=delay_seconds)

    def run(self, error_backoff_seconds: float = 5.0, max_polls: Optional[int] = None) -> None:
        """Poll until stopped; AWS errors (e.g. permissions not yet attached) are logged and retried."""
        polls = 0
        while not self.stop.is_set() and (max_polls is None or polls < max_polls):
            polls += 1
            try:
                if self.poll_once() == "unprotected":
                    self.wait(self.backoff_seconds())
            except Exception as exc:
                logger.error("poll failed", extra={"error": f"{type(exc).__name__}: {exc}"})
                self.wait(error_backoff_seconds)
        self._clear_protection()


# ----------------------------------------------------------------------------------------
# Instance entry point
# ----------------------------------------------------------------------------------------


def instance_id(opener: Callable[..., Any] = urllib.request.urlopen) -> str:
    """This instance's ID from IMDSv2 (token first: the launch template requires it)."""
    token_request = urllib.request.Request(f"{IMDS}/latest/api/token", method="PUT",
                                           headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    token = opener(token_request, timeout=2).read().decode()
    request = urllib.request.Request(f"{IMDS}/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token})
    return opener(request, timeout=2).read().decode()


class JsonFormatter(logging.Formatter):
    """One JSON object per line (journald keeps them); ``extra`` keys become fields."""

    _standard = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname, "message": record.getMessage()}
        entry.update({k: v for k, v in vars(record).items() if k not in self._standard})
        return json.dumps(entry, default=str)


def stop_on_sigterm(worker: Worker) -> Callable[..., None]:
    """SIGTERM handler: finish the job in hand, take no new one (the job's subprocess gets no signal)."""

    def handle(signum: int, frame: Any) -> None:
        logger.info("SIGTERM: finishing the job in hand, then stopping")
        worker.stop.set()

    return handle


def main(argv: Optional[List[str]] = None) -> int:
    import boto3

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), handlers=[handler])
    argv = sys.argv[1:] if argv is None else argv
    config = Config.load(argv[0] if argv else DEFAULT_CONFIG_PATH)
    worker = Worker(
        sqs=boto3.client("sqs", region_name=config.region),
        protection=ScaleInProtection(boto3.client("autoscaling", region_name=config.region), config.group_name, instance_id()),
        config=config,
    )
    signal.signal(signal.SIGTERM, stop_on_sigterm(worker))
    logger.info("worker started", extra={"queue_url": config.queue_url, "group": config.group_name})
    worker.run()
    logger.info("worker stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
