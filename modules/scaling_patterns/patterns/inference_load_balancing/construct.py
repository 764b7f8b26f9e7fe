"""Pattern 5: an Application Load Balancer in front of an inference fleet.

``AlbToAutoScalingFleet`` wires:
clients (``ingress_cidrs``) -> ALB security group -> ALB (``drop_invalid_header_fields``,
long idle timeout, optional access logs and deletion protection) -> listener on 80
(forward, or redirect to 443 when a certificate is set) / listener on 443 (TLS 1.3 policy)
-> target group (HTTP on ``target_port``, the reference's health check, least outstanding
requests by default) <- Auto Scaling group of inference instances (registered by the group,
ELB health checks), whose security group admits only the ALB on ``target_port``; target
tracking on ``ALBRequestCountPerTarget`` keeps requests per instance near the setting.

Day two: the target group cannot change its port, protocol or VPC in place. Its name carries
a hash of exactly those (modules/scaling_patterns/core/naming.py) and it is replaced create-before-destroy:
the new group is created, the listener, the Auto Scaling group and the scaling policy move
to it, then the old one is deleted (AWS refuses to delete a target group a listener still
uses). A launch template change (instance type, image, user data) rolls through the fleet by
instance refresh, new instances first (fleet.instance_refresh).
"""

from __future__ import annotations

from cdktf import Fn, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.autoscaling_policy import (
    AutoscalingPolicy,
    AutoscalingPolicyTargetTrackingConfiguration,
    AutoscalingPolicyTargetTrackingConfigurationPredefinedMetricSpecification,
)
from cdktf_cdktf_provider_aws.data_aws_elb_service_account import DataAwsElbServiceAccount
from cdktf_cdktf_provider_aws.lb import Lb, LbAccessLogs
from cdktf_cdktf_provider_aws.lb_listener import (
    LbListener,
    LbListenerDefaultAction,
    LbListenerDefaultActionRedirect,
)
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
)
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from scaling_patterns.core.fleet import Fleet
from scaling_patterns.core.iam import Statement, policy_document
from scaling_patterns.core.naming import HASH_DIGITS, versioned
from scaling_patterns.core.network import Network
from scaling_patterns.core.pattern import Pattern
from scaling_patterns.core.settings import is_token
from scaling_patterns.patterns.inference_load_balancing.settings import InferenceLoadBalancingSettings

ACCESS_LOG_PREFIX = "alb"


def placeholder_user_data(port: int) -> str:
    """Boot script of a stand-in inference server: 200 with JSON on GET (health) and POST."""
    return (
        "#!/bin/bash\n"
        "# Placeholder inference server (stack inference-load-balancing): set user_data to start yours.\n"
        "set -euo pipefail\n"
        "cat > /opt/placeholder-inference.py <<'PY'\n"
        "import json, socket\n"
        "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
        "class Handler(BaseHTTPRequestHandler):\n"
        "    def reply(self, body):\n"
        "        data = json.dumps(dict(body, instance=socket.gethostname())).encode()\n"
        "        self.send_response(200)\n"
        "        self.send_header('Content-Type', 'application/json')\n"
        "        self.send_header('Content-Length', str(len(data)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(data)\n"
        "    def do_GET(self):\n"
        "        self.reply({'status': 'ok'})\n"
        "    def do_POST(self):\n"
        "        self.rfile.read(int(self.headers.get('Content-Length') or 0))\n"
        "        self.reply({'output': 'placeholder: deploy your model server'})\n"
        f"ThreadingHTTPServer(('', {port}), Handler).serve_forever()\n"
        "PY\n"
        "cat > /etc/systemd/system/placeholder-inference.service <<'UNIT'\n"
        "[Service]\n"
        "ExecStart=/usr/bin/python3 /opt/placeholder-inference.py\n"
        "DynamicUser=yes\n"
        "AmbientCapabilities=CAP_NET_BIND_SERVICE\n"
        "Restart=always\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
        "UNIT\n"
        "systemctl daemon-reload\n"
        "systemctl enable --now placeholder-inference.service\n"
    )


class AlbToAutoScalingFleet(Pattern):
    """Application Load Balancer -> target group -> inference Auto Scaling group.

    Attributes: ``load_balancer``, ``http_listener`` / ``https_listener``, ``target_group``,
    ``alb_security_group``, ``access_log_bucket`` (each None with ``existing_target_group``),
    ``target_group_arn`` / ``target_group_arn_suffix`` (created or given), ``network``, ``fleet``
    (the :class:`Fleet`), ``scaling_policy``, ``url``. Helper: :meth:`metric_requests_per_target`.
    """

    settings_class = InferenceLoadBalancingSettings

    def __init__(self, scope: Construct, id_: str, settings: InferenceLoadBalancingSettings | dict | None = None, **props):
        super().__init__(scope, id_, settings, **props)
        s: InferenceLoadBalancingSettings = self.settings
        name = self.resource_name
        if (s.certificate_arn and not is_token(s.certificate_arn) and not is_token(self.context.region)
                and s.certificate_arn.split(":")[3] != self.context.region):
            raise ValueError(f"certificate_arn must be in the load balancer's region {self.context.region} "
                             f"(given {s.certificate_arn})")

        self.network = Network(self, "network", s.network)
        existing = s.existing_target_group
        self.alb_security_group: SecurityGroup | None = None
        self.target_group: LbTargetGroup | None = None
        self.load_balancer: Lb | None = None
        self.http_listener: LbListener | None = None
        self.https_listener: LbListener | None = None
        self.access_log_bucket: S3Bucket | None = None
        if existing is None:
            self._load_balancer(s)
            self.target_group_arn: str = self.target_group.arn
            load_balancer_suffix, target_group_suffix = self.load_balancer.arn_suffix, self.target_group.arn_suffix
            source_security_group = self.alb_security_group.id
        else:
            self.target_group_arn = existing.arn
            load_balancer_suffix = arn_suffix(existing.load_balancer_arn, "loadbalancer/")
            target_group_suffix = arn_suffix(existing.arn)
            source_security_group = existing.load_balancer_security_group_id
        self.target_group_arn_suffix: str = target_group_suffix

        self.fleet = Fleet(
            self, "fleet",
            name=name("fleet"),
            settings=s.fleet,
            vpc_id=self.network.vpc_id,
            subnet_ids=self.network.subnet_ids,
            user_data=s.user_data or placeholder_user_data(s.target_port),
            description="inference fleet",
            target_group_arns=[self.target_group_arn],
            health_check_type="ELB",
            health_check_grace_period_seconds=s.fleet.health_check_grace_period_seconds,
        )
        VpcSecurityGroupIngressRule(
            self, "fleet_ingress_from_alb", security_group_id=self.fleet.security_group.id, ip_protocol="tcp",
            from_port=s.target_port, to_port=s.target_port, referenced_security_group_id=source_security_group,
            description="Requests and health checks from the load balancer")
        if self.alb_security_group is not None:
            VpcSecurityGroupEgressRule(
                self, "alb_egress_to_fleet", security_group_id=self.alb_security_group.id, ip_protocol="tcp",
                from_port=s.target_port, to_port=s.target_port, referenced_security_group_id=self.fleet.security_group.id,
                description="Requests and health checks to the fleet")

        listeners = [listener for listener in (self.http_listener, self.https_listener) if listener is not None]
        self.scaling_policy = AutoscalingPolicy(
            self, "requests_per_target",
            name=name("requests-per-target"),
            autoscaling_group_name=self.fleet.group_name,
            policy_type="TargetTrackingScaling",
            target_tracking_configuration=AutoscalingPolicyTargetTrackingConfiguration(
                target_value=s.requests_per_target_per_minute,
                predefined_metric_specification=AutoscalingPolicyTargetTrackingConfigurationPredefinedMetricSpecification(
                    predefined_metric_type="ALBRequestCountPerTarget",
                    resource_label=f"{load_balancer_suffix}/{target_group_suffix}")),
            # The metric exists only once the target group serves this load balancer.
            depends_on=listeners or None,
        )

    def _load_balancer(self, s: InferenceLoadBalancingSettings) -> None:
        """The load balancer, its security group, target group and listeners (unless existing_target_group)."""
        name = self.resource_name
        listener_ports = [80, 443] if s.certificate_arn else [80]
        self.alb_security_group = SecurityGroup(
            self, "alb_security_group", name=name("alb"), vpc_id=self.network.vpc_id,
            description="Inference load balancer: listeners from ingress_cidrs, out to the fleet only",
            tags={"Name": name("alb")})
        for port in listener_ports:
            for index, cidr in enumerate(s.ingress_cidrs):
                VpcSecurityGroupIngressRule(
                    self, f"alb_ingress_{port}_{index}", security_group_id=self.alb_security_group.id,
                    ip_protocol="tcp", from_port=port, to_port=port, cidr_ipv4=cidr, description=f"Clients on {port}")

        # What forces a new target group; the VPC: its ID, or the range of the VPC created here.
        identity = {"port": s.target_port, "protocol": "HTTP", "target_type": "instance",
                    "vpc": s.network.vpc_id if not s.network.creates_vpc else {"cidr": s.network.vpc_cidr}}
        self.target_group = LbTargetGroup(
            self, "target_group",
            name=versioned(name("tg", max_length=31 - HASH_DIGITS), identity),  # AWS: 32 characters
            port=s.target_port,
            protocol="HTTP",
            target_type="instance",
            vpc_id=self.network.vpc_id,
            deregistration_delay=str(s.deregistration_delay_seconds),
            load_balancing_algorithm_type=s.load_balancing_algorithm,
            health_check=LbTargetGroupHealthCheck(
                enabled=True, protocol="HTTP", port="traffic-port", path=s.health_check.path, matcher=s.health_check.matcher,
                healthy_threshold=s.health_check.healthy_threshold, unhealthy_threshold=s.health_check.unhealthy_threshold,
                timeout=s.health_check.timeout_seconds, interval=s.health_check.interval_seconds),
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )

        self.access_log_bucket = self._access_log_bucket(s) if s.access_logs else None
        self.load_balancer = Lb(
            self, "load_balancer",
            name=name("alb", max_length=32),
            load_balancer_type="application",
            internal=s.internal,
            security_groups=[self.alb_security_group.id],
            subnets=self.network.subnet_ids,
            drop_invalid_header_fields=True,
            idle_timeout=s.idle_timeout_seconds,
            enable_deletion_protection=s.deletion_protection,
            access_logs=(LbAccessLogs(bucket=self.access_log_bucket.id, prefix=ACCESS_LOG_PREFIX, enabled=True)
                         if self.access_log_bucket else None),
            depends_on=[self._access_log_policy] if self.access_log_bucket else None,
        )

        forward = LbListenerDefaultAction(type="forward", target_group_arn=self.target_group.arn)
        if s.certificate_arn:
            self.https_listener = LbListener(
                self, "https_listener", load_balancer_arn=self.load_balancer.arn, port=443, protocol="HTTPS",
                ssl_policy=s.ssl_policy, certificate_arn=s.certificate_arn, default_action=[forward])
            self.http_listener = LbListener(
                self, "http_listener", load_balancer_arn=self.load_balancer.arn, port=80, protocol="HTTP",
                default_action=[LbListenerDefaultAction(type="redirect", redirect=LbListenerDefaultActionRedirect(
                    protocol="HTTPS", port="443", status_code="HTTP_301"))])
        else:
            self.http_listener = LbListener(
                self, "http_listener", load_balancer_arn=self.load_balancer.arn, port=80, protocol="HTTP",
                default_action=[forward])

    def _access_log_bucket(self, s: InferenceLoadBalancingSettings) -> S3Bucket:
        bucket = S3Bucket(self, "access_logs", bucket_prefix=f"{self.resource_name('alb-logs', max_length=36)}-", force_destroy=False)
        S3BucketPublicAccessBlock(self, "access_logs_public_access_block", bucket=bucket.id, block_public_acls=True,
                                  block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
        S3BucketOwnershipControls(self, "access_logs_ownership", bucket=bucket.id,
                                  rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"))
        # ALB access logs support SSE-S3 only (not SSE-KMS).
        S3BucketServerSideEncryptionConfigurationA(
            self, "access_logs_encryption", bucket=bucket.id,
            rule=[S3BucketServerSideEncryptionConfigurationRuleA(
                apply_server_side_encryption_by_default=S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                    sse_algorithm="AES256"))])
        S3BucketLifecycleConfiguration(
            self, "access_logs_lifecycle", bucket=bucket.id,
            rule=[S3BucketLifecycleConfigurationRule(
                id="expire-access-logs", status="Enabled", filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=s.access_log_retention_days)])])
        # Regions older than August 2022 deliver from a regional ELB account (a static table in
        # the provider, no API call); newer ones from the log-delivery service principal.
        elb_account = DataAwsElbServiceAccount(self, "elb_account")
        self._access_log_policy = S3BucketPolicy(
            self, "access_logs_policy", bucket=bucket.id,
            policy=policy_document([
                Statement(sid="LoadBalancerWritesAccessLogs", actions=["s3:PutObject"],
                          resources=[f"{bucket.arn}/{ACCESS_LOG_PREFIX}/AWSLogs/*"],
                          principals={"AWS": elb_account.arn, "Service": "logdelivery.elasticloadbalancing.amazonaws.com"}),
                Statement(sid="DenyInsecureTransport", effect="Deny", actions=["s3:*"],
                          resources=[bucket.arn, f"{bucket.arn}/*"], principals={"AWS": "*"},
                          conditions={"Bool": {"aws:SecureTransport": "false"}}),
            ]))
        return bucket

    # --- what a composing app needs ---------------------------------------------------------

    @property
    def url(self) -> str | None:
        """Where clients send requests; None with ``existing_target_group`` (your load balancer's)."""
        if self.load_balancer is None:
            return None
        scheme = "https" if self.settings.certificate_arn else "http"
        return f"{scheme}://{self.load_balancer.dns_name}"

    def metric_requests_per_target(self) -> dict[str, object]:
        """``ALBRequestCountPerTarget`` of the fleet's target group: what the group tracks."""
        return {"namespace": "AWS/ApplicationELB", "metric_name": "RequestCountPerTarget",
                "dimensions": {"TargetGroup": self.target_group_arn_suffix}, "statistic": "Sum", "period": 60}

    def outputs(self) -> dict[str, tuple[object, str]]:
        outputs: dict[str, tuple[object, str]] = {}
        if self.load_balancer is not None:
            outputs["load_balancer_dns_name"] = (self.load_balancer.dns_name, "DNS name of the load balancer (the reference's export)")
            outputs["load_balancer_url"] = (self.url, "Where clients send inference requests")
        outputs["target_group_arn"] = (self.target_group_arn, "Target group of the inference fleet")
        outputs["autoscaling_group_name"] = (self.fleet.group_name, "Inference fleet Auto Scaling group")
        return outputs


def arn_suffix(arn: str, strip: str = "") -> str:
    """What CloudWatch calls an ELB resource: the ARN's resource part (``targetgroup/name/id``,
    ``app/name/id`` once ``loadbalancer/`` is stripped), in Python, or in Terraform for a token."""
    if is_token(arn):
        resource = Fn.element(Fn.split(":", arn), 5)
        return Fn.trimprefix(resource, strip) if strip else resource
    resource = arn.split(":", 5)[5]
    return resource[len(strip):] if strip and resource.startswith(strip) else resource
