"""Settings shared by the EC2 fleet patterns: the network they run in and the fleet itself.

Pydantic only (no cdktf import), like every settings module. Patterns embed these objects
(``network = {...}``, ``fleet = {...}``) and may subclass :class:`FleetSettings` to change a
default (e.g. an inference fleet that must keep one instance).
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, model_validator

from scaling_patterns.core.settings import (
    AvailabilityZone,
    Ec2InstanceType,
    Ipv4Cidr,
    Settings,
    SsmParameterName,
    SubnetId,
    VpcId,
    is_token,
)

#: Public SSM parameter holding the latest Amazon Linux 2023 AMI ID (resolved by EC2 at launch).
AL2023_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


class NetworkSettings(Settings):
    """Where instances (and load balancers) run: a small VPC of the stack's own, or existing subnets."""

    vpc_cidr: Ipv4Cidr = Field("10.0.0.0/16", description="CIDR of the VPC created when `subnet_ids` is not set (prefix /16 to /24); each subnet gets 1/16 of it.")
    availability_zones: list[AvailabilityZone] | None = Field(
        None, description="Zones of the created subnets, at least two; unset = `<region>a` and `<region>b` (no lookup, so plans need no AWS account).")
    vpc_id: VpcId | None = Field(None, description="Existing VPC of `subnet_ids` (an ID, or a token such as `vpc.id` of a VPC in your app); set both or neither.")
    subnet_ids: list[SubnetId] | None = Field(
        None, description="Existing subnets (at least two, in different zones) instead of a created VPC; they must reach SQS/EC2 APIs (public IPs, NAT or VPC endpoints). IDs or tokens (`[for s in subnets: s.id]`, or one list token).")

    @model_validator(mode="after")
    def _checks(self) -> "NetworkSettings":
        if (self.vpc_id is None) != (self.subnet_ids is None):
            raise ValueError("vpc_id and subnet_ids must be set together "
                             f"(given vpc_id={self.vpc_id!r}, subnet_ids={self.subnet_ids!r})")
        if self.subnet_ids is not None and not any(is_token(i) for i in self.subnet_ids) and len(set(self.subnet_ids)) < 2:
            raise ValueError(f"subnet_ids needs at least two different subnets (given {self.subnet_ids!r})")
        if self.availability_zones is not None:
            if self.subnet_ids is not None:
                raise ValueError("availability_zones applies only to the created VPC; remove it or subnet_ids "
                                 f"(given availability_zones={self.availability_zones!r})")
            if len(set(self.availability_zones)) < 2:
                raise ValueError(f"availability_zones needs at least two different zones (given {self.availability_zones!r})")
        prefix = ipaddress.ip_network(self.vpc_cidr, strict=False).prefixlen
        if not 16 <= prefix <= 24:
            raise ValueError(f"vpc_cidr prefix must be between /16 and /24 (given {self.vpc_cidr!r})")
        if ipaddress.ip_network(self.vpc_cidr, strict=False).with_prefixlen != self.vpc_cidr:
            raise ValueError(f"vpc_cidr has host bits set; use {ipaddress.ip_network(self.vpc_cidr, strict=False)} (given {self.vpc_cidr!r})")
        return self

    @property
    def creates_vpc(self) -> bool:
        return self.subnet_ids is None


class InstanceRefresh(Settings):
    """How a launch template change (image parameter, instance type, user data, volume) reaches running instances."""

    enabled: bool = Field(True, description="Replace running instances by an instance refresh when the launch template changes; off = only instances launched later get the change.")
    min_healthy_percentage: int = Field(100, ge=0, le=100, description="Share of the desired capacity that stays in service during a refresh (%).")
    max_healthy_percentage: int = Field(200, ge=100, le=200, description="Share of the desired capacity that may run during a refresh (%); above 100, replacements launch before old instances terminate. At most min_healthy_percentage + 100, and not both 100.")
    auto_rollback: bool = Field(True, description="Return to the previous launch template version when the refresh fails (replacements never become healthy).")

    @model_validator(mode="after")
    def _room_to_replace(self) -> "InstanceRefresh":
        low, high = self.min_healthy_percentage, self.max_healthy_percentage
        if high - low > 100:
            raise ValueError("max_healthy_percentage may exceed min_healthy_percentage by at most 100 "
                             f"(given min_healthy_percentage={low}, max_healthy_percentage={high})")
        if low == high == 100:
            raise ValueError("min_healthy_percentage and max_healthy_percentage cannot both be 100: the refresh could "
                             "neither stop nor add an instance (given min_healthy_percentage=100, max_healthy_percentage=100)")
        return self


class FleetSettings(Settings):
    """EC2 instances of an Auto Scaling group: size bounds and how each instance is launched."""

    instance_type: Ec2InstanceType = Field("t3.micro", description="Instance type (e.g. `g5.xlarge` for GPU work; pair it with a GPU AMI parameter).")
    ami_ssm_parameter: SsmParameterName = Field(
        AL2023_AMI_PARAMETER, description="Public or own SSM parameter holding the AMI ID; EC2 resolves it at each launch (`resolve:ssm:`), so plans need no lookup and new instances get the latest image.")
    min_size: int = Field(0, ge=0, le=1000, description="Fewest instances.")
    max_size: int = Field(4, ge=1, le=1000, description="Most instances; must be >= min_size.")
    root_volume_gb: int = Field(20, ge=8, le=16384, description="Encrypted gp3 root volume size (GiB).")
    root_device_name: str = Field("/dev/xvda", pattern=r"/dev/[a-z0-9]+", examples=["/dev/sda1"], description="Root device name of the AMI (`/dev/xvda` for Amazon Linux).")
    default_instance_warmup_seconds: int = Field(120, ge=0, le=3600, description="Seconds a new instance needs before its metrics count for scaling.")
    detailed_monitoring: bool = Field(False, description="1-minute EC2 metrics (extra cost).")
    instance_refresh: InstanceRefresh = Field(default_factory=InstanceRefresh, description="Rolling replacement of running instances after a launch template change.")

    @model_validator(mode="after")
    def _min_le_max(self) -> "FleetSettings":
        if self.min_size > self.max_size:
            raise ValueError(f"min_size must be <= max_size (given min_size={self.min_size}, max_size={self.max_size})")
        return self
