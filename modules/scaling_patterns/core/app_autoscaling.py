"""`ScalableTarget`: Application Auto Scaling for one scalable dimension, done right once.

One construct per scalable resource (a Lambda alias's provisioned concurrency, a SageMaker
endpoint variant's instance count, ...), with intent-revealing methods:

- ``ScalableTarget(...)`` registers the target (min/max capacity). When scheduled actions
  change the minimum at run time, pass ``scheduled_minimum=True``: Terraform then ignores
  drift of ``min_capacity`` instead of resetting it in the middle of a scheduled peak.
- ``target.track(...)`` adds a target-tracking policy on a predefined metric.
- ``target.schedule(...)`` adds a scheduled action (cron in a time zone) that sets the
  minimum and/or maximum.

Application Auto Scaling rejects concurrent changes to one target (ConcurrentUpdateException,
or lost scheduled actions), so every policy and scheduled action depends on the one created
before it: Terraform applies them one at a time.

Scaling roles: Application Auto Scaling uses its service-linked role for each namespace
(created by AWS on first use), so no ``role_arn`` is set and no IAM is written here.

Day two: some changes of the scaled resource are refused while it is registered (SageMaker
fails ``UpdateEndpoint`` when the instance type of an autoscaled variant changes). Pass those
attributes as ``replace_when`` (``type.name.attribute`` references): the target is then
replaced whenever one of them changes. Terraform destroys a replaced dependent before it
updates what it depends on, so the target is deregistered, the resource updated, and the
target registered again; its policies and scheduled actions are replaced with it (AWS deletes
them on deregistration).
"""

from __future__ import annotations

from typing import Sequence

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification,
)
from cdktf_cdktf_provider_aws.appautoscaling_scheduled_action import (
    AppautoscalingScheduledAction,
    AppautoscalingScheduledActionScalableTargetAction,
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from constructs import Construct


class ScalableTarget(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        service_namespace: str,
        resource_id: str,
        scalable_dimension: str,
        min_capacity: int,
        max_capacity: int,
        scheduled_minimum: bool = False,
        depends_on: Sequence[ITerraformDependable] = (),
        replace_when: Sequence[str] = (),
    ):
        super().__init__(scope, id_)
        ignored = ["min_capacity"] if scheduled_minimum else []
        lifecycle = None
        if ignored or replace_when:
            lifecycle = TerraformResourceLifecycle(ignore_changes=ignored or None, replace_triggered_by=list(replace_when) or None)
        self.target = AppautoscalingTarget(
            self, "target",
            service_namespace=service_namespace,
            resource_id=resource_id,
            scalable_dimension=scalable_dimension,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            depends_on=list(depends_on) or None,
            lifecycle=lifecycle,
        )
        #: Policies and scheduled actions go with a replaced target (AWS deletes them with it): the
        #: same triggers, so an in-place update of the target (its minimum, say) replaces nothing.
        #: (A target replaced for its resource_id takes them along anyway: theirs changes too.)
        self._follow = TerraformResourceLifecycle(replace_triggered_by=list(replace_when)) if replace_when else None
        self._last: ITerraformDependable = self.target
        self.policies: list[AppautoscalingPolicy] = []
        self.scheduled_actions: list[AppautoscalingScheduledAction] = []

    @property
    def id(self) -> str:
        """Application Auto Scaling's id of the target (``service-namespace/resource-id/dimension``)."""
        return self.target.id

    def _common(self) -> dict[str, str]:
        return {"service_namespace": self.target.service_namespace, "resource_id": self.target.resource_id,
                "scalable_dimension": self.target.scalable_dimension}

    def _serialized(self) -> list[ITerraformDependable]:
        return [self._last]

    def track(
        self,
        id_: str,
        *,
        name: str,
        predefined_metric: str,
        target_value: float,
        scale_in_cooldown_seconds: int,
        scale_out_cooldown_seconds: int,
        resource_label: str | None = None,
    ) -> AppautoscalingPolicy:
        """Target tracking on a predefined metric (e.g. ``SageMakerVariantInvocationsPerInstance``)."""
        policy = AppautoscalingPolicy(
            self, id_,
            name=name,
            policy_type="TargetTrackingScaling",
            **self._common(),
            target_tracking_scaling_policy_configuration=AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
                target_value=target_value,
                scale_in_cooldown=scale_in_cooldown_seconds,
                scale_out_cooldown=scale_out_cooldown_seconds,
                predefined_metric_specification=(
                    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification(
                        predefined_metric_type=predefined_metric, resource_label=resource_label)),
            ),
            depends_on=self._serialized(),
            lifecycle=self._follow,
        )
        self._last = policy
        self.policies.append(policy)
        return policy

    def schedule(
        self,
        id_: str,
        *,
        name: str,
        schedule: str,
        timezone: str,
        min_capacity: int | None = None,
        max_capacity: int | None = None,
    ) -> AppautoscalingScheduledAction:
        """A recurring scheduled action, e.g. ``cron(45 8 ? * MON-FRI *)`` in ``Europe/Berlin``."""
        if min_capacity is None and max_capacity is None:
            raise ValueError(f"scheduled action {name!r} must set min_capacity or max_capacity")
        action = AppautoscalingScheduledAction(
            self, id_,
            name=name,
            **self._common(),
            schedule=schedule,
            timezone=timezone,
            scalable_target_action=AppautoscalingScheduledActionScalableTargetAction(
                min_capacity=None if min_capacity is None else str(min_capacity),
                max_capacity=None if max_capacity is None else str(max_capacity)),
            depends_on=self._serialized(),
            lifecycle=self._follow,
        )
        self._last = action
        self.scheduled_actions.append(action)
        return action
