"""Settings: typed, validated, and bad input reported before anything is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import load_config
from scaling_patterns.core.settings import SettingsError

ROOT = Path(__file__).resolve().parent.parent


def problems(data: dict) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_config(Path("settings.toml"), data=data)
    return caught.value.problems


def llm(**settings) -> dict:
    return {"llm-request-scaling": settings}


def test_absent_sections_use_documented_defaults():
    config = load_config(Path("settings.toml"), data={})
    assert config.project.region == "us-east-1"
    assert config.project.backend.type == "local"
    s = config.stacks["llm-request-scaling"]
    assert (s.event_source, s.detail_types, s.metric_namespace) == ("my.llm.service", ["Inference Request"], "LLM/Inference")


def test_settings_objects_are_immutable():
    s = load_config(Path("settings.toml"), data={}).stacks["llm-request-scaling"]
    with pytest.raises(Exception):
        s.memory_mb = 1024


def test_the_shipped_settings_file_is_valid():
    load_config(ROOT / "settings.toml")


def _commented_examples() -> list[tuple[str, str]]:
    """Every ``# key = value`` example line of settings.toml with its section."""
    import re

    examples, section = [], None
    for line in (ROOT / "settings.toml").read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section and re.match(r"# [a-z_]+ = ", line):
            example = line[2:]
            if example.rstrip().endswith("on the line above") and examples:
                example = examples[-1][1] + "\n" + example  # an example that needs the previous one
            examples.append((section, example))
    return examples


@pytest.mark.parametrize("section, example", _commented_examples())
def test_every_commented_example_in_the_settings_file_is_valid(section, example, tmp_path):
    import tomllib

    data = {section: tomllib.loads(example)}
    if "csv_path" in example:  # the example names a file next to the settings file
        (tmp_path / "observed_peaks.csv").write_text("day,hour,concurrency\nmon,9,40\n")
        os.environ["SCALING_PATTERNS_SETTINGS"] = str(tmp_path / "settings.toml")
    try:
        load_config(tmp_path / "settings.toml", data=data)
    finally:
        os.environ.pop("SCALING_PATTERNS_SETTINGS", None)


def test_the_settings_file_has_examples_for_every_stack():
    from scaling_patterns.registry import PATTERNS

    assert {section for section, _ in _commented_examples()} >= {"project"} | {s.name for s in PATTERNS}


def test_unknown_key_names_the_key_and_the_known_ones():
    (line,) = problems(llm(memroy_mb=512))
    assert line.startswith("settings.toml: [llm-request-scaling] memroy_mb: unknown setting (known: ")
    assert "memory_mb" in line


def test_unknown_section_is_reported():
    (line,) = problems({"llm-request-scalng": {}})
    assert line == ("settings.toml: [llm-request-scalng] unknown section (known: "
                    + ", ".join(sorted(["project", *load_config(data={}).stacks])) + ")")


def test_wrong_type_is_not_coerced():
    (line,) = problems(llm(memory_mb="512"))
    assert line == "settings.toml: [llm-request-scaling] memory_mb: Input should be a valid integer (given '512')"


def test_negative_count_names_the_rule_and_value():
    (line,) = problems(llm(scaling={"min_capacity": -1}))
    assert line == "settings.toml: [llm-request-scaling] scaling.min_capacity: Input should be greater than or equal to 0 (given -1)"


def test_min_greater_than_max_names_both_fields_and_values():
    (line,) = problems(llm(scaling={"min_capacity": 5, "max_capacity": 2}))
    assert line == ("settings.toml: [llm-request-scaling] scaling: min_capacity must be <= max_capacity "
                    "(given min_capacity=5, max_capacity=2)")


@pytest.mark.parametrize("pattern, expected", [
    ({"source": "my.llm.service"}, "event_pattern: source: match values must be a non-empty array"),
    ({"sauce": ["x"]}, "event_pattern: 'sauce' is not an event field"),
    ({}, "event_pattern: pattern must be a non-empty table of fields to match"),
    ({"detail": {"model": []}}, "event_pattern: detail.model: match values must be a non-empty array"),
])
def test_malformed_event_pattern_is_rejected(pattern, expected):
    (line,) = problems(llm(event_pattern=pattern))
    assert expected in line


@pytest.mark.parametrize("settings, field, rule", [
    ({"metric_namespace": "AWS/Lambda"}, "metric_namespace", "must not start with 'AWS/'"),
    ({"event_bus_name": "bad bus"}, "event_bus_name", "must be 1-256 characters"),
    ({"scaling_target": {"type": "sagemaker_variant", "endpoint_name": "-chat"}}, "scaling_target.endpoint_name", "alphanumeric"),
    ({"scaling_target": {"type": "autoscaling_group", "name": "a:b"}}, "scaling_target.name", "without ':' or '*'"),
    ({"log_retention_days": 2}, "log_retention_days", "must be one of 1, 3, 5"),
])
def test_invalid_names_are_rejected_with_the_rule(settings, field, rule):
    (line,) = problems(llm(**settings))
    assert f"[llm-request-scaling] {field}: " in line and rule in line


def test_invalid_project_settings_are_reported_with_every_stack_problem_at_once():
    lines = problems({"project": {"region": "mars-1", "backend": {"type": "s3"}}, **llm(timeout_seconds=0)})
    assert "settings.toml: [project] region: must be an AWS region the provider knows, such as us-east-1 (docs/settings.md lists them) (given 'mars-1')" in lines
    assert "settings.toml: [project] backend.bucket: required setting is missing" in lines
    assert any(line.startswith("settings.toml: [llm-request-scaling] timeout_seconds:") for line in lines)


def test_create_event_bus_needs_a_name():
    (line,) = problems(llm(create_event_bus=True))
    assert "create_event_bus = true needs event_bus_name" in line


def test_sagemaker_target_cannot_scale_to_zero():
    (line,) = problems(llm(scaling_target={"type": "sagemaker_variant", "endpoint_name": "chat"}, scaling={"min_capacity": 0}))
    assert "min_capacity must be >= 1 for a sagemaker_variant target" in line and "(given 0)" in line


# --- the command line: exit code, messages, nothing written ------------------------------


def run_main(tmp_path: Path, toml: str, *args: str) -> subprocess.CompletedProcess:
    settings = tmp_path / "bad.toml"
    settings.write_text(toml)
    env = {**os.environ, "SCALING_PATTERNS_SETTINGS": str(settings), "CDKTF_OUTDIR": str(tmp_path / "cdktf.out")}
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], env=env, capture_output=True, text=True, timeout=120)


def test_bad_settings_exit_2_with_one_line_per_problem_and_write_nothing(tmp_path):
    proc = run_main(tmp_path, '[llm-request-scaling]\nmemory_mb = -5\nbogus = 1\n[project]\nregion = "nowhere"\n')
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line.strip() for line in proc.stderr.splitlines()]
    assert lines[0] == "Settings are not valid; nothing was written:"
    settings = tmp_path / "bad.toml"  # named by its full path (SCALING_PATTERNS_SETTINGS): the lines name it so
    assert f"{settings}: [project] region: must be an AWS region the provider knows, such as us-east-1 (docs/settings.md lists them) (given 'nowhere')" in lines
    assert f"{settings}: [llm-request-scaling] memory_mb: Input should be greater than or equal to 128 (given -5)" in lines
    assert any(line.startswith(f"{settings}: [llm-request-scaling] bogus: unknown setting") for line in lines)
    assert not (tmp_path / "cdktf.out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.toml"]


def test_toml_syntax_errors_are_reported_without_a_traceback(tmp_path):
    proc = run_main(tmp_path, "[llm-request-scaling\n")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "bad.toml: not valid TOML:" in proc.stderr


def test_check_mode_validates_without_writing(tmp_path):
    proc = run_main(tmp_path, '[llm-request-scaling]\nmemory_mb = 512\n', "--check")
    assert proc.returncode == 0, proc.stderr
    assert "settings are valid" in proc.stdout
    assert not (tmp_path / "cdktf.out").exists()


# --- the settings file itself: a file someone named must exist and be readable UTF-8 TOML ----------


def run_named(tmp_path: Path, named: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """main.py with $SCALING_PATTERNS_SETTINGS=``named`` (as typed) and a cdktf.out that already holds a synth."""
    outdir = tmp_path / "cdktf.out"
    (outdir / "stacks").mkdir(parents=True, exist_ok=True)
    (outdir / "stacks" / "previous.json").write_text('{"kept": true}')
    env = {**os.environ, "SCALING_PATTERNS_SETTINGS": named, "CDKTF_OUTDIR": str(outdir)}
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=cwd or tmp_path)


def assert_one_line_and_untouched(proc: subprocess.CompletedProcess, tmp_path: Path, line: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert [x.strip() for x in proc.stderr.splitlines()] == ["Settings are not valid; nothing was written:", line]
    assert sorted(p.name for p in (tmp_path / "cdktf.out").rglob("*")) == ["previous.json", "stacks"]
    assert (tmp_path / "cdktf.out" / "stacks" / "previous.json").read_text() == '{"kept": true}'


@pytest.mark.parametrize("args", [(), ("--check",)], ids=["synth", "check"])
def test_a_named_settings_file_that_does_not_exist_is_an_error_not_all_defaults(tmp_path, args):
    proc = run_named(tmp_path, "nope.toml", *args)
    assert_one_line_and_untouched(proc, tmp_path, "nope.toml: settings file not found")


@pytest.mark.parametrize("args", [(), ("--check",)], ids=["synth", "check"])
def test_a_named_directory_is_an_error_without_a_traceback(tmp_path, args):
    (tmp_path / "conf").mkdir()
    proc = run_named(tmp_path, "conf", *args)
    assert_one_line_and_untouched(proc, tmp_path, "conf: is a directory, not a settings file")


def test_a_settings_file_that_is_not_utf8_is_an_error(tmp_path):
    (tmp_path / "latin1.toml").write_bytes('[project]\ntags = { Team = "Équipe" }\n'.encode("latin-1"))
    proc = run_named(tmp_path, "latin1.toml", "--check")
    assert_one_line_and_untouched(proc, tmp_path, "latin1.toml: not UTF-8 text (line 2 has byte 0xc9); save it as UTF-8")


def test_an_unreadable_settings_file_is_an_error(tmp_path):
    """Unreadable for the user running main.py (as root every file is readable: run as nobody then)."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="unreadable-", dir="/tmp"))
    try:
        base.chmod(0o777)
        (base / "cdktf.out" / "stacks").mkdir(parents=True)
        (base / "cdktf.out" / "stacks" / "previous.json").write_text('{"kept": true}')
        (base / "cdktf.out").chmod(0o777)
        settings = base / "secret.toml"
        settings.write_text("[project]\n")
        settings.chmod(0o000)
        env = {**os.environ, "SCALING_PATTERNS_SETTINGS": str(settings), "CDKTF_OUTDIR": str(base / "cdktf.out"), "HOME": str(base)}
        command = [sys.executable, str(ROOT / "main.py")]
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("running as root without setpriv: cannot make a file unreadable")
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=base)
        assert_one_line_and_untouched(proc, base, f"{settings}: cannot read the settings file: Permission denied")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_an_explicit_path_is_named_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError) as caught:
        load_config(Path("sub/../missing.toml"))
    assert caught.value.problems == ["sub/../missing.toml: settings file not found"]


def test_a_missing_default_settings_file_is_an_error_because_the_project_ships_one(tmp_path, monkeypatch):
    import app.config

    assert subprocess.run(["git", "ls-files", "--error-unmatch", "settings.toml"], cwd=ROOT, capture_output=True).returncode == 0
    monkeypatch.delenv("SCALING_PATTERNS_SETTINGS", raising=False)
    monkeypatch.setattr(app.config, "DEFAULT_SETTINGS_FILE", tmp_path / "settings.toml")
    with pytest.raises(SettingsError) as caught:
        load_config()
    assert caught.value.problems == [f"{tmp_path / 'settings.toml'}: settings file not found (the project ships one: restore it "
                                     "with `git checkout settings.toml`, or name a file with SCALING_PATTERNS_SETTINGS)"]


def test_an_empty_settings_variable_means_the_default_file(monkeypatch):
    from app.config import DEFAULT_SETTINGS_FILE

    monkeypatch.setenv("SCALING_PATTERNS_SETTINGS", "")
    assert load_config().source == DEFAULT_SETTINGS_FILE


def test_check_names_the_file_it_validated(tmp_path):
    (tmp_path / "team.toml").write_text("[project]\nname_prefix = \"team2\"\n")
    proc = run_named(tmp_path, "team.toml", "--check")
    assert proc.returncode == 0 and proc.stdout.startswith("team.toml: settings are valid"), proc.stderr
