"""`make security`: checkov on the synthesized stacks, per-resource skips with reasons, stale skips fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scaling_patterns.registry import PATTERNS
from tooling import security
from tooling.security import Finding, SecurityError, Skip, apply_skips, normalize_address, parse_skips, render

#: A stack with one SQS queue whose encryption is switched off: checkov's CKV_AWS_27 fails on it.
UNENCRYPTED_QUEUE = {"resource": {"aws_sqs_queue": {"jobs_queue_1A2B3C4D": {
    "name": "jobs", "sqs_managed_sse_enabled": False}}}}
QUEUE = "aws_sqs_queue.jobs_queue_1A2B3C4D"


def write_skips(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps({"skips": entries}))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def unencrypted_stacks(tmp_path_factory) -> Path:
    stacks = tmp_path_factory.mktemp("security") / "stacks"
    (stacks / "jobs").mkdir(parents=True)
    (stacks / "jobs" / "cdk.tf.json").write_text(json.dumps(UNENCRYPTED_QUEUE))
    return stacks


@pytest.fixture(scope="module")
def unencrypted_findings(unencrypted_stacks) -> tuple[list[Finding], int]:
    files = security.stack_files(unencrypted_stacks)
    reports = security.run_checkov(files, security.DEFAULT_CONFIG)
    return security.findings(reports, {"jobs": UNENCRYPTED_QUEUE})


# --- the gate on this project's stacks ----------------------------------------------------


def test_gate_passes_on_the_synthesized_stacks_with_the_repository_skip_list(synth, tmp_path):
    missing = [spec.name for spec in PATTERNS if spec.name not in synth.names()]
    if missing:
        pytest.skip(f"the gate covers every stack; SYNTH_ONLY left out {', '.join(missing)}")
    for spec in PATTERNS:  # the default stacks only, as `make synth` writes them (not the test variants)
        target = tmp_path / "stacks" / spec.name
        target.mkdir(parents=True)
        shutil.copy(synth.outdir / "stacks" / spec.name / "cdk.tf.json", target / "cdk.tf.json")

    outcome, stacks, seconds = security.gate(tmp_path / "stacks", security.DEFAULT_SKIPS, security.DEFAULT_CONFIG)

    assert outcome.ok, render(outcome, stacks, seconds)
    assert stacks == sorted(spec.name for spec in PATTERNS)
    assert outcome.passed > 100, "checkov ran almost no checks: is the framework terraform_json?"
    assert seconds < 60, f"checkov took {seconds:.0f}s on {len(stacks)} stacks"


def test_autoscaling_groups_are_tagged_like_their_stack(synth):
    """CKV_AWS_153, fixed in modules/scaling_patterns/core/fleet.py: default_tags never reach a group."""
    if "queue-depth-scaling" not in synth.names():
        pytest.skip("SYNTH_ONLY left out queue-depth-scaling")
    group = synth.stack("queue-depth-scaling").one("aws_autoscaling_group")
    assert group["tag"] == [
        {"key": "ManagedBy", "value": "cdktf", "propagate_at_launch": False},
        {"key": "Name", "value": "aiscale-queue-workers", "propagate_at_launch": False},
        {"key": "Project", "value": "scaling-patterns", "propagate_at_launch": False},
        {"key": "Stack", "value": "queue-depth-scaling", "propagate_at_launch": False},
    ]


# --- failures, skips and stale skips on a stack made to fail ------------------------------


def test_a_failed_check_is_reported_with_its_terraform_address_and_stack(unencrypted_findings):
    found, _ = unencrypted_findings
    assert Finding("CKV_AWS_27", "Ensure all data stored in the SQS queue is encrypted", QUEUE, "jobs") in found


def test_a_failed_check_without_a_skip_fails_the_gate(unencrypted_stacks, tmp_path, capsys):
    skips = write_skips(tmp_path / "skips.yaml", [])

    code = security.main(["--stacks-dir", str(unencrypted_stacks), "--skips", str(skips)])

    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("# Security gate (checkov): FAILED")
    assert f"| CKV_AWS_27 | `{QUEUE}` | jobs | Ensure all data stored in the SQS queue is encrypted |" in out


def test_a_skip_naming_check_and_resource_lets_that_failure_pass(unencrypted_findings):
    found, passed = unencrypted_findings
    skips = [Skip(f.check_id, f.address, "accepted for this test, reason long enough", i)
             for i, f in enumerate(found, start=1)]

    outcome = apply_skips(found, skips, passed)

    assert outcome.ok and not outcome.failures and not outcome.stale
    assert [(f.check_id, s.index) for f, s in outcome.skipped][0] == (found[0].check_id, 1)


def test_a_skip_for_another_resource_does_not_cover_the_failure(unencrypted_findings):
    found, passed = unencrypted_findings
    other = Skip("CKV_AWS_27", "aws_sqs_queue.results_*", "a different queue, reason long enough", 1)

    outcome = apply_skips(found, [other], passed)

    assert any(f.check_id == "CKV_AWS_27" and f.address == QUEUE for f in outcome.failures)
    assert outcome.stale == [other]


def test_a_stale_skip_fails_the_gate_even_without_failures():
    stale = Skip("CKV_AWS_117", "aws_lambda_function.removed_*", "the function was removed since", 3)

    outcome = apply_skips([], [stale], passed=10)

    assert not outcome.ok
    assert outcome.stale == [stale]
    text = render(outcome, ["jobs"])
    assert text.startswith("# Security gate (checkov): FAILED")
    assert "| #3 | CKV_AWS_117 | `aws_lambda_function.removed_*` | the function was removed since |" in text


def test_glob_skips_match_names_only_within_their_type():
    skip = Skip("CKV_AWS_117", "aws_lambda_function.*", "every function, reason long enough", 1)
    assert skip.covers(Finding("CKV_AWS_117", "", "aws_lambda_function.a_function_1234ABCD", "s"))
    assert not skip.covers(Finding("CKV_AWS_117", "", "aws_lambda_alias.a_alias_1234ABCD", "s"))
    assert not skip.covers(Finding("CKV_AWS_116", "", "aws_lambda_function.a_function_1234ABCD", "s"))


# --- the skip file is validated -----------------------------------------------------------


def test_a_skip_without_a_reason_is_rejected_naming_entry_and_field():
    with pytest.raises(SecurityError) as error:
        parse_skips({"skips": [{"id": "CKV_AWS_27", "resource": QUEUE}]})
    assert error.value.problems == ["security-skips.yaml: skip #1 (CKV_AWS_27): missing field `reason`"]


def test_an_empty_or_vague_reason_is_rejected():
    with pytest.raises(SecurityError) as error:
        parse_skips({"skips": [{"id": "CKV_AWS_27", "resource": QUEUE, "reason": "  "},
                               {"id": "CKV_AWS_28", "resource": QUEUE, "reason": "n/a"}]})
    assert error.value.problems == [
        "security-skips.yaml: skip #1 (CKV_AWS_27): `reason` must say why this resource may fail this check "
        "(at least 20 characters; given '')",
        "security-skips.yaml: skip #2 (CKV_AWS_28): `reason` must say why this resource may fail this check "
        "(at least 20 characters; given 'n/a')",
    ]


def test_every_problem_of_the_skip_file_is_reported_at_once():
    with pytest.raises(SecurityError) as error:
        parse_skips({"skips": [
            {"id": "CKV_AWS_27", "resource": "*", "reason": "a glob over every type is too broad"},
            {"id": "AWS_27", "resource": QUEUE, "reason": "a reason that is long enough", "owner": "me"},
            {"resource": QUEUE, "reason": "a reason that is long enough"},
            {"id": "CKV_AWS_27", "resource": QUEUE, "reason": "a reason that is long enough"},
            {"id": "CKV_AWS_27", "resource": QUEUE, "reason": "the same skip a second time"},
        ]})
    assert error.value.problems == [
        "security-skips.yaml: skip #1 (CKV_AWS_27): `resource` must be a Terraform address `type.name`; "
        "only the name may be a glob (given '*')",
        "security-skips.yaml: skip #2 (AWS_27): unknown field `owner` (fields: id, resource, reason)",
        "security-skips.yaml: skip #2 (AWS_27): `id` must be a checkov check id such as CKV_AWS_117 (given 'AWS_27')",
        "security-skips.yaml: skip #3: missing field `id`",
        "security-skips.yaml: skip #5 (CKV_AWS_27): duplicates skip #4 (same id and resource)",
    ]


def test_an_invalid_skip_file_stops_the_gate_before_checkov_runs(unencrypted_stacks, tmp_path, capsys):
    skips = write_skips(tmp_path / "skips.yaml", [{"id": "CKV_AWS_27", "resource": QUEUE}])

    code = security.main(["--stacks-dir", str(unencrypted_stacks), "--skips", str(skips)])

    err = capsys.readouterr().err
    assert code == 2
    assert err == "security gate cannot run:\n  skips.yaml: skip #1 (CKV_AWS_27): missing field `reason`\n"


def test_nothing_synthesized_is_an_error_not_a_pass(tmp_path):
    with pytest.raises(SecurityError, match=r"no \*/cdk.tf.json found \(run `make synth` first\)"):
        security.stack_files(tmp_path)


def test_checkov_resource_names_become_terraform_addresses():
    addresses = security.resource_types({"resource": {"aws_sqs_queue": {"q_1": {}}},
                                         "data": {"aws_caller_identity": {"account_2": {}}}})
    assert normalize_address("resource.q_1", addresses) == "aws_sqs_queue.q_1"
    assert normalize_address("data.account_2", addresses) == "data.aws_caller_identity.account_2"
    assert normalize_address("aws_vpc.v_3", addresses) == "aws_vpc.v_3"  # graph checks name the type already
