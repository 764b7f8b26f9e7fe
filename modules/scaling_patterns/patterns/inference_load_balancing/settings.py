"""Settings of the `inference-load-balancing` stack (section `[inference-load-balancing]`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from scaling_patterns.core.fleet_settings import FleetSettings, NetworkSettings
from scaling_patterns.core.settings import (
    ApplicationLoadBalancerArn,
    Ipv4Cidr,
    SecurityGroupId,
    Settings,
    TargetGroupArn,
    arn_type,
    is_token,
)

AcmCertificateArn = arn_type("acm", "arn:aws:acm:us-east-1:123456789012:certificate/0123abcd-...", r"certificate/[0-9a-f-]{36}",
                             ("arn:aws:acm:us-east-1:123456789012:certificate/01234567-89ab-cdef-0123-456789abcdef",
                              "arn:aws:acm:us-east-1:123456789012:certificate/fedcba98-7654-3210-fedc-ba9876543210"))


def _tls13_policy(value: str) -> str:
    if not value.startswith("ELBSecurityPolicy-TLS13-"):
        raise ValueError("must be a TLS 1.3 ELB security policy such as ELBSecurityPolicy-TLS13-1-2-2021-06")
    return value


SslPolicy = Annotated[str, AfterValidator(_tls13_policy)]


class HealthCheck(Settings):
    """Target group health check (defaults: the reference's)."""

    path: str = Field("/", pattern=r"/[\x21-\x7e]{0,1023}", examples=["/health"], description="HTTP path the load balancer requests.")
    matcher: str = Field("200", pattern=r"\d{3}((-|,)\d{3})*", examples=["200-299"], description="Healthy HTTP codes, e.g. `200` or `200-299`.")
    healthy_threshold: int = Field(2, ge=2, le=10, description="Consecutive successes before a target is healthy.")
    unhealthy_threshold: int = Field(2, ge=2, le=10, description="Consecutive failures before a target is unhealthy.")
    timeout_seconds: int = Field(3, ge=2, le=120, description="No response within this long is a failure (s).")
    interval_seconds: int = Field(30, ge=5, le=300, description="Time between checks of one target (s); must be > timeout_seconds.")

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> "HealthCheck":
        if self.timeout_seconds >= self.interval_seconds:
            raise ValueError("timeout_seconds must be < interval_seconds (given "
                             f"timeout_seconds={self.timeout_seconds}, interval_seconds={self.interval_seconds})")
        return self


class ExistingTargetGroup(Settings):
    """A target group of a load balancer you already run: the fleet registers in it and scales on its requests.

    No load balancer, listener or target group is created; the load balancer stays yours (or
    another stack's), including its listeners, certificates and health check.
    """

    arn: TargetGroupArn = Field(description="The target group (instance targets, HTTP on `target_port`); an ARN, or a token such as `target_group.arn`.")
    load_balancer_arn: ApplicationLoadBalancerArn = Field(description="The Application Load Balancer that forwards to it (for the request-count metric); an ARN or a token.")
    load_balancer_security_group_id: SecurityGroupId = Field(description="Security group of that load balancer: the only source the fleet admits on `target_port`.")


#: Settings of the load balancer this stack creates; they cannot be set with `existing_target_group`.
LOAD_BALANCER_ONLY = ("internal", "ingress_cidrs", "idle_timeout_seconds", "deletion_protection", "access_logs",
                      "access_log_retention_days", "certificate_arn", "ssl_policy", "health_check",
                      "deregistration_delay_seconds", "load_balancing_algorithm")


class InferenceFleetSettings(FleetSettings):
    """The inference Auto Scaling group (at least one instance: request-count tracking cannot start from zero)."""

    min_size: int = Field(1, ge=1, le=1000, description="Fewest instances (>= 1: with no targets there is no request metric to scale out on).")
    health_check_grace_period_seconds: int = Field(300, ge=0, le=7200, description="Load-balancer health checks start this long after launch (model loading).")


class InferenceLoadBalancingSettings(Settings):
    """Application Load Balancer -> target group -> Auto Scaling group of inference instances."""

    internal: bool = Field(False, description="Internal load balancer (private IPs only) instead of internet-facing.")
    ingress_cidrs: list[Ipv4Cidr] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1, max_length=50,
                                          description="Client CIDRs allowed to reach the listeners.")
    idle_timeout_seconds: int = Field(300, ge=1, le=4000, description="Connection idle timeout (s); long LLM generations need more than the AWS default of 60.")
    deletion_protection: bool = Field(False, description="Protect the load balancer from deletion (Terraform destroy fails until unset).")
    access_logs: bool = Field(False, description="Write access logs to an encrypted, private S3 bucket created by this stack.")
    access_log_retention_days: int = Field(90, ge=1, le=3650, description="Days access-log objects are kept (with `access_logs`).")
    certificate_arn: AcmCertificateArn | None = Field(None, description="ACM certificate: adds an HTTPS listener on 443 and turns port 80 into a redirect to it.")
    ssl_policy: SslPolicy = Field("ELBSecurityPolicy-TLS13-1-2-2021-06", examples=["ELBSecurityPolicy-TLS13-1-3-2021-06"], description="TLS policy of the HTTPS listener (TLS 1.3 policies only).")
    target_port: int = Field(80, ge=1, le=65535, description="Port the inference server listens on (HTTP).")
    health_check: HealthCheck = Field(default_factory=HealthCheck, description="Target health check.")
    deregistration_delay_seconds: int = Field(300, ge=0, le=3600, description="In-flight requests may finish for this long when a target leaves (s); keep >= typical response time.")
    load_balancing_algorithm: Literal["least_outstanding_requests", "round_robin"] = Field(
        "least_outstanding_requests", description="`least_outstanding_requests` (default: inference requests vary widely in duration, so send new ones to the least busy target) or `round_robin`.")
    requests_per_target_per_minute: float = Field(60.0, gt=0, le=100000, description="Target tracking value of ALBRequestCountPerTarget (requests per instance per minute).")
    user_data: str | None = Field(None, min_length=1, max_length=12000, examples=["#!/bin/bash\nsystemctl start my-model-server\n"],
                                  description="Boot script starting your inference server on `target_port`; unset = a placeholder HTTP server answering 200.")
    network: NetworkSettings = Field(default_factory=NetworkSettings, description="VPC and subnets of the load balancer and the fleet.")
    fleet: InferenceFleetSettings = Field(default_factory=InferenceFleetSettings, description="Inference instances and group size.")
    existing_target_group: ExistingTargetGroup | None = Field(
        None, description="Register the fleet in a target group of a load balancer you already run instead of creating a load balancer (needs `network.vpc_id`, the target group's VPC; the load balancer settings above do not apply).")

    @model_validator(mode="after")
    def _checks(self) -> "InferenceLoadBalancingSettings":
        if self.certificate_arn is not None and not is_token(self.certificate_arn) and self.certificate_arn.split(":")[3] == "":
            raise ValueError(f"certificate_arn must name its region (given {self.certificate_arn!r})")
        if self.existing_target_group is not None:
            given = [name for name in LOAD_BALANCER_ONLY if name in self.model_fields_set]
            if given:
                values = ", ".join(f"{name}={getattr(self, name)!r}" for name in given)
                raise ValueError(f"{', '.join(given)} configure the load balancer this stack creates; with existing_target_group "
                                 f"there is none: remove them or existing_target_group (given {values})")
            if self.network.creates_vpc:
                raise ValueError("existing_target_group needs network.vpc_id and network.subnet_ids of the target group's VPC "
                                 "(given no network.subnet_ids: the stack would create a VPC the target group is not in)")
        return self
