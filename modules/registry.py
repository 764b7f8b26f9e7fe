"""The stacks this project synthesizes, and loading their settings from one file.

Each entry names a stack (its name is the Terraform state key and what reviewers see, so
names never change), its settings class and its stack class. Stack classes are imported
only after every section of the settings file has validated.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modules.core.settings import ProjectSettings, Settings, SettingsError, read_toml, validate_section

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS_FILE = PROJECT_ROOT / "settings.toml"
SETTINGS_ENV = "SCALING_PATTERNS_SETTINGS"


@dataclass(frozen=True)
class StackSpec:
    name: str
    settings_class: str  # "module:Class", imported eagerly (pydantic only)
    stack_class: str  # "module:Class", imported lazily (loads the cdktf bindings)
    summary: str

    def load_settings_class(self) -> type[Settings]:
        return _import(self.settings_class)

    def load_stack_class(self) -> Any:
        return _import(self.stack_class)


STACKS: tuple[StackSpec, ...] = (
    StackSpec(
        "llm-request-scaling",
        "modules.llm_request_scaling.settings:LlmRequestScalingSettings",
        "modules.llm_request_scaling.construct:LlmRequestScalingStack",
        "EventBridge rule on inference-request events -> scaling-controller Lambda",
    ),
    StackSpec(
        "queue-depth-scaling",
        "modules.queue_depth_scaling.settings:QueueDepthScalingSettings",
        "modules.queue_depth_scaling.construct:QueueDepthScalingStack",
        "SQS work queue -> EC2 worker Auto Scaling group scaled on backlog; job-intake Lambda",
    ),
    StackSpec(
        "inference-load-balancing",
        "modules.inference_load_balancing.settings:InferenceLoadBalancingSettings",
        "modules.inference_load_balancing.construct:InferenceLoadBalancingStack",
        "Application Load Balancer -> target group -> inference Auto Scaling group scaled on requests per target",
    ),
    StackSpec(
        "predictive-lambda-scaling",
        "modules.predictive_lambda_scaling.settings:PredictiveLambdaScalingSettings",
        "modules.predictive_lambda_scaling.construct:PredictiveLambdaScalingStack",
        "Published inference Lambda; alias provisioned concurrency scaled by target tracking and a predicted schedule",
    ),
    StackSpec(
        "queue-to-sagemaker",
        "modules.queue_to_sagemaker.settings:QueueToSageMakerSettings",
        "modules.queue_to_sagemaker.construct:QueueToSageMakerStack",
        "SQS queue -> invoker Lambda (partial batch responses) -> autoscaled SageMaker endpoint",
    ),
)


@dataclass(frozen=True)
class ProjectConfig:
    """Everything main.py needs: project settings and one validated settings object per stack."""

    source: Path
    project: ProjectSettings
    stacks: dict[str, Settings]


def _import(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def settings_path() -> Path:
    """The settings file: ``$SCALING_PATTERNS_SETTINGS`` or ``settings.toml`` in the project root."""
    return Path(os.environ.get(SETTINGS_ENV) or DEFAULT_SETTINGS_FILE).resolve()


def load_config(path: Path | None = None, data: dict[str, Any] | None = None) -> ProjectConfig:
    """Validate every section, collecting all problems before raising one SettingsError."""
    path = path or settings_path()
    raw = read_toml(path) if data is None else data
    known = {spec.name for spec in STACKS} | {"project"}
    problems: list[str] = []
    for section in raw:
        if section not in known:
            problems.append(f"[{section}] unknown section (known: {', '.join(sorted(known))})")

    project: ProjectSettings | None = None
    try:
        project = validate_section("project", ProjectSettings, raw.get("project", {}))  # type: ignore[assignment]
    except SettingsError as exc:
        problems.extend(exc.problems)

    stacks: dict[str, Settings] = {}
    for spec in STACKS:
        try:
            stacks[spec.name] = validate_section(spec.name, spec.load_settings_class(), raw.get(spec.name, {}))
        except SettingsError as exc:
            problems.extend(exc.problems)

    if problems:
        raise SettingsError([f"{path.name}: {line}" for line in problems])
    assert project is not None
    return ProjectConfig(source=path, project=project, stacks=stacks)
