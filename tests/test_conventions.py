"""Secure defaults every stack shares, checked on every synthesized stack and variant.

A new pattern or variant is covered as soon as it is registered: these tests read the
session synth, not a list of stacks.
"""

from __future__ import annotations

import json

import pytest

from scaling_patterns.core.versions import LAMBDA_PYTHON_RUNTIME

#: Actions AWS offers only on ``Resource: "*"`` (no resource-level permissions), and the
#: only ones a policy of this project may grant that way.
NO_RESOURCE_LEVEL = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords",
    "cloudwatch:PutMetricData",  # always with a cloudwatch:namespace condition
    "cloudwatch:GetMetricStatistics", "cloudwatch:GetMetricData",
    "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities",
    "ecr:GetAuthorizationToken",
}


@pytest.fixture(scope="module")
def stacks(synth):
    return [synth.stack(name) for name in synth.names()]


def _actions(statement: dict) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def test_every_function_traces_logs_json_and_runs_the_pinned_runtime(stacks):
    functions = [(s.name, name, body) for s in stacks for name, body in s.resources("aws_lambda_function").items()]
    assert len(functions) >= 5
    for stack, name, body in functions:
        assert body["runtime"] == LAMBDA_PYTHON_RUNTIME, (stack, name)
        assert body["tracing_config"] == {"mode": "Active"}, (stack, name)
        assert body["logging_config"]["log_format"] == "JSON", (stack, name)


def test_every_queue_is_encrypted_and_every_work_queue_has_a_dead_letter_queue(stacks):
    for stack in stacks:
        queues = stack.resources("aws_sqs_queue")
        for name, body in queues.items():
            assert body.get("sqs_managed_sse_enabled") is True or body.get("kms_master_key_id"), (stack.name, name)
            is_dlq = body["name"].endswith(("-dlq", "-undelivered-events"))
            if not is_dlq:
                policy = json.loads(body["redrive_policy"])
                assert policy["maxReceiveCount"] >= 1, (stack.name, name)
        # Only the queue that redrives into a DLQ may do so.
        allows = stack.resources("aws_sqs_queue_redrive_allow_policy")
        for body in allows.values():
            assert json.loads(body["redrive_allow_policy"])["redrivePermission"] == "byQueue"


def test_wildcard_resources_only_for_actions_without_resource_level_permissions(stacks):
    for stack in stacks:
        for policy in stack.policies():
            for statement in policy["Statement"]:
                if statement["Effect"] == "Deny":  # e.g. deny s3:* without TLS: wide is right
                    continue
                if statement.get("Resource") == "*":
                    assert set(_actions(statement)) <= NO_RESOURCE_LEVEL, (stack.name, statement)
                    if "cloudwatch:PutMetricData" in _actions(statement):
                        assert "cloudwatch:namespace" in json.dumps(statement.get("Condition", {})), (stack.name, statement)
                assert not any(a == "*" or a.endswith(":*") for a in _actions(statement)), (stack.name, statement)


def test_no_stack_looks_anything_up_in_an_aws_account_by_default(synth):
    from scaling_patterns.registry import PATTERNS

    for spec in PATTERNS:
        assert not synth.stack(spec.name).doc.get("data"), f"{spec.name} has data sources: plans would need an AWS account"


def test_the_emulator_profile_leaves_out_exactly_what_each_pattern_declares(synth, emulator_synth):
    """What ``project.emulator = true`` leaves out equals the specs' ``emulator_leaves_out``
    (docs/deploy.md's table is generated from those; tests/test_docs.py keeps it current)."""
    from scaling_patterns.registry import PATTERNS
    from tests.conftest import all_variants

    base_of = {name: base for name, (base, _) in all_variants().items()}
    left_out: set[tuple[str, str]] = set()
    for name in synth.names():
        normal = set(synth.stack(name).doc["resource"])
        emulated = set(emulator_synth.stack(name).doc["resource"])
        assert emulated <= normal, f"{name}: the emulator profile adds {sorted(emulated - normal)}"
        left_out |= {(base_of.get(name, name), type_) for type_ in normal - emulated}
    assert left_out == {(spec.name, type_) for spec in PATTERNS for type_ in spec.emulator_leaves_out}


def test_function_packages_are_reproducible_so_only_a_code_change_changes_the_plan(synth, monkeypatch):
    import hashlib

    from scaling_patterns.core import lambda_function

    stack = synth.stack("llm-request-scaling")
    function = stack.one("aws_lambda_function")
    synthesized = (stack.dir / function["filename"]).read_bytes()
    monkeypatch.setattr(lambda_function, "_staging_root", None)  # package again, from scratch
    again = lambda_function.package_source("scaling_controller").read_bytes()
    assert hashlib.sha256(again).hexdigest() == hashlib.sha256(synthesized).hexdigest()
