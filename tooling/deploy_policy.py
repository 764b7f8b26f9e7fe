"""The IAM policy a deploy role needs for each stack, from the resource types it synthesizes.

    python -m tooling.deploy_policy                      # print docs/iam.md
    python -m tooling.deploy_policy --write              # write docs/iam.md (part of `make docs`)
    python -m tooling.deploy_policy --check              # exit 1 if docs/iam.md is out of date
    python -m tooling.deploy_policy --stack NAME --json  # one stack's policy for your settings file

Every stack is synthesized with its defaults and with every variant its pattern declares (the
settings the suite exercises: access logs, topics, keys, schedules, ...), so the policy also
covers options that are off by default. Each Terraform resource type maps to the API actions the
AWS provider calls to create, read, update, tag and delete it (:data:`ACTIONS`); a test fails
when a stack gains a resource type this table does not know.

Scoping: IAM, the path to privilege escalation, is scoped to the stack's own role and
instance-profile names (``<name_prefix>-<short>-*`` under ``iam.role_path``), roles may only be
passed to the services that use them, and with ``iam.permissions_boundary_arn`` a role can only
be created with that boundary. Everything else is limited to the project region
(``aws:RequestedRegion``); many of those actions (``Describe*``, ``Create*`` of EC2 networking)
have no resource-level permissions, so tighten further with your organisation's SCPs or tags.
The state backend (S3) statement names exactly the stack's state and lock objects.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from app.config import PROJECT_ROOT, ProjectSettings, S3Backend
from scaling_patterns.registry import PATTERNS

DOC = PROJECT_ROOT / "docs" / "iam.md"

#: Managed policies hold at most 6,144 characters (whitespace not counted).
MANAGED_POLICY_LIMIT = 6144

_TAGS = {
    "sqs": ["sqs:ListQueueTags", "sqs:TagQueue", "sqs:UntagQueue"],
    "lambda": ["lambda:ListTags", "lambda:TagResource", "lambda:UntagResource"],
    "logs": ["logs:ListTagsForResource", "logs:TagResource", "logs:UntagResource", "logs:ListTagsLogGroup", "logs:TagLogGroup"],
    "events": ["events:ListTagsForResource", "events:TagResource", "events:UntagResource"],
    "cloudwatch": ["cloudwatch:ListTagsForResource", "cloudwatch:TagResource", "cloudwatch:UntagResource"],
    "ec2": ["ec2:CreateTags", "ec2:DeleteTags", "ec2:DescribeTags"],
    "elasticloadbalancing": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags", "elasticloadbalancing:DescribeTags"],
    "sagemaker": ["sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:ListTags"],
    "application-autoscaling": ["application-autoscaling:ListTagsForResource", "application-autoscaling:TagResource",
                                "application-autoscaling:UntagResource"],
    "sns": ["sns:ListTagsForResource", "sns:TagResource", "sns:UntagResource"],
    "kms": ["kms:ListResourceTags", "kms:TagResource", "kms:UntagResource"],
    "s3": ["s3:GetBucketTagging", "s3:PutBucketTagging"],
}

#: Security-group and network reads the provider makes around EC2 and ELB resources.
_EC2_NETWORK_READS = ["ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces",
                      "ec2:DescribeAvailabilityZones", "ec2:DescribeAccountAttributes"]
_CLOUDWATCH_ALARMS = ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"]

#: Terraform type -> actions the provider calls for it (IAM actions are listed separately: scoped).
ACTIONS: dict[str, list[str]] = {
    "aws_sqs_queue": ["sqs:CreateQueue", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SetQueueAttributes",
                      "sqs:DeleteQueue", *_TAGS["sqs"]],
    "aws_sqs_queue_policy": ["sqs:GetQueueAttributes", "sqs:SetQueueAttributes"],
    "aws_sqs_queue_redrive_allow_policy": ["sqs:GetQueueAttributes", "sqs:SetQueueAttributes"],
    "aws_lambda_function": ["lambda:CreateFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
                            "lambda:GetFunctionCodeSigningConfig", "lambda:GetRuntimeManagementConfig",
                            "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:PublishVersion",
                            "lambda:ListVersionsByFunction", "lambda:PutFunctionConcurrency", "lambda:GetFunctionConcurrency",
                            "lambda:DeleteFunctionConcurrency", "lambda:DeleteFunction", *_TAGS["lambda"]],
    "aws_lambda_alias": ["lambda:CreateAlias", "lambda:GetAlias", "lambda:UpdateAlias", "lambda:DeleteAlias"],
    "aws_lambda_permission": ["lambda:AddPermission", "lambda:GetPolicy", "lambda:RemovePermission"],
    "aws_lambda_function_event_invoke_config": ["lambda:PutFunctionEventInvokeConfig", "lambda:GetFunctionEventInvokeConfig",
                                                "lambda:UpdateFunctionEventInvokeConfig", "lambda:DeleteFunctionEventInvokeConfig"],
    "aws_lambda_event_source_mapping": ["lambda:CreateEventSourceMapping", "lambda:GetEventSourceMapping",
                                        "lambda:ListEventSourceMappings", "lambda:UpdateEventSourceMapping",
                                        "lambda:DeleteEventSourceMapping"],
    "aws_lambda_provisioned_concurrency_config": ["lambda:PutProvisionedConcurrencyConfig", "lambda:GetProvisionedConcurrencyConfig",
                                                  "lambda:DeleteProvisionedConcurrencyConfig"],
    "aws_cloudwatch_log_group": ["logs:CreateLogGroup", "logs:DescribeLogGroups", "logs:PutRetentionPolicy",
                                 "logs:DeleteRetentionPolicy", "logs:AssociateKmsKey", "logs:DisassociateKmsKey",
                                 "logs:DeleteLogGroup", *_TAGS["logs"]],
    "aws_cloudwatch_event_bus": ["events:CreateEventBus", "events:DescribeEventBus", "events:UpdateEventBus",
                                 "events:DeleteEventBus", *_TAGS["events"]],
    "aws_cloudwatch_event_rule": ["events:PutRule", "events:DescribeRule", "events:EnableRule", "events:DisableRule",
                                  "events:DeleteRule", *_TAGS["events"]],
    "aws_cloudwatch_event_target": ["events:PutTargets", "events:ListTargetsByRule", "events:RemoveTargets"],
    "aws_cloudwatch_metric_alarm": [*_CLOUDWATCH_ALARMS, *_TAGS["cloudwatch"]],
    "aws_vpc": ["ec2:CreateVpc", "ec2:DescribeVpcs", "ec2:DescribeVpcAttribute", "ec2:ModifyVpcAttribute", "ec2:DeleteVpc",
                "ec2:DescribeNetworkAcls", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups", *_TAGS["ec2"]],
    "aws_subnet": ["ec2:CreateSubnet", "ec2:DescribeSubnets", "ec2:ModifySubnetAttribute", "ec2:DeleteSubnet", *_TAGS["ec2"]],
    "aws_internet_gateway": ["ec2:CreateInternetGateway", "ec2:DescribeInternetGateways", "ec2:AttachInternetGateway",
                             "ec2:DetachInternetGateway", "ec2:DeleteInternetGateway", *_TAGS["ec2"]],
    "aws_route_table": ["ec2:CreateRouteTable", "ec2:DescribeRouteTables", "ec2:CreateRoute", "ec2:ReplaceRoute",
                        "ec2:DeleteRoute", "ec2:DeleteRouteTable", *_TAGS["ec2"]],
    "aws_route_table_association": ["ec2:AssociateRouteTable", "ec2:DescribeRouteTables", "ec2:ReplaceRouteTableAssociation",
                                    "ec2:DisassociateRouteTable"],
    "aws_default_security_group": ["ec2:DescribeSecurityGroups", "ec2:AuthorizeSecurityGroupIngress",
                                   "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
                                   "ec2:RevokeSecurityGroupEgress", *_TAGS["ec2"]],
    "aws_security_group": ["ec2:CreateSecurityGroup", "ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupEgress",
                           "ec2:DeleteSecurityGroup", *_EC2_NETWORK_READS, *_TAGS["ec2"]],
    "aws_vpc_security_group_ingress_rule": ["ec2:AuthorizeSecurityGroupIngress", "ec2:DescribeSecurityGroupRules",
                                            "ec2:ModifySecurityGroupRules", "ec2:RevokeSecurityGroupIngress", *_TAGS["ec2"]],
    "aws_vpc_security_group_egress_rule": ["ec2:AuthorizeSecurityGroupEgress", "ec2:DescribeSecurityGroupRules",
                                           "ec2:ModifySecurityGroupRules", "ec2:RevokeSecurityGroupEgress", *_TAGS["ec2"]],
    # Creating a group from a template checks that the caller could launch it (RunInstances,
    # PassRole of the instance profile's role, the AMI's SSM parameter).
    "aws_launch_template": ["ec2:CreateLaunchTemplate", "ec2:CreateLaunchTemplateVersion", "ec2:DescribeLaunchTemplates",
                            "ec2:DescribeLaunchTemplateVersions", "ec2:ModifyLaunchTemplate", "ec2:DeleteLaunchTemplate",
                            "ec2:RunInstances", "ec2:DescribeImages", "ssm:GetParameters", *_TAGS["ec2"]],
    "aws_autoscaling_group": ["autoscaling:CreateAutoScalingGroup", "autoscaling:DescribeAutoScalingGroups",
                              "autoscaling:UpdateAutoScalingGroup", "autoscaling:DeleteAutoScalingGroup",
                              "autoscaling:DescribeScalingActivities", "autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags",
                              "autoscaling:EnableMetricsCollection", "autoscaling:DisableMetricsCollection",
                              "autoscaling:StartInstanceRefresh", "autoscaling:CancelInstanceRefresh",
                              "autoscaling:DescribeInstanceRefreshes", "autoscaling:AttachTrafficSources",
                              "autoscaling:DetachTrafficSources", "autoscaling:DescribeTrafficSources",
                              "autoscaling:AttachLoadBalancerTargetGroups", "autoscaling:DetachLoadBalancerTargetGroups",
                              "autoscaling:DescribeLoadBalancerTargetGroups", "autoscaling:DescribeLifecycleHooks",
                              "autoscaling:DescribeWarmPool", "ec2:RunInstances", "ec2:DescribeLaunchTemplateVersions",
                              "ec2:DescribeInstances", "ssm:GetParameters"],
    "aws_autoscaling_policy": ["autoscaling:PutScalingPolicy", "autoscaling:DescribePolicies", "autoscaling:DeletePolicy"],
    "aws_lb": ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:DescribeLoadBalancers",
               "elasticloadbalancing:DescribeLoadBalancerAttributes", "elasticloadbalancing:ModifyLoadBalancerAttributes",
               "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
               "elasticloadbalancing:DeleteLoadBalancer", "ec2:DescribeInternetGateways", *_EC2_NETWORK_READS,
               *_TAGS["elasticloadbalancing"]],
    "aws_lb_target_group": ["elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:DescribeTargetGroups",
                            "elasticloadbalancing:DescribeTargetGroupAttributes", "elasticloadbalancing:ModifyTargetGroup",
                            "elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:DeleteTargetGroup",
                            *_TAGS["elasticloadbalancing"]],
    "aws_lb_listener": ["elasticloadbalancing:CreateListener", "elasticloadbalancing:DescribeListeners",
                        "elasticloadbalancing:DescribeListenerAttributes", "elasticloadbalancing:ModifyListener",
                        "elasticloadbalancing:ModifyListenerAttributes", "elasticloadbalancing:DeleteListener",
                        *_TAGS["elasticloadbalancing"]],
    # The provider reads every bucket subresource on refresh.
    "aws_s3_bucket": ["s3:CreateBucket", "s3:ListBucket", "s3:GetBucket*", "s3:GetAccelerateConfiguration",
                      "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration", "s3:GetReplicationConfiguration",
                      "s3:DeleteBucket", *_TAGS["s3"]],
    "aws_s3_bucket_lifecycle_configuration": ["s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"],
    "aws_s3_bucket_ownership_controls": ["s3:PutBucketOwnershipControls", "s3:GetBucketOwnershipControls"],
    "aws_s3_bucket_policy": ["s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"],
    "aws_s3_bucket_public_access_block": ["s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock"],
    "aws_s3_bucket_server_side_encryption_configuration": ["s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration"],
    "aws_sagemaker_model": ["sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:DeleteModel", *_TAGS["sagemaker"]],
    "aws_sagemaker_endpoint_configuration": ["sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig",
                                             "sagemaker:DeleteEndpointConfig", *_TAGS["sagemaker"]],
    "aws_sagemaker_endpoint": ["sagemaker:CreateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint",
                               "sagemaker:DeleteEndpoint", *_TAGS["sagemaker"]],
    # Application Auto Scaling acts on the target with the caller's rights when it registers it,
    # and creates target tracking alarms with them.
    "aws_appautoscaling_target": ["application-autoscaling:RegisterScalableTarget",
                                  "application-autoscaling:DescribeScalableTargets",
                                  "application-autoscaling:DeregisterScalableTarget", *_TAGS["application-autoscaling"],
                                  "lambda:GetProvisionedConcurrencyConfig", "lambda:PutProvisionedConcurrencyConfig",
                                  "lambda:DeleteProvisionedConcurrencyConfig", "sagemaker:DescribeEndpoint",
                                  "sagemaker:DescribeEndpointConfig", "sagemaker:UpdateEndpointWeightsAndCapacities"],
    "aws_appautoscaling_policy": ["application-autoscaling:PutScalingPolicy", "application-autoscaling:DescribeScalingPolicies",
                                  "application-autoscaling:DeleteScalingPolicy", *_CLOUDWATCH_ALARMS],
    "aws_appautoscaling_scheduled_action": ["application-autoscaling:PutScheduledAction",
                                            "application-autoscaling:DescribeScheduledActions",
                                            "application-autoscaling:DeleteScheduledAction"],
    "aws_autoscalingplans_scaling_plan": ["autoscaling-plans:CreateScalingPlan", "autoscaling-plans:DescribeScalingPlans",
                                          "autoscaling-plans:DescribeScalingPlanResources", "autoscaling-plans:UpdateScalingPlan",
                                          "autoscaling-plans:DeleteScalingPlan", "autoscaling:DescribeAutoScalingGroups",
                                          "autoscaling:PutScalingPolicy", "autoscaling:DescribePolicies", *_CLOUDWATCH_ALARMS],
    "aws_sns_topic": ["sns:CreateTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:DeleteTopic", *_TAGS["sns"]],
    "aws_sns_topic_policy": ["sns:GetTopicAttributes", "sns:SetTopicAttributes"],
    "aws_sns_topic_subscription": ["sns:Subscribe", "sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes",
                                   "sns:Unsubscribe"],
    "aws_kms_key": ["kms:CreateKey", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus",
                    "kms:EnableKeyRotation", "kms:UpdateKeyDescription", "kms:ScheduleKeyDeletion", *_TAGS["kms"]],
    "aws_kms_alias": ["kms:CreateAlias", "kms:ListAliases", "kms:UpdateAlias", "kms:DeleteAlias"],
    # Data sources.
    "data.aws_caller_identity": [],  # sts:GetCallerIdentity needs no permission
    "data.aws_elb_service_account": [],  # a table in the provider, no API call
    "data.aws_region": [],
}

#: IAM resource types: scoped to the stack's names, listed here for the "known type" check.
IAM_ACTIONS: dict[str, list[str]] = {
    "aws_iam_role": ["iam:CreateRole", "iam:GetRole", "iam:UpdateRole", "iam:UpdateRoleDescription",
                     "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole", "iam:ListRoleTags",
                     "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole",
                     "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary", "iam:DeleteRole"],
    "aws_iam_role_policy": ["iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"],
    "aws_iam_instance_profile": ["iam:CreateInstanceProfile", "iam:GetInstanceProfile", "iam:AddRoleToInstanceProfile",
                                 "iam:RemoveRoleFromInstanceProfile", "iam:TagInstanceProfile", "iam:UntagInstanceProfile",
                                 "iam:ListInstanceProfileTags", "iam:DeleteInstanceProfile"],
}

#: Who the stack's roles are passed to, by the resource type that passes them.
PASSED_TO = {"aws_lambda_function": "lambda.amazonaws.com", "aws_launch_template": "ec2.amazonaws.com",
             "aws_autoscaling_group": "ec2.amazonaws.com", "aws_sagemaker_model": "sagemaker.amazonaws.com"}

#: Service-linked roles AWS creates on first use, by the resource type that needs them.
SERVICE_LINKED = {
    "aws_autoscaling_group": "autoscaling.amazonaws.com",
    "aws_lb": "elasticloadbalancing.amazonaws.com",
    "aws_appautoscaling_target": ("lambda.application-autoscaling.amazonaws.com",
                                  "sagemaker.application-autoscaling.amazonaws.com"),
    "aws_autoscalingplans_scaling_plan": "autoscaling-plans.amazonaws.com",
}


class UnknownResourceType(Exception):
    pass


def _strings(value: str | tuple[str, ...]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def policy(stack: str, types: Iterable[str], project: ProjectSettings) -> dict:
    """The deploy-role policy of ``stack`` for resource types ``types`` (``data.<type>`` for data sources)."""
    types = sorted(set(types))
    unknown = [t for t in types if t not in ACTIONS and t not in IAM_ACTIONS]
    if unknown:
        raise UnknownResourceType(f"{stack}: no deploy permissions known for {', '.join(unknown)}: add them to "
                                  "ACTIONS in tooling/deploy_policy.py")
    short = next(spec.short for spec in PATTERNS if spec.name == stack)
    path = project.iam.role_path or "/"
    names = f"{project.name_prefix}-{short}-*"
    statements: list[dict] = []

    actions = sorted({a for t in types for a in ACTIONS.get(t, [])})
    if actions:
        statements.append({"Sid": "StackResourcesInTheProjectRegion", "Effect": "Allow", "Action": actions, "Resource": "*",
                           "Condition": {"StringEquals": {"aws:RequestedRegion": project.region}}})

    iam = sorted({a for t in types for a in IAM_ACTIONS.get(t, []) if a != "iam:CreateRole"})
    if iam:
        resources = [f"arn:aws:iam::*:role{path}{names}"]
        if "aws_iam_instance_profile" in types:
            resources.append(f"arn:aws:iam::*:instance-profile{path}{names}")
        statements.append({"Sid": "OwnRolesOnly", "Effect": "Allow", "Action": iam, "Resource": resources})
        create: dict = {"Sid": "CreateOwnRoles", "Effect": "Allow", "Action": ["iam:CreateRole"],
                        "Resource": [f"arn:aws:iam::*:role{path}{names}"]}
        statements.append(create)
        if project.iam.permissions_boundary_arn:
            create["Condition"] = {"StringEquals": {"iam:PermissionsBoundary": project.iam.permissions_boundary_arn}}
            statements.append({"Sid": "KeepTheBoundary", "Effect": "Deny",
                               "Action": ["iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"],
                               "Resource": [f"arn:aws:iam::*:role{path}{names}"],
                               "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": project.iam.permissions_boundary_arn}}})

    passed = sorted({PASSED_TO[t] for t in types if t in PASSED_TO})
    if passed:
        statements.append({"Sid": "PassOwnRolesToTheirServices", "Effect": "Allow", "Action": ["iam:PassRole"],
                           "Resource": [f"arn:aws:iam::*:role{path}{names}"],
                           "Condition": {"StringEquals": {"iam:PassedToService": passed}}})
    linked = sorted({name for t in types if t in SERVICE_LINKED for name in _strings(SERVICE_LINKED[t])})
    if linked:
        statements.append({"Sid": "ServiceLinkedRolesOnFirstUse", "Effect": "Allow", "Action": ["iam:CreateServiceLinkedRole"],
                           "Resource": ["arn:aws:iam::*:role/aws-service-role/*"],
                           "Condition": {"StringEquals": {"iam:AWSServiceName": linked}}})

    backend = project.backend
    if isinstance(backend, S3Backend):
        key = f"{backend.key_prefix}/{stack}.tfstate" if backend.key_prefix else f"{stack}.tfstate"
        objects = [f"arn:aws:s3:::{backend.bucket}/{key}", f"arn:aws:s3:::{backend.bucket}/{key}.tflock"]
        statements.append({"Sid": "StateObjects", "Effect": "Allow",
                           "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": objects})
        statements.append({"Sid": "StateBucket", "Effect": "Allow", "Action": ["s3:ListBucket"],
                           "Resource": [f"arn:aws:s3:::{backend.bucket}"]})
    return {"Version": "2012-10-17", "Statement": statements}


def size(document: dict) -> int:
    """Characters IAM counts against the managed-policy limit (whitespace is not counted)."""
    return len(json.dumps(document, separators=(",", ":")))


def stack_types(doc: Mapping) -> set[str]:
    return set(doc.get("resource", {})) | {f"data.{t}" for t in doc.get("data", {})}


def render(types_by_stack: Mapping[str, Iterable[str]], project: ProjectSettings) -> str:
    lines = [
        "# Deploy-role permissions per stack",
        "",
        "<!-- generated by `make docs` (tooling/deploy_policy.py) from the synthesized stacks; edit the tool instead -->",
        "",
        "What an identity that runs `terraform apply` (or `cdktf deploy`, `make apply`) of one stack needs,",
        "derived from the Terraform resource types the stack synthesizes with its defaults and with every",
        "variant the suite builds (so options such as ALB access logs, an alarm topic with its own key or a",
        "schedule are covered too). Shown for the default project settings (`name_prefix = \"aiscale\"`,",
        "`us-east-1`, local state); for yours, print one stack's policy as JSON:",
        "",
        "```sh",
        ".venv/bin/python -m tooling.deploy_policy --stack queue-to-sagemaker --json   # reads your settings file",
        "```",
        "",
        "How it is scoped:",
        "",
        "- **IAM** (the way to escalate privileges) only on the stack's own roles and instance profiles,",
        "  `<name_prefix>-<short>-*` under `iam.role_path`; roles may only be passed to the services that",
        "  run them (`iam:PassedToService`); with `iam.permissions_boundary_arn` set, roles can only be",
        "  created with that boundary and it cannot be removed or swapped.",
        "- **Service-linked roles** only for the services the stack uses (`iam:AWSServiceName`).",
        "- **Everything else** only in the project region (`aws:RequestedRegion`). Many of these actions",
        "  (EC2 networking, `Describe*`) have no resource-level permissions; tighten further with your",
        "  organisation's SCPs or tag conditions.",
        "- **State**: with the S3 backend, read/write of exactly the stack's state and `.tflock` objects.",
        "- Reads of your own resources passed as settings (an existing queue, endpoint, topic, KMS key)",
        "  fall under the same statements.",
        "",
        "`make preflight` needs its own read-only rights: [deploy.md](deploy.md#preflight-what-the-account-must-allow).",
        "A test fails when a stack gains a resource type the tool has no permissions for, or a policy",
        f"outgrows the managed-policy limit ({MANAGED_POLICY_LIMIT} characters).",
        "",
        "| stack | resource types | policy size (characters) |",
        "|---|---:|---:|",
    ]
    documents = {}
    for spec in PATTERNS:
        if spec.name not in types_by_stack:
            continue
        types = sorted(types_by_stack[spec.name])
        documents[spec.name] = (types, policy(spec.name, types, project))
        lines.append(f"| `{spec.name}` | {len(types)} | {size(documents[spec.name][1])} |")
    for name, (types, document) in documents.items():
        lines += ["", f"## `{name}`", "", "Resource types: " + ", ".join(f"`{t}`" for t in types) + ".", "",
                  "```json", json.dumps(document, indent=2), "```"]
    return "\n".join(lines) + "\n"


def synthesized_types(project: ProjectSettings, stacks: Iterable[str] | None = None,
                      settings: Mapping[str, object] | None = None) -> dict[str, set[str]]:
    """Resource types of each stack: defaults (or ``settings``) and every variant, synthesized in one process."""
    from app.synth import StackRequest, synthesize
    from scaling_patterns.core.settings import validate_section

    wanted = [spec for spec in PATTERNS if stacks is None or spec.name in stacks]
    requests, base = [], {}
    context = {"base_dir": PROJECT_ROOT}
    for spec in wanted:
        cls = spec.load_settings_class()
        given = settings.get(spec.name) if settings else None
        requests.append(StackRequest(spec, spec.name, given if given is not None else validate_section(spec.name, cls, {}, context)))
        base[spec.name] = spec.name
        for variant, (_, values) in (spec.load("variants").items() if spec.variants else ()):
            requests.append(StackRequest(spec, variant, validate_section(variant, cls, values, context)))
            base[variant] = spec.name
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cdktf.out"
        synthesize(project, requests, out)
        types: dict[str, set[str]] = {spec.name: set() for spec in wanted}
        for path in sorted((out / "stacks").glob("*/cdk.tf.json")):
            types[base[path.parent.name]] |= stack_types(json.loads(path.read_text()))
    return types


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write docs/iam.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/iam.md is out of date")
    parser.add_argument("--stack", help="print this stack's policy for the settings file (with --json)")
    parser.add_argument("--json", action="store_true", help="print the policy document only")
    args = parser.parse_args(argv)
    if args.stack:
        from app.config import load_config, settings_path
        from scaling_patterns.core.settings import SettingsError

        if args.stack not in {spec.name for spec in PATTERNS}:
            print(f"unknown stack {args.stack!r} (known: {', '.join(s.name for s in PATTERNS)})", file=sys.stderr)
            return 2
        try:
            config = load_config(settings_path())
        except SettingsError as exc:
            print("Settings are not valid:\n  " + "\n  ".join(exc.problems), file=sys.stderr)
            return 2
        types = synthesized_types(config.project, [args.stack], config.stacks)
        print(json.dumps(policy(args.stack, types[args.stack], config.project), indent=2))
        return 0
    text = render(synthesized_types(ProjectSettings()), ProjectSettings())
    if args.check:
        if DOC.read_text() != text:
            print(f"{DOC.relative_to(PROJECT_ROOT)} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    if args.write:
        DOC.write_text(text)
        print(f"{DOC.relative_to(PROJECT_ROOT)} written")
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
