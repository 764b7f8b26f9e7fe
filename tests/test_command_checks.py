"""`make plan` and `make deploy-local` check their arguments and the user's own settings file
before anything starts or is written, and `make plan` replaces its output only when the new
run is complete (tooling/outputs.py). No emulator: these must fail before one starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT, load_config
from scaling_patterns.registry import PATTERNS
from tooling import deploy_local as local
from tooling import plan
from tooling.plan_summary import render_stack, summarize

KNOWN = ", ".join(spec.name for spec in PATTERNS)
BAD_SETTINGS = "[queue-depth-scaling]\nno_such_setting = 1\n"


def _run(module: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
                   **(env or {}))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=300)


def _previous_run(out: Path) -> dict[str, bytes]:
    """What a previous `make plan` left: 4 files per stack, summary.md, manifest.json (22 files)."""
    out.mkdir(parents=True)
    for spec in PATTERNS:
        for suffix in (".json", ".md", ".tfplan", ".plan.log"):
            (out / f"{spec.name}{suffix}").write_text(f"previous {spec.name}{suffix}\n")
    (out / "summary.md").write_text("previous summary\n")
    (out / plan.MANIFEST).write_text(json.dumps({"target": "emulator", "stacks": [
        {"stack": spec.name, "directory": "x", "error": "", "changes": True} for spec in PATTERNS]}))
    return {p.name: p.read_bytes() for p in out.iterdir()}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else {}


@pytest.fixture
def previous(tmp_path):
    out = tmp_path / "plans"
    return out, _previous_run(out)


def test_plan_with_an_unknown_stack_is_one_line_listing_the_known_ones_and_keeps_the_saved_plans(tmp_path, previous):
    out, before = previous
    assert len(before) == 22
    run = _run("tooling.plan", "--stack", "nope", "--out", str(out), "--emulator-dir", str(tmp_path / "emu"), cwd=PROJECT_ROOT)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.splitlines() == [f"make plan: nothing was planned or deleted ({out} is unchanged):",
                                       f"  --stack nope: unknown stack (known: {KNOWN})"]
    assert _files(out) == before
    assert not (tmp_path / "emu").exists()  # no emulator was started
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".plans")] == []  # no staging folder left


def test_plan_with_bad_settings_names_the_users_file_as_given_and_keeps_the_saved_plans(tmp_path, previous):
    out, before = previous
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "team.toml").write_text(BAD_SETTINGS)
    run = _run("tooling.plan", "--settings", "mine/team.toml", "--out", str(out), "--emulator-dir", str(tmp_path / "emu"),
               cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.splitlines()
    assert lines[0] == f"make plan: nothing was planned or deleted ({out} is unchanged):"
    assert len(lines) == 2 and lines[1].startswith("  mine/team.toml: [queue-depth-scaling] no_such_setting"), lines
    assert "settings.toml" not in run.stderr and "Traceback" not in run.stderr
    assert _files(out) == before
    assert not (tmp_path / "emu").exists()


def test_plan_settings_from_the_environment_variable_are_named_as_given(tmp_path, previous):
    out, before = previous
    (tmp_path / "env.toml").write_text(BAD_SETTINGS)
    run = _run("tooling.plan", "--target", "aws", "--out", str(out), cwd=tmp_path, env={"SCALING_PATTERNS_SETTINGS": "env.toml"})
    assert run.returncode == 2
    assert run.stderr.splitlines()[1].startswith("  env.toml: [queue-depth-scaling] no_such_setting"), run.stderr
    assert _files(out) == before


def _fake_stack_plan(out: Path, stack: str) -> plan.StackPlan:
    doc = {"format_version": "1.2", "resource_changes": []}
    (out / f"{stack}.json").write_text(json.dumps(doc))
    (out / f"{stack}.tfplan").write_text("binary plan")
    (out / f"{stack}.plan.log").write_text("log")
    summary = summarize(doc, stack)
    (out / f"{stack}.md").write_text(render_stack(summary, heading="#"))
    return plan.StackPlan(stack, out, summary)


def test_a_plan_run_that_stops_midway_leaves_the_previous_plans_intact(tmp_path, previous, monkeypatch):
    out, before = previous

    def stops_midway(staged, settings, stacks, emulator_dir):
        _fake_stack_plan(staged, PATTERNS[0].name)  # one stack written, then the run stops (synth failed, Ctrl-C)
        raise SystemExit("synth failed")

    monkeypatch.setattr(plan, "plan_on_emulator", stops_midway)
    settings = tmp_path / "settings.toml"
    settings.write_text("")
    with pytest.raises(SystemExit):
        plan.main(["--out", str(out), "--settings", str(settings)])
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".plans")] == []


def test_a_complete_plan_run_replaces_the_previous_runs_files_and_nothing_else(tmp_path, previous, monkeypatch):
    out, _ = previous
    (out / "notes.txt").write_text("mine")
    stack = PATTERNS[1].name

    def planned(staged, settings, stacks, emulator_dir):
        assert staged.parent == out.parent and staged != out  # staged beside --out
        return [_fake_stack_plan(staged, stack)], "Planned."

    monkeypatch.setattr(plan, "plan_on_emulator", planned)
    settings = tmp_path / "settings.toml"
    settings.write_text("")
    assert plan.main(["--out", str(out), "--settings", str(settings), "--stack", stack]) == 0
    assert sorted(_files(out)) == sorted([f"{stack}{s}" for s in (".json", ".md", ".tfplan", ".plan.log")]
                                         + ["summary.md", plan.MANIFEST, "notes.txt"])
    assert (out / f"{stack}.tfplan").read_text() == "binary plan"
    assert json.loads((out / plan.MANIFEST).read_text())["stacks"][0]["stack"] == stack


def test_deploy_local_with_bad_settings_starts_no_emulator_and_prints_no_table(tmp_path):
    (tmp_path / "team.toml").write_text(BAD_SETTINGS)
    run = _run("tooling.deploy_local", "deploy", "--dir", "emu", "--settings", "team.toml", cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.splitlines()
    assert lines[0] == "deploy-local: nothing was started or applied:"
    assert len(lines) == 2 and lines[1].startswith("  team.toml: [queue-depth-scaling] no_such_setting"), lines
    assert run.stdout == ""  # no "emulator started", no table
    assert not (tmp_path / "emu").exists()


def test_deploy_local_with_an_unknown_stack_starts_no_emulator(tmp_path):
    (tmp_path / "settings.toml").write_text("")
    run = _run("tooling.deploy_local", "deploy", "--dir", "emu", "--settings", "settings.toml", "--stack", "nope", "--stack",
               "other", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.splitlines()[1] == f"  --stack nope, other: unknown stacks (known: {KNOWN})"
    assert run.stdout == "" and not (tmp_path / "emu").exists()


def test_the_emulator_copy_of_the_settings_finds_files_relative_to_the_users_file(tmp_path):
    # A relative csv_path is relative to the user's file; the copy lives in the emulator folder.
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "peaks.csv").write_text((PROJECT_ROOT / "examples/settings/observed-hourly-peaks.csv").read_text())
    (tmp_path / "team" / "settings.toml").write_text('[predictive-lambda-scaling]\nschedule = { csv_path = "peaks.csv" }\n')
    load_config(tmp_path / "team" / "settings.toml")
    ws = local.Workspace(tmp_path / "emu")
    local.write_settings(ws, tmp_path / "team" / "settings.toml")
    copy = load_config(ws.settings)  # raised "settings.toml: ... csv_path: file not found" before
    assert copy.stacks["predictive-lambda-scaling"].schedule.csv_file() == tmp_path / "team" / "peaks.csv"
    assert copy.project.emulator is True


#: Valid field by field; the stacks reject the combination when synthesizing (main.py exits 2).
REJECTED_BY_THE_STACKS = ('[inference-load-balancing]\n'
                          'certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0b7f6b7e-1111-2222-3333-444455556666"\n')


@pytest.mark.slow
def test_deploy_local_synthesizes_before_starting_the_emulator(tmp_path):
    (tmp_path / "team.toml").write_text(REJECTED_BY_THE_STACKS)
    run = _run("tooling.deploy_local", "deploy", "--dir", "emu", "--settings", "team.toml", cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.splitlines()
    assert lines[0] == "deploy-local: the stacks reject the settings in team.toml; nothing was applied, no emulator was started:"
    assert lines[1].startswith("  Cannot synthesize: certificate_arn must be in the load balancer's region us-east-1")
    assert "| stack" not in run.stdout and "emulator started" not in run.stdout
    assert not (tmp_path / "emu" / "emulator.json").exists() and not (tmp_path / "emu" / "moto.log").exists()


@pytest.mark.slow
def test_plan_synthesizes_before_starting_the_emulator_and_keeps_the_saved_plans(tmp_path, previous):
    out, before = previous
    (tmp_path / "team.toml").write_text(REJECTED_BY_THE_STACKS)
    run = _run("tooling.plan", "--settings", "team.toml", "--out", str(out), "--emulator-dir", "emu", cwd=tmp_path)
    assert run.returncode != 0 and "Cannot synthesize: certificate_arn" in run.stderr
    assert _files(out) == before
    assert not (tmp_path / "emu" / "emulator.json").exists() and not (tmp_path / "emu" / "moto.log").exists()
