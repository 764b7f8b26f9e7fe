"""Synthesis is all-or-nothing: a failing stack leaves the previous output untouched."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.config import ProjectSettings
from app.synth import StackRequest, synthesize
from scaling_patterns.registry import PATTERNS


@dataclass(frozen=True)
class BrokenSpec:
    """A pattern whose construct fails half way (the App already holds the stacks before it)."""

    name: str = "broken"
    construct_id: str = "broken"
    short: str = "broken"

    def load(self, what):
        def build(*args, **kwargs):
            raise ValueError("resource name too long")
        return build


def test_a_failing_stack_leaves_existing_output_and_no_staging_folder(synth, tmp_path):
    outdir = tmp_path / "cdktf.out"
    outdir.mkdir()
    (outdir / "previous.txt").write_text("previous synth")
    default = PATTERNS[0]
    requests = [StackRequest(default, default.name, default.load_settings_class()()),
                StackRequest(BrokenSpec(), "broken", None)]
    with pytest.raises(ValueError, match="resource name too long"):
        synthesize(ProjectSettings(), requests, outdir)
    assert [p.name for p in tmp_path.iterdir()] == ["cdktf.out"]
    assert [p.name for p in outdir.iterdir()] == ["previous.txt"]


def test_only_the_provider_modules_in_use_are_imported(synth):
    """app/bindings.py: the provider package's 2,135 modules are not all loaded."""
    import sys

    loaded = [name for name in sys.modules if name.startswith("cdktf_cdktf_provider_aws.")]
    assert 5 < len(loaded) < 150, len(loaded)
