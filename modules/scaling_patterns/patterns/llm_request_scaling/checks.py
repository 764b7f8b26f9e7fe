"""`llm-request-scaling` as deployed: what the pattern promises, through the AWS API (see scaling_patterns.verify)."""

from __future__ import annotations

from scaling_patterns.verify import CheckContext, event_sources, json_value, role_actions


def check(ctx: CheckContext) -> None:
    """Request rule (with its pattern) -> request function; DLQ on the target; invoke permission. With a
    scaling target: schedule rule -> scaler, ticks without retries, and the scaler the only writer."""
    events, lam, sqs, iam = ctx.client("events"), ctx.client("lambda"), ctx.client("sqs"), ctx.client("iam")
    rule_body = next(body for body in ctx.configured("aws_cloudwatch_event_rule").values() if "event_pattern" in body)
    bus = ctx.resolve(rule_body.get("event_bus_name")) or "default"

    rule = events.describe_rule(Name=ctx.outputs["event_rule_name"], EventBusName=bus)
    ctx.equal("rule ARN is the event_rule_arn output", rule["Arn"], ctx.outputs["event_rule_arn"])
    ctx.equal("rule matches the configured event pattern", json_value(rule.get("EventPattern")), json_value(rule_body["event_pattern"]))

    function = lam.get_function(FunctionName=ctx.outputs["lambda_function_name"])["Configuration"]
    ctx.equal("request function runtime", function["Runtime"], "python3.12")
    ctx.equal("request function runs the request path", function["Handler"], "handler.handler")
    ctx.equal("request function environment is only the metric namespace",
              sorted(function.get("Environment", {}).get("Variables", {})), ["METRIC_NAMESPACE"])

    targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
    ctx.equal("rule has exactly one target, the request function", [t["Arn"] for t in targets], [function["FunctionArn"]])

    dlq_url = ctx.outputs["dead_letter_queue_url"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    ctx.equal("the target's dead-letter queue is the stack's DLQ",
              targets[0].get("DeadLetterConfig", {}).get("Arn") if targets else None, dlq_arn)

    ctx.equal("EventBridge may invoke the request function only from this rule",
              event_sources(lam, function["FunctionName"]), [rule["Arn"]])

    invoke = lam.get_function_event_invoke_config(FunctionName=function["FunctionName"])
    ctx.equal("failed async invocations go to the DLQ",
              invoke.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"), dlq_arn)

    writes = ("autoscaling:SetDesiredCapacity", "sagemaker:UpdateEndpointWeightsAndCapacities")
    ctx.equal("the request function's role may not change capacity or call CloudWatch",
              [a for a in role_actions(iam, function["Role"]) if a in writes or a.startswith("cloudwatch:")], [])

    scaler_name = ctx.outputs.get("scaler_function_name")
    if scaler_name is None:
        ctx.check("metrics only (no scaling_target): no schedule, no scaler",
                  "schedule_rule_name" not in ctx.outputs and len(ctx.configured("aws_lambda_function")) == 1,
                  f"outputs are {sorted(ctx.outputs)}")
        return
    schedule = events.describe_rule(Name=ctx.outputs["schedule_rule_name"])  # schedules live on the default bus
    ctx.equal("the schedule runs every minute", schedule.get("ScheduleExpression"), "rate(1 minute)")
    scaler = lam.get_function(FunctionName=scaler_name)["Configuration"]
    ctx.equal("scaler runs the scheduled path", scaler["Handler"], "handler.scheduled")
    ctx.check("scaler times out before the next tick", scaler["Timeout"] < 60, f"timeout is {scaler['Timeout']} s")
    ctx.equal("scaler reads the request rule's matched events",
              scaler.get("Environment", {}).get("Variables", {}).get("RULE_NAME"), rule["Name"])
    ticks = events.list_targets_by_rule(Rule=schedule["Name"])["Targets"]
    ctx.equal("the schedule's only target is the scaler", [t["Arn"] for t in ticks], [scaler["FunctionArn"]])
    ctx.equal("ticks are not retried and expire after a minute", ticks[0].get("RetryPolicy") if ticks else None,
              {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60})
    ctx.equal("EventBridge may invoke the scaler only from the schedule", event_sources(lam, scaler_name), [schedule["Arn"]])
    scaler_invoke = lam.get_function_event_invoke_config(FunctionName=scaler_name)
    ctx.equal("the scaler's asynchronous invocations are not retried and expire after a minute",
              (scaler_invoke.get("MaximumRetryAttempts"), scaler_invoke.get("MaximumEventAgeInSeconds")), (0, 60))
    ctx.check("the scaler is the only writer of the target",
              any(a in writes for a in role_actions(iam, scaler["Role"])), "the scaler's role cannot change capacity")
