"""IAM policy documents as data (no cdktf import): statements in, JSON string out.

Tokens (``queue.arn``) may appear in resources and conditions: cdktf resolves string tokens
inside the JSON into Terraform references. ``Resource: "*"`` is allowed only through
:data:`ANY_RESOURCE`, used where AWS offers no resource-level permission; each use says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

#: The only way to write ``Resource: "*"``; grep for it to audit wildcard grants.
ANY_RESOURCE = "*"


@dataclass(frozen=True)
class Statement:
    actions: Sequence[str]
    resources: Sequence[str]
    sid: str | None = None
    effect: str = "Allow"
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    principals: dict[str, Any] | None = None

    def render(self) -> dict[str, Any]:
        if not self.actions or not self.resources:
            raise ValueError(f"statement {self.sid or self.actions!r} needs actions and resources")
        body: dict[str, Any] = {}
        if self.sid:
            body["Sid"] = self.sid
        body["Effect"] = self.effect
        if self.principals is not None:
            body["Principal"] = self.principals
        body["Action"] = list(self.actions) if len(self.actions) > 1 else self.actions[0]
        body["Resource"] = list(self.resources) if len(self.resources) > 1 else self.resources[0]
        if self.conditions:
            body["Condition"] = self.conditions
        return body


def policy_document(statements: Sequence[Statement]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [s.render() for s in statements]})


def assume_role_policy(service: str) -> str:
    """Trust policy letting one AWS service (e.g. ``lambda.amazonaws.com``) assume a role."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    })


def partition_of(region: str) -> str:
    """ARN partition of a region, known without an API call."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


# ---------------------------------------------------------------------------------------
# Reusable grants (aws-cdk-lib style: intent in, least-privilege statement out)
# ---------------------------------------------------------------------------------------


def grant_put_metrics(namespace: str) -> Statement:
    # PutMetricData has no resource-level permission; the namespace condition key scopes it.
    return Statement(sid="PutMetricsInOwnNamespace", actions=["cloudwatch:PutMetricData"], resources=[ANY_RESOURCE],
                     conditions={"StringEquals": {"cloudwatch:namespace": namespace}})


def grant_write_logs(log_group_arn: str) -> Statement:
    return Statement(sid="WriteOwnLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                     resources=[f"{log_group_arn}:*"])


def grant_send_messages(queue_arn: str, sid: str = "SendToQueue") -> Statement:
    return Statement(sid=sid, actions=["sqs:SendMessage"], resources=[queue_arn])


def grant_consume_messages(queue_arn: str, sid: str = "ConsumeQueue") -> Statement:
    return Statement(sid=sid, actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                                       "sqs:GetQueueAttributes"], resources=[queue_arn])


def grant_write_traces() -> Statement:
    # X-Ray's trace-writing actions have no resource-level permission.
    return Statement(sid="WriteTraces", actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=[ANY_RESOURCE])
