"""Pattern 1: EventBridge rule on inference-request events -> scaling-controller Lambda.

``EventbridgeToScalingController`` wires:
rule (default or custom bus) -> target (retry policy, encrypted SQS DLQ) -> Lambda
(``functions/scaling_controller``), with ``lambda:InvokeFunction`` for
``events.amazonaws.com`` limited to this rule's ARN. Failed asynchronous invocations also
land in the DLQ. The function may write metrics only to its namespace and may change only
the configured scaling target.
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.cloudwatch_event_bus import CloudwatchEventBus
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import (
    CloudwatchEventTarget,
    CloudwatchEventTargetDeadLetterConfig,
    CloudwatchEventTargetRetryPolicy,
)
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.lambda_function_event_invoke_config import (
    LambdaFunctionEventInvokeConfig,
    LambdaFunctionEventInvokeConfigDestinationConfig,
    LambdaFunctionEventInvokeConfigDestinationConfigOnFailure,
)
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from constructs import Construct

from modules.core.iam import (
    ANY_RESOURCE,
    Statement,
    grant_put_metrics,
    grant_send_messages,
    partition_of,
    policy_document,
)
from modules.core.lambda_function import PythonFunction
from modules.core.settings import ProjectSettings
from modules.core.stack import PatternStack
from modules.llm_request_scaling.settings import (
    AutoScalingGroupTarget,
    LlmRequestScalingSettings,
    SageMakerVariantTarget,
)


class EventbridgeToScalingController(Construct):
    def __init__(self, scope: PatternStack, id_: str, settings: LlmRequestScalingSettings):
        super().__init__(scope, id_)
        s = settings
        name = scope.resource_name

        bus_name = s.event_bus_name
        if s.create_event_bus and bus_name:
            self.event_bus = CloudwatchEventBus(self, "event_bus", name=bus_name)
            bus_name = self.event_bus.name

        self.rule = CloudwatchEventRule(
            self, "rule",
            name=name("inference-requests"),
            description="Inference-request events that drive the scaling controller",
            event_bus_name=bus_name,
            event_pattern=json.dumps(s.rule_event_pattern()),
        )

        self.dead_letter_queue = SqsQueue(
            self, "dead_letter_queue",
            name=name("undelivered-events"),
            sqs_managed_sse_enabled=True,
            message_retention_seconds=s.dlq_retention_seconds,
        )
        SqsQueuePolicy(
            self, "dead_letter_queue_policy",
            queue_url=self.dead_letter_queue.url,
            policy=policy_document([Statement(
                sid="EventBridgeDeadLetters", actions=["sqs:SendMessage"], resources=[self.dead_letter_queue.arn],
                principals={"Service": "events.amazonaws.com"},
                conditions={"ArnEquals": {"aws:SourceArn": self.rule.arn}})]),
        )

        environment = {
            "METRIC_NAMESPACE": s.metric_namespace,
            "MIN_CAPACITY": str(s.scaling.min_capacity),
            "MAX_CAPACITY": str(s.scaling.max_capacity),
            "REQUESTS_PER_INSTANCE_PER_MINUTE": str(s.scaling.requests_per_instance_per_minute),
            "COOLDOWN_SECONDS": str(s.scaling.cooldown_seconds),
            "RATE_WINDOW_MINUTES": str(s.scaling.rate_window_minutes),
        }
        statements = [
            grant_put_metrics(s.metric_namespace),
            # GetMetricStatistics has no resource-level permission.
            Statement(sid="ReadRequestRate", actions=["cloudwatch:GetMetricStatistics"], resources=[ANY_RESOURCE]),
            grant_send_messages(self.dead_letter_queue.arn, sid="FailedInvocationsToDeadLetterQueue"),
            *self._target_statements(scope, s, environment),
        ]

        self.controller = PythonFunction(
            self, "controller",
            function_name=name("controller"),
            source="scaling_controller",
            description="Turns inference-request events into metrics and capacity",
            statements=statements,
            memory_mb=s.memory_mb,
            timeout_seconds=s.timeout_seconds,
            environment=environment,
            log_retention_days=s.log_retention_days,
        )

        self.permission = LambdaPermission(
            self, "allow_eventbridge",
            statement_id="AllowInferenceRequestRule",
            action="lambda:InvokeFunction",
            function_name=self.controller.name,
            principal="events.amazonaws.com",
            source_arn=self.rule.arn,
        )
        self.target = CloudwatchEventTarget(
            self, "target",
            rule=self.rule.name,
            event_bus_name=bus_name,
            target_id="scaling-controller",
            arn=self.controller.arn,
            retry_policy=CloudwatchEventTargetRetryPolicy(
                maximum_retry_attempts=s.max_retry_attempts,
                maximum_event_age_in_seconds=s.max_event_age_seconds),
            dead_letter_config=CloudwatchEventTargetDeadLetterConfig(arn=self.dead_letter_queue.arn),
        )
        LambdaFunctionEventInvokeConfig(
            self, "async_failures",
            function_name=self.controller.name,
            maximum_retry_attempts=2,
            destination_config=LambdaFunctionEventInvokeConfigDestinationConfig(
                on_failure=LambdaFunctionEventInvokeConfigDestinationConfigOnFailure(
                    destination=self.dead_letter_queue.arn)),
        )

    def _target_statements(self, scope: PatternStack, s: LlmRequestScalingSettings, env: dict[str, str]) -> list[Statement]:
        """Least-privilege grants on the one scaling target, and its environment."""
        target = s.scaling_target
        if target is None:
            return []
        partition, region = partition_of(scope.project.region), scope.project.region
        account = DataAwsCallerIdentity(self, "account").account_id
        env["TARGET_TYPE"] = target.type
        if isinstance(target, SageMakerVariantTarget):
            env.update(TARGET_NAME=target.endpoint_name, VARIANT_NAME=target.variant_name)
            # SageMaker ARNs carry the endpoint name in lower case.
            endpoint_arn = f"arn:{partition}:sagemaker:{region}:{account}:endpoint/{target.endpoint_name.lower()}"
            return [Statement(sid="ScaleEndpointVariant",
                              actions=["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"],
                              resources=[endpoint_arn])]
        assert isinstance(target, AutoScalingGroupTarget)
        env["TARGET_NAME"] = target.name
        group_arn = f"arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{target.name}"
        return [
            Statement(sid="ScaleAutoScalingGroup", actions=["autoscaling:SetDesiredCapacity"], resources=[group_arn]),
            # Describe calls in EC2 Auto Scaling have no resource-level permission.
            Statement(sid="DescribeAutoScalingGroup",
                      actions=["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities"],
                      resources=[ANY_RESOURCE]),
        ]


class LlmRequestScalingStack(PatternStack):
    SHORT = "llm"

    def __init__(self, scope: Construct, name: str, project: ProjectSettings, settings: LlmRequestScalingSettings):
        super().__init__(scope, name, project)
        pattern = EventbridgeToScalingController(self, "llm_request_scaling", settings)
        self.pattern = pattern
        self.output("lambda_function_name", pattern.controller.name, "Scaling-controller Lambda function")
        self.output("event_rule_name", pattern.rule.name, "EventBridge rule matching inference-request events")
        self.output("event_rule_arn", pattern.rule.arn, "ARN of the EventBridge rule")
        self.output("dead_letter_queue_url", pattern.dead_letter_queue.url, "Events that could not be delivered or processed")
