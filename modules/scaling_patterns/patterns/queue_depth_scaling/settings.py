"""Settings of the `queue-depth-scaling` stack (section `[queue-depth-scaling]`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from scaling_patterns.core.fleet_settings import FleetSettings, NetworkSettings
from scaling_patterns.core.settings import LogRetentionDays, Settings

#: Seconds added to `job_timeout_seconds` for the queue's visibility timeout: a worker
#: finishing a job right at its timeout still deletes the message before SQS shows it again.
VISIBILITY_MARGIN_SECONDS = 60
#: SQS caps the visibility timeout at 12 hours.
MAX_VISIBILITY_TIMEOUT_SECONDS = 43200


class BacklogPerInstanceScaling(Settings):
    """Target tracking on jobs per instance ((visible + in-flight messages) / in-service instances)."""

    type: Literal["backlog_per_instance"] = Field("backlog_per_instance", description="`backlog_per_instance` (default): target tracking on jobs waiting or in flight (received, not yet deleted) per in-service worker, so a busy worker is not scaled in.")
    target_latency_seconds: int = Field(300, ge=1, le=86400, description="Longest acceptable wait of a job in the queue (s).")
    seconds_per_job: float = Field(30.0, gt=0, le=43200, description="Average time one worker needs per job (s). Target jobs per worker, the one in hand included = target_latency_seconds / seconds_per_job.")
    disable_scale_in: bool = Field(False, description="Let the policy only add workers (scale in by hand or schedule).")

    @model_validator(mode="after")
    def _target_at_least_one(self) -> "BacklogPerInstanceScaling":
        if self.target_latency_seconds < self.seconds_per_job:
            raise ValueError("target_latency_seconds must be >= seconds_per_job, or the acceptable backlog per worker is below "
                             f"one job (given target_latency_seconds={self.target_latency_seconds}, seconds_per_job={self.seconds_per_job})")
        return self

    @property
    def target_backlog_per_instance(self) -> float:
        return round(self.target_latency_seconds / self.seconds_per_job, 3)


class AlarmStepScaling(Settings):
    """The reference's two CloudWatch alarms driving simple scaling policies; scale-in also counts jobs in flight and waits for starting workers."""

    type: Literal["alarm_steps"] = Field(description="`alarm_steps`: scale out/in by fixed steps when the queue depth crosses thresholds.")
    scale_out_threshold: int = Field(10, ge=1, le=1_000_000, description="Scale out when visible messages >= this.")
    scale_in_threshold: int = Field(2, ge=0, le=999_999, description="Scale in when visible + in-flight messages <= this and no worker is starting (in service >= desired); must be < scale_out_threshold.")
    scale_out_adjustment: int = Field(2, ge=1, le=100, description="Instances added per scale-out.")
    scale_in_adjustment: int = Field(-1, ge=-100, le=-1, description="Instances removed per scale-in (negative).")
    statistic: Literal["Sum", "Average", "Maximum", "Minimum"] = Field("Sum", description="Statistic of the queue metrics per period (visible messages; for scale-in also in-flight ones).")
    period_seconds: Literal[60, 120, 300, 600, 900, 3600] = Field(60, description="Alarm period (s); SQS metrics are 1-minute.")
    evaluation_periods: int = Field(2, ge=1, le=60, description="Periods a threshold must be crossed before the alarm acts.")
    cooldown_seconds: int = Field(300, ge=0, le=86400, description="Wait after a scaling activity before another (s).")

    @model_validator(mode="after")
    def _threshold_order(self) -> "AlarmStepScaling":
        if self.scale_in_threshold >= self.scale_out_threshold:
            raise ValueError("scale_in_threshold must be < scale_out_threshold, or the two alarms fire together "
                             f"(given scale_in_threshold={self.scale_in_threshold}, scale_out_threshold={self.scale_out_threshold})")
        return self


class WorkerFleetSettings(FleetSettings):
    """The worker Auto Scaling group (defaults: scale to zero when the queue is empty)."""


class QueueDepthScalingSettings(Settings):
    """SQS work queue -> EC2 Auto Scaling group of workers, scaled by queue depth; job-intake Lambda."""

    job_timeout_seconds: int = Field(600, ge=1, le=MAX_VISIBILITY_TIMEOUT_SECONDS - VISIBILITY_MARGIN_SECONDS,
                                     description=f"Longest a worker runs one job; the queue's visibility timeout is this + {VISIBILITY_MARGIN_SECONDS} s.")
    max_receive_count: int = Field(5, ge=1, le=1000, description="Receives of a job before it moves to the dead-letter queue.")
    retry_delay_seconds: int = Field(30, ge=0, le=MAX_VISIBILITY_TIMEOUT_SECONDS, description="After a failed attempt the job becomes visible again after this long (s).")
    message_retention_seconds: int = Field(345600, ge=60, le=1209600, description="How long an unprocessed job stays in the queue (s).")
    max_job_bytes: int = Field(262144, ge=1024, le=262144, description="Largest job message the intake accepts (bytes, SQS maximum 256 KiB).")
    worker_command: list[str] | None = Field(
        None, min_length=1, examples=[["/opt/app/run-job", "--model", "llama"]], description="Command each worker runs per job, the job JSON on stdin, exit 0 = done (e.g. `[\"/opt/app/run-job\"]`); unset = built-in demo that sleeps `payload.simulate_seconds`.")
    worker_packages: list[str] = Field(default_factory=lambda: ["python3-boto3"], examples=[["python3-boto3", "nvidia-driver"]], description="dnf packages installed at boot before the worker starts (the worker needs boto3).")
    intake_memory_mb: int = Field(256, ge=128, le=10240, description="Job-intake function memory (MB).")
    intake_timeout_seconds: int = Field(10, ge=1, le=900, description="Job-intake function timeout (s).")
    log_retention_days: LogRetentionDays = Field(30, description="Retention of the intake function's log group.")
    network: NetworkSettings = Field(default_factory=NetworkSettings, description="VPC and subnets of the workers.")
    fleet: WorkerFleetSettings = Field(default_factory=WorkerFleetSettings, description="Worker instances and group size.")
    scaling: BacklogPerInstanceScaling | AlarmStepScaling = Field(
        default_factory=BacklogPerInstanceScaling, discriminator="type",
        description="`{type = \"backlog_per_instance\", ...}` (default) or `{type = \"alarm_steps\", ...}` (the reference's alarms).")

    @model_validator(mode="before")
    @classmethod
    def _scaling_type_defaults_to_backlog(cls, data: Any) -> Any:
        """``[queue-depth-scaling.scaling]`` without ``type`` tunes the default mode."""
        scaling = data.get("scaling") if isinstance(data, dict) else None
        if isinstance(scaling, dict) and "type" not in scaling:
            return {**data, "scaling": {"type": "backlog_per_instance", **scaling}}
        return data

    @property
    def visibility_timeout_seconds(self) -> int:
        return self.job_timeout_seconds + VISIBILITY_MARGIN_SECONDS
