"""`make synth` skips the synthesis when nothing that shapes cdktf.out/ changed (issue 18).

The key (app/synth_cache.py) is tested on a small project folder of its own: every kind of input
changes it, and what does not shape the output (bytecode caches) does not. The manifest check is
tested on a hand-made output folder. One slow test runs `make synth` twice for real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from app import synth_cache
from app.config import ProjectConfig, ProjectSettings, load_config
from app.synth import SynthResult

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def project(tmp_path, monkeypatch) -> dict:
    """A project folder with one file of every kind the key reads, and its ProjectConfig."""
    root = tmp_path / "project"
    files = {
        "main.py": "print('app')\n", "cdktf.json": "{}\n", "pyproject.toml": "[project]\n", "Pipfile.lock": "{}\n",
        "package-lock.json": "{}\n", "app/stack.py": "X = 1\n", "functions/worker/handler.py": "def handler(): pass\n",
        "settings.toml": "[project]\n", "profile.csv": "day,hour,concurrency\n", "library/scaling_patterns/core.py": "Y = 1\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    monkeypatch.setattr(synth_cache, "library_root", lambda: root / "library" / "scaling_patterns")
    config = ProjectConfig(source=root / "settings.toml", project=ProjectSettings(), stacks={}, inputs=((root / "profile.csv").resolve(),))
    environ = {"PATH": "/usr/bin", "SCALING_PATTERNS_SETTINGS": str(root / "settings.toml")}
    return {"root": root, "config": config, "environ": environ}


def key(p: dict) -> str:
    return synth_cache.input_key(p["config"], p["root"], p["environ"])


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "# changed\n")


CHANGES = {
    "settings file": lambda p: _edit(p["root"] / "settings.toml"),
    "file the settings read": lambda p: _edit(p["root"] / "profile.csv"),
    "main.py": lambda p: _edit(p["root"] / "main.py"),
    "cdktf.json": lambda p: _edit(p["root"] / "cdktf.json"),
    "pyproject.toml": lambda p: _edit(p["root"] / "pyproject.toml"),
    "Pipfile.lock": lambda p: _edit(p["root"] / "Pipfile.lock"),
    "package-lock.json": lambda p: _edit(p["root"] / "package-lock.json"),
    "app code": lambda p: _edit(p["root"] / "app" / "stack.py"),
    "a new app file": lambda p: (p["root"] / "app" / "extra.py").write_text("Z = 1\n"),
    "function code": lambda p: _edit(p["root"] / "functions" / "worker" / "handler.py"),
    "library code": lambda p: _edit(p["root"] / "library" / "scaling_patterns" / "core.py"),
    "ENV": lambda p: p["environ"].update(ENV="prod"),
    "SCALING_PATTERNS_ variable": lambda p: p["environ"].update(SCALING_PATTERNS_EMULATOR_WORKSPACE="/tmp/x"),
    "CDKTF_OUTDIR": lambda p: p["environ"].update(CDKTF_OUTDIR="/tmp/out"),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_every_kind_of_input_changes_the_key(project, change):
    before = key(project)
    assert key(project) == before  # the same inputs, the same key
    CHANGES[change](project)
    assert key(project) != before


def test_the_settings_files_path_is_part_of_the_key(project):
    before = key(project)
    moved = project["root"] / "other.toml"
    shutil.copy(project["root"] / "settings.toml", moved)
    project["config"] = ProjectConfig(source=moved, project=ProjectSettings(), stacks={}, inputs=project["config"].inputs)
    assert key(project) != before


def test_what_does_not_shape_the_output_leaves_the_key(project):
    before = key(project)
    (project["root"] / "app" / "__pycache__").mkdir()
    (project["root"] / "app" / "__pycache__" / "stack.cpython-312.pyc").write_bytes(b"\0")
    project["environ"]["HOME"] = "/somewhere/else"
    (project["root"] / "README.md").write_text("docs\n")
    assert key(project) == before


def test_load_config_records_the_files_the_settings_read(tmp_path):
    shutil.copy(ROOT / "examples" / "settings" / "observed-hourly-peaks.csv", tmp_path / "peaks.csv")
    settings = tmp_path / "settings.toml"
    settings.write_text('[predictive-lambda-scaling.schedule]\ncsv_path = "peaks.csv"\n')
    assert load_config(settings).inputs == ((tmp_path / "peaks.csv").resolve(),)
    assert load_config(data={}).inputs == ()


def _output(tmp_path: Path) -> Path:
    out = tmp_path / "cdktf.out"
    (out / "stacks" / "one").mkdir(parents=True)
    (out / "stacks" / "one" / "cdk.tf.json").write_text('{"resource": {}}')
    (out / "manifest.json").write_text("{}")
    return out


ROWS = [SynthResult("one", 3, 1, Path("/project/cdktf.out/stacks/one/cdk.tf.json"))]


def test_the_recorded_output_is_reused_for_its_key_only(tmp_path):
    out = _output(tmp_path)
    synth_cache.record(out, "k1", ROWS)
    assert synth_cache.cached(out, "k1") == ROWS
    assert synth_cache.cached(out, "k2") is None


@pytest.mark.parametrize("change", ["edit a stack", "add a file", "remove a file", "corrupt the manifest", "no manifest"])
def test_a_changed_output_is_synthesized_again(tmp_path, change):
    """`cdktf synth`/`cdktf deploy` rewrite cdktf.out/; a hand edit changes it: either is not this key's output."""
    out = _output(tmp_path)
    synth_cache.record(out, "k1", ROWS)
    if change == "edit a stack":
        (out / "stacks" / "one" / "cdk.tf.json").write_text('{"resource": {"x": {}}}')
    elif change == "add a file":
        (out / "stacks" / "one" / "plan").write_text("")
    elif change == "remove a file":
        (out / "manifest.json").unlink()
    elif change == "corrupt the manifest":
        (out / synth_cache.MANIFEST).write_text("{not json")
    else:
        (out / synth_cache.MANIFEST).unlink()
    assert synth_cache.cached(out, "k1") is None


def _make_synth(outdir: Path, settings: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    env.update(CDKTF_OUTDIR=str(outdir), SCALING_PATTERNS_SETTINGS=str(settings))
    started = time.monotonic()
    run = subprocess.run(["make", "--no-print-directory", "-s", "synth", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    return run, time.monotonic() - started


@pytest.mark.slow
def test_make_synth_twice_synthesizes_once_and_a_change_synthesizes_again(tmp_path):
    settings = tmp_path / "settings.toml"
    shutil.copy(ROOT / "settings.toml", settings)
    out = tmp_path / "cdktf.out"

    first, _ = _make_synth(out, settings)
    assert first.returncode == 0, first.stderr
    assert "synthesized 5 stacks" in first.stdout
    stack = out / "stacks" / "queue-depth-scaling" / "cdk.tf.json"
    written = stack.stat().st_mtime_ns

    second, seconds = _make_synth(out, settings)
    assert second.returncode == 0, second.stderr
    assert "unchanged:" in second.stdout and "nothing synthesized" in second.stdout
    assert second.stdout.splitlines()[:6] == first.stdout.splitlines()[:6]  # the same table
    assert stack.stat().st_mtime_ns == written
    assert seconds < 2.0, f"a cached make synth took {seconds:.2f} s"  # ~0.5 s measured; the bindings alone take 2.4 s

    forced, _ = _make_synth(out, settings, "FORCE=1")
    assert "synthesized 5 stacks" in forced.stdout

    settings.write_text(settings.read_text() + '\n[queue-depth-scaling.fleet]\nmax_size = 7\n')
    changed, _ = _make_synth(out, settings)
    assert changed.returncode == 0, changed.stderr
    assert "synthesized 5 stacks" in changed.stdout
    assert json.loads(stack.read_text())["resource"]["aws_autoscaling_group"]
    assert '"max_size": 7' in stack.read_text()
