"""The README stays current: settings reference, stacks, outputs and pattern docs."""

from __future__ import annotations

from pathlib import Path

from scaling_patterns.registry import PATTERNS
from tooling import settings_doc

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_settings_reference_matches_the_settings_classes():
    assert settings_doc.DOC.read_text() == settings_doc.render(), "docs/settings.md is out of date: run `make docs`"


def test_every_stack_is_listed_and_has_its_pattern_doc():
    for spec in PATTERNS:
        assert f"| `{spec.name}` |" in README, spec.name
        assert (ROOT / "docs" / "patterns" / f"{spec.name}.md").is_file(), spec.name


def test_every_output_of_every_stack_is_documented(synth):
    for spec in PATTERNS:
        for output in synth.stack(spec.name).outputs:
            assert f"| `{spec.name}` | `{output}` |" in README, f"{spec.name}: output {output} missing from README"


def test_quick_start_names_exactly_make_synth_and_make_test():
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick_start.split("```sh", 1)[1].split("```", 1)[0].splitlines() if line.strip()]
    assert commands == ["make synth", "make test"]
