"""Settings of the `llm-request-scaling` stack (section `[llm-request-scaling]`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from scaling_patterns.core.settings import (
    AutoScalingGroupName,
    EventBusName,
    LogRetentionDays,
    MetricNamespace,
    SageMakerName,
    Settings,
)

# Top-level keys of an EventBridge event; a pattern may match on any of them.
EVENT_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")


def check_event_pattern(pattern: Any, path: str = "") -> Any:
    """An EventBridge pattern: a non-empty object whose leaves are non-empty arrays."""
    if not isinstance(pattern, dict) or not pattern:
        raise ValueError(f"{path or 'pattern'} must be a non-empty table of fields to match (given {pattern!r})")
    for key, value in pattern.items():
        where = f"{path}.{key}" if path else key
        if not path and key not in EVENT_FIELDS:
            raise ValueError(f"'{key}' is not an event field (one of {', '.join(EVENT_FIELDS)}) (given {key!r})")
        if isinstance(value, dict):
            check_event_pattern(value, where)
        elif not isinstance(value, list) or not value:
            raise ValueError(f"{where}: match values must be a non-empty array, e.g. [\"value\"] (given {value!r})")
    return pattern


class SageMakerVariantTarget(Settings):
    """Scale a SageMaker endpoint variant's instance count."""

    type: Literal["sagemaker_variant"] = Field(description="`sagemaker_variant`.")
    endpoint_name: SageMakerName = Field(description="Endpoint whose variant is scaled.")
    variant_name: SageMakerName = Field("AllTraffic", description="Production variant name.")


class AutoScalingGroupTarget(Settings):
    """Scale an EC2 Auto Scaling group's desired capacity."""

    type: Literal["autoscaling_group"] = Field(description="`autoscaling_group`.")
    name: AutoScalingGroupName = Field(description="Auto Scaling group name.")


class ScalingPolicy(Settings):
    """How the scaler turns the request rate into a capacity."""

    requests_per_instance_per_minute: float = Field(60.0, gt=0, le=1_000_000, description="Requests one instance serves per minute; desired = ceil(rate / this).")
    min_capacity: int = Field(1, ge=0, le=1000, description="Lowest capacity the scaler sets.")
    max_capacity: int = Field(4, ge=1, le=1000, description="Highest capacity the scaler sets; must be >= min_capacity.")
    cooldown_seconds: int = Field(300, ge=0, le=86400, description="No change within this long after the target's last change (its latest scaling activity or endpoint update).")
    rate_window_minutes: int = Field(5, ge=1, le=60, description="Request rate = events the rule matched in this many recent whole minutes / this; minutes without requests count as 0.")

    @model_validator(mode="after")
    def _min_le_max(self) -> "ScalingPolicy":
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity must be <= max_capacity (given min_capacity={self.min_capacity}, max_capacity={self.max_capacity})")
        return self


class LlmRequestScalingSettings(Settings):
    """EventBridge rule on inference-request events -> request-recording Lambda (metrics); with a scaling target, a once-a-minute scaler Lambda sets its capacity."""

    event_source: str = Field("my.llm.service", min_length=1, max_length=256, examples=["acme.llm"], description="Event `source` the rule matches (ignored when `event_pattern` is set).")
    detail_types: list[str] = Field(default_factory=lambda: ["Inference Request"], min_length=1,
                                    examples=[["Inference Request", "Batch Inference Request"]],
                                    description="Event `detail-type` values the rule matches (ignored when `event_pattern` is set).")
    event_pattern: Annotated[dict[str, Any], AfterValidator(check_event_pattern)] | None = Field(
        None, examples=[{"source": ["acme.llm"], "detail": {"priority": ["high"]}}], description="Full EventBridge pattern; replaces `event_source`/`detail_types`. Leaves must be arrays.")
    event_bus_name: EventBusName | None = Field(None, description="Custom event bus of the rule; unset = the account's `default` bus.")
    create_event_bus: bool = Field(False, description="Create `event_bus_name` in this stack (otherwise it must exist).")
    metric_namespace: MetricNamespace = Field("LLM/Inference", description="CloudWatch namespace of the request/token metrics the request function writes (as EMF in its logs).")
    memory_mb: int = Field(256, ge=128, le=10240, description="Memory of each function, the request function and the scaler (MB).")
    timeout_seconds: int = Field(30, ge=1, le=900, description="Request function timeout (s).")
    scaler_timeout_seconds: int = Field(20, ge=10, le=55, description="Scaler timeout (s); below the one-minute schedule, so one tick ends before the next starts (used with `scaling_target`).")
    scaler_reserved_concurrency: bool = Field(False, description="Reserve a concurrency of 1 for the scaler, so Lambda itself never runs two ticks at once. Lambda reserves only what leaves its minimum unreserved pool (100 in the Lambda documentation) free: new accounts with a concurrency quota of 10 cannot reserve any, so it is off by default.")
    log_retention_days: LogRetentionDays = Field(30, description="Retention of each function's log group.")
    max_retry_attempts: int = Field(2, ge=0, le=185, description="EventBridge delivery retries of an inference-request event before it goes to the DLQ.")
    max_event_age_seconds: int = Field(3600, ge=60, le=86400, description="EventBridge gives up on an inference-request event older than this (s).")
    dlq_retention_seconds: int = Field(1209600, ge=60, le=1209600, description="How long undeliverable events stay in the dead-letter queue (s).")
    scaling_target: SageMakerVariantTarget | AutoScalingGroupTarget | None = Field(
        None, discriminator="type", description="What the scheduled scaler scales; unset = metrics only (no scaler, no schedule).")
    scaling: ScalingPolicy = Field(default_factory=ScalingPolicy, description="Rate -> capacity policy of the scaler (used with `scaling_target`).")

    @model_validator(mode="after")
    def _cross_checks(self) -> "LlmRequestScalingSettings":
        if self.create_event_bus and not self.event_bus_name:
            raise ValueError("create_event_bus = true needs event_bus_name (given none)")
        if isinstance(self.scaling_target, SageMakerVariantTarget) and self.scaling.min_capacity < 1:
            raise ValueError("scaling.min_capacity must be >= 1 for a sagemaker_variant target: real-time endpoint "
                             f"variants cannot run zero instances (given {self.scaling.min_capacity})")
        if self.create_event_bus and self.event_bus_name == "default":
            raise ValueError("event_bus_name 'default' always exists; set create_event_bus = false")
        if self.scaler_reserved_concurrency and self.scaling_target is None:
            raise ValueError("scaler_reserved_concurrency = true needs scaling_target: without a target there is no scaler "
                             "(given scaler_reserved_concurrency=true, scaling_target=none)")
        return self

    @property
    def signal_event_bus(self) -> str | None:
        """The bus whose name is a dimension of the rule's ``MatchedEvents``: a custom bus, or None (default bus)."""
        return self.event_bus_name if self.event_bus_name and self.event_bus_name != "default" else None

    def rule_event_pattern(self) -> dict[str, Any]:
        """The pattern the rule uses: `event_pattern`, or one built from source and detail types."""
        if self.event_pattern is not None:
            return self.event_pattern
        return {"source": [self.event_source], "detail-type": list(self.detail_types)}
