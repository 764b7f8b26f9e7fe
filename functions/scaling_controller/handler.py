"""Scaling controller for LLM inference requests (stack `llm-request-scaling`).

Invoked by an EventBridge rule once per inference-request event. It

1. records the request as CloudWatch custom metrics in ``METRIC_NAMESPACE``: ``RequestCount``
   and ``Tokens`` per model (dimension ``Model``), and ``TotalRequestCount`` and
   ``TotalTokens`` without dimensions (separate names, so a query of the total can never
   pick up per-model series);
2. when a scaling target is configured (``TARGET_TYPE`` = ``sagemaker_variant`` or
   ``autoscaling_group``), reads the aggregate request rate of the last
   ``RATE_WINDOW_MINUTES`` minutes, turns it into a capacity
   (``ceil(rate / REQUESTS_PER_INSTANCE_PER_MINUTE)`` clamped to ``MIN_CAPACITY`` ..
   ``MAX_CAPACITY``) and sets it, unless the target changed less than
   ``COOLDOWN_SECONDS`` ago or is busy updating.

The decision logic is pure (``desired_capacity``, ``decide``); AWS access goes through small
adapter classes that take their boto3 client, so tests inject stubbed clients.

Event detail fields read (all optional): ``model`` (str), ``input_tokens``,
``output_tokens`` or ``tokens`` (int).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

logger = logging.getLogger("scaling_controller")
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))


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
    busy: bool = False  # an update is in progress (SageMaker endpoint not InService)


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


def request_metrics(event: dict[str, Any]) -> tuple[str, int]:
    """(model, tokens) of one inference-request event."""
    detail = event.get("detail") or {}
    model = str(detail.get("model") or "unknown")[:255]
    tokens = detail.get("tokens")
    if tokens is None:
        tokens = _int(detail.get("input_tokens")) + _int(detail.get("output_tokens"))
    return model, max(_int(tokens), 0)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


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


class Metrics:
    def __init__(self, client: Any, namespace: str):
        self.client, self.namespace = client, namespace

    def record_request(self, model: str, tokens: int, at: datetime) -> None:
        per_model = [{"Name": "Model", "Value": model}]
        data = [
            {"MetricName": "RequestCount", "Dimensions": per_model, "Timestamp": at, "Value": 1, "Unit": "Count"},
            {"MetricName": "Tokens", "Dimensions": per_model, "Timestamp": at, "Value": tokens, "Unit": "Count"},
            {"MetricName": "TotalRequestCount", "Timestamp": at, "Value": 1, "Unit": "Count"},
            {"MetricName": "TotalTokens", "Timestamp": at, "Value": tokens, "Unit": "Count"},
        ]
        self.client.put_metric_data(Namespace=self.namespace, MetricData=data)

    def request_rate(self, window_minutes: int, now: datetime) -> float:
        """Aggregate requests per minute over the last ``window_minutes``."""
        stats = self.client.get_metric_statistics(
            Namespace=self.namespace, MetricName="TotalRequestCount",
            StartTime=now - timedelta(minutes=window_minutes), EndTime=now,
            Period=60 * window_minutes, Statistics=["Sum"],
        )
        total = sum(point["Sum"] for point in stats.get("Datapoints", []))
        return total / window_minutes


# ----------------------------------------------------------------------------------------
# Configuration and entry point
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    namespace: str
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
            namespace=env.get("METRIC_NAMESPACE", "LLM/Inference"),
            target_type=env.get("TARGET_TYPE") or None,
            target_name=env.get("TARGET_NAME") or None,
            variant_name=env.get("VARIANT_NAME", "AllTraffic"),
            minimum=int(env.get("MIN_CAPACITY", "1")),
            maximum=int(env.get("MAX_CAPACITY", "4")),
            per_instance_per_minute=float(env.get("REQUESTS_PER_INSTANCE_PER_MINUTE", "60")),
            cooldown_seconds=int(env.get("COOLDOWN_SECONDS", "300")),
            window_minutes=int(env.get("RATE_WINDOW_MINUTES", "5")),
        )


def make_target(config: Config, client_factory: Any) -> Target | None:
    if config.target_type == "autoscaling_group":
        return AutoScalingGroupTarget(client_factory("autoscaling"), config.target_name or "")
    if config.target_type == "sagemaker_variant":
        return SageMakerVariantTarget(client_factory("sagemaker"), config.target_name or "", config.variant_name)
    return None


def process(event: dict[str, Any], config: Config, metrics: Metrics, target: Target | None, now: datetime) -> dict[str, Any]:
    """Record one request and, with a target, scale it. Returns what was done (also logged)."""
    model, tokens = request_metrics(event)
    metrics.record_request(model, tokens, now)
    result: dict[str, Any] = {"event_id": event.get("id"), "model": model, "tokens": tokens}
    if target is None:
        result["action"] = "metrics_only"
        return result
    rate = metrics.request_rate(config.window_minutes, now)
    desired = desired_capacity(rate, config.per_instance_per_minute, config.minimum, config.maximum)
    state = target.state()
    decision = decide(state, desired, now, config.cooldown_seconds)
    if decision.action == "scale":
        target.set_capacity(decision.desired)
    result.update(rate_per_minute=round(rate, 3), current=state.current, desired=desired,
                  action=decision.action, reason=decision.reason)
    return result


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    import boto3  # imported here so the pure functions above load without the SDK

    config = Config.from_env()
    metrics = Metrics(boto3.client("cloudwatch"), config.namespace)
    target = make_target(config, boto3.client)
    result = process(event, config, metrics, target, datetime.now(timezone.utc))
    # With the function's JSON log format, `extra` keys become fields of the log record.
    logger.info("scaling decision", extra={"decision": result})
    return json.loads(json.dumps(result, default=str))
