"""Settings of the `predictive-lambda-scaling` stack (section `[predictive-lambda-scaling]`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from scaling_patterns.core.settings import (
    AutoScalingGroupName,
    DynamoDbTableName,
    EmailAddress,
    KmsKeyArn,
    LambdaAliasName,
    LogRetentionDays,
    Settings,
    SnsTopicArn,
    TagFilterKey,
    TagFilterValue,
    TimeZoneName,
    read_input_file,
)
from scaling_patterns.patterns.predictive_lambda_scaling.schedule import (
    DAYS,
    Profile,
    ProfileError,
    ScheduledChange,
    derive_schedule,
    empty_profile,
    profile_from_csv,
    profile_from_peaks,
)

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Hour = Annotated[int, Field(ge=0, le=23)]


class PeakHours(Settings):
    """Expected peak concurrency in some hours of some days (local time of `schedule.timezone`)."""

    days: list[Day] = Field(default_factory=lambda: list(DAYS), min_length=1, description="Days (`mon` .. `sun`) the peak occurs on; default every day.")
    hours: list[Hour] = Field(min_length=1, examples=[[9, 10, 11]], description="Hours of the day (0-23) the peak covers, e.g. `[9, 10, 11]` for 09:00-12:00.")
    concurrency: int = Field(ge=1, le=10000, examples=[40], description="Expected peak concurrent executions in those hours.")


class PredictiveSchedule(Settings):
    """Load profile and how it becomes scheduled changes of the provisioned-concurrency minimum."""

    timezone: TimeZoneName = Field("UTC", description="IANA time zone of the profile's hours and of the scheduled actions (daylight saving included).")
    peaks: list[PeakHours] = Field(default_factory=list, description="Expected peaks per day of week and hour; overlapping entries keep the highest. Empty and no `csv_path` = no schedule.")
    csv_path: str | None = Field(None, min_length=1, examples=["examples/settings/observed-hourly-peaks.csv"], description="CSV of observed hourly peaks (`day,hour,concurrency` or `timestamp,concurrency`), relative to the settings file; each day and hour keeps its highest value. Replaces `peaks`.")
    lead_minutes: int = Field(15, ge=0, le=720, description="Raise the minimum this long before each predicted peak (provisioned concurrency takes minutes to become ready).")
    merge_gap_hours: int = Field(1, ge=0, le=23, description="Peak windows separated by at most this many off-peak hours become one window (fewer, longer actions).")

    _profile: Profile = PrivateAttr(default_factory=lambda: tuple(empty_profile()))

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="after")
    def _load(self, info: ValidationInfo) -> "PredictiveSchedule":
        if self.peaks and self.csv_path:
            raise ValueError(f"set peaks or csv_path, not both (given {len(self.peaks)} peaks and csv_path={self.csv_path!r})")
        context = info.context or {}
        self._base_dir = Path(context.get("base_dir") or Path.cwd())
        if self.csv_path:
            path = self.csv_file()
            if not path.is_file():
                raise ValueError(f"csv_path: file not found: {path} (given {self.csv_path!r})")
            try:
                self._profile = profile_from_csv(read_input_file(path, context), self.timezone)
            except ProfileError as exc:
                raise ValueError(f"csv_path {self.csv_path!r}: {exc}") from None
        else:
            self._profile = profile_from_peaks(
                ([DAYS.index(d) for d in p.days], p.hours, p.concurrency) for p in self.peaks)
        return self

    def csv_file(self) -> Path:
        """``csv_path`` resolved against the folder of the settings file it came from (the
        validation context's ``base_dir``; the working directory when validated without one)."""
        path = Path(self.csv_path or "")
        return path if path.is_absolute() else self._base_dir / path

    @property
    def profile(self) -> Profile:
        """Expected peak concurrency for the 168 hours of the week (Monday 00:00 first)."""
        return self._profile


class ProvisionedConcurrencyScaling(Settings):
    """Application Auto Scaling of the alias's provisioned concurrency."""

    min_capacity: int = Field(10, ge=1, le=10000, description="Lowest provisioned concurrency (the baseline the schedule returns to).")
    max_capacity: int = Field(100, ge=1, le=10000, description="Highest provisioned concurrency target tracking or the schedule may set.")
    target_utilization: float = Field(0.7, ge=0.1, le=0.9, description="Target of LambdaProvisionedConcurrencyUtilization (share of provisioned concurrency in use).")
    scale_in_cooldown_seconds: int = Field(300, ge=0, le=3600, description="Wait after a scale-in before the next one (s).")
    scale_out_cooldown_seconds: int = Field(60, ge=0, le=3600, description="Wait after a scale-out before the next one (s).")

    @model_validator(mode="after")
    def _min_le_max(self) -> "ProvisionedConcurrencyScaling":
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity must be <= max_capacity (given min_capacity={self.min_capacity}, max_capacity={self.max_capacity})")
        return self


class SpilloverAlarm(Settings):
    """Alarm when invocations spill over the provisioned concurrency (run on-demand, with cold starts)."""

    threshold: int = Field(0, ge=0, le=1_000_000, description="Alarm when more spillover invocations than this happen in a period.")
    period_seconds: Literal[60, 300, 900, 3600] = Field(60, description="Length of one evaluation period (s).")
    evaluation_periods: int = Field(3, ge=1, le=100, description="Periods evaluated per alarm decision.")
    datapoints_to_alarm: int = Field(2, ge=1, le=100, description="Breaching periods (of `evaluation_periods`) that set the alarm off.")
    create_topic: bool = Field(False, description="Create an encrypted SNS topic for the alarm's notifications.")
    topic_arn: SnsTopicArn | None = Field(None, description="Existing SNS topic to notify instead (not created).")
    topic_kms_key_arn: KmsKeyArn | None = Field(None, description="KMS key of the created topic; unset = a new key that CloudWatch may use.")
    email_subscriptions: list[EmailAddress] = Field(default_factory=list, description="Email addresses subscribed to the created topic (each must confirm).")

    @model_validator(mode="after")
    def _checks(self) -> "SpilloverAlarm":
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError(f"datapoints_to_alarm must be <= evaluation_periods (given datapoints_to_alarm={self.datapoints_to_alarm}, evaluation_periods={self.evaluation_periods})")
        if self.create_topic and self.topic_arn:
            raise ValueError(f"set create_topic or topic_arn, not both (given create_topic=true, topic_arn={self.topic_arn!r})")
        if not self.create_topic and (self.email_subscriptions or self.topic_kms_key_arn):
            raise ValueError("email_subscriptions and topic_kms_key_arn need create_topic = true (given create_topic=false)")
        return self


class PlanAutoScalingGroup(Settings):
    """An EC2 Auto Scaling group in the plan: target tracking on CPU plus predictive scaling."""

    type: Literal["autoscaling_group"] = Field(description="`autoscaling_group`.")
    name: AutoScalingGroupName = Field(description="Auto Scaling group name (must carry the plan's tag).")
    min_capacity: int = Field(1, ge=0, le=10000, description="Lowest instance count.")
    max_capacity: int = Field(4, ge=1, le=10000, description="Highest instance count (also the cap of forecasts).")
    target_cpu_percent: float = Field(50.0, gt=0, le=100, description="Target average CPU utilization (%).")
    predictive_mode: Literal["ForecastAndScale", "ForecastOnly"] = Field("ForecastAndScale", description="Predictive scaling mode: act on forecasts, or only forecast.")

    @model_validator(mode="after")
    def _min_le_max(self) -> "PlanAutoScalingGroup":
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity must be <= max_capacity (given min_capacity={self.min_capacity}, max_capacity={self.max_capacity})")
        return self


class PlanDynamoDbTable(Settings):
    """A provisioned-capacity DynamoDB table in the plan: target tracking on capacity utilization."""

    type: Literal["dynamodb_table"] = Field(description="`dynamodb_table`.")
    name: DynamoDbTableName = Field(description="Table name (provisioned capacity mode; must carry the plan's tag).")
    dimension: Literal["read", "write"] = Field("read", description="Which capacity units to scale.")
    min_capacity: int = Field(5, ge=1, le=40000, description="Lowest capacity units.")
    max_capacity: int = Field(100, ge=1, le=40000, description="Highest capacity units.")
    target_utilization_percent: float = Field(70.0, ge=20, le=90, description="Target consumed/provisioned capacity (%).")

    @model_validator(mode="after")
    def _min_le_max(self) -> "PlanDynamoDbTable":
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity must be <= max_capacity (given min_capacity={self.min_capacity}, max_capacity={self.max_capacity})")
        return self


class RelatedScalingPlan(Settings):
    """Opt-in AWS Auto Scaling plan for resources around the function (plans cannot scale Lambda)."""

    tag_key: TagFilterKey = Field(examples=["Application", "Team"], description="Tag key that finds the plan's resources (application source).")
    tag_values: list[TagFilterValue] = Field(min_length=1, examples=[["inference"], ["inference", "batch"]], description="Tag values that find the plan's resources.")
    resources: list[Annotated[PlanAutoScalingGroup | PlanDynamoDbTable, Field(discriminator="type")]] = Field(
        min_length=1, description="Resources to scale: `{type = \"autoscaling_group\", name = ...}` (predictive scaling) or `{type = \"dynamodb_table\", name = ...}`.")


class PredictiveLambdaScalingSettings(Settings):
    """Published inference function, alias with provisioned concurrency, scaled and scheduled."""

    memory_mb: int = Field(512, ge=128, le=10240, description="Inference function memory (MB).")
    timeout_seconds: int = Field(30, ge=1, le=900, description="Inference function timeout (s).")
    log_retention_days: LogRetentionDays = Field(30, description="Retention of the function's log group.")
    alias_name: LambdaAliasName = Field("live", description="Alias pointing at the published version; provisioned concurrency lives on it.")
    provisioned_concurrency: int = Field(10, ge=1, le=10000, description="Provisioned concurrency the alias starts with (the reference's 10); Application Auto Scaling owns it afterwards.")
    scaling: ProvisionedConcurrencyScaling = Field(default_factory=ProvisionedConcurrencyScaling, description="Target tracking on provisioned-concurrency utilization.")
    schedule: PredictiveSchedule = Field(default_factory=PredictiveSchedule, description="Load profile that raises the minimum ahead of predicted peaks.")
    spillover_alarm: SpilloverAlarm = Field(default_factory=SpilloverAlarm, description="CloudWatch alarm on ProvisionedConcurrencySpilloverInvocations.")
    scaling_plan: RelatedScalingPlan | None = Field(None, description="AWS Auto Scaling plan for related resources found by tag; unset = none (opt-in).")

    _schedule: tuple[ScheduledChange, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _cross_checks(self) -> "PredictiveLambdaScalingSettings":
        low, high = self.scaling.min_capacity, self.scaling.max_capacity
        if not low <= self.provisioned_concurrency <= high:
            raise ValueError(f"provisioned_concurrency must be between scaling.min_capacity and scaling.max_capacity "
                             f"(given provisioned_concurrency={self.provisioned_concurrency}, min_capacity={low}, max_capacity={high})")
        busiest = max(self.schedule.profile)
        if busiest > high:
            raise ValueError(f"schedule: the profile's highest peak must be <= scaling.max_capacity "
                             f"(given peak concurrency={busiest}, max_capacity={high})")
        try:
            self._schedule = tuple(derive_schedule(self.schedule.profile, low, lead_minutes=self.schedule.lead_minutes,
                                                   merge_gap_hours=self.schedule.merge_gap_hours))
        except ProfileError as exc:
            raise ValueError(f"schedule: {exc} (given scaling.min_capacity={low})") from None
        return self

    @property
    def scheduled_changes(self) -> tuple[ScheduledChange, ...]:
        """Scheduled raises/lowers of the minimum derived from `schedule` (empty without a profile)."""
        return self._schedule
