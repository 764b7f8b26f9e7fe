"""Scaling controller for LLM inference requests (stack `llm-request-scaling`): two entry points.

``handler`` -- the request path (function ``<prefix>-llm-controller``, target of the
inference-request rule, invoked once per event). It records the request and nothing else:
one CloudWatch *embedded metric format* (EMF) document printed to stdout, from which
CloudWatch Logs extracts ``RequestCount`` and ``Tokens`` per model (dimension ``Model``) and
``TotalRequestCount`` and ``TotalTokens`` without dimensions, in ``METRIC_NAMESPACE``. No AWS
API call per request, so nothing to throttle and no CloudWatch permission. ``print`` (not
``logging``) on purpose: with the function's JSON log format, Lambda wraps ``logging``
records in its own JSON object (CloudWatch would not see the EMF document) but passes
``print`` lines through as they are, and it never re-encodes a line that is already JSON.

``scheduled`` -- the decision path (function ``<prefix>-llm-scaler``, invoked once a minute
by an EventBridge schedule rule, only when a scaling target is configured). It

1. reads how many events the inference-request rule matched in each of the last
   ``RATE_WINDOW_MINUTES`` whole minutes (``AWS/Events`` ``MatchedEvents``, dimension
   ``RuleName``, plus ``EventBusName`` for a rule on a custom bus). EventBridge counts an
   event there once, when it matches, however often its delivery is retried and whether or
   not the request path succeeded; minutes without requests have no datapoint and count 0,
   so the rate falls to 0 when traffic stops;
2. turns the rate into a capacity (``ceil(rate / REQUESTS_PER_INSTANCE_PER_MINUTE)`` clamped
   to ``MIN_CAPACITY`` .. ``MAX_CAPACITY``) and sets it (``TARGET_TYPE`` =
   ``autoscaling_group`` or ``sagemaker_variant``), unless the target changed less than
   ``COOLDOWN_SECONDS`` ago (its own last scaling activity or endpoint modification) or is
   busy updating.

It is the only code that writes capacity. It is safe to run twice for the same minute: the
window is aligned to whole minutes, so two runs in one minute compute the same capacity, and
the write sets an absolute capacity (never an increment). A tick older than one interval is
skipped (the next one is due), and a write is skipped when the invocation has too little
time left to finish it.

The decision logic is pure (``desired_capacity``, ``decide``, ``rate_per_minute``, ...); AWS
access goes through small adapter classes that take their boto3 client, so tests inject
moto or stubbed clients.

Event detail fields read by the request path (all optional): ``model`` (str),
``input_tokens``, ``output_tokens`` or ``tokens`` (int).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Protocol, TextIO

logger = logging.getLogger("scaling_controller")
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

#: The schedule's interval; a tick older than this is stale (the next one is due).
TICK_SECONDS = 60
#: Do not start a capacity write with less than this much of the invocation left (s).
WRITE_RESERVE_SECONDS = 5.0
#: EventBridge's own metric of the request rule: one count per matched event.
SIGNAL_NAMESPACE = "AWS/Events"
SIGNAL_METRIC = "MatchedEvents"
#: A Model dimension value longer than this is cut (CloudWatch allows 1024; keep it readable).
MAX_MODEL_LENGTH = 255


# ----------------------------------------------------------------------------------------
# Pure decision logic
# ----------------------------------------------------------------------------------------


def desired_capacity(rate_per_minute: float, per_instance_per_minute: float, minimum: int, maximum: int) -> int:
    """Capacity that serves ``rate_per_minute`` at ``per_instance_per_minute`` each, clamped."""
    if per_instance_per_minute <= 0:
        raise ValueError("per_instance_per_minute must be > 0")
    needed = math.ceil(max(rate_per_minute, 0.0) / per_instance_per_minute - 1e-9)
    return max(minimum, min(maximum, needed))


@dataclass(frozen=True)
class TargetState:
    current: int
    last_change: datetime | None  # when the target last changed size, if known
    busy: bool = False  # an update is in progress (SageMaker endpoint not InService, ASG activity running)


@dataclass(frozen=True)
class Decision:
    action: str  # "scale" or "hold"
    desired: int
    reason: str


def decide(state: TargetState, desired: int, now: datetime, cooldown_seconds: int) -> Decision:
    """Whether to move the target from ``state.current`` to ``desired`` now."""
    if desired == state.current:
        return Decision("hold", desired, "already at desired capacity")
    if state.busy:
        return Decision("hold", desired, "target is updating")
    if state.last_change is not None:
        elapsed = (now - state.last_change).total_seconds()
        if elapsed < cooldown_seconds:
            return Decision("hold", desired, f"cooldown: last change {int(elapsed)}s ago < {cooldown_seconds}s")
    return Decision("scale", desired, f"{state.current} -> {desired}")


def rate_window(now: datetime, window_minutes: int) -> tuple[datetime, datetime]:
    """The last ``window_minutes`` whole minutes before ``now``: [start, end), end = ``now`` floored to the minute."""
    end = now.astimezone(timezone.utc).replace(second=0, microsecond=0)
    return end - timedelta(minutes=window_minutes), end


def rate_per_minute(counts: list[float], window_minutes: int) -> float:
    """Requests per minute over the window: the counts of the minutes that had any, / every minute of it."""
    return sum(counts) / window_minutes


def tick_time(event: dict[str, Any]) -> datetime | None:
    """When EventBridge fired this scheduled event (its ``time``), if it says."""
    raw = event.get("time") if isinstance(event, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def is_stale(event: dict[str, Any], now: datetime) -> bool:
    """A tick that ran a whole interval late: the next tick is due and decides instead."""
    fired = tick_time(event)
    return fired is not None and (now - fired).total_seconds() >= TICK_SECONDS


def request_metrics(event: dict[str, Any]) -> tuple[str, int]:
    """(model, tokens) of one inference-request event."""
    detail = event.get("detail") if isinstance(event, dict) else None
    detail = detail if isinstance(detail, dict) else {}
    model = str(detail.get("model") or "unknown").strip()[:MAX_MODEL_LENGTH] or "unknown"
    tokens = detail.get("tokens")
    if tokens is None:
        tokens = _int(detail.get("input_tokens")) + _int(detail.get("output_tokens"))
    return model, max(_int(tokens), 0)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 0


def emf_document(namespace: str, model: str, tokens: int, at: datetime, event_id: str | None) -> dict[str, Any]:
    """One EMF document recording one request.

    Two metric directives: ``RequestCount``/``Tokens`` with dimension ``Model``, and
    ``TotalRequestCount``/``TotalTokens`` with the empty dimension set (no dimensions), so a
    query of the total never picks up per-model series. ``event_id`` is a plain property
    (searchable in Logs Insights, not a dimension).
    """
    return {
        "_aws": {
            "Timestamp": int(at.timestamp() * 1000),
            "CloudWatchMetrics": [
                {"Namespace": namespace, "Dimensions": [["Model"]],
                 "Metrics": [{"Name": "RequestCount", "Unit": "Count"}, {"Name": "Tokens", "Unit": "Count"}]},
                {"Namespace": namespace, "Dimensions": [[]],
                 "Metrics": [{"Name": "TotalRequestCount", "Unit": "Count"}, {"Name": "TotalTokens", "Unit": "Count"}]},
            ],
        },
        "Model": model,
        "RequestCount": 1,
        "Tokens": tokens,
        "TotalRequestCount": 1,
        "TotalTokens": tokens,
        "event_id": event_id,
    }


# ----------------------------------------------------------------------------------------
# AWS adapters (clients injected)
# ----------------------------------------------------------------------------------------


class Target(Protocol):
    def state(self) -> TargetState: ...

    def set_capacity(self, capacity: int) -> None: ...


class AutoScalingGroupTarget:
    def __init__(self, client: Any, name: str):
        self.client, self.name = client, name

    def state(self) -> TargetState:
        groups = self.client.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name])["AutoScalingGroups"]
        if not groups:
            raise LookupError(f"Auto Scaling group {self.name!r} not found")
        activities = self.client.describe_scaling_activities(AutoScalingGroupName=self.name, MaxRecords=1).get("Activities", [])
        last = activities[0]["StartTime"] if activities else None
        busy = bool(activities) and activities[0].get("StatusCode") == "InProgress"
        return TargetState(current=groups[0]["DesiredCapacity"], last_change=last, busy=busy)

    def set_capacity(self, capacity: int) -> None:
        self.client.set_desired_capacity(AutoScalingGroupName=self.name, DesiredCapacity=capacity, HonorCooldown=False)


class SageMakerVariantTarget:
    def __init__(self, client: Any, endpoint: str, variant: str):
        self.client, self.endpoint, self.variant = client, endpoint, variant

    def state(self) -> TargetState:
        desc = self.client.describe_endpoint(EndpointName=self.endpoint)
        for variant in desc.get("ProductionVariants", []):
            if variant["VariantName"] == self.variant:
                current = variant.get("DesiredInstanceCount", variant.get("CurrentInstanceCount", 0))
                break
        else:
            raise LookupError(f"variant {self.variant!r} not found on endpoint {self.endpoint!r}")
        return TargetState(current=current, last_change=desc.get("LastModifiedTime"), busy=desc.get("EndpointStatus") != "InService")

    def set_capacity(self, capacity: int) -> None:
        self.client.update_endpoint_weights_and_capacities(
            EndpointName=self.endpoint,
            DesiredWeightsAndCapacities=[{"VariantName": self.variant, "DesiredInstanceCount": capacity}],
        )


class MatchedEvents:
    """The request rule's ``AWS/Events`` ``MatchedEvents``, per minute, through GetMetricData."""

    def __init__(self, client: Any, rule_name: str, event_bus_name: str | None = None):
        self.client = client
        self.dimensions = signal_dimensions(rule_name, event_bus_name)

    def counts(self, start: datetime, end: datetime) -> list[float]:
        """The per-minute sums in [start, end) that have data (minutes without events have none)."""
        query = {
            "Id": "matched",
            "MetricStat": {"Metric": {"Namespace": SIGNAL_NAMESPACE, "MetricName": SIGNAL_METRIC,
                                      "Dimensions": self.dimensions},
                           "Period": 60, "Stat": "Sum", "Unit": "Count"},
            "ReturnData": True,
        }
        values: list[float] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"MetricDataQueries": [query], "StartTime": start, "EndTime": end}
            if token:
                kwargs["NextToken"] = token
            page = self.client.get_metric_data(**kwargs)
            for result in page.get("MetricDataResults", []):
                values.extend(float(v) for v in result.get("Values", []))
            token = page.get("NextToken")
            if not token:
                return values


def signal_dimensions(rule_name: str, event_bus_name: str | None) -> list[dict[str, str]]:
    """``MatchedEvents`` of a rule: ``RuleName`` alone on the default bus, with ``EventBusName`` on a custom bus."""
    if event_bus_name and event_bus_name != "default":
        return [{"Name": "EventBusName", "Value": event_bus_name}, {"Name": "RuleName", "Value": rule_name}]
    return [{"Name": "RuleName", "Value": rule_name}]


# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """The scaler's environment (set by the construct)."""

    rule_name: str
    event_bus_name: str | None
    target_type: str | None
    target_name: str | None
    variant_name: str
    minimum: int
    maximum: int
    per_instance_per_minute: float
    cooldown_seconds: int
    window_minutes: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Config":
        env = dict(os.environ if env is None else env)
        return cls(
            rule_name=env.get("RULE_NAME", ""),
            event_bus_name=env.get("EVENT_BUS_NAME") or None,
            target_type=env.get("TARGET_TYPE") or None,
            target_name=env.get("TARGET_NAME") or None,
            variant_name=env.get("VARIANT_NAME", "AllTraffic"),
            minimum=int(env.get("MIN_CAPACITY", "1")),
            maximum=int(env.get("MAX_CAPACITY", "4")),
            per_instance_per_minute=float(env.get("REQUESTS_PER_INSTANCE_PER_MINUTE", "60")),
            cooldown_seconds=int(env.get("COOLDOWN_SECONDS", "300")),
            window_minutes=int(env.get("RATE_WINDOW_MINUTES", "5")),
        )


def make_target(config: Config, client_factory: Callable[..., Any]) -> Target | None:
    if config.target_type == "autoscaling_group":
        return AutoScalingGroupTarget(client_factory("autoscaling"), config.target_name or "")
    if config.target_type == "sagemaker_variant":
        return SageMakerVariantTarget(client_factory("sagemaker"), config.target_name or "", config.variant_name)
    return None


# ----------------------------------------------------------------------------------------
# The two paths
# ----------------------------------------------------------------------------------------


def record(event: dict[str, Any], namespace: str, now: datetime, out: TextIO | None = None) -> dict[str, Any]:
    """Request path: print one EMF line for the request; no AWS call. Returns what was recorded."""
    model, tokens = request_metrics(event)
    event_id = event.get("id") if isinstance(event, dict) else None
    document = emf_document(namespace, model, tokens, now, event_id if isinstance(event_id, str) else None)
    # One line, written last: nothing after it can fail and make Lambda retry (and print it again).
    print(json.dumps(document, separators=(",", ":")), file=out or sys.stdout, flush=True)
    return {"event_id": document["event_id"], "model": model, "tokens": tokens, "action": "recorded"}


def tick(event: dict[str, Any], config: Config, signal: MatchedEvents, target: Target, now: datetime,
         time_left: Callable[[], float] = lambda: math.inf) -> dict[str, Any]:
    """Decision path: read the request rate of the window, decide, and set the capacity."""
    result: dict[str, Any] = {"tick": event.get("time") if isinstance(event, dict) else None}
    fired = tick_time(event)
    if fired is not None and is_stale(event, now):
        result.update(action="skip", reason=f"stale tick: fired {int((now - fired).total_seconds())}s ago; the next one decides")
        return result
    start, end = rate_window(now, config.window_minutes)
    counts = signal.counts(start, end)
    rate = rate_per_minute(counts, config.window_minutes)
    desired = desired_capacity(rate, config.per_instance_per_minute, config.minimum, config.maximum)
    state = target.state()
    decision = decide(state, desired, now, config.cooldown_seconds)
    if decision.action == "scale" and time_left() < WRITE_RESERVE_SECONDS:
        decision = Decision("hold", desired, f"out of time: {time_left():.1f}s left < {WRITE_RESERVE_SECONDS:g}s; the next tick decides")
    if decision.action == "scale":
        target.set_capacity(decision.desired)
    result.update(window_start=start.isoformat(), window_end=end.isoformat(), requests=sum(counts),
                  rate_per_minute=round(rate, 3), current=state.current, desired=desired,
                  action=decision.action, reason=decision.reason)
    return result


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Entry point of the request function (``handler.handler``)."""
    return record(event, os.environ.get("METRIC_NAMESPACE", "LLM/Inference"), datetime.now(timezone.utc))


_scaler: tuple[Config, MatchedEvents, Target] | None = None


def _build_scaler() -> tuple[Config, MatchedEvents, Target]:
    import boto3  # imported here so the pure functions above load without the SDK
    from botocore.config import Config as BotoConfig

    # Bounded calls: a tick never waits long on one API (the function's timeout is below the interval).
    boto = BotoConfig(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
    config = Config.from_env()
    target = make_target(config, lambda service: boto3.client(service, config=boto))
    if target is None or not config.rule_name:
        raise RuntimeError("the scaler needs TARGET_TYPE, TARGET_NAME and RULE_NAME (set by the construct)")
    return config, MatchedEvents(boto3.client("cloudwatch", config=boto), config.rule_name, config.event_bus_name), target


def scheduled(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Entry point of the scaler function (``handler.scheduled``), once a minute."""
    global _scaler
    if _scaler is None:  # once per execution environment
        _scaler = _build_scaler()
    config, signal, target = _scaler
    time_left = (lambda: context.get_remaining_time_in_millis() / 1000) if context is not None else (lambda: math.inf)
    result = tick(event, config, signal, target, datetime.now(timezone.utc), time_left)
    # With the function's JSON log format, `extra` keys become fields of the log record.
    logger.info("scaling decision", extra={"decision": result})
    return json.loads(json.dumps(result, default=str))
