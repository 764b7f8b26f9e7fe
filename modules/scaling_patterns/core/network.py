"""`Network`: the subnets a fleet (and its load balancer) runs in.

Either existing subnets from settings (nothing is created), or a small VPC of the stack's
own, with no NAT gateway and no interface endpoints, so it costs nothing while idle:

- one public subnet per availability zone (at least two), routed to an internet gateway;
  instances get a public IPv4 address and reach AWS APIs (SQS, Auto Scaling) and the
  Amazon Linux package repositories over HTTPS through it;
- instances have no inbound access from the internet: their security groups (see
  :mod:`scaling_patterns.core.fleet`) admit only what a pattern opens (e.g. the load balancer);
- the VPC's default security group is emptied, so nothing lands in an open group by accident.

Zones default to ``<region>a`` and ``<region>b`` rather than a data-source lookup, so a
plan needs no AWS account; regions or accounts without those zones set
``network.availability_zones``.
"""

from __future__ import annotations

import ipaddress

from cdktf import Fn, Token
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.route_table import RouteTable, RouteTableRoute
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from constructs import Construct

from scaling_patterns.core.context import context_of
from scaling_patterns.core.fleet_settings import NetworkSettings


def subnet_cidrs(vpc_cidr: str, count: int) -> list[str]:
    """The first ``count`` of the 16 equal subnets of ``vpc_cidr`` (a /16 gives /20s)."""
    network = ipaddress.ip_network(vpc_cidr)
    return [str(net) for net in list(network.subnets(prefixlen_diff=4))[:count]]


class Network(Construct):
    """``vpc_id`` and ``subnet_ids`` for a fleet: created, or taken from settings."""

    def __init__(self, scope: Construct, id_: str, settings: NetworkSettings):
        super().__init__(scope, id_)
        context = context_of(self)
        self.created = settings.creates_vpc
        if not settings.creates_vpc:
            assert settings.vpc_id is not None and settings.subnet_ids is not None
            self.vpc_id: str = settings.vpc_id
            self.subnet_ids: list[str] = list(settings.subnet_ids)
            return

        zones = settings.availability_zones or [Fn.join("", [context.region, suffix]) if Token.is_unresolved(context.region)
                                                else f"{context.region}{suffix}" for suffix in ("a", "b")]
        name = context.resource_name("vpc")
        self.vpc = Vpc(self, "vpc", cidr_block=settings.vpc_cidr, enable_dns_support=True, enable_dns_hostnames=True,
                       tags={"Name": name})
        DefaultSecurityGroup(self, "default_security_group", vpc_id=self.vpc.id, ingress=[], egress=[],
                             tags={"Name": f"{name}-default-unused"})
        self.internet_gateway = InternetGateway(self, "internet_gateway", vpc_id=self.vpc.id, tags={"Name": name})
        self.route_table = RouteTable(
            self, "public_route_table", vpc_id=self.vpc.id, tags={"Name": f"{name}-public"},
            route=[RouteTableRoute(cidr_block="0.0.0.0/0", gateway_id=self.internet_gateway.id)])
        self.subnets: list[Subnet] = []
        for index, (zone, cidr) in enumerate(zip(zones, subnet_cidrs(settings.vpc_cidr, len(zones)))):
            subnet = Subnet(self, f"public_{index}", vpc_id=self.vpc.id, cidr_block=cidr, availability_zone=zone,
                            map_public_ip_on_launch=True, tags={"Name": f"{name}-public-{zone}"})
            RouteTableAssociation(self, f"public_{index}_routes", subnet_id=subnet.id, route_table_id=self.route_table.id)
            self.subnets.append(subnet)
        self.vpc_id = self.vpc.id
        self.subnet_ids = [subnet.id for subnet in self.subnets]
