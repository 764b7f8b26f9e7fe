"""`terraform validate` on every synthesized stack and variant (diagnostics shown on failure)."""

from __future__ import annotations

import pytest

from modules.registry import STACKS


def test_every_registered_stack_was_synthesized(synth):
    from tests.conftest import ONLY

    if ONLY:
        pytest.skip(f"SYNTH_ONLY={','.join(sorted(ONLY))}")
    assert {spec.name for spec in STACKS} <= set(synth.names())


def test_every_stack_is_valid_terraform(validated):
    invalid = {name: text for name, (ok, text) in validated.items() if not ok}
    assert not invalid, "\n\n".join(f"{name}:\n{text}" for name, text in invalid.items())


@pytest.mark.slow
def test_a_broken_stack_is_reported_by_name_and_the_others_stay_valid(tmp_path):
    import json

    from tooling.terraform import validate_stacks

    provider = {"terraform": {"required_providers": {"aws": {"source": "aws", "version": "5.100.0"}}},
                "provider": {"aws": [{"region": "us-east-1"}]}}
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    (good / "cdk.tf.json").write_text(json.dumps({**provider, "resource": {"aws_sqs_queue": {"q": {"name": "q"}}}}))
    (bad / "cdk.tf.json").write_text(json.dumps({**provider, "resource": {"aws_sqs_queue": {
        "q": {"name": "q", "delay_seconds": "${aws_sns_topic.missing.arn}"}}}}))
    results = validate_stacks([good, bad])
    assert results["good"] == (True, "valid")
    assert results["bad"][0] is False and "Reference to undeclared resource" in results["bad"][1]
