"""`make upgrade-check BASE=<ref>` (tooling/upgrade_check.py).

The emulator test clones this checkout (its working tree as the base commit, so uncommitted
work is what is tested), commits a settings change on top and runs the upgrade check from the
clone against ``HEAD~1``: the summary must show the running function updated in place, not
the stack created. The other tests need no emulator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from tooling import upgrade_check as uc

STACK = "predictive-lambda-scaling"  # applies in ~10 s on moto


def _git(cwd: Path, *args: str) -> str:
    run = subprocess.run(["git", "-c", "user.name=upgrade-check test", "-c", "user.email=test@example.invalid", *args],
                         cwd=cwd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"git {' '.join(args)}: {run.stderr}"
    return run.stdout


def clone_with_working_tree(dest: Path) -> None:
    """``git clone`` of this checkout plus its uncommitted changes, committed in the clone."""
    _git(PROJECT_ROOT.parent, "clone", "--quiet", "--no-hardlinks", str(PROJECT_ROOT), str(dest))
    changed = _git(PROJECT_ROOT, "ls-files", "--modified", "--others", "--exclude-standard", "-z").split("\0")
    for name in filter(None, changed):
        source = PROJECT_ROOT / name
        if source.is_symlink() or not source.is_file():  # .venv / node_modules links of a worktree
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / name)
    for name in filter(None, _git(PROJECT_ROOT, "ls-files", "--deleted", "-z").split("\0")):
        (dest / name).unlink(missing_ok=True)
    _git(dest, "add", "-A")
    _git(dest, "commit", "--quiet", "--allow-empty", "-m", "base: the working tree under test")


def set_memory(settings: Path, memory_mb: int) -> None:
    text = settings.read_text()
    header = f"[{STACK}]"
    if re.search(rf"^\[{re.escape(STACK)}\]\s*$", text, re.MULTILINE):
        text = re.sub(rf"^\[{re.escape(STACK)}\]\s*$", f"{header}\nmemory_mb = {memory_mb}", text, count=1, flags=re.MULTILINE)
    else:
        text += f"\n{header}\nmemory_mb = {memory_mb}\n"
    settings.write_text(text)


@pytest.mark.emulator
def test_upgrade_check_plans_a_settings_change_as_an_update_of_the_running_stack(tmp_path):
    clone = tmp_path / "clone"
    clone_with_working_tree(clone)
    set_memory(clone / "settings.toml", 1024)
    _git(clone, "commit", "--quiet", "-am", f"{STACK}: memory_mb = 1024")
    (clone / "plans").mkdir()
    (clone / "plans" / "stale.md").write_text("from an earlier run")

    env = {k: v for k, v in os.environ.items() if k != "SCALING_PATTERNS_SETTINGS"}
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "tooling.upgrade_check", "--base", "HEAD~1", "--stack", STACK],
                         cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - started
    print(f"upgrade-check of {STACK}: {wall:.0f}s wall\n{run.stdout[-4000:]}\n{run.stderr[-3000:]}")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]

    summary = (clone / "plans" / "summary.md").read_text()
    base = _git(clone, "rev-parse", "--short=7", "HEAD~1").strip()
    assert f"against the stacks of the base `HEAD~1` (`{base}`)" in summary
    assert f"Deployed from the base: `{STACK}`." in summary
    assert "Nothing is destroyed or replaced." in summary
    assert "beyond emulator gaps" not in summary and "Not part of the change" not in summary, "a real change"
    assert f"| {STACK} | 0 | 2 | 0 | 0 |" in summary, summary  # nothing created: the stack was running
    [function_row] = [line for line in summary.splitlines() if line.startswith("| `aws_lambda_function.")]
    assert "| update |" in function_row and "`memory_size`: `512` -> `1024`" in function_row
    assert not (clone / "plans" / "stale.md").exists(), "plans/ is replaced as a whole"
    assert not list(clone.glob(".plans.*")) and not list((clone / "plans").glob("*.tfplan"))
    manifest = json.loads((clone / "plans" / "manifest.json").read_text())
    assert manifest["target"] == "emulator" and manifest["upgrade_check"]["base"] == "HEAD~1"

    # The private emulator is stopped and the temporary folder removed.
    pid = int(re.search(r"emulator started: http://127\.0\.0\.1:\d+ \(pid (\d+);", run.stdout).group(1))
    assert not Path(f"/proc/{pid}").exists() or b"moto" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    scratch = Path(re.search(r"settings: base (\S+)/base/settings\.toml", run.stdout).group(1))
    assert not scratch.exists()


def test_the_bases_settings_file_is_the_same_path_in_the_base_tree(tmp_path):
    base = tmp_path / "base"
    (base / "envs").mkdir(parents=True)
    (base / "envs" / "prod.toml").write_text("")
    assert uc.base_settings_for(PROJECT_ROOT / "envs" / "prod.toml", base) == base / "envs" / "prod.toml"
    outside = tmp_path / "mine.toml"
    assert uc.base_settings_for(outside, base) == outside.resolve(), "a file outside the project is used for both"
    with pytest.raises(uc.UpgradeCheckError, match=r"the base has no settings\.toml; name the base's settings with --base-settings"):
        uc.base_settings_for(PROJECT_ROOT / "settings.toml", base)


def test_an_unknown_base_fails_with_a_summary_that_says_so_and_replaces_plans_whole(tmp_path, capsys):
    out = tmp_path / "plans"
    out.mkdir()
    (out / "summary.md").write_text("an old summary")
    (out / "old-stack.md").write_text("old")

    assert uc.main(["--base", "no-such-ref-anywhere", "--out", str(out)]) == 1
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# Terraform plan summary\n\n**Upgrade check FAILED: BASE='no-such-ref-anywhere' is not a commit")
    assert not (out / "old-stack.md").exists()
    assert json.loads((out / "manifest.json").read_text())["upgrade_check"]["failure"].startswith("BASE='no-such-ref-anywhere'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plans"], "no staging folder left behind"
    assert "upgrade-check FAILED" in capsys.readouterr().err


def test_replacing_the_output_folder_swaps_it_whole(tmp_path):
    out, staging = tmp_path / "plans", tmp_path / ".plans.new"
    out.mkdir()
    (out / "a.md").write_text("old")
    staging.mkdir()
    (staging / "b.md").write_text("new")
    uc.replace_folder(staging, out)
    assert sorted(p.name for p in out.iterdir()) == ["b.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plans"]


def _plans(tmp_path: Path, plan: dict) -> list:
    from tooling.plan import StackPlan
    from tooling.plan_summary import summarize

    (tmp_path / "queue-to-sagemaker.json").write_text(json.dumps(plan))
    result = StackPlan("queue-to-sagemaker", tmp_path)
    result.summary = summarize(plan, "queue-to-sagemaker")
    return [result]


NOOP_PLAN = Path(__file__).parent / "data" / "upgrade-noop-queue-to-sagemaker.plan.json"


def test_replacements_that_only_the_emulator_causes_are_called_out_as_not_part_of_the_change(tmp_path):
    """Recorded: the upgrade check of a change that touches no stack (Terraform 1.11.4, moto 5.2.5)."""
    results = _plans(tmp_path, json.loads(NOOP_PLAN.read_text()))
    assert [c.address for c in results[0].summary.destructive] == [
        "aws_sagemaker_endpoint_configuration.queue_to_sagemaker_endpoint_configuration_AC75A196",
        "aws_sagemaker_model.queue_to_sagemaker_model_85761D1C"]
    found = uc.gap_only(tmp_path, results)
    assert found["queue-to-sagemaker"][0] == [c.address for c in results[0].summary.destructive]
    sentence = uc.gaps_sentence(found, results)
    assert sentence.startswith("**This change does nothing to the running stacks beyond emulator gaps**")
    assert "including the replacements of `aws_sagemaker_endpoint_configuration." in sentence


def test_a_real_change_is_not_counted_as_an_emulator_gap(tmp_path):
    plan = json.loads(NOOP_PLAN.read_text())
    [function] = [c for c in plan["resource_changes"] if c["type"] == "aws_lambda_function"]
    function["change"]["after"]["memory_size"] = function["change"]["before"]["memory_size"] * 2
    results = _plans(tmp_path, plan)
    replaced, updated = uc.gap_only(tmp_path, results)["queue-to-sagemaker"]
    assert function["address"] not in replaced + updated
    assert uc.gaps_sentence(uc.gap_only(tmp_path, results), results).startswith(
        "**Not part of the change**: 4 of the changed resources differ only in")
