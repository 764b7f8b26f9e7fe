"""Build and synthesize the cdktf App: one process, every stack, all-or-nothing output."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from app.config import PROJECT_ROOT, ProjectConfig, ProjectSettings
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


#: The Node LTS pinned in package.json (npm package `node`), installed by `make install`.
PROJECT_NODE = PROJECT_ROOT / "node_modules" / ".bin" / "node"


def use_project_node() -> None:
    """Make jsii (cdktf's Python runtime) start the project's pinned Node, unless ``$JSII_NODE`` says otherwise.

    jsii runs ``$JSII_NODE`` or else the first ``node`` on PATH; `make` and `npx cdktf` put
    ``node_modules/.bin`` first on PATH, a bare ``.venv/bin/python main.py`` would not."""
    if "JSII_NODE" not in os.environ and PROJECT_NODE.exists():
        os.environ["JSII_NODE"] = str(PROJECT_NODE)


def requests_for(config: ProjectConfig) -> list[StackRequest]:
    return [StackRequest(spec, spec.name, config.stacks[spec.name]) for spec in PATTERNS]


def synthesize(project: ProjectSettings, requests: Iterable[StackRequest], outdir: Path) -> list[SynthResult]:
    """Synthesize all requested stacks into ``outdir``.

    The app is written to a temporary folder beside ``outdir`` and moved into place only
    when synthesis succeeded, so a failure never leaves a half-written ``cdktf.out``.
    """
    from app.bindings import import_provider_lazily

    use_project_node()  # before the bindings start the jsii runtime
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
