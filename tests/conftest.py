"""Test harness: one synthesis per test session, shared by every synth test.

Importing the provider bindings costs seconds, so the session synthesizes every registered
stack with its default settings plus every *variant* (a stack built with other settings)
into one temporary cdktf.out, in one App. Each pattern declares its variants in its package
(``scaling_patterns/patterns/<pattern>/variants.py``, the ``variants`` entry of its spec) as
``VARIANTS = {"<variant name>": ("<stack name>", {settings})}``; a variant's settings go
through the same validation as the settings file (relative paths from the project root).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import ProjectSettings  # noqa: E402
from scaling_patterns.core.functions import load_handler  # noqa: E402
from scaling_patterns.core.settings import validate_section  # noqa: E402
from scaling_patterns.registry import PATTERNS  # noqa: E402

#: While developing one pattern: SYNTH_ONLY=queue-depth-scaling pytest tests/test_queue_depth_scaling.py
#: synthesizes only that stack and its variants (a comma-separated list is fine).
ONLY = {name.strip() for name in os.environ.get("SYNTH_ONLY", "").split(",") if name.strip()}


def pytest_configure(config: pytest.Config) -> None:
    """A SYNTH_ONLY naming no stack stops the run with one line, before any test is collected."""
    known = [spec.name for spec in PATTERNS]
    unknown = sorted(ONLY - set(known))
    if unknown:
        raise pytest.UsageError(f"SYNTH_ONLY={os.environ.get('SYNTH_ONLY', '')!r}: unknown stack(s) {', '.join(unknown)} "
                                f"(known: {', '.join(known)})")


def load_function(name: str):
    """``functions/<name>/handler.py`` as module ``function_<name>`` (every handler is called handler.py)."""
    return load_handler(name)


def all_variants() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every pattern's variants, by variant name."""
    variants: dict[str, tuple[str, dict[str, Any]]] = {}
    for spec in PATTERNS:
        if not spec.variants:
            continue
        for name, value in spec.load("variants").items():
            assert name not in variants, f"variant {name} defined twice"
            variants[name] = value
    return variants


def ref(address: str, attribute: str) -> str:
    """``${address.attribute}``: how a reference to another resource looks in the JSON."""
    return "${" + f"{address}.{attribute}" + "}"


def named(stack: "StackJson", type_: str, name: str, key: str = "name") -> tuple[str, dict[str, Any]]:
    """(address, body) of the only resource of ``type_`` whose ``key`` is ``name``."""
    found = [(k, v) for k, v in stack.resources(type_).items() if v.get(key) == name]
    assert len(found) == 1, f"{stack.name}: {type_} named {name!r}: {sorted(stack.resources(type_))}"
    return f"{type_}.{found[0][0]}", found[0][1]


@dataclass
class StackJson:
    name: str
    dir: Path
    doc: dict[str, Any]

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return self.doc.get("resource", {}).get(type_, {})

    def one(self, type_: str) -> dict[str, Any]:
        found = self.resources(type_)
        assert len(found) == 1, f"{self.name}: expected one {type_}, found {sorted(found)}"
        return next(iter(found.values()))

    def address(self, type_: str) -> str:
        found = self.resources(type_)
        assert len(found) == 1, f"{self.name}: expected one {type_}, found {sorted(found)}"
        return f"{type_}.{next(iter(found))}"

    def ref(self, type_: str, attribute: str) -> str:
        """``${type.name.attribute}`` of the only resource of ``type_``: what wiring looks like."""
        return "${" + f"{self.address(type_)}.{attribute}" + "}"

    @property
    def outputs(self) -> dict[str, Any]:
        return self.doc.get("output", {})

    def data(self, type_: str) -> dict[str, dict[str, Any]]:
        return self.doc.get("data", {}).get(type_, {})

    def policies(self) -> list[dict[str, Any]]:
        """Every IAM policy document in the stack (role policies and resource policies), parsed."""
        docs = []
        for type_, key in (("aws_iam_role_policy", "policy"), ("aws_sqs_queue_policy", "policy"),
                           ("aws_iam_policy", "policy"), ("aws_s3_bucket_policy", "policy")):
            for body in self.resources(type_).values():
                docs.append(json.loads(body[key]))
        return docs


class Synth:
    def __init__(self, outdir: Path):
        self.outdir = outdir

    def stack(self, name: str) -> StackJson:
        path = self.outdir / "stacks" / name / "cdk.tf.json"
        return StackJson(name, path.parent, json.loads(path.read_text()))

    def names(self) -> list[str]:
        return sorted(p.parent.name for p in (self.outdir / "stacks").glob("*/cdk.tf.json"))


def _synthesize_all(outdir: Path, project: ProjectSettings) -> Synth:
    """Every registered stack (default settings) and every variant, in one App."""
    from app.synth import StackRequest, synthesize

    context = {"base_dir": ROOT}
    specs = {spec.name: spec for spec in PATTERNS if not ONLY or spec.name in ONLY}
    requests = [StackRequest(spec, spec.name, validate_section(spec.name, spec.load_settings_class(), {}, context))
                for spec in specs.values()]
    for variant, (base, settings) in all_variants().items():
        if base not in specs:
            continue
        spec = specs[base]
        requests.append(StackRequest(spec, variant, validate_section(variant, spec.load_settings_class(), settings, context)))
    synthesize(project, requests, outdir)
    return Synth(outdir)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _synthesize_all(tmp_path_factory.mktemp("synth") / "cdktf.out", ProjectSettings())


@pytest.fixture(scope="session")
def emulator_synth(synth: Synth, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The same stacks and variants as `make deploy-local` builds them (``project.emulator = true``).

    Same process as ``synth`` (the bindings are already loaded): a second App, not a second import.
    """
    return _synthesize_all(tmp_path_factory.mktemp("emulator") / "cdktf.out", ProjectSettings(emulator=True))


@pytest.fixture(scope="session")
def validated(synth: Synth) -> dict[str, tuple[bool, str]]:
    """`terraform validate` of every synthesized stack (one run, each stack a module), by stack name."""
    from tooling.terraform import validate_stacks

    return validate_stacks([synth.outdir / "stacks" / name for name in synth.names()])
