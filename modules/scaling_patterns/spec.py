"""`PatternSpec`: everything the tooling needs to know about one pattern, declared in its package.

Each pattern package (``scaling_patterns/patterns/<name>/__init__.py``) declares one ``PATTERN``
and :mod:`scaling_patterns.registry` lists them (one line each). What a spec names by
``"module:attribute"`` is imported only when used, so reading the registry imports neither
the cdktf bindings nor boto3.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PatternSpec:
    #: The stack name: the Terraform state key and what reviewers see; never changes.
    name: str
    #: Short word in the project's resource names: ``<name_prefix>-<short>-<suffix>``.
    short: str
    #: Construct id of the pattern in the project's stack (part of every Terraform address).
    construct_id: str
    #: One line: source -> what -> target.
    summary: str
    settings: str  # "module:Class" of the settings (pydantic only)
    construct: str  # "module:Class" of the construct (loads the cdktf bindings)
    functions: tuple[str, ...] = ()  # folders under functions/ that its Lambda functions use
    simulation: str | None = None  # "module:function": settings, overrides -> Scenario
    checks: str | None = None  # "module:function": wiring checks of a deployed stack (CheckContext)
    variants: str | None = None  # "module:VARIANTS": other settings that tests and docs synthesize
    #: Plan summary words for settings of this pattern that live outside the generic labels:
    #: (resource type, attribute path, words), e.g. environment variables of a controller.
    plan_labels: tuple[tuple[str, str, str], ...] = ()
    #: Resource types the emulator profile leaves out, with why (docs and a test check them).
    emulator_leaves_out: dict[str, str] = field(default_factory=dict)
    #: Settings that `make rollout-check` starts from instead of the defaults (a placeholder
    #: default cannot apply on AWS).
    rollout_baseline: dict[str, Any] = field(default_factory=dict)
    #: The pattern's page in docs/.
    doc: str = ""

    def load(self, what: str) -> Any:
        """Import what ``what`` (``settings``, ``construct``, ``simulation``, ...) names."""
        ref = getattr(self, what)
        if not ref:
            raise LookupError(f"pattern {self.name} declares no {what}")
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)

    def load_settings_class(self) -> Any:
        return self.load("settings")
