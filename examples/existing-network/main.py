#!/usr/bin/env python
"""One pattern inside a network managed elsewhere, found by tags and passed as tokens.

The enterprise case: the VPC and its private subnets belong to the network team (looked up
here with data sources, so their IDs are tokens until plan time), every IAM role must carry
the account's permissions boundary and live under a path, and the SageMaker endpoint exists
already. The queue-to-SageMaker pattern is dropped in with all of that as props.

    python main.py          # writes cdktf.out/ (CDKTF_OUTDIR to change it)
"""

import os

from cdktf import App, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_iam_policy import DataAwsIamPolicy
from cdktf_cdktf_provider_aws.data_aws_subnets import DataAwsSubnets, DataAwsSubnetsFilter
from cdktf_cdktf_provider_aws.data_aws_vpc import DataAwsVpc
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.provider import AwsProvider

from scaling_patterns import SqsToAutoScalingWorkers, SqsToSagemakerEndpoint

app = App(outdir=os.environ.get("CDKTF_OUTDIR", "cdktf.out"))
stack = TerraformStack(app, "fraud-scoring")
AwsProvider(stack, "aws", region="us-east-2")

vpc = DataAwsVpc(stack, "shared_vpc", tags={"Name": "shared-services"})
private = DataAwsSubnets(stack, "private_subnets", filter=[DataAwsSubnetsFilter(name="vpc-id", values=[vpc.id])],
                         tags={"Tier": "private"})
boundary = DataAwsIamPolicy(stack, "boundary", name="WorkloadBoundary")
iam = {"permissions_boundary_arn": boundary.arn, "role_path": "/workloads/fraud/"}

# Scoring requests -> an endpoint the data science team deploys; results to their bucket.
scoring = SqsToSagemakerEndpoint(stack, "scoring", {
    "endpoint": {"type": "existing", "name": "fraud-scorer"},
    "results": {"type": "s3", "bucket": "fraud-scores", "prefix": "online/"},
}, name_prefix="fraud", **iam)

# Re-scoring batch jobs on workers in the private subnets (a list token from the data source).
rescoring = SqsToAutoScalingWorkers(stack, "rescore", {
    "network": {"vpc_id": vpc.id, "subnet_ids": private.ids},
    "fleet": {"instance_type": "c7i.large", "max_size": 4},
}, name_prefix="fraud", **iam)

# A producer of the app's own gets exactly the access the pattern's interface needs.
producer = IamRole(stack, "producer", name="fraud-api", path="/workloads/fraud/", permissions_boundary=boundary.arn,
                   assume_role_policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
                                      '{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}')
scoring.grant_send_requests(stack, "producer_sends_requests", producer.name)
rescoring.grant_submit_jobs(stack, "producer_submits_jobs", producer.name)

TerraformOutput(stack, "requests_queue_url", value=scoring.queue.url)
TerraformOutput(stack, "rescore_queue_url", value=rescoring.queue.url)

app.synth()
