"""tooling/preflight.py: what would fail on apply in this AWS account, said before any plan.

The checks are pure (settings + facts -> lines), so most tests give the facts directly. The
adapters run against moto where moto 5.2.5 implements the call (EC2 DescribeInstanceTypes,
Auto Scaling, ECR, SageMaker, STS, CloudWatch) and against botocore's Stubber where it does not
(Lambda GetAccountSettings / GetProvisionedConcurrencyConfig answer 404 "Not yet implemented";
Service Quotas knows only the `vpc` service). The stubbed responses follow the response shapes
of the AWS API references (a new account's values: 10 concurrent executions, 0 GPU vCPUs); they
are not recordings from a real account. Last, `make plan TARGET=aws` against a moto server
stops on the placeholder image before anything runs and leaves `plans/` as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from app.config import load_config
from tooling import preflight
from tooling.preflight import (
    Endpoint,
    Facts,
    LambdaAccount,
    Quota,
    Unknown,
    check,
    ec2_quota,
    fleet_group_names,
    needs,
    provisioned_function_name,
)

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/scorer:v3"
G_QUOTA = ("L-DB2E81BA", "Running On-Demand G and VT instances")
STANDARD = ("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances")
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                                  "digest": "sha256:" + "0" * 64}, "layers": []})


def config(**sections):
    return load_config(Path("test.toml"), data={key.replace("_", "-"): value for key, value in sections.items()})


def q2sm(**endpoint) -> dict:
    return {"endpoint": {"type": "create", "image_uri": IMAGE, **endpoint}}


def enough(**overrides) -> Facts:
    """Facts of an account where the default stacks (with a real image) fit."""
    facts = Facts(
        region=REGION, account="111122223333",
        lambda_account=LambdaAccount(1000, 1000),
        provisioned={"aiscale-pred-inference:live": 0},
        vcpus={"t3.micro": 2, "g5.xlarge": 4},
        ec2_quotas={STANDARD[0]: Quota(*STANDARD, 32.0, 0.0), G_QUOTA[0]: Quota(*G_QUOTA, 64.0, 0.0)},
        own_instances={"aiscale-queue-workers": {}, "aiscale-infer-fleet": {}},
        sagemaker_quotas={"ml.m5.large": Quota("L-C1B9A48D", "ml.m5.large for endpoint usage", 4.0),
                          "ml.g5.xlarge": Quota("L-1928E07B", "ml.g5.xlarge for endpoint usage", 0.0)},
        images={IMAGE: True},
    )
    for key, value in overrides.items():
        setattr(facts, key, value)
    return facts


def problems(cfg, facts, stacks=None) -> list[str]:
    return check(cfg, facts, stacks).problems


# --- everything fits --------------------------------------------------------------------------


def test_default_stacks_with_a_real_image_pass_in_an_account_with_room():
    report = check(config(queue_to_sagemaker=q2sm()), enough())
    assert report.problems == [] and report.warnings == []
    assert {row.result for row in report.rows} == {"ok"}
    assert [row.stack for row in report.rows][0] == "llm-request-scaling"  # registry order


# --- queue-to-sagemaker: the image --------------------------------------------------------------


def test_placeholder_image_is_one_line_saying_what_to_set():
    assert problems(config(), enough()) == [
        "queue-to-sagemaker: endpoint.image_uri is the placeholder "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:latest (account 123456789012 is AWS's documentation "
        "example; the endpoint would never start); set [queue-to-sagemaker] endpoint.image_uri to your model image in ECR"]


def test_image_in_another_region_than_the_endpoint():
    uri = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/scorer:v3"
    [line] = problems(config(queue_to_sagemaker=q2sm(image_uri=uri)), enough())
    assert line.startswith("queue-to-sagemaker: endpoint.image_uri is in ECR eu-west-1 but the endpoint runs in us-east-1")
    assert "push or replicate the image to us-east-1" in line


def test_image_missing_from_ecr():
    [line] = problems(config(queue_to_sagemaker=q2sm()), enough(images={IMAGE: False}))
    assert line == ("queue-to-sagemaker: endpoint.image_uri 111122223333.dkr.ecr.us-east-1.amazonaws.com/scorer:v3: "
                    "no image scorer:v3 in ECR (registry 111122223333, us-east-1); push the image or set "
                    "[queue-to-sagemaker] endpoint.image_uri to one that exists")


def test_image_that_cannot_be_looked_up_is_a_warning_not_a_failure():
    report = check(config(queue_to_sagemaker=q2sm()),
                   enough(images={IMAGE: Unknown("ecr:DescribeImages", "AccessDeniedException: the identity needs ecr:DescribeImages")}))
    assert report.problems == []
    assert report.warnings == ["warning: queue-to-sagemaker: could not look up endpoint.image_uri " + IMAGE
                               + " (ecr:DescribeImages: AccessDeniedException: the identity needs ecr:DescribeImages); not checked"]


def test_needs_no_ecr_lookup_for_a_placeholder_or_another_region():
    assert needs(config()).images == ()
    assert needs(config(queue_to_sagemaker=q2sm())).images == (IMAGE,)


# --- queue-to-sagemaker: the instance quota -----------------------------------------------------


def test_sagemaker_quota_below_autoscaling_maximum():
    [line] = problems(config(queue_to_sagemaker=q2sm(instance_type="ml.g5.xlarge")), enough())
    assert line == ('queue-to-sagemaker: autoscaling.max_capacity = 4 x ml.g5.xlarge needs 4 of "ml.g5.xlarge for '
                    'endpoint usage"; the quota is 0: request an increase (Service Quotas L-1928E07B) to at least 4 '
                    "or lower autoscaling.max_capacity")


def test_sagemaker_quota_without_autoscaling_counts_the_initial_instances():
    cfg = config(queue_to_sagemaker={**q2sm(initial_instance_count=3), "autoscaling": {"enabled": False}})
    quotas = {"ml.m5.large": Quota("L-C1B9A48D", "ml.m5.large for endpoint usage", 2.0)}
    [line] = problems(cfg, enough(sagemaker_quotas=quotas))
    assert "endpoint.initial_instance_count = 3 x ml.m5.large needs 3" in line and line.endswith(
        "lower endpoint.initial_instance_count")
    assert problems(cfg, enough(sagemaker_quotas={"ml.m5.large": Quota("L-C1B9A48D", "ml.m5.large for endpoint usage", 3.0)})) == []


def test_sagemaker_type_without_a_quota_in_the_region_is_a_warning():
    report = check(config(queue_to_sagemaker=q2sm()), enough(sagemaker_quotas={"ml.m5.large": None}))
    assert report.problems == []
    assert report.warnings == ['warning: queue-to-sagemaker: Service Quotas has no quota "ml.m5.large for endpoint '
                               'usage" in us-east-1: ml.m5.large may not be offered for real-time endpoints there; not checked']


def test_existing_endpoint_must_exist_and_have_the_variant():
    cfg = config(queue_to_sagemaker={"endpoint": {"type": "existing", "name": "chat"}})
    assert needs(cfg).endpoints == ("chat",) and needs(cfg).sagemaker_types == ()
    assert problems(cfg, enough(endpoints={"chat": None})) == [
        "queue-to-sagemaker: endpoint.name = 'chat': no such SageMaker endpoint in us-east-1; create it first or set "
        '[queue-to-sagemaker] endpoint to {type = "create", image_uri = ...}']
    [line] = problems(cfg, enough(endpoints={"chat": Endpoint({"Blue": "ml.m5.large"})}))
    assert line.startswith("queue-to-sagemaker: endpoint.variant_name = 'AllTraffic' is not a variant of endpoint chat (variants: Blue)")


def test_existing_endpoint_autoscaling_needs_the_quota_of_its_instance_type():
    cfg = config(queue_to_sagemaker={"endpoint": {"type": "existing", "name": "chat"}})
    [line] = problems(cfg, enough(endpoints={"chat": Endpoint({"AllTraffic": "ml.g5.xlarge"})}))
    assert line.startswith("queue-to-sagemaker: autoscaling.max_capacity = 4 x ml.g5.xlarge (the instance type of "
                           'endpoint chat) needs 4 of "ml.g5.xlarge for endpoint usage"')


# --- predictive-lambda-scaling -----------------------------------------------------------------


def test_new_account_concurrency_cannot_hold_any_provisioned_concurrency():
    [line] = problems(config(queue_to_sagemaker=q2sm()), enough(lambda_account=LambdaAccount(10, 10)))
    assert line == ("predictive-lambda-scaling: provisioned_concurrency = 10 cannot be allocated: Lambda keeps 10 of the "
                    "account's 10 unreserved concurrency free, so 0 can be provisioned (quota 10); request an increase of "
                    '"Concurrent executions" (Service Quotas L-B99A9384) to at least 200')


def test_lambda_keeps_100_unreserved_once_the_quota_is_at_least_100():
    cfg = config(queue_to_sagemaker=q2sm())
    assert problems(cfg, enough(lambda_account=LambdaAccount(200, 200))) == []  # 200 - 100 = 100 = max_capacity
    [line] = problems(cfg, enough(lambda_account=LambdaAccount(199, 199)))
    assert line.startswith("predictive-lambda-scaling: scaling.max_capacity = 100 needs 100 provisioned concurrency: "
                           "Lambda keeps 100 of the account's 199 unreserved concurrency free, so 99 can be provisioned")
    assert line.endswith("to at least 200 or lower scaling.max_capacity to at most 99")


def test_concurrency_reserved_by_other_functions_raises_the_increase_asked_for():
    [line] = problems(config(queue_to_sagemaker=q2sm()), enough(lambda_account=LambdaAccount(1000, 105)))
    assert "so 5 can be provisioned" in line and "(and scaling.max_capacity = 100) exceed" in line
    assert "to at least 1095 or lower provisioned_concurrency, scaling.min_capacity and scaling.max_capacity to at most 5" in line


def test_day_two_the_running_alias_own_provisioned_concurrency_is_added_back():
    cfg = config(queue_to_sagemaker=q2sm())
    # quota 200, our alias holds 90 now, so the account shows 110 unreserved: 110 + 90 - 100 = 100 fit.
    running = enough(lambda_account=LambdaAccount(200, 110), provisioned={"aiscale-pred-inference:live": 90})
    assert problems(cfg, running) == []
    unknown = Unknown("lambda:GetProvisionedConcurrencyConfig", "AccessDeniedException: the identity needs it")
    report = check(cfg, enough(lambda_account=LambdaAccount(200, 110), provisioned={"aiscale-pred-inference:live": unknown}))
    assert len(report.problems) == 1 and "so 10 can be provisioned" in report.problems[0]
    assert report.warnings[0].startswith("warning: predictive-lambda-scaling: could not read the provisioned concurrency "
                                         "aiscale-pred-inference:live holds now")


def test_unreadable_lambda_account_is_a_warning():
    report = check(config(queue_to_sagemaker=q2sm()),
                   enough(lambda_account=Unknown("lambda:GetAccountSettings", "AccessDeniedException: the identity needs lambda:GetAccountSettings")))
    assert report.problems == []
    assert report.warnings == ["warning: predictive-lambda-scaling: could not read the account's Lambda concurrency "
                               "(lambda:GetAccountSettings: AccessDeniedException: the identity needs lambda:GetAccountSettings); not checked"]


# --- EC2 fleets --------------------------------------------------------------------------------


@pytest.mark.parametrize("instance_type, code", [
    ("t3.micro", "L-1216C47A"), ("m7i-flex.large", "L-1216C47A"), ("c7gn.xlarge", "L-1216C47A"), ("im4gn.large", "L-1216C47A"),
    ("d3en.xlarge", "L-1216C47A"), ("h1.2xlarge", "L-1216C47A"), ("z1d.large", "L-1216C47A"), ("r8g.large", "L-1216C47A"),
    ("g5.xlarge", "L-DB2E81BA"), ("g4dn.xlarge", "L-DB2E81BA"), ("gr6.4xlarge", "L-DB2E81BA"), ("vt1.3xlarge", "L-DB2E81BA"),
    ("p5.48xlarge", "L-417A185B"), ("inf2.xlarge", "L-1945791B"), ("trn1.2xlarge", "L-2C3B7624"), ("dl1.24xlarge", "L-6E869C2A"),
    ("f1.2xlarge", "L-74FC7D96"), ("x2idn.16xlarge", "L-7295265B"), ("u-6tb1.56xlarge", "L-43DA4232"),
    ("hpc7g.16xlarge", None), ("mac2.metal", None),
])
def test_instance_families_map_to_their_on_demand_vcpu_quota(instance_type, code):
    assert (ec2_quota(instance_type) or (None,))[0] == code


def test_gpu_fleet_without_g_quota_names_the_quota_code_and_the_setting():
    cfg = config(queue_to_sagemaker=q2sm(), inference_load_balancing={"fleet": {"instance_type": "g5.xlarge"}})
    [line] = problems(cfg, enough(ec2_quotas={**enough().ec2_quotas, G_QUOTA[0]: Quota(*G_QUOTA, 0.0, 0.0)}))
    assert line == ('inference-load-balancing: fleet.max_size = 4 x g5.xlarge needs 16 vCPUs of "Running On-Demand G and '
                    'VT instances"; the quota is 0: request an increase (Service Quotas L-DB2E81BA) to at least 16 or '
                    "lower fleet.max_size")


def test_without_usage_the_maximum_is_compared_with_the_quota_and_the_line_says_so():
    cfg = config(queue_to_sagemaker=q2sm(), inference_load_balancing={"fleet": {"instance_type": "g5.xlarge"}})
    quota = Quota(*G_QUOTA, 8.0, None, "the quota has no usage metric; instances running now not counted")
    [line] = problems(cfg, enough(ec2_quotas={**enough().ec2_quotas, G_QUOTA[0]: quota}))
    assert "the quota is 8 (the quota has no usage metric; instances running now not counted): request" in line


def test_fleets_of_one_family_share_the_quota():
    cfg = config(queue_to_sagemaker=q2sm())
    quotas = {STANDARD[0]: Quota(*STANDARD, 8.0, 0.0)}
    [line] = problems(cfg, enough(ec2_quotas=quotas))
    assert line == ("queue-depth-scaling + inference-load-balancing: fleet.max_size = 4 x t3.micro in queue-depth-scaling "
                    '+ 4 x t3.micro in inference-load-balancing need 16 vCPUs of "Running On-Demand Standard (A, C, D, H, '
                    'I, M, R, T, Z) instances"; the quota is 8: request an increase (Service Quotas L-1216C47A) to at '
                    "least 16 or lower fleet.max_size")


def test_only_the_selected_stacks_count():
    cfg = config()  # the placeholder image too: queue-to-sagemaker is not selected
    quotas = {STANDARD[0]: Quota(*STANDARD, 8.0, 0.0)}
    assert problems(cfg, enough(ec2_quotas=quotas), ["queue-depth-scaling"]) == []
    assert needs(cfg, ["queue-depth-scaling"]).groups == ("aiscale-queue-workers",)
    assert needs(cfg, ["queue-depth-scaling"]).lambda_functions == ()
    with pytest.raises(SystemExit, match="unknown stack"):
        needs(cfg, ["queue-depth"])


def test_instances_in_use_elsewhere_reduce_what_is_left():
    cfg = config(queue_to_sagemaker=q2sm(), inference_load_balancing={"fleet": {"instance_type": "g5.xlarge"}})
    quotas = {**enough().ec2_quotas, G_QUOTA[0]: Quota(*G_QUOTA, 32.0, 20.0)}
    [line] = problems(cfg, enough(ec2_quotas=quotas))
    assert "the quota is 32 and 20 are in use by other instances: request an increase (Service Quotas L-DB2E81BA) to at least 36" in line


def test_day_two_a_running_fleet_does_not_count_against_itself():
    cfg = config(queue_to_sagemaker=q2sm(), inference_load_balancing={"fleet": {"instance_type": "g5.xlarge"}})
    quotas = {**enough().ec2_quotas, G_QUOTA[0]: Quota(*G_QUOTA, 32.0, 20.0)}  # 16 of the 20 are our 4 g5.xlarge
    running = enough(ec2_quotas=quotas, own_instances={"aiscale-queue-workers": {}, "aiscale-infer-fleet": {"g5.xlarge": 4}})
    report = check(cfg, running)
    assert report.problems == []
    assert any(row.account == "quota 32, 20 in use (16 by these fleets)" for row in report.rows)


def test_instance_type_not_offered_in_the_region():
    cfg = config(queue_to_sagemaker=q2sm(), queue_depth_scaling={"fleet": {"instance_type": "g6e.xlarge"}})
    [line] = problems(cfg, enough(vcpus={"t3.micro": 2, "g6e.xlarge": None}))
    assert line == ("queue-depth-scaling: fleet.instance_type = g6e.xlarge is not offered in us-east-1; set "
                    "[queue-depth-scaling] fleet.instance_type to a type offered there")


def test_family_without_a_known_quota_is_a_warning():
    cfg = config(queue_to_sagemaker=q2sm(), queue_depth_scaling={"fleet": {"instance_type": "hpc7g.16xlarge"}})
    report = check(cfg, enough(vcpus={"t3.micro": 2, "hpc7g.16xlarge": 64}))
    assert report.problems == []
    assert report.warnings == ["warning: queue-depth-scaling: fleet.instance_type = hpc7g.16xlarge: no On-Demand vCPU "
                               "quota known for its family; not checked"]


def test_documented_example_is_what_the_preflight_prints_for_a_new_account():
    readme = (ROOT / "docs" / "deploy.md").read_text()
    block = readme.split("$ make preflight\n", 1)[1].split("```", 1)[0]
    shown = [line[2:] for line in block.splitlines() if line.startswith("  ")]
    new_account = enough(lambda_account=LambdaAccount(10, 10), ec2_quotas={STANDARD[0]: Quota(*STANDARD, 5.0, 0.0)})
    assert shown == problems(config(), new_account)
    assert f"{len(shown)} problems before this can be applied in account 111122223333, us-east-1:" in block


# --- names: what the preflight looks up is what the stacks create -----------------------------


def test_looked_up_names_are_the_synthesized_names(synth):
    from app.config import ProjectSettings

    project = ProjectSettings()
    for stack, group in fleet_group_names(project).items():
        assert synth.stack(stack).one("aws_autoscaling_group")["name"] == group
    function = synth.stack("predictive-lambda-scaling").one("aws_lambda_function")
    assert function["function_name"] == provisioned_function_name(project)


# --- adapters against moto ---------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch):
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION, "MOTO_ACCOUNT_ID": "111122223333"}.items():
        monkeypatch.setenv(key, value)  # moto's default account would be the placeholder's, 123456789012
    with mock_aws():
        yield lambda service: boto3.client(service, region_name=REGION)


def test_vcpus_from_describe_instance_types_and_unknown_types_are_not_offered(aws):
    assert preflight.read_vcpus(aws("ec2"), REGION, ["g5.xlarge", "t3.micro", "zz9.huge"]) == {
        "g5.xlarge": 4, "t3.micro": 2, "zz9.huge": None}


def test_own_group_instances_are_counted_by_type(aws):
    ec2, autoscaling = aws("ec2"), aws("autoscaling")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ec2.create_launch_template(LaunchTemplateName="workers", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="aiscale-queue-workers", MinSize=2, MaxSize=4, DesiredCapacity=2,
                                          LaunchTemplate={"LaunchTemplateName": "workers"}, VPCZoneIdentifier=subnet)
    found = preflight.read_group_instances(autoscaling, REGION, ["aiscale-queue-workers", "aiscale-infer-fleet"])
    assert found == {"aiscale-queue-workers": {"t3.micro": 2}, "aiscale-infer-fleet": {}}


def test_image_lookup_in_ecr(aws):
    ecr = aws("ecr")
    ecr.create_repository(repositoryName="scorer")
    ecr.put_image(repositoryName="scorer", imageTag="v3", imageManifest=MANIFEST)
    base = f"111122223333.dkr.ecr.{REGION}.amazonaws.com"
    assert preflight.read_image(ecr, REGION, IMAGE) is True
    assert preflight.read_image(ecr, REGION, f"{base}/scorer:v4") is False
    assert preflight.read_image(ecr, REGION, f"{base}/missing") is False


def test_existing_endpoint_lookup(aws):
    sm = aws("sagemaker")
    assert preflight.read_endpoint(sm, REGION, "chat") is None
    sm.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"})
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g4dn.xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="chat", EndpointConfigName="c")
    assert preflight.read_endpoint(sm, REGION, "chat") == Endpoint({"AllTraffic": "ml.g4dn.xlarge"})


def test_moto_gaps_become_warnings_not_tracebacks(aws):
    facts = preflight.gather(needs(config(queue_to_sagemaker=q2sm())), aws)
    assert isinstance(facts.lambda_account, Unknown) and facts.lambda_account.action == "lambda:GetAccountSettings"
    assert isinstance(facts.ec2_quotas["L-1216C47A"], Unknown)
    assert facts.vcpus == {"t3.micro": 2}
    assert facts.images == {IMAGE: False}  # no such repository on moto


# --- adapters against recorded-shape responses (Stubber) --------------------------------------


def stubbed(service: str) -> tuple:
    client = boto3.client(service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    return client, Stubber(client)


def test_lambda_account_settings():
    lam, stub = stubbed("lambda")
    stub.add_response("get_account_settings", {
        "AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
                         "ConcurrentExecutions": 10, "UnreservedConcurrentExecutions": 10},
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0}})
    stub.add_client_error("get_account_settings", "AccessDeniedException", "User is not authorized", 403)
    with stub:
        assert preflight.read_lambda_account(lam, REGION) == LambdaAccount(10, 10)
        assert preflight.read_lambda_account(lam, REGION) == Unknown(
            "lambda:GetAccountSettings", "AccessDeniedException: the identity needs lambda:GetAccountSettings")


def test_own_provisioned_concurrency():
    lam, stub = stubbed("lambda")
    params = {"FunctionName": "aiscale-pred-inference", "Qualifier": "live"}
    stub.add_response("get_provisioned_concurrency_config", {
        "RequestedProvisionedConcurrentExecutions": 40, "AvailableProvisionedConcurrentExecutions": 40,
        "AllocatedProvisionedConcurrentExecutions": 40, "Status": "READY", "LastModified": "2026-11-30T10:00:00+0000"}, params)
    stub.add_client_error("get_provisioned_concurrency_config", "ProvisionedConcurrencyConfigNotFoundException",
                          "No Provisioned Concurrency Config found for this function", 404, expected_params=params)
    stub.add_client_error("get_provisioned_concurrency_config", "ResourceNotFoundException", "Function not found", 404,
                          expected_params=params)
    with stub:
        assert [preflight.read_provisioned(lam, REGION, "aiscale-pred-inference", "live") for _ in range(3)] == [40, 0, 0]


def usage_metric(klass: str) -> dict:
    return {"MetricNamespace": "AWS/Usage", "MetricName": "ResourceCount", "MetricStatisticRecommendation": "Maximum",
            "MetricDimensions": {"Class": klass, "Resource": "vCPU", "Service": "EC2", "Type": "Resource"}}


def ec2_quota_response(code: str, name: str, value: float, klass: str) -> dict:
    return {"Quota": {"ServiceCode": "ec2", "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
                      "QuotaArn": f"arn:aws:servicequotas:{REGION}:111122223333:ec2/{code}", "QuotaCode": code,
                      "QuotaName": name, "Value": value, "Unit": "None", "Adjustable": True, "GlobalQuota": False,
                      "UsageMetric": usage_metric(klass)}}


def test_ec2_quota_with_usage_from_its_usage_metric():
    quotas, qstub = stubbed("service-quotas")
    cloudwatch, cstub = stubbed("cloudwatch")
    now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc)
    qstub.add_response("get_service_quota", ec2_quota_response(*G_QUOTA, 32.0, "G/OnDemand"),
                       {"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA"})
    cstub.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "usage", "Label": "ResourceCount", "Timestamps": [now, now - dt.timedelta(minutes=5)], "Values": [8.0, 12.0],
         "StatusCode": "Complete"}]}, {
        "MetricDataQueries": [{"Id": "usage", "MetricStat": {"Metric": {
            "Namespace": "AWS/Usage", "MetricName": "ResourceCount",
            "Dimensions": [{"Name": "Class", "Value": "G/OnDemand"}, {"Name": "Resource", "Value": "vCPU"},
                           {"Name": "Service", "Value": "EC2"}, {"Name": "Type", "Value": "Resource"}]},
            "Period": 300, "Stat": "Maximum"}}],
        "StartTime": now - dt.timedelta(hours=1), "EndTime": now, "ScanBy": "TimestampDescending"})
    with qstub, cstub:
        assert preflight.read_quota(quotas, cloudwatch, REGION, "ec2", "L-DB2E81BA", now) == Quota(*G_QUOTA, 32.0, 8.0, "")


def test_ec2_quota_falls_back_to_the_default_and_denied_usage_is_a_note():
    quotas, qstub = stubbed("service-quotas")
    cloudwatch, cstub = stubbed("cloudwatch")
    qstub.add_client_error("get_service_quota", "NoSuchResourceException", "The request failed because the specified "
                           "service does not exist.", 400)
    qstub.add_response("get_aws_default_service_quota", ec2_quota_response(*G_QUOTA, 0.0, "G/OnDemand"))
    cstub.add_client_error("get_metric_data", "AccessDenied", "not authorized to perform cloudwatch:GetMetricData", 403)
    with qstub, cstub:
        quota = preflight.read_quota(quotas, cloudwatch, REGION, "ec2", "L-DB2E81BA")
    assert (quota.value, quota.usage) == (0.0, None)
    assert quota.usage_note == "usage not readable: cloudwatch:GetMetricData: AccessDenied: the identity needs cloudwatch:GetMetricData"


def test_ec2_quota_access_denied_names_the_permission():
    quotas, qstub = stubbed("service-quotas")
    qstub.add_client_error("get_service_quota", "AccessDeniedException", "not authorized", 400)
    with qstub:
        assert preflight.read_quota(quotas, None, REGION, "ec2", "L-DB2E81BA") == Unknown(
            "servicequotas:GetServiceQuota", "AccessDeniedException: the identity needs servicequotas:GetServiceQuota")


def sagemaker_quota(code: str, instance_type: str, value: float) -> dict:
    return {"ServiceCode": "sagemaker", "QuotaCode": code, "QuotaName": f"{instance_type} for endpoint usage", "Value": value}


def test_sagemaker_quotas_by_name_across_pages_then_defaults():
    quotas, stub = stubbed("service-quotas")
    stub.add_response("list_service_quotas", {"Quotas": [sagemaker_quota("L-AAAA0001", "ml.t2.medium", 2.0)], "NextToken": "p2"},
                      {"ServiceCode": "sagemaker"})
    stub.add_response("list_service_quotas", {"Quotas": [sagemaker_quota("L-C1B9A48D", "ml.m5.large", 4.0)]},
                      {"ServiceCode": "sagemaker", "NextToken": "p2"})
    stub.add_response("list_aws_default_service_quotas", {"Quotas": [sagemaker_quota("L-1928E07B", "ml.g5.xlarge", 0.0),
                                                                      sagemaker_quota("L-C1B9A48D", "ml.m5.large", 1.0)]},
                      {"ServiceCode": "sagemaker"})
    with stub:
        found = preflight.read_sagemaker_quotas(quotas, REGION, ["ml.m5.large", "ml.g5.xlarge", "ml.p5.48xlarge"])
    assert found == {"ml.m5.large": Quota("L-C1B9A48D", "ml.m5.large for endpoint usage", 4.0),  # applied beats default
                     "ml.g5.xlarge": Quota("L-1928E07B", "ml.g5.xlarge for endpoint usage", 0.0),
                     "ml.p5.48xlarge": None}


# --- the command ------------------------------------------------------------------------------


def settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def new_account_clients(aws):
    """moto for what it implements; Lambda and Service Quotas answer like a new account."""
    lam, lstub = stubbed("lambda")
    lstub.add_response("get_account_settings", {"AccountLimit": {"ConcurrentExecutions": 10, "UnreservedConcurrentExecutions": 10}})
    lstub.add_client_error("get_provisioned_concurrency_config", "ResourceNotFoundException", "Function not found", 404)
    quotas, qstub = stubbed("service-quotas")
    qstub.add_response("get_service_quota", ec2_quota_response(*STANDARD, 5.0, "Standard/OnDemand"))
    qstub.add_response("list_service_quotas", {"Quotas": [sagemaker_quota("L-C1B9A48D", "ml.m5.large", 2.0)]})
    clients = {"lambda": lam, "service-quotas": quotas}
    for stub in (lstub, qstub):
        stub.activate()
    return lambda service: clients.get(service) or aws(service)


def test_run_on_a_new_account_prints_one_line_per_shortfall_and_exits_2(aws, tmp_path, capsys):
    code = preflight.run(settings_file(tmp_path, ""), client=new_account_clients(aws))
    out, err = capsys.readouterr()
    assert code == 2
    lines = [line.strip() for line in err.splitlines()]
    assert lines[0] == "4 problems before this can be applied in account 111122223333, us-east-1:"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "queue-depth-scaling + inference-load-balancing", "predictive-lambda-scaling", "queue-to-sagemaker", "queue-to-sagemaker"]
    assert "the quota is 5: request an increase (Service Quotas L-1216C47A) to at least 16" in lines[1]
    assert "endpoint.image_uri is the placeholder" in lines[3]
    assert 'autoscaling.max_capacity = 4 x ml.m5.large needs 4 of "ml.m5.large for endpoint usage"; the quota is 2' in lines[4]
    assert out.splitlines()[2] == "| stack | check | needs | account | result |"


def test_run_passes_with_a_table_and_strict_fails_on_checks_that_could_not_run(aws, tmp_path, capsys):
    aws("ecr").create_repository(repositoryName="scorer")
    aws("ecr").put_image(repositoryName="scorer", imageTag="v3", imageManifest=MANIFEST)
    path = settings_file(tmp_path, f'[queue-to-sagemaker]\nendpoint = {{ type = "create", image_uri = "{IMAGE}" }}\n')
    assert preflight.run(path, stacks=["queue-to-sagemaker", "queue-depth-scaling"], client=aws) == 0
    out, err = capsys.readouterr()
    assert "| queue-to-sagemaker | endpoint.image_uri | an image in ECR | found | ok |" in out
    assert "preflight passed (3 checks, 2 not run: see the warnings)" in out
    assert err.count("warning:") == 2 and "Traceback" not in err
    assert preflight.run(path, stacks=["queue-to-sagemaker", "queue-depth-scaling"], client=aws, strict=True) == 2


def test_invalid_settings_exit_2_before_any_aws_call(tmp_path, capsys):
    def no_aws(service):
        raise AssertionError(f"called AWS ({service}) with invalid settings")

    assert preflight.run(settings_file(tmp_path, "[queue-depth-scaling]\nfleet = { max_size = 0 }\n"), client=no_aws) == 2
    assert "settings.toml: [queue-depth-scaling] fleet.max_size: Input should be greater than or equal to 1" in capsys.readouterr().err


def test_no_credentials_is_one_line(tmp_path, capsys, monkeypatch):
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert preflight.run(settings_file(tmp_path, "")) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("preflight: cannot reach AWS as any identity (NoCredentialsError") and line.endswith("nothing was checked")


def test_make_preflight_runs_the_module_with_its_arguments():
    dry = subprocess.run(["make", "-n", "preflight", "PREFLIGHT_ARGS=--stack queue-to-sagemaker --strict"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "python -m tooling.preflight --stack queue-to-sagemaker --strict" in dry.stdout


# --- make plan TARGET=aws: the preflight comes first -------------------------------------------


@pytest.mark.slow
def test_plan_on_aws_stops_on_the_placeholder_before_terraform_and_keeps_plans(tmp_path, capsys, monkeypatch):
    from tooling import emulator as emu
    from tooling import plan

    out = tmp_path / "plans"
    out.mkdir()
    previous = {"manifest.json": json.dumps({"target": "aws", "stacks": [{"stack": "queue-to-sagemaker"}]}),
                "summary.md": "# the reviewed plan\n", "queue-to-sagemaker.md": "reviewed\n", "queue-to-sagemaker.tfplan": "binary"}
    for name, text in previous.items():
        (out / name).write_text(text)

    def must_not_run(*args, **kwargs):
        raise AssertionError("synthesis or terraform ran although the preflight failed")

    monkeypatch.setattr(plan, "_synthesize", must_not_run)
    monkeypatch.setattr(plan, "terraform", must_not_run)
    emulator, _ = emu.start(tmp_path / "emulator")
    try:
        for key in list(os.environ):
            if key.startswith("AWS_") or key.upper().endswith("_PROXY"):
                monkeypatch.delenv(key)
        for key, value in emulator.env(base={}).items():
            monkeypatch.setenv(key, value)
        code = plan.main(["--target", "aws", "--out", str(out), "--settings", str(settings_file(tmp_path, ""))])
    finally:
        emu.stop(tmp_path / "emulator")
    err = capsys.readouterr().err
    assert code == 2
    assert ("  queue-to-sagemaker: endpoint.image_uri is the placeholder 123456789012.dkr.ecr.us-east-1.amazonaws.com/"
            "my-model:latest") in err
    assert "nothing was synthesized, planned or deleted" in err and "Traceback" not in err
    # moto lacks Lambda account settings and EC2/SageMaker quotas: one warning line each, no HTML error pages.
    assert [line for line in err.splitlines() if not line.startswith(("warning: ", "  ", "1 problem ", "make plan: "))] == []
    assert err.count("warning: ") == 3 and "<" not in err
    assert {p.name: p.read_text() for p in out.iterdir()} == previous
