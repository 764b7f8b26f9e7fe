#!/usr/bin/env python
"""Two EC2 patterns in one VPC of your own, and one alarm topic, in one stack of your own app.

A platform team's stack: it owns the network (a VPC with two public subnets) and the
on-call topic; the patterns are dropped in beside them and given both as tokens. The
provider, the backend and the names are the app's: ``name_prefix="acme"`` names every
pattern resource ``acme-<construct id>-<suffix>``.

    pip install "scaling-patterns @ git+https://github.com/<you>/scaling-patterns"   # or: pip install /path/to/checkout
    python main.py          # writes cdktf.out/ (CDKTF_OUTDIR to change it); then cdktf deploy, or terraform in cdktf.out/stacks/platform
"""

import os

from cdktf import App, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.route_table import RouteTable, RouteTableRoute
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc

from scaling_patterns import AlbToAutoScalingFleet, LambdaWithPredictiveConcurrency, SqsToAutoScalingWorkers

REGION = "eu-west-1"

app = App(outdir=os.environ.get("CDKTF_OUTDIR", "cdktf.out"))
stack = TerraformStack(app, "platform")
AwsProvider(stack, "aws", region=REGION, default_tags=[{"tags": {"Team": "ml-platform"}}])

# The team's own network and topic.
vpc = Vpc(stack, "vpc", cidr_block="10.40.0.0/16", enable_dns_hostnames=True, enable_dns_support=True)
gateway = InternetGateway(stack, "gateway", vpc_id=vpc.id)
routes = RouteTable(stack, "routes", vpc_id=vpc.id, route=[RouteTableRoute(cidr_block="0.0.0.0/0", gateway_id=gateway.id)])
subnets = []
for index, zone in enumerate(("a", "b")):
    subnet = Subnet(stack, f"public_{zone}", vpc_id=vpc.id, cidr_block=f"10.40.{index}.0/24",
                    availability_zone=f"{REGION}{zone}", map_public_ip_on_launch=True)
    RouteTableAssociation(stack, f"public_{zone}_routes", subnet_id=subnet.id, route_table_id=routes.id)
    subnets.append(subnet)
on_call = SnsTopic(stack, "on_call", name="acme-on-call")

network = {"vpc_id": vpc.id, "subnet_ids": [s.id for s in subnets]}

# Batch jobs on GPU workers, scaled on the queue; and an inference fleet behind a load balancer.
batch = SqsToAutoScalingWorkers(stack, "batch", {"network": network, "fleet": {"max_size": 8}}, name_prefix="acme")
chat = AlbToAutoScalingFleet(stack, "chat", {"network": network, "internal": True, "ingress_cidrs": ["10.0.0.0/8"]},
                             name_prefix="acme")
# A latency-critical function whose spillover alarm pages the team's topic.
embed = LambdaWithPredictiveConcurrency(stack, "embed", {"spillover_alarm": {"topic_arn": on_call.arn}}, name_prefix="acme")

# What the patterns expose, used like any other construct's attributes.
TerraformOutput(stack, "batch_queue_url", value=batch.queue.url)
TerraformOutput(stack, "chat_url", value=chat.url)
TerraformOutput(stack, "embed_alias_arn", value=embed.alias.arn)

app.synth()
