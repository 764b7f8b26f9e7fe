"""Wiring checks of deployed stacks, through the AWS API (boto3): ``make deploy-local`` runs them.

Two layers, both run by ``make deploy-local`` after each stack's apply:

* **Generic checks**, for every stack, driven by the synthesized configuration: for each
  resource of a known type, the references the configuration makes (``${aws_sqs_queue.x.arn}``)
  are resolved through Terraform's state to the values they stand for, and the API must show
  exactly that wiring (an event target's ARN, a queue's redrive target, an event source
  mapping's queue and function, an alarm's actions, a listener's target group, ...). A
  resource that Terraform recorded but the API does not know fails.
* **Pattern checks**, one function per pattern, declared as ``checks`` in its ``PATTERN``
  spec (``scaling_patterns/patterns/<name>/checks.py``): what the pattern promises, stated
  plainly, e.g. "the rule's only target is the request function and undeliverable events go
  to the DLQ". Patterns without one rely on the generic checks.

Each check records a :class:`Check` (name, passed, detail); an exception inside a check is
a failed check carrying the error, so one broken call never hides the others.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

REF = re.compile(r"^\$\{([a-z0-9_]+)\.([A-Za-z0-9_]+)\.([a-z0-9_]+)\}$")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class CheckContext:
    """What a check needs: the stack's configuration, state and outputs, and API clients."""

    stack: str
    config: dict[str, Any]  # synthesized cdk.tf.json
    state: list[dict[str, Any]]  # `terraform show -json` root_module resources
    outputs: dict[str, Any]  # `terraform output -json`, values only
    client_factory: Callable[[str], Any]
    results: list[Check] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict)

    # -- data -----------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.client_factory(service)
        return self._clients[service]

    def configured(self, type_: str) -> dict[str, dict[str, Any]]:
        """Configured resources of ``type_`` by name (the synthesized JSON)."""
        return self.config.get("resource", {}).get(type_, {})

    def values(self, type_: str, name: str) -> dict[str, Any]:
        """State values of resource ``type_.name`` ({} when Terraform has none)."""
        for resource in self.state:
            if resource.get("mode", "managed") == "managed" and resource["type"] == type_ and resource["name"] == name:
                return resource.get("values") or {}
        return {}

    def one(self, type_: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(name, config, state values) of the only resource of ``type_``."""
        found = self.configured(type_)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_}, the configuration has {sorted(found)}")
        name, body = next(iter(found.items()))
        return name, body, self.values(type_, name)

    def resolve(self, value: Any) -> Any:
        """A configured value with a whole-string reference ``${type.name.attr}`` resolved through state."""
        if isinstance(value, str):
            match = REF.match(value)
            if match:
                type_, name, attr = match.groups()
                return self.values(type_, name).get(attr)
        return value

    # -- recording ------------------------------------------------------------------------

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.results.append(Check(name, bool(passed), "" if passed else detail))
        return bool(passed)

    def equal(self, name: str, actual: Any, expected: Any) -> bool:
        return self.check(name, actual == expected, f"expected {expected!r}, the API has {actual!r}")

    def run(self, name: str, function: Callable[[], None]) -> None:
        """Run one check function; an exception is a failed check named ``name``."""
        try:
            function()
        except Exception as exc:  # noqa: BLE001 - reported, never swallowed
            self.check(name, False, f"{type(exc).__name__}: {exc}")


def _block(value: Any) -> dict[str, Any]:
    """A nested block as cdktf writes it (a dict, or a one-item list) or {}."""
    if isinstance(value, list):
        return value[0] if value else {}
    return value or {}


def json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# ---------------------------------------------------------------------------------------
# Generic checks: one function per resource type
# ---------------------------------------------------------------------------------------

GenericCheck = Callable[[CheckContext, str, dict[str, Any], dict[str, Any]], None]
GENERIC_CHECKS: dict[str, GenericCheck] = {}


def generic(type_: str) -> Callable[[GenericCheck], GenericCheck]:
    def register(function: GenericCheck) -> GenericCheck:
        GENERIC_CHECKS[type_] = function
        return function
    return register


@generic("aws_lambda_function")
def _lambda_function(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    config = ctx.client("lambda").get_function(FunctionName=ctx.resolve(body["function_name"]))["Configuration"]
    label = f"lambda {config['FunctionName']}"
    ctx.equal(f"{label}: runtime", config.get("Runtime"), body.get("runtime"))
    ctx.equal(f"{label}: handler", config.get("Handler"), body.get("handler"))
    ctx.equal(f"{label}: role", config.get("Role"), ctx.resolve(body.get("role")))
    wanted_env = {k: ctx.resolve(v) for k, v in (_block(body.get("environment")).get("variables") or {}).items()}
    ctx.equal(f"{label}: environment", config.get("Environment", {}).get("Variables", {}), wanted_env)


@generic("aws_cloudwatch_event_rule")
def _event_rule(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    bus = ctx.resolve(body.get("event_bus_name")) or "default"
    rule = ctx.client("events").describe_rule(Name=ctx.resolve(body["name"]), EventBusName=bus)
    label = f"rule {rule['Name']}"
    if "event_pattern" in body:
        ctx.equal(f"{label}: event pattern", json_value(rule.get("EventPattern")), json_value(body["event_pattern"]))
    if "schedule_expression" in body:
        ctx.equal(f"{label}: schedule", rule.get("ScheduleExpression"), body["schedule_expression"])
    ctx.equal(f"{label}: state", rule.get("State"), "DISABLED" if body.get("state") == "DISABLED" else "ENABLED")


@generic("aws_cloudwatch_event_target")
def _event_target(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    rule = ctx.resolve(body["rule"])
    bus = ctx.resolve(body.get("event_bus_name")) or "default"
    targets = ctx.client("events").list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]
    target_id = ctx.resolve(body.get("target_id")) or state.get("target_id")
    found = [t for t in targets if t["Id"] == target_id]
    if not ctx.check(f"rule {rule}: target {target_id} exists", len(found) == 1, f"targets are {[t['Id'] for t in targets]}"):
        return
    target = found[0]
    ctx.equal(f"rule {rule}: target {target_id} arn", target.get("Arn"), ctx.resolve(body["arn"]))
    dlq = _block(body.get("dead_letter_config")).get("arn")
    if dlq:
        ctx.equal(f"rule {rule}: target {target_id} dead-letter queue",
                  target.get("DeadLetterConfig", {}).get("Arn"), ctx.resolve(dlq))
    retry = _block(body.get("retry_policy"))
    if retry:
        ctx.equal(f"rule {rule}: target {target_id} retry policy", target.get("RetryPolicy"), {
            "MaximumRetryAttempts": retry.get("maximum_retry_attempts"),
            "MaximumEventAgeInSeconds": retry.get("maximum_event_age_in_seconds")})


@generic("aws_lambda_permission")
def _lambda_permission(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    function = ctx.resolve(body["function_name"])
    policy = json.loads(ctx.client("lambda").get_policy(FunctionName=function)["Policy"])
    sid = ctx.resolve(body.get("statement_id")) or state.get("statement_id")
    found = [s for s in policy.get("Statement", []) if s.get("Sid") == sid]
    label = f"lambda {function}: permission {sid}"
    if not ctx.check(f"{label} exists", len(found) == 1, f"statements are {[s.get('Sid') for s in policy.get('Statement', [])]}"):
        return
    statement = found[0]
    ctx.equal(f"{label}: principal", statement.get("Principal", {}).get("Service"), body.get("principal"))
    ctx.equal(f"{label}: action", statement.get("Action"), body.get("action"))
    if body.get("source_arn"):
        source = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
        ctx.equal(f"{label}: source ARN", source, ctx.resolve(body["source_arn"]))


@generic("aws_sqs_queue")
def _sqs_queue(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    sqs = ctx.client("sqs")
    queue_name = ctx.resolve(body.get("name")) or state.get("name")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    label = f"queue {queue_name}"
    ctx.equal(f"{label}: ARN", attributes.get("QueueArn"), state.get("arn"))
    if body.get("sqs_managed_sse_enabled"):
        ctx.equal(f"{label}: SSE", attributes.get("SqsManagedSseEnabled"), "true")
    if body.get("kms_master_key_id"):
        ctx.equal(f"{label}: KMS key", attributes.get("KmsMasterKeyId"), ctx.resolve(body["kms_master_key_id"]))
    if body.get("redrive_policy"):  # usually a jsonencode() expression: compare with what Terraform recorded
        actual = json_value(attributes.get("RedrivePolicy") or "{}").get("deadLetterTargetArn")
        ctx.equal(f"{label}: redrive target", actual, json_value(state.get("redrive_policy") or "{}").get("deadLetterTargetArn"))
        ctx.check(f"{label}: redrive target exists", _queue_arn_exists(sqs, actual), f"no queue with ARN {actual!r}")


def _queue_arn_exists(sqs: Any, arn: str | None) -> bool:
    if not arn:
        return False
    try:
        sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])
        return True
    except sqs.exceptions.QueueDoesNotExist:
        return False


@generic("aws_sqs_queue_redrive_policy")
def _sqs_redrive(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    sqs = ctx.client("sqs")
    url = ctx.resolve(body["queue_url"])
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
    expected = json_value(state.get("redrive_policy") or "{}").get("deadLetterTargetArn")
    ctx.equal(f"queue {url.rsplit('/', 1)[-1]}: redrive target",
              json_value(attributes.get("RedrivePolicy") or "{}").get("deadLetterTargetArn"), expected)


@generic("aws_lambda_event_source_mapping")
def _event_source_mapping(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    mapping = ctx.client("lambda").get_event_source_mapping(UUID=state["uuid"])
    label = f"event source mapping {state['uuid'][:8]}"
    ctx.equal(f"{label}: source", mapping.get("EventSourceArn"), ctx.resolve(body["event_source_arn"]))
    function = str(ctx.resolve(body["function_name"]))
    actual = str(mapping.get("FunctionArn", ""))
    same = actual == function or actual.split(":function:")[-1].split(":")[0] == function.split(":function:")[-1].split(":")[0]
    ctx.check(f"{label}: function", same, f"expected function {function!r}, the API has {actual!r}")
    if "batch_size" in body:
        ctx.equal(f"{label}: batch size", mapping.get("BatchSize"), body["batch_size"])


@generic("aws_cloudwatch_metric_alarm")
def _metric_alarm(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    alarm_name = ctx.resolve(body["alarm_name"])
    alarms = ctx.client("cloudwatch").describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
    if not ctx.check(f"alarm {alarm_name} exists", len(alarms) == 1, "not found"):
        return
    alarm = alarms[0]
    for key, api_key in (("alarm_actions", "AlarmActions"), ("ok_actions", "OKActions")):
        if body.get(key):
            ctx.equal(f"alarm {alarm_name}: {key}", sorted(alarm.get(api_key, [])),
                      sorted(str(ctx.resolve(a)) for a in body[key]))
    for key, api_key in (("metric_name", "MetricName"), ("namespace", "Namespace"), ("threshold", "Threshold")):
        if key in body and not REF.match(str(body[key])):
            ctx.equal(f"alarm {alarm_name}: {key}", alarm.get(api_key), body[key])


@generic("aws_lb_listener")
def _lb_listener(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    listener = ctx.client("elbv2").describe_listeners(ListenerArns=[state["arn"]])["Listeners"][0]
    ctx.equal(f"listener {name}: load balancer", listener.get("LoadBalancerArn"), ctx.resolve(body["load_balancer_arn"]))
    wanted = [ctx.resolve(_block(a).get("target_group_arn")) for a in (body.get("default_action") or [])
              if _block(a).get("target_group_arn")]
    if wanted:
        actual = [a.get("TargetGroupArn") for a in listener.get("DefaultActions", []) if a.get("TargetGroupArn")]
        ctx.equal(f"listener {name}: forwards to target group", actual, wanted)


@generic("aws_autoscaling_group")
def _autoscaling_group(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    group_name = state.get("name")
    groups = ctx.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    if not ctx.check(f"autoscaling group {group_name} exists", len(groups) == 1, "not found"):
        return
    if body.get("target_group_arns"):
        ctx.equal(f"autoscaling group {group_name}: target groups", sorted(groups[0].get("TargetGroupARNs", [])),
                  sorted(str(ctx.resolve(a)) for a in body["target_group_arns"]))


@generic("aws_autoscaling_policy")
def _autoscaling_policy(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    group = ctx.resolve(body["autoscaling_group_name"])
    policies = ctx.client("autoscaling").describe_policies(AutoScalingGroupName=group, PolicyNames=[state["name"]])
    ctx.check(f"autoscaling policy {state['name']} on group {group}", len(policies["ScalingPolicies"]) == 1, "not found")


@generic("aws_sagemaker_endpoint")
def _sagemaker_endpoint(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    endpoint = ctx.client("sagemaker").describe_endpoint(EndpointName=state["name"])
    ctx.equal(f"endpoint {state['name']}: config", endpoint.get("EndpointConfigName"), ctx.resolve(body["endpoint_config_name"]))


@generic("aws_sns_topic_subscription")
def _sns_subscription(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    attributes = ctx.client("sns").get_subscription_attributes(SubscriptionArn=state["arn"])["Attributes"]
    ctx.equal(f"subscription {name}: topic", attributes.get("TopicArn"), ctx.resolve(body["topic_arn"]))
    ctx.equal(f"subscription {name}: endpoint", attributes.get("Endpoint"), ctx.resolve(body["endpoint"]))


@generic("aws_cloudwatch_log_group")
def _log_group(ctx: CheckContext, name: str, body: dict[str, Any], state: dict[str, Any]) -> None:
    group_name = ctx.resolve(body["name"])
    groups = [g for g in ctx.client("logs").describe_log_groups(logGroupNamePrefix=group_name)["logGroups"]
              if g["logGroupName"] == group_name]
    if ctx.check(f"log group {group_name} exists", len(groups) == 1, "not found") and "retention_in_days" in body:
        ctx.equal(f"log group {group_name}: retention", groups[0].get("retentionInDays"), body["retention_in_days"])


def run_checks(ctx: CheckContext) -> list[Check]:
    """Generic checks for every configured resource of a known type, then the stack's own checks."""
    for type_, function in GENERIC_CHECKS.items():
        for name, body in ctx.configured(type_).items():
            if "count" in body or "for_each" in body:
                continue  # instances have indexed addresses; stack checks cover them
            ctx.run(f"{type_}.{name}", lambda f=function, t=type_, n=name, b=body: f(ctx, n, b, ctx.values(t, n)))
    from scaling_patterns.registry import PATTERNS

    spec = next((p for p in PATTERNS if p.name == ctx.stack), None)
    if spec is not None and spec.checks:
        specific = spec.load("checks")
        ctx.run(f"{ctx.stack} checks", lambda: specific(ctx))
    return ctx.results


def role_actions(iam: Any, role_arn: str) -> list[str]:
    """Every action the role's inline policies allow."""
    role = role_arn.rsplit("/", 1)[-1]
    found: list[str] = []
    for policy_name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
        document = json_value(document) if isinstance(document, str) else document
        for statement in document.get("Statement", []):
            if statement.get("Effect") == "Allow":
                action = statement.get("Action", [])
                found.extend([action] if isinstance(action, str) else action)
    return found


def event_sources(lam: Any, function_name: str) -> list[Any]:
    """Source ARNs of the function's resource policy statements for events.amazonaws.com."""
    policy = json.loads(lam.get_policy(FunctionName=function_name)["Policy"])
    return [s.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn") for s in policy["Statement"]
            if s.get("Principal", {}).get("Service") == "events.amazonaws.com"]


# ---------------------------------------------------------------------------------------
# Leftovers after destroy
# ---------------------------------------------------------------------------------------


def leftovers(client_factory: Callable[[str], Any], prefix: str, keep_buckets: Iterable[str] = ()) -> list[str]:
    """Resources on the emulator whose name starts with ``prefix`` (what destroy should have removed)."""
    found: list[str] = []
    keep = set(keep_buckets)

    def scan(label: str, call: Callable[[], Iterable[str]]) -> None:
        try:
            found.extend(f"{label} {name}" for name in call() if name.startswith(prefix) or f"/{prefix}" in name)
        except Exception as exc:  # noqa: BLE001 - a service the emulator lacks is not a leftover
            if "NotImplemented" not in type(exc).__name__ and "not yet implemented" not in str(exc):
                found.append(f"{label}: scan failed ({type(exc).__name__}: {exc})")

    c = client_factory
    scan("lambda function", lambda: [f["FunctionName"] for f in c("lambda").list_functions()["Functions"]])
    scan("sqs queue", lambda: [u.rsplit("/", 1)[-1] for u in c("sqs").list_queues().get("QueueUrls", [])])
    scan("event rule", lambda: [r["Name"] for r in c("events").list_rules()["Rules"]])
    scan("event bus", lambda: [b["Name"] for b in c("events").list_event_buses()["EventBuses"]])
    scan("iam role", lambda: [r["RoleName"] for r in c("iam").list_roles()["Roles"]])
    scan("log group", lambda: [g["logGroupName"].removeprefix("/aws/lambda/") for g in c("logs").describe_log_groups()["logGroups"]])
    scan("alarm", lambda: [a["AlarmName"] for a in c("cloudwatch").describe_alarms()["MetricAlarms"]])
    scan("sns topic", lambda: [t["TopicArn"].rsplit(":", 1)[-1] for t in c("sns").list_topics()["Topics"]])
    scan("load balancer", lambda: [lb["LoadBalancerName"] for lb in c("elbv2").describe_load_balancers()["LoadBalancers"]])
    scan("target group", lambda: [t["TargetGroupName"] for t in c("elbv2").describe_target_groups()["TargetGroups"]])
    scan("autoscaling group", lambda: [g["AutoScalingGroupName"] for g in c("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]])
    scan("launch template", lambda: [t["LaunchTemplateName"] for t in c("ec2").describe_launch_templates()["LaunchTemplates"]])
    scan("sagemaker endpoint", lambda: [e["EndpointName"] for e in c("sagemaker").list_endpoints()["Endpoints"]])
    scan("sagemaker model", lambda: [m["ModelName"] for m in c("sagemaker").list_models()["Models"]])
    scan("s3 bucket", lambda: [b["Name"] for b in c("s3").list_buckets()["Buckets"] if b["Name"] not in keep])
    scan("dynamodb table", lambda: c("dynamodb").list_tables()["TableNames"])
    return found
