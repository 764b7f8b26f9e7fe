"""Stack `inference-load-balancing`: given settings, when synthesized, then the Terraform has ..."""

from __future__ import annotations

import base64
import json
import re

import pytest

from app.config import load_config
from scaling_patterns.core.settings import SettingsError
from scaling_patterns.patterns.inference_load_balancing.variants import CERTIFICATE, LOAD_BALANCER, TARGET_GROUP
from tests.conftest import named, ref

STACK = "inference-load-balancing"


@pytest.fixture(scope="module")
def default(synth):
    return synth.stack(STACK)


@pytest.fixture(scope="module")
def https(synth):
    return synth.stack("infer-https-internal")


def listener(stack, port):
    return [(f"aws_lb_listener.{k}", v) for k, v in stack.resources("aws_lb_listener").items() if v["port"] == port][0]


def security_groups(stack):
    alb, _ = named(stack, "aws_security_group", "aiscale-infer-alb")
    fleet, _ = named(stack, "aws_security_group", "aiscale-infer-fleet-instances")
    return alb, fleet


# --- load balancer -------------------------------------------------------------------------


def test_load_balancer_is_internet_facing_across_both_subnets_with_its_own_security_group(default):
    lb = default.one("aws_lb")
    alb_sg, _ = security_groups(default)
    assert (lb["name"], lb["load_balancer_type"], lb["internal"]) == ("aiscale-infer-alb", "application", False)
    assert lb["subnets"] == [ref(f"aws_subnet.{k}", "id") for k in default.resources("aws_subnet")]
    assert len(lb["subnets"]) == 2
    assert lb["security_groups"] == [ref(alb_sg, "id")]


def test_load_balancer_drops_invalid_headers_and_waits_five_minutes_for_long_generations(default):
    lb = default.one("aws_lb")
    assert lb["drop_invalid_header_fields"] is True
    assert lb["idle_timeout"] == 300
    assert lb["enable_deletion_protection"] is False
    assert "access_logs" not in lb and not default.resources("aws_s3_bucket")


def test_clients_reach_only_port_80_from_the_ingress_cidrs_by_default(default):
    alb_sg, _ = security_groups(default)
    rules = [r for r in default.resources("aws_vpc_security_group_ingress_rule").values() if r["security_group_id"] == ref(alb_sg, "id")]
    assert [(r["from_port"], r["to_port"], r["cidr_ipv4"]) for r in rules] == [(80, 80, "0.0.0.0/0")]


def test_load_balancer_and_fleet_talk_only_to_each_other_on_the_target_port(default):
    alb_sg, fleet_sg = security_groups(default)
    egress = [r for r in default.resources("aws_vpc_security_group_egress_rule").values() if r["security_group_id"] == ref(alb_sg, "id")]
    assert [(r["from_port"], r["to_port"], r["referenced_security_group_id"]) for r in egress] == [(80, 80, ref(fleet_sg, "id"))]
    ingress = [r for r in default.resources("aws_vpc_security_group_ingress_rule").values() if r["security_group_id"] == ref(fleet_sg, "id")]
    assert [(r["from_port"], r["to_port"], r["referenced_security_group_id"]) for r in ingress] == [(80, 80, ref(alb_sg, "id"))]
    assert all("cidr_ipv4" not in r for r in ingress)  # never open to the internet


# --- target group and listeners -----------------------------------------------------------------


def test_target_group_is_http_80_with_the_reference_health_check(default):
    group = default.one("aws_lb_target_group")
    assert (group["port"], group["protocol"], group["target_type"]) == (80, "HTTP", "instance")
    assert group["vpc_id"] == default.ref("aws_vpc", "id")
    check = group["health_check"]
    assert {k: check[k] for k in ("path", "healthy_threshold", "unhealthy_threshold", "timeout", "interval", "matcher")} == {
        "path": "/", "healthy_threshold": 2, "unhealthy_threshold": 2, "timeout": 3, "interval": 30, "matcher": "200"}


def test_target_group_is_replaced_create_before_destroy_under_a_name_that_changes_with_port_and_vpc(default, https):
    group, other = default.one("aws_lb_target_group"), https.one("aws_lb_target_group")
    assert group["lifecycle"] == {"create_before_destroy": True}
    assert re.fullmatch(r"aiscale-infer-tg-[0-9a-f]{8}", group["name"]) and len(group["name"]) <= 32
    assert other["name"] != group["name"]  # port 8080 in an existing VPC: a group that can coexist


def test_a_launch_template_change_rolls_through_the_fleet_new_instances_first(default):
    refresh = default.one("aws_autoscaling_group")["instance_refresh"]
    assert refresh == {"strategy": "Rolling", "preferences": {
        "min_healthy_percentage": 100, "max_healthy_percentage": 200, "auto_rollback": True, "skip_matching": True,
        "scale_in_protected_instances": "Ignore", "standby_instances": "Ignore"}}


def test_inference_traffic_goes_to_the_least_busy_target_and_in_flight_requests_may_finish(default):
    group = default.one("aws_lb_target_group")
    assert group["load_balancing_algorithm_type"] == "least_outstanding_requests"
    assert group["deregistration_delay"] == "300"


def test_without_a_certificate_port_80_forwards_to_the_target_group(default):
    (only,) = default.resources("aws_lb_listener").values()
    assert (only["port"], only["protocol"]) == (80, "HTTP")
    assert only["load_balancer_arn"] == default.ref("aws_lb", "arn")
    assert only["default_action"] == [{"type": "forward", "target_group_arn": default.ref("aws_lb_target_group", "arn")}]


def test_with_a_certificate_443_terminates_tls_1_3_and_80_redirects(https):
    _, secure = listener(https, 443)
    assert (secure["protocol"], secure["certificate_arn"], secure["ssl_policy"]) == (
        "HTTPS", CERTIFICATE, "ELBSecurityPolicy-TLS13-1-2-2021-06")
    assert secure["default_action"] == [{"type": "forward", "target_group_arn": https.ref("aws_lb_target_group", "arn")}]
    _, plain = listener(https, 80)
    assert plain["default_action"] == [{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}]


def test_with_a_certificate_clients_may_reach_80_and_443_from_each_cidr(https):
    alb_sg, _ = security_groups(https)
    rules = [r for r in https.resources("aws_vpc_security_group_ingress_rule").values() if r["security_group_id"] == ref(alb_sg, "id")]
    assert sorted((r["from_port"], r["cidr_ipv4"]) for r in rules) == [
        (80, "10.0.0.0/8"), (80, "192.168.0.0/16"), (443, "10.0.0.0/8"), (443, "192.168.0.0/16")]


def test_internal_variant_moves_every_setting(https):
    lb = https.one("aws_lb")
    assert (lb["internal"], lb["idle_timeout"], lb["enable_deletion_protection"]) == (True, 900, True)
    assert lb["subnets"] == ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
    group = https.one("aws_lb_target_group")
    assert (group["port"], group["vpc_id"], group["load_balancing_algorithm_type"], group["deregistration_delay"]) == (
        8080, "vpc-0123456789abcdef0", "round_robin", "120")
    assert {k: group["health_check"][k] for k in ("path", "healthy_threshold", "unhealthy_threshold", "timeout", "interval", "matcher")} == {
        "path": "/health", "healthy_threshold": 3, "unhealthy_threshold": 5, "timeout": 10, "interval": 15, "matcher": "200-299"}
    assert not https.resources("aws_vpc")


# --- access logs ------------------------------------------------------------------------------


def test_access_logs_go_to_a_private_encrypted_bucket_that_expires_them(https):
    bucket = https.address("aws_s3_bucket")
    lb = https.one("aws_lb")
    assert lb["access_logs"] == {"bucket": ref(bucket, "id"), "prefix": "alb", "enabled": True}
    assert https.address("aws_s3_bucket_policy") in lb["depends_on"]
    block = https.one("aws_s3_bucket_public_access_block")
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    encryption = https.one("aws_s3_bucket_server_side_encryption_configuration")
    assert encryption["rule"][0]["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"
    assert https.one("aws_s3_bucket_ownership_controls")["rule"]["object_ownership"] == "BucketOwnerEnforced"
    assert https.one("aws_s3_bucket_lifecycle_configuration")["rule"][0]["expiration"][0]["days"] == 30


def test_only_elb_log_delivery_may_write_and_only_under_the_prefix(https):
    bucket = https.address("aws_s3_bucket")
    policy = json.loads(https.one("aws_s3_bucket_policy")["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    write = statements["LoadBalancerWritesAccessLogs"]
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == ref(bucket, "arn") + "/alb/AWSLogs/*"
    account = "${" + f"data.aws_elb_service_account.{next(iter(https.data('aws_elb_service_account')))}.arn" + "}"
    assert write["Principal"] == {"AWS": account, "Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- fleet and scaling --------------------------------------------------------------------------


def test_fleet_registers_in_the_target_group_and_is_replaced_on_failed_health_checks(default):
    group = default.one("aws_autoscaling_group")
    assert group["target_group_arns"] == [default.ref("aws_lb_target_group", "arn")]
    assert (group["health_check_type"], group["health_check_grace_period"]) == ("ELB", 300)
    assert (group["min_size"], group["max_size"]) == (1, 4)
    assert group["vpc_zone_identifier"] == default.one("aws_lb")["subnets"]


def test_fleet_instances_require_imdsv2_and_encrypt_their_root_volume(default):
    template = default.one("aws_launch_template")
    assert template["metadata_options"]["http_tokens"] == "required"
    assert template["block_device_mappings"][0]["ebs"]["encrypted"] == "true"
    assert template["image_id"] == "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


def test_fleet_role_has_no_aws_permissions(default):
    assert not default.resources("aws_iam_role_policy")
    assert default.one("aws_iam_instance_profile")["role"] == default.ref("aws_iam_role", "name")


def test_default_user_data_runs_a_placeholder_server_on_the_target_port(default, https):
    script = base64.b64decode(default.one("aws_launch_template")["user_data"]).decode()
    assert "ThreadingHTTPServer(('', 80), Handler)" in script
    assert "systemctl enable --now placeholder-inference.service" in script
    assert base64.b64decode(https.one("aws_launch_template")["user_data"]).decode() == "#!/bin/bash\nsystemctl start my-model-server\n"


def test_fleet_scales_on_requests_per_target(default, https):
    policy = default.one("aws_autoscaling_policy")
    assert policy["autoscaling_group_name"] == default.ref("aws_autoscaling_group", "name")
    assert policy["policy_type"] == "TargetTrackingScaling"
    tracking = policy["target_tracking_configuration"]
    assert tracking["target_value"] == 60
    assert tracking["predefined_metric_specification"] == {
        "predefined_metric_type": "ALBRequestCountPerTarget",
        "resource_label": default.ref("aws_lb", "arn_suffix") + "/" + default.ref("aws_lb_target_group", "arn_suffix")}
    assert https.one("aws_autoscaling_policy")["target_tracking_configuration"]["target_value"] == 120


def test_outputs_export_the_dns_name_like_the_reference(default, https):
    outputs = {name: body["value"] for name, body in default.outputs.items()}
    assert outputs == {
        "load_balancer_dns_name": default.ref("aws_lb", "dns_name"),
        "load_balancer_url": "http://" + default.ref("aws_lb", "dns_name"),
        "target_group_arn": default.ref("aws_lb_target_group", "arn"),
        "autoscaling_group_name": default.ref("aws_autoscaling_group", "name")}
    assert https.outputs["load_balancer_url"]["value"] == "https://" + https.ref("aws_lb", "dns_name")


# --- an existing target group (the platform's load balancer) ---------------------------------


@pytest.fixture(scope="module")
def existing(synth):
    return synth.stack("infer-existing-target-group")


def test_with_an_existing_target_group_no_load_balancer_is_created(existing):
    created = set(existing.doc["resource"])
    assert not created & {"aws_lb", "aws_lb_listener", "aws_lb_target_group", "aws_s3_bucket"}, sorted(created)
    assert [body["name"] for body in existing.resources("aws_security_group").values()] == ["aiscale-infer-fleet-instances"]


def test_the_fleet_registers_in_the_given_target_group_and_admits_only_its_load_balancer(existing):
    assert existing.one("aws_autoscaling_group")["target_group_arns"] == [TARGET_GROUP]
    (ingress,) = existing.resources("aws_vpc_security_group_ingress_rule").values()
    assert (ingress["referenced_security_group_id"], ingress["from_port"], ingress["to_port"]) == ("sg-0123456789abcdef0", 8080, 8080)
    egress = existing.resources("aws_vpc_security_group_egress_rule").values()
    assert egress and not [rule for rule in egress if "referenced_security_group_id" in rule]  # only the fleet's HTTPS out


def test_the_fleet_scales_on_the_given_load_balancers_requests_per_target(existing):
    spec = existing.one("aws_autoscaling_policy")["target_tracking_configuration"]["predefined_metric_specification"]
    assert spec["resource_label"] == "app/platform/fedcba9876543210/targetgroup/platform-inference/0123456789abcdef"
    assert LOAD_BALANCER.endswith("loadbalancer/" + spec["resource_label"].split("/targetgroup/")[0])
    assert "depends_on" not in existing.one("aws_autoscaling_policy")


def test_with_an_existing_target_group_the_outputs_are_the_group_and_fleet(existing):
    assert {name: body["value"] for name, body in existing.outputs.items()} == {
        "target_group_arn": TARGET_GROUP, "autoscaling_group_name": existing.ref("aws_autoscaling_group", "name")}


def test_load_balancer_settings_with_an_existing_target_group_are_rejected():
    given = {"arn": TARGET_GROUP, "load_balancer_arn": LOAD_BALANCER, "load_balancer_security_group_id": "sg-0123456789abcdef0"}
    network = {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}
    assert problems({"existing_target_group": given, "network": network, "certificate_arn": CERTIFICATE, "internal": True}) == [
        "settings.toml: [inference-load-balancing] (section): internal, certificate_arn configure the load balancer this stack "
        "creates; with existing_target_group there is none: remove them or existing_target_group "
        f"(given internal=True, certificate_arn={CERTIFICATE!r})"]
    (line,) = problems({"existing_target_group": given})
    assert "existing_target_group needs network.vpc_id and network.subnet_ids of the target group's VPC" in line
    (line,) = problems({"existing_target_group": dict(given, arn=LOAD_BALANCER), "network": network})
    assert "existing_target_group.arn: must be an ARN like arn:aws:elasticloadbalancing:" in line and "loadbalancer/app/" in line


def test_default_stack_plans_without_an_aws_account(default):
    assert "data" not in default.doc


# --- settings errors -----------------------------------------------------------------------------


def problems(settings: dict) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_config(data={STACK: settings})
    return caught.value.problems


def test_min_size_above_max_size_is_rejected():
    assert problems({"fleet": {"min_size": 6, "max_size": 3}}) == [
        "settings.toml: [inference-load-balancing] fleet: min_size must be <= max_size (given min_size=6, max_size=3)"]


def test_an_empty_inference_fleet_is_rejected():
    (line,) = problems({"fleet": {"min_size": 0}})
    assert "fleet.min_size" in line and "(given 0)" in line


def test_one_subnet_is_rejected():
    (line,) = problems({"network": {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0"] * 2}})
    assert line.startswith("settings.toml: [inference-load-balancing] network: subnet_ids needs at least two different subnets")


def test_a_bad_certificate_arn_is_rejected():
    (line,) = problems({"certificate_arn": "arn:aws:iam::123456789012:server-certificate/web"})
    assert line == ("settings.toml: [inference-load-balancing] certificate_arn: must be an ARN like "
                    "arn:aws:acm:us-east-1:123456789012:certificate/0123abcd-... "
                    "(given 'arn:aws:iam::123456789012:server-certificate/web')")


def test_a_tls_policy_older_than_tls_1_3_is_rejected():
    (line,) = problems({"ssl_policy": "ELBSecurityPolicy-2016-08"})
    assert "ssl_policy: must be a TLS 1.3 ELB security policy" in line


def test_health_check_timeout_must_be_below_its_interval():
    (line,) = problems({"health_check": {"timeout_seconds": 30, "interval_seconds": 30}})
    assert "health_check: timeout_seconds must be < interval_seconds (given timeout_seconds=30, interval_seconds=30)" in line


def test_bad_cidrs_algorithms_and_zones_are_reported_together():
    lines = problems({"ingress_cidrs": ["10.0.0.0/33"], "load_balancing_algorithm": "random",
                      "network": {"availability_zones": ["us-east-1a"]}})
    assert len(lines) == 3
    assert any("ingress_cidrs[0]: must be an IPv4 CIDR block" in line for line in lines)
    assert any("load_balancing_algorithm" in line and "'random'" in line for line in lines)
    assert any("network: availability_zones needs at least two different zones" in line for line in lines)


def test_a_certificate_from_another_region_cannot_be_synthesized(tmp_path):
    from app.config import ProjectSettings
    from app.synth import StackRequest, synthesize
    from scaling_patterns.core.settings import validate_section
    from scaling_patterns.registry import PATTERNS

    spec = next(s for s in PATTERNS if s.name == STACK)
    settings = validate_section(STACK, spec.load_settings_class(), {"certificate_arn": CERTIFICATE.replace("us-east-1", "eu-west-1")})
    with pytest.raises(ValueError, match="certificate_arn must be in the load balancer's region us-east-1"):
        synthesize(ProjectSettings(), [StackRequest(spec, "infer-wrong-region", settings)], tmp_path / "cdktf.out")


def test_the_documented_existing_target_group_example_is_valid():
    import tomllib
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "patterns" / f"{STACK}.md").read_text()
    example = doc.split("(`existing_target_group`)", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    settings = load_config(data=tomllib.loads(example)).stacks[STACK]
    assert settings.existing_target_group.arn == TARGET_GROUP and settings.existing_target_group.load_balancer_arn == LOAD_BALANCER
