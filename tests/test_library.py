"""The constructs as a library: any TerraformStack, distinct names per instance, your own
resources passed in as tokens, IAM boundary and path on every role, and an import with no
side effects (tests/test_packaging.py installs the package and runs the examples)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from scaling_patterns.registry import PATTERNS

BOUNDARY = "arn:aws:iam::123456789012:policy/boundaries/workload"



@pytest.fixture(scope="module")
def library_out(synth, tmp_path_factory) -> Path:  # `synth` first: the bindings load once per session
    """One plain TerraformStack (no project stack class) with two instances of every pattern,
    and a second stack whose patterns get a VPC, subnets, a topic, a queue and an endpoint of
    the same app as tokens, with a permissions boundary and a role path."""
    from cdktf import App, TerraformStack
    from cdktf_cdktf_provider_aws.cloudwatch_event_bus import CloudwatchEventBus
    from cdktf_cdktf_provider_aws.lb import Lb
    from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup
    from cdktf_cdktf_provider_aws.provider import AwsProvider
    from cdktf_cdktf_provider_aws.security_group import SecurityGroup
    from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
    from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
    from cdktf_cdktf_provider_aws.subnet import Subnet
    from cdktf_cdktf_provider_aws.vpc import Vpc

    outdir = tmp_path_factory.mktemp("library") / "out"
    app = App(outdir=str(outdir))
    twice = TerraformStack(app, "twice")
    AwsProvider(twice, "aws", region="eu-west-1")
    for spec in PATTERNS:
        construct = spec.load("construct")
        construct(twice, f"{spec.short}_one", name_prefix="team")
        construct(twice, f"{spec.short}_two", name_prefix="team")  # the same settings: only the id differs

    byo = TerraformStack(app, "byo")
    AwsProvider(byo, "aws", region="eu-west-1")
    vpc = Vpc(byo, "vpc", cidr_block="10.1.0.0/16")
    subnets = [Subnet(byo, f"subnet_{i}", vpc_id=vpc.id, cidr_block=f"10.1.{i}.0/24", availability_zone=f"eu-west-1{z}")
               for i, z in enumerate("ab")]
    topic = SnsTopic(byo, "alerts", name="platform-alerts")
    requests, dead = SqsQueue(byo, "requests", name="orders"), SqsQueue(byo, "dead", name="orders-dlq")
    network = {"vpc_id": vpc.id, "subnet_ids": [s.id for s in subnets]}
    iam = {"permissions_boundary_arn": BOUNDARY, "role_path": "/workloads/"}
    load = {spec.name: spec.load("construct") for spec in PATTERNS}
    load["queue-depth-scaling"](byo, "workers", {"network": network}, name="jobs", **iam)
    load["inference-load-balancing"](byo, "inference", {"network": network}, name="infer", **iam)
    load["predictive-lambda-scaling"](byo, "predictive", {"spillover_alarm": {"topic_arn": topic.arn}}, name="pred", **iam)
    load["queue-to-sagemaker"](byo, "sagemaker", {
        "queue": {"existing_queue_arn": requests.arn, "existing_dead_letter_queue_arn": dead.arn},
        "endpoint": {"type": "existing", "name": "Chat-Endpoint"}}, name="q2sm", **iam)
    bus = CloudwatchEventBus(byo, "bus", name="platform-events")
    load["llm-request-scaling"](byo, "llm", {"event_bus_name": bus.name,
                                             "scaling_target": {"type": "autoscaling_group", "name": "jobs-workers"}},
                                name="llm", **iam)
    # A load balancer the platform already runs: the fleet joins its target group.
    lb_group = SecurityGroup(byo, "platform_lb_sg", name="platform-lb", vpc_id=vpc.id)
    lb = Lb(byo, "platform_lb", name="platform", security_groups=[lb_group.id], subnets=[s.id for s in subnets])
    target_group = LbTargetGroup(byo, "platform_tg", name="platform-inference", port=8080, protocol="HTTP", vpc_id=vpc.id)
    load["inference-load-balancing"](byo, "behind_platform_lb", {
        "target_port": 8080, "network": network,
        "existing_target_group": {"arn": target_group.arn, "load_balancer_arn": lb.arn,
                                  "load_balancer_security_group_id": lb_group.id}}, name="shared", **iam)
    app.synth()
    return outdir


def stack(out: Path, name: str) -> dict:
    return json.loads((out / "stacks" / name / "cdk.tf.json").read_text())


NAMED = ("name", "function_name", "alarm_name", "bucket", "bucket_prefix")
#: Named within their function, not the account: an alias `live` and a statement id per function.
SCOPED = {"aws_lambda_alias", "aws_lambda_permission"}


def names(doc: dict) -> list[tuple[str, str]]:
    """(type, name) of every resource AWS names account- or region-wide."""
    found = []
    for type_, items in doc.get("resource", {}).items():
        if type_ in SCOPED:
            continue
        for body in items.values():
            for key in NAMED:
                if isinstance(body.get(key), str) and (key != "name" or not type_.endswith("_policy")):
                    found.append((type_, body[key]))
    return found


def test_every_pattern_works_in_a_plain_terraform_stack_twice_with_distinct_names(library_out):
    doc = stack(library_out, "twice")
    counted = Counter(names(doc))
    assert counted and not [n for n, c in counted.items() if c > 1], [n for n, c in counted.items() if c > 1]
    # Each name starts with the instance's own base: <name_prefix>-<construct id>.
    for spec in PATTERNS:
        for instance in ("one", "two"):
            base = f"team-{spec.short}-{instance}-"
            assert any(n.startswith(base) for _, n in names(doc)), base


def test_the_region_comes_from_the_stacks_provider(library_out):
    doc = stack(library_out, "twice")
    # (The default image URI is a placeholder in us-east-1; everything else follows the provider.)
    text = json.dumps(doc["resource"]).replace("123456789012.dkr.ecr.us-east-1", "").replace("ecr:us-east-1:123456789012", "")
    assert "eu-west-1a" in text and "us-east-1" not in text


def test_resources_of_the_app_are_accepted_as_tokens(library_out):
    doc = stack(library_out, "byo")
    groups = doc["resource"]["aws_autoscaling_group"]
    subnets = sorted(f"${{aws_subnet.{n}.id}}" for n in doc["resource"]["aws_subnet"])
    assert all(sorted(g["vpc_zone_identifier"]) == subnets for g in groups.values())
    assert "aws_vpc" in doc["resource"] and len(doc["resource"]["aws_vpc"]) == 1  # no VPC of the patterns' own
    alarm = next(a for a in doc["resource"]["aws_cloudwatch_metric_alarm"].values() if a["alarm_name"].startswith("pred-"))
    assert alarm["alarm_actions"] == ["${aws_sns_topic.alerts.arn}"]
    mapping = next(iter(doc["resource"]["aws_lambda_event_source_mapping"].values()))
    assert mapping["event_source_arn"] == "${aws_sqs_queue.requests.arn}"
    assert "aws_sqs_queue" in doc["resource"] and not any(
        q["name"].startswith("q2sm-requests") for q in doc["resource"]["aws_sqs_queue"].values())
    rule = next(r for r in doc["resource"]["aws_cloudwatch_event_rule"].values() if r["name"].startswith("llm-"))
    assert rule["event_bus_name"] == "${aws_cloudwatch_event_bus.bus.name}"


def test_an_existing_target_group_and_load_balancer_are_accepted_as_tokens(library_out):
    doc = stack(library_out, "byo")
    shared = [g for g in doc["resource"]["aws_autoscaling_group"].values() if g["name"].startswith("shared-")]
    assert [g["target_group_arns"] for g in shared] == [["${aws_lb_target_group.platform_tg.arn}"]]
    assert sorted(lb["name"] for lb in doc["resource"]["aws_lb"].values()) == ["infer-alb", "platform"]
    policy = next(p for p in doc["resource"]["aws_autoscaling_policy"].values() if p["name"].startswith("shared-"))
    label = policy["target_tracking_configuration"]["predefined_metric_specification"]["resource_label"]
    # app/<name>/<id>/targetgroup/<name>/<id>, computed by Terraform from the two ARNs
    assert label == ('${trimprefix(element(split(":", aws_lb.platform_lb.arn), 5), "loadbalancer/")}/'
                     '${element(split(":", aws_lb_target_group.platform_tg.arn), 5)}'), label
    ingress = [r for r in doc["resource"]["aws_vpc_security_group_ingress_rule"].values()
               if r.get("referenced_security_group_id") == "${aws_security_group.platform_lb_sg.id}"]
    assert [(r["from_port"], r["to_port"]) for r in ingress] == [(8080, 8080)]


def test_every_role_gets_the_permissions_boundary_and_path(library_out):
    roles = stack(library_out, "byo")["resource"]["aws_iam_role"]
    assert len(roles) >= 6
    assert all(r["permissions_boundary"] == BOUNDARY and r["path"] == "/workloads/" for r in roles.values()), roles


def test_a_role_path_gives_role_names_of_their_own_so_a_new_path_replaces_create_before_destroy(library_out):
    """AWS replaces a role whose path changes and keeps role names unique whatever the path."""
    from scaling_patterns.core.naming import content_hash

    path_hash = content_hash({"path": "/workloads/"})
    byo, twice = stack(library_out, "byo")["resource"]["aws_iam_role"], stack(library_out, "twice")["resource"]["aws_iam_role"]
    assert all(r["name"].endswith(f"-{path_hash}") for r in byo.values()), sorted(r["name"] for r in byo.values())
    assert not any(r["name"].endswith(f"-{path_hash}") or "path" in r for r in twice.values())  # no path: names as ever
    assert all(r["lifecycle"] == {"create_before_destroy": True} for r in [*byo.values(), *twice.values()])


def test_a_new_role_path_gives_the_sagemaker_model_a_new_name_so_the_endpoint_rolls(synth):
    from cdktf import App, TerraformStack
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    from scaling_patterns import SqsToSagemakerEndpoint

    stack_ = TerraformStack(App(outdir="/nonexistent"), "paths")
    AwsProvider(stack_, "aws", region="us-east-1")
    names = [SqsToSagemakerEndpoint(stack_, f"q{i}", name="same", role_path=path).model_endpoint.model.name
             for i, path in enumerate((None, "/workloads/", "/other/"))]
    assert len(set(names)) == 3, names


def test_library_stacks_are_valid_terraform(library_out):
    from tooling.terraform import validate_stacks

    results = validate_stacks([library_out / "stacks" / "twice", library_out / "stacks" / "byo"])
    assert all(ok for ok, _ in results.values()), results


def test_bad_props_name_the_construct_field_and_value(synth):
    from cdktf import App, TerraformStack

    from scaling_patterns import SqsToSagemakerEndpoint

    stack_ = TerraformStack(App(), "bad")
    with pytest.raises(ValueError) as caught:
        SqsToSagemakerEndpoint(stack_, "orders", {"memory_mb": 64}, name_prefix="team")
    assert str(caught.value) == ("[SqsToSagemakerEndpoint] memory_mb: Input should be greater than or equal to 128 (given 64)")
    with pytest.raises(ValueError, match=r"name must be lowercase letters, digits and '-'.*\(given 'Team_X'\)"):
        SqsToSagemakerEndpoint(stack_, "other", name="Team_X")


def test_importing_the_library_changes_nothing_for_the_host_app():
    """No side effects: the provider package stays as Python imports it, cdktf is not even loaded."""
    code = ("import sys, scaling_patterns\n"
            "assert 'cdktf' not in sys.modules and 'cdktf_cdktf_provider_aws' not in sys.modules, sorted(sys.modules)\n"
            "from scaling_patterns import QueueToSageMakerSettings, PATTERNS\n"
            "assert 'cdktf' not in sys.modules\n"
            "print(len(PATTERNS), QueueToSageMakerSettings.__name__)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["5", "QueueToSageMakerSettings"]


@pytest.mark.slow
def test_the_host_apps_own_provider_imports_work_after_a_construct_is_imported():
    """The library does not register the provider package lazily (the app's own process may)."""
    code = ("from scaling_patterns import SqsToSagemakerEndpoint\n"
            "import cdktf_cdktf_provider_aws as aws\n"
            "from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket\n"
            "print(aws.sqs_queue.SqsQueue.__name__, S3Bucket.__name__)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["SqsQueue", "S3Bucket"]


def _imported_top_levels(path: Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("modules/scaling_patterns", {"app", "tooling", "tests", "modules", "main"}),
    ("app", {"tooling", "tests", "modules", "main"}),
])
def test_no_import_runs_back_up_the_layers(layer, forbidden):
    """Layers: tooling -> app -> scaling_patterns, never back up (every import statement, also inside functions)."""
    offenders = [f"{path.relative_to(PROJECT_ROOT)} imports {sorted(_imported_top_levels(path) & forbidden)}"
                 for path in sorted((PROJECT_ROOT / layer).rglob("*.py")) if _imported_top_levels(path) & forbidden]
    assert offenders == []


# --- docs/library.md lists exactly what each construct exposes -------------------------------


def _documented_api(construct: str) -> tuple[set[str], set[str]]:
    text = (PROJECT_ROOT / "docs" / "library.md").read_text()
    section = text.split(f"## `{construct}`", 1)[1].split("\n## ", 1)[0]
    attributes, helpers = set(), set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        for name in re.findall(r"`([^`]+)`", line.split("|")[1]):
            (helpers if "(" in name else attributes).add(name.split("(")[0])
    return attributes, helpers


@pytest.mark.parametrize("spec", PATTERNS, ids=[s.name for s in PATTERNS])
def test_the_library_doc_lists_every_attribute_and_helper_of_each_construct(spec, synth):
    from cdktf import App, TerraformStack
    from cdktf_cdktf_provider_aws.provider import AwsProvider
    from constructs import Construct

    from scaling_patterns.core.pattern import Pattern

    cls = spec.load("construct")
    stack = TerraformStack(App(outdir="/nonexistent"), "api")
    AwsProvider(stack, "aws", region="us-east-1")
    instance = cls(stack, "api")
    shared = set(dir(Pattern)) | {"settings", "pattern_context"}
    attributes = {k for k in vars(instance) if not k.startswith("_")} - shared
    attributes |= {k for k, v in vars(cls).items() if isinstance(v, property) and not k.startswith("_")}
    helpers = {k for k, v in vars(cls).items() if callable(v) and not k.startswith("_")} - shared - set(dir(Construct))
    documented_attributes, documented_helpers = _documented_api(cls.__name__)
    assert documented_attributes == attributes, "docs/library.md attributes differ from the construct"
    assert documented_helpers == helpers, "docs/library.md helpers differ from the construct"


def test_the_readme_example_synthesizes_and_validates(synth, tmp_path, capsys):
    from tooling.terraform import validate_stacks

    readme = (PROJECT_ROOT / "README.md").read_text()
    code = readme.split("## Use a pattern in your own cdktf app", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    # The jsii runtime keeps the working directory it started in: give the App its folder.
    assert code.count("App()") == 1
    code = code.replace("App()", f"App(outdir={str(tmp_path / 'cdktf.out')!r})")
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    doc = stack(tmp_path / "cdktf.out", "platform")
    assert any(q["name"] == "acme-orders-requests" for q in doc["resource"]["aws_sqs_queue"].values())
    assert all(r["permissions_boundary"] == "arn:aws:iam::111122223333:policy/workload"
               for r in doc["resource"]["aws_iam_role"].values() if r["name"].startswith("acme-orders-"))
    assert any(p["role"] == "order-service" for p in doc["resource"]["aws_iam_role_policy"].values())
    results = validate_stacks([tmp_path / "cdktf.out" / "stacks" / "platform"])
    assert all(ok for ok, _ in results.values()), results
