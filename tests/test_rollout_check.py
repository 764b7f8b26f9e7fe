"""`make rollout-check` for real: every setting of every stack, planned by Terraform.

One run (a few minutes: two Terraform plans per stack, every variant a module) shared by the
tests below. It runs in this test process, so the cdktf bindings the session already loaded
synthesize the variants. Marked ``emulator``: it starts a private moto server (data sources are
read from it) and runs Terraform; `make unit` leaves it out, `make test` runs it.
"""

from __future__ import annotations

import re

import pytest

from tooling.rollout.check import DOC, render, run

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def report(synth):  # `synth` first: the bindings load once per session
    return run(progress=print)


@pytest.fixture(scope="module")
def table(report) -> str:
    return render(report)


def row(table: str, stack: str, setting: str) -> str:
    section = table.split(f"\n## {stack}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith(f"| `{setting}`")]
    assert rows, f"{stack}: no row for {setting}"
    return rows[0]


def test_every_finding_is_reviewed_and_no_reviewed_entry_is_stale(report):
    assert report.unreviewed() == []
    assert report.stale() == []


def test_every_baseline_plans_as_a_no_op_against_its_planned_state(report):
    assert report.baseline_noise == {}


def test_the_docs_table_is_the_checks_output(table):
    assert DOC.read_text() == table, "docs/rollout.md is out of date: run `make rollout-check ARGS=--write`"


def test_a_model_change_reaches_the_endpoint(table):
    """Day-two case 1: a new image replaces model and configuration first, and updates the endpoint."""
    for setting in ("endpoint.image_uri", "endpoint.environment", "endpoint.instance_type"):
        cells = row(table, "queue-to-sagemaker", setting)
        assert "replaced create-before-destroy: `aws_sagemaker_endpoint_configuration`" in cells, cells
        assert re.search(r"updated in place: [^;]*`aws_sagemaker_endpoint`", cells), cells
        assert "SageMaker updates the endpoint blue/green" in cells and cells.endswith("| rolling |"), cells


def test_an_instance_type_change_deregisters_scaling_around_the_endpoint_update(table):
    cells = row(table, "queue-to-sagemaker", "endpoint.instance_type")
    assert "replaced destroy-first: `aws_appautoscaling_policy`, `aws_appautoscaling_target`" in cells
    image = row(table, "queue-to-sagemaker", "endpoint.image_uri")
    assert "aws_appautoscaling_target" not in image  # only the instance type needs it


def test_a_target_port_change_creates_the_new_target_group_before_the_old_goes(table):
    cells = row(table, "inference-load-balancing", "target_port")
    assert "replaced create-before-destroy: `aws_lb_target_group`" in cells
    assert re.search(r"updated in place: [^;]*`aws_lb_listener`", cells)
    assert "destroy-first: `aws_lb_target_group`" not in cells


def test_a_launch_template_change_rolls_through_the_running_fleet(table):
    for stack in ("queue-depth-scaling", "inference-load-balancing"):
        cells = row(table, stack, "fleet.instance_type")
        assert "an instance refresh replaces the running instances" in cells and cells.endswith("| rolling |"), cells


def test_a_value_the_scaler_owns_changes_nothing_on_aws_and_says_why(table):
    cells = row(table, "predictive-lambda-scaling", "provisioned_concurrency")
    assert "nothing on AWS: Terraform plans no change" in cells and "*Reviewed:*" in cells
