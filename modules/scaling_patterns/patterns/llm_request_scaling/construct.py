"""Pattern 1: EventBridge rule on inference-request events -> request Lambda; scheduled scaler.

``EventbridgeToScalingController`` wires two paths:

* **request path** (always): rule (default or custom bus) -> target (retry policy, encrypted
  SQS DLQ) -> function ``<prefix>-llm-controller`` (``handler.handler``), with
  ``lambda:InvokeFunction`` for ``events.amazonaws.com`` limited to this rule's ARN. The
  function records each request as CloudWatch embedded metric format (EMF) in its own logs:
  no API call per request and no CloudWatch or scaling permission. Failed asynchronous
  invocations land in the DLQ;
* **decision path** (only with ``scaling_target``): a schedule rule on the default bus,
  ``rate(1 minute)`` -> function ``<prefix>-llm-scaler`` (``handler.scheduled``), which reads
  the request rule's own ``AWS/Events`` ``MatchedEvents`` (one count per matched event, however
  often delivery is retried) and sets the target's capacity. It is the only principal with
  rights on the target: one writer. Ticks are never retried and expire after one interval.
"""

from __future__ import annotations

import json

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_event_bus import CloudwatchEventBus
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import (
    CloudwatchEventTarget,
    CloudwatchEventTargetDeadLetterConfig,
    CloudwatchEventTargetRetryPolicy,
)
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_function_event_invoke_config import (
    LambdaFunctionEventInvokeConfig,
    LambdaFunctionEventInvokeConfigDestinationConfig,
    LambdaFunctionEventInvokeConfigDestinationConfigOnFailure,
)
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from constructs import Construct

from scaling_patterns.core.iam import (
    ANY_RESOURCE,
    Statement,
    grant_send_messages,
    policy_document,
)
from scaling_patterns.core.lambda_function import PythonFunction
from scaling_patterns.core.naming import lowercase, versioned
from scaling_patterns.core.pattern import Pattern
from scaling_patterns.patterns.llm_request_scaling.settings import (
    AutoScalingGroupTarget,
    LlmRequestScalingSettings,
    SageMakerVariantTarget,
)

#: How often the scaler decides (CloudWatch's 1-minute resolution); the handler's TICK_SECONDS.
SCHEDULE = "rate(1 minute)"
#: A tick older than one interval is dropped (60 s is also the smallest age AWS accepts).
TICK_MAX_AGE_SECONDS = 60


class EventbridgeToScalingController(Pattern):
    """EventBridge rule on inference-request events -> request function; with a scaling target,
    a scheduled scaler that sets its capacity from the rule's matched events.

    Attributes: ``rule``, ``target``, ``controller`` (the request function), ``dead_letter_queue``,
    ``event_bus`` (when created), ``schedule`` and ``scaler`` (None without a target).
    Helpers: :meth:`grant_put_events`, :meth:`metric_requests`.
    """

    settings_class = LlmRequestScalingSettings

    def __init__(self, scope: Construct, id_: str, settings: LlmRequestScalingSettings | dict | None = None, **props):
        super().__init__(scope, id_, settings, **props)
        s: LlmRequestScalingSettings = self.settings
        name = self.resource_name

        bus_name = s.event_bus_name
        if s.create_event_bus and bus_name:
            self.event_bus = CloudwatchEventBus(self, "event_bus", name=bus_name)
            bus_name = self.event_bus.name

        # Moving the rule to another bus replaces it: rules on different buses may share a name,
        # so the new rule (and its target and invoke permission) exist before the old ones go,
        # and no event is dropped in between (a few may be delivered by both).
        replace_first = TerraformResourceLifecycle(create_before_destroy=True)
        self.rule = CloudwatchEventRule(
            self, "rule",
            name=name("inference-requests"),
            description="Inference-request events that drive the scaling controller",
            event_bus_name=bus_name,
            event_pattern=json.dumps(s.rule_event_pattern()),
            lifecycle=replace_first,
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

        # The request path: records each request as EMF in its logs, no AWS call, no scaling rights.
        # Construct id, name, handler, target id and permission are the ones deployments already
        # have: an apply updates the function in place and the rule keeps delivering.
        self.controller = PythonFunction(
            self, "controller",
            function_name=name("controller"),
            source="scaling_controller",
            handler="handler.handler",
            description="Records each inference-request event as CloudWatch metrics (embedded metric format in its logs)",
            statements=[grant_send_messages(self.dead_letter_queue.arn, sid="FailedInvocationsToDeadLetterQueue")],
            memory_mb=s.memory_mb,
            timeout_seconds=s.timeout_seconds,
            environment={"METRIC_NAMESPACE": s.metric_namespace},
            log_retention_days=s.log_retention_days,
        )

        self.permission = LambdaPermission(
            self, "allow_eventbridge",
            # One statement per bus, so the permission for a moved rule can exist beside the old one.
            statement_id=versioned("AllowInferenceRequestRule", {"event_bus": s.event_bus_name or "default"}),
            action="lambda:InvokeFunction",
            function_name=self.controller.name,
            principal="events.amazonaws.com",
            source_arn=self.rule.arn,
            lifecycle=replace_first,
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
            lifecycle=replace_first,
        )
        LambdaFunctionEventInvokeConfig(
            self, "async_failures",
            function_name=self.controller.name,
            maximum_retry_attempts=2,
            destination_config=LambdaFunctionEventInvokeConfigDestinationConfig(
                on_failure=LambdaFunctionEventInvokeConfigDestinationConfigOnFailure(
                    destination=self.dead_letter_queue.arn)),
        )

        self.schedule: CloudwatchEventRule | None = None
        self.scaler: PythonFunction | None = None
        if s.scaling_target is not None:
            self._scheduled_scaler(s, bus_name)

    def _scheduled_scaler(self, s: LlmRequestScalingSettings, bus_name: str | None) -> None:
        """The decision path: a schedule rule -> the scaler, the only writer of the target's capacity."""
        name = self.resource_name
        environment = {
            # The signal: AWS/Events MatchedEvents of the request rule (one count per matched event).
            "RULE_NAME": self.rule.name,
            "MIN_CAPACITY": str(s.scaling.min_capacity),
            "MAX_CAPACITY": str(s.scaling.max_capacity),
            "REQUESTS_PER_INSTANCE_PER_MINUTE": str(s.scaling.requests_per_instance_per_minute),
            "COOLDOWN_SECONDS": str(s.scaling.cooldown_seconds),
            "RATE_WINDOW_MINUTES": str(s.scaling.rate_window_minutes),
        }
        if s.signal_event_bus is not None:
            environment["EVENT_BUS_NAME"] = bus_name or s.signal_event_bus
        statements = [
            # GetMetricData has no resource-level permission (and no namespace condition key).
            Statement(sid="ReadRequestRate", actions=["cloudwatch:GetMetricData"], resources=[ANY_RESOURCE]),
            *self._target_statements(s, environment),
        ]
        # Schedule expressions work only on the account's default bus, whatever bus the requests use.
        self.schedule = CloudwatchEventRule(
            self, "schedule",
            name=name("scaling-schedule"),
            description="Runs the scaler once a minute (scales in without events, one writer)",
            schedule_expression=SCHEDULE,
        )
        self.scaler = PythonFunction(
            self, "scaler",
            function_name=name("scaler"),
            source="scaling_controller",
            handler="handler.scheduled",
            description="Sets the scaling target's capacity from the request rule's matched events, once a minute",
            statements=statements,
            memory_mb=s.memory_mb,
            timeout_seconds=s.scaler_timeout_seconds,
            environment=environment,
            log_retention_days=s.log_retention_days,
            reserved_concurrency=1 if s.scaler_reserved_concurrency else None,
        )
        LambdaPermission(
            self, "allow_schedule",
            statement_id="AllowScalingSchedule",
            action="lambda:InvokeFunction",
            function_name=self.scaler.name,
            principal="events.amazonaws.com",
            source_arn=self.schedule.arn,
        )
        # A tick is worth nothing late: no retries, dropped after one interval (both sides of the
        # asynchronous invocation), so ticks never pile up behind a slow or failing one.
        CloudwatchEventTarget(
            self, "schedule_target",
            rule=self.schedule.name,
            target_id="scaler",
            arn=self.scaler.arn,
            retry_policy=CloudwatchEventTargetRetryPolicy(
                maximum_retry_attempts=0, maximum_event_age_in_seconds=TICK_MAX_AGE_SECONDS),
        )
        LambdaFunctionEventInvokeConfig(
            self, "scaler_ticks",
            function_name=self.scaler.name,
            maximum_retry_attempts=0,
            maximum_event_age_in_seconds=TICK_MAX_AGE_SECONDS,
        )

    def _target_statements(self, s: LlmRequestScalingSettings, env: dict[str, str]) -> list[Statement]:
        """Least-privilege grants on the one scaling target, and its environment."""
        target = s.scaling_target
        assert target is not None
        partition, region = self.context.partition, self.context.region
        account = self._account()
        env["TARGET_TYPE"] = target.type
        if isinstance(target, SageMakerVariantTarget):
            env.update(TARGET_NAME=target.endpoint_name, VARIANT_NAME=target.variant_name)
            # SageMaker ARNs carry the endpoint name in lower case.
            endpoint_arn = f"arn:{partition}:sagemaker:{region}:{account}:endpoint/{lowercase(target.endpoint_name)}"
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


    # --- what a composing app needs ---------------------------------------------------------

    def grant_put_events(self, scope: Construct, id_: str, role_name: str) -> IamRolePolicy:
        """Let another role (the LLM service) put inference-request events on the rule's bus."""
        bus = self.event_bus.arn if getattr(self, "event_bus", None) is not None else (
            f"arn:{self.context.partition}:events:{self.context.region}:{self._account()}:event-bus/"
            f"{self.settings.event_bus_name or 'default'}")
        return IamRolePolicy(scope, id_, name=id_.replace("_", "-"), role=role_name, policy=policy_document([
            Statement(sid="PutInferenceRequestEvents", actions=["events:PutEvents"], resources=[bus])]))

    def metric_requests(self) -> dict[str, object]:
        """Requests per minute as the scaler counts them: ``AWS/Events MatchedEvents`` of the rule."""
        dimensions = {"RuleName": self.rule.name}
        if self.settings.event_bus_name and self.settings.event_bus_name != "default":
            dimensions["EventBusName"] = self.settings.event_bus_name
        return {"namespace": "AWS/Events", "metric_name": "MatchedEvents", "dimensions": dimensions,
                "statistic": "Sum", "period": 60}

    def _account(self) -> str:
        if self._caller is None:
            self._caller = DataAwsCallerIdentity(self, "account").account_id
        return self._caller

    _caller: str | None = None

    def outputs(self) -> dict[str, tuple[object, str]]:
        out = {
            "lambda_function_name": (self.controller.name, "Request function: records each inference-request event as metrics (EMF)"),
            "event_rule_name": (self.rule.name, "EventBridge rule matching inference-request events"),
            "event_rule_arn": (self.rule.arn, "ARN of the EventBridge rule"),
            "dead_letter_queue_url": (self.dead_letter_queue.url, "Events that could not be delivered or processed"),
        }
        if self.scaler is not None and self.schedule is not None:
            out["scaler_function_name"] = (self.scaler.name, "Scaler: sets the scaling target's capacity once a minute")
            out["schedule_rule_name"] = (self.schedule.name, "EventBridge schedule rule that runs the scaler")
        return out
