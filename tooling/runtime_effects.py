"""What a planned change does to running infrastructure, beyond what Terraform says.

Terraform's plan says *replace* or *update in place*; it does not say that an Auto Scaling
group update starts an instance refresh, that an endpoint update is a SageMaker blue/green
deployment, or that replacing a load balancer gives it a new DNS name. This table does, per
resource type, from AWS's documentation (cited per rule). The plan summary and
``make rollout-check`` both read it.

Interruption levels:

- ``none``: running work is not disturbed;
- ``rolling``: capacity is replaced step by step (new before old where the resource allows),
  in-flight work may move, nothing is unavailable as a whole;
- ``replacement``: a running resource is replaced as a whole: its identity (DNS name, queue,
  fleet) changes or it is unavailable for a while.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

NONE, ROLLING, REPLACEMENT = "none", "rolling", "replacement"
LEVELS = (NONE, ROLLING, REPLACEMENT)


@dataclass(frozen=True)
class Effect:
    level: str
    words: str  # what happens, in a sentence fragment


def _changed(change: dict[str, Any], key: str) -> bool:
    before, after = change.get("before") or {}, change.get("after") or {}
    unknown = change.get("after_unknown") or {}
    return _unknown(unknown.get(key)) or before.get(key) != after.get(key)


def _unknown(mask: Any) -> bool:
    if mask is True:
        return True
    if isinstance(mask, dict):
        return any(_unknown(v) for v in mask.values())
    if isinstance(mask, list):
        return any(_unknown(v) for v in mask)
    return False


def _first(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return value[0] if value and isinstance(value[0], dict) else {}
    return value if isinstance(value, dict) else {}


def _group_update(change: dict[str, Any]) -> Effect | None:
    # EC2 Auto Scaling: a new launch template version applies to instances launched from then on;
    # Terraform's instance_refresh block starts a refresh that replaces the running ones
    # (https://docs.aws.amazon.com/autoscaling/ec2/userguide/asg-instance-refresh.html).
    if not _changed(change, "launch_template") and not _changed(change, "mixed_instances_policy"):
        return None
    refresh = _first((change.get("after") or {}).get("instance_refresh"))
    if refresh:
        prefs = _first(refresh.get("preferences"))
        low, high = prefs.get("min_healthy_percentage", 90), prefs.get("max_healthy_percentage", 100)
        return Effect(ROLLING, f"an instance refresh replaces the running instances (in service >= {low}%, "
                               f"at most {high}% of desired capacity)")
    return Effect(NONE, "running instances keep the old launch template; only instances launched from now on get it")


def _endpoint_update(change: dict[str, Any]) -> Effect | None:
    # SageMaker UpdateEndpoint: blue/green by default, the old fleet serves until the new one is
    # in service (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html);
    # the variant's instance count becomes the new configuration's initial count.
    if not _changed(change, "endpoint_config_name"):
        return None
    return Effect(ROLLING, "SageMaker updates the endpoint blue/green to the new configuration (the old instances "
                           "serve until the new ones are in service; the instance count restarts at initial_instance_count)")


def _alias_update(change: dict[str, Any]) -> Effect | None:
    # Lambda: moving an alias to a new version allocates its provisioned concurrency on that version;
    # until it is ready, invocations beyond what is allocated run on demand (cold starts)
    # (https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html).
    if not _changed(change, "function_version"):
        return None
    return Effect(ROLLING, "the alias moves to the new version; its provisioned concurrency is allocated again "
                           "(cold starts until it is ready)")


UPDATES: dict[str, Callable[[dict[str, Any]], Effect | None]] = {
    "aws_autoscaling_group": _group_update,
    "aws_sagemaker_endpoint": _endpoint_update,
    "aws_lambda_alias": _alias_update,
}

#: Replacing one of these interrupts what runs on it (create-before-destroy or not).
REPLACED: dict[str, Effect] = {
    "aws_lb": Effect(REPLACEMENT, "a new load balancer with a new DNS name; clients must follow it"),
    "aws_lb_listener": Effect(REPLACEMENT, "the listener is recreated: connections on its port are refused meanwhile"),
    "aws_autoscaling_group": Effect(REPLACEMENT, "a new Auto Scaling group: every instance is replaced at once"),
    "aws_sagemaker_endpoint": Effect(REPLACEMENT, "a new endpoint: unavailable until its instances are in service"),
    "aws_sqs_queue": Effect(REPLACEMENT, "a new queue: messages waiting in the old one are lost"),
    "aws_lambda_function": Effect(REPLACEMENT, "a new function: invocations fail until it exists"),
    "aws_vpc": Effect(REPLACEMENT, "a new VPC: everything in it is replaced"),
    "aws_subnet": Effect(REPLACEMENT, "new subnets: instances and load balancer nodes in them are replaced"),
    "aws_security_group": Effect(REPLACEMENT, "a new security group: instances and load balancers move to it"),
    "aws_cloudwatch_event_rule": Effect(REPLACEMENT, "the rule is recreated: matching events are dropped meanwhile"),
    "aws_cloudwatch_event_target": Effect(REPLACEMENT, "the target is recreated: events are not delivered meanwhile"),
    "aws_lambda_event_source_mapping": Effect(ROLLING, "the queue's poller is recreated: messages wait meanwhile"),
    # Create-before-destroy, consumers move to the new one (see the consumer's own row).
    "aws_lb_target_group": Effect(ROLLING, "a new target group: instances register in it and must pass its health "
                                           "check before they take requests"),
}

#: The same, when Terraform creates the replacement before it destroys the original: for these
#: the new one works before the old one goes.
REPLACED_FIRST: dict[str, Effect] = {
    "aws_cloudwatch_event_rule": Effect(ROLLING, "a new rule matches before the old one is deleted (an event may be "
                                                 "delivered twice meanwhile)"),
    "aws_cloudwatch_event_target": Effect(NONE, "the new rule's target exists before the old rule goes"),
    "aws_lambda_alias": Effect(REPLACEMENT, "a new alias name: clients must invoke the new name"),
}


#: The attributes whose update gives a resource type its runtime effect (the ``_*_update`` functions).
UPDATE_TRIGGERS: dict[str, tuple[str, ...]] = {
    "aws_autoscaling_group": ("launch_template", "mixed_instances_policy"),
    "aws_sagemaker_endpoint": ("endpoint_config_name",),
    "aws_lambda_alias": ("function_version",),
}


def effect_of(change: dict[str, Any], type_: str) -> Effect | None:
    """The runtime effect of one ``resource_changes[].change`` of a resource of ``type_``, if any."""
    actions = change.get("actions") or []
    if actions == ["create", "delete"] and type_ in REPLACED_FIRST:
        return REPLACED_FIRST[type_]
    if "delete" in actions and "create" in actions:
        return REPLACED.get(type_)
    if actions == ["update"] and type_ in UPDATES:
        return UPDATES[type_](change)
    return None
