"""Pattern 3: a published inference function whose alias keeps provisioned concurrency warm.

``LambdaWithPredictiveConcurrency`` wires:
function (``functions/predictive_inference``, published) -> alias ``live`` on that version ->
provisioned concurrency on the alias (never ``$LATEST``) -> Application Auto Scaling target
on it, with target tracking on ``LambdaProvisionedConcurrencyUtilization`` and scheduled
actions derived from the load profile (raise the minimum ahead of predicted peaks, lower it
after). A CloudWatch alarm watches spillover invocations; an optional encrypted SNS topic
notifies. ``RelatedScalingPlan`` is the opt-in AWS Auto Scaling plan for resources around
the function (plans cannot manage Lambda).

Terraform and Application Auto Scaling share two numbers; Terraform sets them once and then
leaves them alone: the provisioned concurrency (``ignore_changes``: target tracking owns it)
and, when a schedule exists, the scalable target's minimum (the scheduled actions own it).
"""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.autoscalingplans_scaling_plan import (
    AutoscalingplansScalingPlan,
    AutoscalingplansScalingPlanApplicationSource,
    AutoscalingplansScalingPlanApplicationSourceTagFilter,
    AutoscalingplansScalingPlanScalingInstruction,
    AutoscalingplansScalingPlanScalingInstructionPredefinedLoadMetricSpecification,
    AutoscalingplansScalingPlanScalingInstructionTargetTrackingConfiguration,
    AutoscalingplansScalingPlanScalingInstructionTargetTrackingConfigurationPredefinedScalingMetricSpecification,
)
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.lambda_alias import LambdaAlias
from cdktf_cdktf_provider_aws.lambda_provisioned_concurrency_config import LambdaProvisionedConcurrencyConfig
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from scaling_patterns.core.app_autoscaling import ScalableTarget
from scaling_patterns.core.iam import ANY_RESOURCE, Statement, policy_document
from scaling_patterns.core.lambda_function import PythonFunction
from scaling_patterns.core.pattern import Pattern
from scaling_patterns.patterns.predictive_lambda_scaling.settings import (
    PlanAutoScalingGroup,
    PredictiveLambdaScalingSettings,
    RelatedScalingPlan,
    SpilloverAlarm,
)


class LambdaWithPredictiveConcurrency(Pattern):
    """Published inference function; its alias keeps provisioned concurrency, scaled and scheduled.

    Attributes: ``function`` (the :class:`PythonFunction`), ``alias``, ``provisioned_concurrency``,
    ``scaling`` (scalable target), ``alarm`` (spillover), ``alarm_topic_arn``, ``scaling_plan``.
    Helpers: :meth:`grant_invoke`, :meth:`metric_spillover`.
    """

    settings_class = PredictiveLambdaScalingSettings

    def __init__(self, scope: Construct, id_: str, settings: PredictiveLambdaScalingSettings | dict | None = None, **props):
        super().__init__(scope, id_, settings, **props)
        s: PredictiveLambdaScalingSettings = self.settings
        name = self.resource_name

        self.function = PythonFunction(
            self, "inference",
            function_name=name("inference"),
            source="predictive_inference",
            description="AI inference; served through its alias with provisioned concurrency",
            statements=[],  # the stand-in model needs no AWS access; add your model's grants here
            memory_mb=s.memory_mb,
            timeout_seconds=s.timeout_seconds,
            log_retention_days=s.log_retention_days,
            publish=True,  # every code change publishes a version; the alias follows it
        )
        self.alias = LambdaAlias(
            self, "alias",
            name=s.alias_name,
            function_name=self.function.name,
            function_version=self.function.function.version,
            description="Published version with provisioned concurrency; invoke this, not $LATEST",
            # A renamed alias is created before the old one is deleted (clients move to the new name).
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )

        self.provisioned_concurrency: LambdaProvisionedConcurrencyConfig | None = None
        self.scaling: ScalableTarget | None = None
        self.scaling_plan: AutoscalingplansScalingPlan | None = None
        if not self.context.emulator:  # moto cannot create these (see docs/patterns/predictive-lambda-scaling.md)
            self.provisioned_concurrency = LambdaProvisionedConcurrencyConfig(
                self, "provisioned_concurrency",
                function_name=self.function.name,
                qualifier=self.alias.name,
                provisioned_concurrent_executions=s.provisioned_concurrency,
                # Application Auto Scaling changes it from here on; a later apply must not undo that.
                lifecycle=TerraformResourceLifecycle(ignore_changes=["provisioned_concurrent_executions"]),
            )
            self.scaling = self._autoscaling(s)
            if s.scaling_plan is not None:
                self.scaling_plan = RelatedResourcesScalingPlan(self, "related", s.scaling_plan, name("related-resources")).plan

        self.alarm_topic_arn: str | None = s.spillover_alarm.topic_arn
        self.alarm = self._spillover_alarm(s.spillover_alarm)

    def _autoscaling(self, s: PredictiveLambdaScalingSettings) -> ScalableTarget:
        assert self.provisioned_concurrency is not None
        changes = s.scheduled_changes
        target = ScalableTarget(
            self, "concurrency_scaling",
            service_namespace="lambda",
            resource_id=f"function:{self.function.name}:{self.alias.name}",
            scalable_dimension="lambda:function:ProvisionedConcurrency",
            min_capacity=s.scaling.min_capacity,
            max_capacity=s.scaling.max_capacity,
            scheduled_minimum=bool(changes),
            depends_on=[self.provisioned_concurrency],
        )
        target.track(
            "utilization_tracking",
            name=self.resource_name("concurrency-utilization"),
            predefined_metric="LambdaProvisionedConcurrencyUtilization",
            target_value=s.scaling.target_utilization,
            scale_in_cooldown_seconds=s.scaling.scale_in_cooldown_seconds,
            scale_out_cooldown_seconds=s.scaling.scale_out_cooldown_seconds,
        )
        for change in changes:
            target.schedule(
                f"scheduled_{change.key}",
                name=self.resource_name(change.key.replace("_", "-"), max_length=256),
                schedule=change.cron,
                timezone=s.schedule.timezone,
                min_capacity=change.min_capacity,
            )
        return target

    def _spillover_alarm(self, a: SpilloverAlarm) -> CloudwatchMetricAlarm:
        name = self.resource_name
        topic: SnsTopic | None = None
        if a.create_topic:
            key_arn = a.topic_kms_key_arn or self._topic_key().arn
            topic = SnsTopic(self, "alarm_topic", name=name("alarms"), kms_master_key_id=key_arn)
            self.alarm_topic_arn = topic.arn
            for index, address in enumerate(a.email_subscriptions):
                SnsTopicSubscription(self, f"alarm_email_{index}", topic_arn=topic.arn, protocol="email", endpoint=address)
        actions = [self.alarm_topic_arn] if self.alarm_topic_arn else None
        alarm = CloudwatchMetricAlarm(
            self, "spillover_alarm",
            alarm_name=name("spillover"),
            alarm_description=(f"Invocations of {self.function.function_name}:{self.alias.name} ran beyond the "
                               "provisioned concurrency (on demand, with cold starts)"),
            namespace="AWS/Lambda",
            metric_name="ProvisionedConcurrencySpilloverInvocations",
            dimensions={"FunctionName": self.function.name, "Resource": f"{self.function.name}:{self.alias.name}"},
            statistic="Sum",
            period=a.period_seconds,
            evaluation_periods=a.evaluation_periods,
            datapoints_to_alarm=a.datapoints_to_alarm,
            threshold=a.threshold,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",  # no invocations, no spillover
            alarm_actions=actions,
            ok_actions=actions,
        )
        if topic is not None:
            SnsTopicPolicy(
                self, "alarm_topic_policy",
                arn=topic.arn,
                policy=policy_document([Statement(
                    sid="SpilloverAlarmPublishes", actions=["sns:Publish"], resources=[topic.arn],
                    principals={"Service": "cloudwatch.amazonaws.com"},
                    conditions={"ArnEquals": {"aws:SourceArn": alarm.arn}})]),
            )
        return alarm

    def _topic_key(self) -> KmsKey:
        """A customer-managed key for the alarm topic: the AWS-managed SNS key does not let CloudWatch publish."""
        account = DataAwsCallerIdentity(self, "account").account_id
        partition = self.context.partition
        key = KmsKey(
            self, "alarm_topic_key",
            description=f"Encrypts the {self.resource_name('alarms')} SNS topic",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            # In a key policy, Resource "*" means this key.
            policy=policy_document([
                Statement(sid="AccountAdministersKey", actions=["kms:*"], resources=[ANY_RESOURCE],
                          principals={"AWS": f"arn:{partition}:iam::{account}:root"}),
                Statement(sid="CloudWatchAlarmsEncrypt", actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                          resources=[ANY_RESOURCE], principals={"Service": "cloudwatch.amazonaws.com"},
                          conditions={"StringEquals": {"aws:SourceAccount": account}}),
            ]),
        )
        KmsAlias(self, "alarm_topic_key_alias", name=f"alias/{self.resource_name('alarms')}", target_key_id=key.key_id)
        return key

    # --- what a composing app needs ---------------------------------------------------------

    def grant_invoke(self, scope: Construct, id_: str, role_name: str) -> IamRolePolicy:
        """Let another role invoke the alias (the published version with provisioned concurrency)."""
        return IamRolePolicy(scope, id_, name=id_.replace("_", "-"), role=role_name, policy=policy_document([
            Statement(sid="InvokeAlias", actions=["lambda:InvokeFunction"], resources=[self.alias.arn])]))

    def metric_spillover(self) -> dict[str, object]:
        """Invocations beyond the provisioned concurrency (the spillover alarm's metric)."""
        return {"namespace": "AWS/Lambda", "metric_name": "ProvisionedConcurrencySpilloverInvocations",
                "dimensions": {"FunctionName": self.function.name, "Resource": f"{self.function.name}:{self.alias.name}"},
                "statistic": "Sum", "period": 60}

    def outputs(self) -> dict[str, tuple[object, str]]:
        out: dict[str, tuple[object, str]] = {
            "lambda_function_arn": (self.function.arn, "ARN of the inference function (unqualified)"),
            "lambda_alias_arn": (self.alias.arn, "ARN of the alias to invoke (carries the provisioned concurrency)"),
            "lambda_function_name": (self.function.name, "Name of the inference function"),
        }
        if self.scaling is not None:
            out["scalable_target_id"] = (self.scaling.id, "Application Auto Scaling target of the alias's provisioned concurrency")
        out["spillover_alarm_name"] = (self.alarm.alarm_name, "Alarm on invocations beyond the provisioned concurrency")
        if self.alarm_topic_arn is not None:
            out["alarm_topic_arn"] = (self.alarm_topic_arn, "SNS topic the spillover alarm notifies")
        if self.scaling_plan is not None:
            out["scaling_plan_name"] = (self.scaling_plan.name, "AWS Auto Scaling plan of the related resources")
        return out


class RelatedResourcesScalingPlan(Construct):
    """AWS Auto Scaling plan over resources found by tag: predictive for Auto Scaling groups."""

    def __init__(self, scope: Construct, id_: str, plan: RelatedScalingPlan, plan_name: str):
        super().__init__(scope, id_)
        instructions = []
        for resource in plan.resources:
            if isinstance(resource, PlanAutoScalingGroup):
                instructions.append(AutoscalingplansScalingPlanScalingInstruction(
                    service_namespace="autoscaling",
                    resource_id=f"autoScalingGroup/{resource.name}",
                    scalable_dimension="autoscaling:autoScalingGroup:DesiredCapacity",
                    min_capacity=resource.min_capacity,
                    max_capacity=resource.max_capacity,
                    target_tracking_configuration=[_tracking(resource.target_cpu_percent, "ASGAverageCPUUtilization")],
                    predictive_scaling_mode=resource.predictive_mode,
                    predefined_load_metric_specification=(
                        AutoscalingplansScalingPlanScalingInstructionPredefinedLoadMetricSpecification(
                            predefined_load_metric_type="ASGTotalCPUUtilization")),
                    predictive_scaling_max_capacity_behavior="SetForecastCapacityToMaxCapacity",  # never above max
                ))
            else:  # DynamoDB: AWS Auto Scaling plans forecast only EC2 Auto Scaling groups
                unit = "Read" if resource.dimension == "read" else "Write"
                instructions.append(AutoscalingplansScalingPlanScalingInstruction(
                    service_namespace="dynamodb",
                    resource_id=f"table/{resource.name}",
                    scalable_dimension=f"dynamodb:table:{unit}CapacityUnits",
                    min_capacity=resource.min_capacity,
                    max_capacity=resource.max_capacity,
                    target_tracking_configuration=[_tracking(resource.target_utilization_percent,
                                                             f"DynamoDB{unit}CapacityUtilization")],
                ))
        self.plan = AutoscalingplansScalingPlan(
            self, "plan",
            name=plan_name,
            application_source=AutoscalingplansScalingPlanApplicationSource(tag_filter=[
                AutoscalingplansScalingPlanApplicationSourceTagFilter(key=plan.tag_key, values=list(plan.tag_values))]),
            scaling_instruction=instructions,
        )


def _tracking(target: float, metric: str) -> AutoscalingplansScalingPlanScalingInstructionTargetTrackingConfiguration:
    return AutoscalingplansScalingPlanScalingInstructionTargetTrackingConfiguration(
        target_value=target,
        predefined_scaling_metric_specification=(
            AutoscalingplansScalingPlanScalingInstructionTargetTrackingConfigurationPredefinedScalingMetricSpecification(
                predefined_scaling_metric_type=metric)),
    )
