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
    assert "bad.toml: [project] region: must be an AWS region the provider knows, such as us-east-1 (docs/settings.md lists them) (given 'nowhere')" in lines
    assert "bad.toml: [llm-request-scaling] memory_mb: Input should be greater than or equal to 128 (given -5)" in lines
    assert any(line.startswith("bad.toml: [llm-request-scaling] bogus: unknown setting") for line in lines)
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
