"""Build and synthesize the cdktf App: one process, every stack, all-or-nothing output."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from app.config import ProjectConfig, ProjectSettings
from scaling_patterns.core.settings import Settings
from scaling_patterns.registry import PATTERNS
from scaling_patterns.spec import PatternSpec

# Feature flags `cdktf init` writes for new projects; set here so `python main.py` and
# `cdktf synth` produce the same addresses.
APP_CONTEXT = {"excludeStackIdFromLogicalIds": "true", "allowSepCharsInLogicalIds": "true"}


@dataclass(frozen=True)
class StackRequest:
    spec: PatternSpec
    name: str  # stack name; equals spec.name except for test variants
    settings: Settings
    project: ProjectSettings | None = None  # this stack's own project settings (tooling variants); None = the app's


@dataclass(frozen=True)
class SynthResult:
    name: str
    resources: int
    outputs: int
    path: Path


def requests_for(config: ProjectConfig) -> list[StackRequest]:
    return [StackRequest(spec, spec.name, config.stacks[spec.name]) for spec in PATTERNS]


def synthesize(project: ProjectSettings, requests: Iterable[StackRequest], outdir: Path) -> list[SynthResult]:
    """Synthesize all requested stacks into ``outdir``.

    The app is written to a temporary folder beside ``outdir`` and moved into place only
    when synthesis succeeded, so a failure never leaves a half-written ``cdktf.out``.
    """
    from app.bindings import import_provider_lazily

    import_provider_lazily()  # this process only: the provider modules the stacks use, not all 2,135
    from cdktf import App  # the bindings load here, after settings have validated

    from app.stack import ProjectStack

    requests = list(requests)
    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        app = App(outdir=str(staging), context=dict(APP_CONTEXT))
        for request in requests:
            ProjectStack(app, request.name, request.project or project, request.spec, request.settings)
        app.synth()
        if outdir.exists():
            shutil.rmtree(outdir)
        staging.rename(outdir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [summarize(outdir, request.name) for request in requests]


def summarize(outdir: Path, name: str) -> SynthResult:
    path = outdir / "stacks" / name / "cdk.tf.json"
    doc = json.loads(path.read_text())
    resources = sum(len(items) for items in doc.get("resource", {}).values())
    return SynthResult(name, resources, len(doc.get("output", {})), path)
