"""`Fleet`: an EC2 Auto Scaling group launched from a hardened launch template.

What every fleet in this project gets without asking:
- an AMI resolved by EC2 at each launch from an SSM parameter (``resolve:ssm:...``), so no
  data-source lookup is planned and new instances get the current image;
- IMDSv2 required (hop limit 1), an encrypted gp3 root volume deleted with the instance;
- an instance role trusted only by EC2 with one inline least-privilege policy (the
  statements the pattern passes; no managed policies), and :meth:`Fleet.grant` for
  statements that name the group itself;
- its own security group with no inbound rule and HTTPS-only egress (AWS APIs, package
  repositories); patterns add inbound rules (e.g. from their load balancer);
- group metrics at 1-minute granularity (``GroupInServiceInstances`` feeds scaling math);
- no ``desired_capacity``: scaling policies own it, so a re-apply does not reset it.
- launch template changes reach running instances: an instance refresh (``instance_refresh``
  settings) replaces them in rolling batches, launching replacements before terminating
  (min/max healthy percentage) and waiting for ``default_instance_warmup``; instances a
  pattern protects from scale-in (busy workers) are handled as the pattern says
  (``protected_instances``: ``Wait`` = the refresh waits until the worker clears protection).
  The emulator profile leaves the refresh out (moto has no StartInstanceRefresh).
- the group itself tagged like the stack (``tag`` blocks, not propagated: the launch
  template tags instances and volumes): the provider's ``default_tags`` never reach an
  Auto Scaling group, and untagged groups escape cost reports (checkov CKV_AWS_153).
"""

from __future__ import annotations

import base64
import re
from typing import Sequence

from cdktf import Fn, Token
from cdktf_cdktf_provider_aws.autoscaling_group import (
    AutoscalingGroup,
    AutoscalingGroupInstanceRefresh,
    AutoscalingGroupInstanceRefreshPreferences,
    AutoscalingGroupLaunchTemplate,
    AutoscalingGroupTag,
)
from cdktf_cdktf_provider_aws.iam_instance_profile import IamInstanceProfile
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.launch_template import (
    LaunchTemplate,
    LaunchTemplateBlockDeviceMappings,
    LaunchTemplateBlockDeviceMappingsEbs,
    LaunchTemplateIamInstanceProfile,
    LaunchTemplateMetadataOptions,
    LaunchTemplateMonitoring,
    LaunchTemplateTagSpecifications,
)
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from constructs import Construct

from scaling_patterns.core.context import context_of
from scaling_patterns.core.fleet_settings import FleetSettings
from scaling_patterns.core.iam import Statement, policy_document
from scaling_patterns.core.roles import service_role

#: Auto Scaling group metrics published (free, 1-minute) for dashboards and scaling math.
GROUP_METRICS = ["GroupDesiredCapacity", "GroupInServiceInstances", "GroupMaxSize", "GroupMinSize",
                 "GroupPendingInstances", "GroupTerminatingInstances", "GroupTotalInstances"]


_TOKEN = re.compile(r"(\$\{TfToken\[[^\]]+\]\})")


def encode_user_data(script: str) -> str:
    """Base64 user data; through Terraform's ``base64encode`` only when the script holds references.

    The literal parts are escaped (backslashes, quotes, ``${``, ``%{``), so nothing in a script
    is ever interpolated by Terraform except the references themselves.
    """
    if not Token.is_unresolved(script):
        return base64.b64encode(script.encode()).decode()
    parts = [part if _TOKEN.fullmatch(part) else terraform_string(part) for part in _TOKEN.split(script) if part]
    return Fn.base64encode(Fn.join("", parts))


def terraform_string(text: str) -> str:
    """``text`` as the content of a Terraform string literal that evaluates to ``text``."""
    return (text.replace("\\", "\\\\").replace('"', '\\"')
            .replace("%{", "%%{"))  # cdktf itself escapes "${"


def group_tags(tags: dict[str, str]) -> list[AutoscalingGroupTag]:
    """``tag`` blocks of an Auto Scaling group, sorted by key, not propagated to instances."""
    return [AutoscalingGroupTag(key=key, value=value, propagate_at_launch=False) for key, value in sorted(tags.items())]


def instance_refresh(settings: FleetSettings, protected_instances: str) -> AutoscalingGroupInstanceRefresh | None:
    """The group's ``instance_refresh`` block: Terraform starts a refresh when the launch template changes."""
    r = settings.instance_refresh
    if not r.enabled:
        return None
    return AutoscalingGroupInstanceRefresh(
        strategy="Rolling",
        preferences=AutoscalingGroupInstanceRefreshPreferences(
            min_healthy_percentage=r.min_healthy_percentage,
            max_healthy_percentage=r.max_healthy_percentage,
            auto_rollback=r.auto_rollback,
            skip_matching=True,  # instances already on the new template stay
            scale_in_protected_instances=protected_instances,
            standby_instances="Ignore",
        ),
    )


class Fleet(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        settings: FleetSettings,
        vpc_id: str,
        subnet_ids: Sequence[str],
        user_data: str,
        description: str,
        statements: Sequence[Statement] = (),
        target_group_arns: Sequence[str] | None = None,
        health_check_type: str = "EC2",
        health_check_grace_period_seconds: int = 300,
        protected_instances: str = "Ignore",
    ):
        super().__init__(scope, id_)
        context = context_of(self)
        self.name = name

        self.security_group = SecurityGroup(
            self, "security_group", name=f"{name}-instances", vpc_id=vpc_id,
            description=f"{description}: no inbound except what the pattern opens", tags={"Name": f"{name}-instances"})
        VpcSecurityGroupEgressRule(
            self, "egress_https", security_group_id=self.security_group.id, ip_protocol="tcp", from_port=443, to_port=443,
            cidr_ipv4="0.0.0.0/0", description="AWS APIs and package repositories over HTTPS")

        self.role = service_role(self, "role", name=f"{name}-instance", service="ec2.amazonaws.com",
                                 description=f"Instance role of {description}")
        self.policy = (IamRolePolicy(self, "policy", name="least-privilege", role=self.role.id, policy=policy_document(statements))
                       if statements else None)
        self.instance_profile = IamInstanceProfile(self, "instance_profile", name=f"{name}-instance", role=self.role.name)

        # The provider's default_tags reach neither the instances an Auto Scaling group launches nor the group.
        instance_tags = {"Name": name, **context.tags}
        self.launch_template = LaunchTemplate(
            self, "launch_template",
            name=name,
            description=description,
            image_id=f"resolve:ssm:{settings.ami_ssm_parameter}",
            instance_type=settings.instance_type,
            update_default_version=True,
            iam_instance_profile=LaunchTemplateIamInstanceProfile(arn=self.instance_profile.arn),
            vpc_security_group_ids=[self.security_group.id],
            metadata_options=LaunchTemplateMetadataOptions(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
            block_device_mappings=[LaunchTemplateBlockDeviceMappings(
                device_name=settings.root_device_name,
                ebs=LaunchTemplateBlockDeviceMappingsEbs(
                    encrypted="true", volume_type="gp3", volume_size=settings.root_volume_gb, delete_on_termination="true"))],
            monitoring=LaunchTemplateMonitoring(enabled=settings.detailed_monitoring),
            user_data=encode_user_data(user_data),
            tag_specifications=[LaunchTemplateTagSpecifications(resource_type=kind, tags=instance_tags)
                                for kind in ("instance", "volume")],
            # The profile must exist with its role before instances launch with it.
            depends_on=[self.instance_profile, *([self.policy] if self.policy else [])],
        )

        self.group = AutoscalingGroup(
            self, "group",
            name=name,
            min_size=settings.min_size,
            max_size=settings.max_size,
            vpc_zone_identifier=list(subnet_ids),
            launch_template=AutoscalingGroupLaunchTemplate(id=self.launch_template.id,
                                                           version=Token.as_string(self.launch_template.latest_version)),
            default_instance_warmup=settings.default_instance_warmup_seconds,
            health_check_type=health_check_type,
            health_check_grace_period=health_check_grace_period_seconds,
            target_group_arns=list(target_group_arns) if target_group_arns else None,
            enabled_metrics=GROUP_METRICS,
            metrics_granularity="1Minute",
            tag=group_tags({"ManagedBy": "cdktf", **instance_tags}),
            instance_refresh=None if context.emulator else instance_refresh(settings, protected_instances),
        )

    def grant(self, id_: str, statements: Sequence[Statement]) -> IamRolePolicy:
        """Another inline policy on the instance role, e.g. statements naming this group's ARN."""
        return IamRolePolicy(self, id_, name=id_.replace("_", "-"), role=self.role.id, policy=policy_document(statements))

    @property
    def group_name(self) -> str:
        return self.group.name

    @property
    def group_arn(self) -> str:
        return self.group.arn
