"""The docs stay current: generated documents, stacks, outputs, pattern docs, and no link that leaves the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scaling_patterns.registry import PATTERNS
from tooling import deploy_policy, docs, settings_doc

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])


def test_settings_reference_matches_the_settings_classes():
    assert settings_doc.DOC.read_text() == settings_doc.render(), "docs/settings.md is out of date: run `make docs`"


@pytest.mark.parametrize(("path", "block"), sorted(docs.BLOCKS), ids=[f"{p}:{b}" for p, b in sorted(docs.BLOCKS)])
def test_generated_blocks_match_the_pattern_specs(path, block):
    text = (ROOT / path).read_text()
    assert docs.replace_block(text, block, docs.BLOCKS[(path, block)](), path) == text, f"{path} ({block}) is out of date: run `make docs`"


def test_the_deploy_role_policies_match_the_synthesized_resource_types(synth):
    from app.config import ProjectSettings
    from tests.conftest import all_variants

    base = {name: stack for name, (stack, _) in all_variants().items()}
    types: dict[str, set[str]] = {}
    for name in synth.names():
        types.setdefault(base.get(name, name), set()).update(deploy_policy.stack_types(synth.stack(name).doc))
    assert deploy_policy.DOC.read_text() == deploy_policy.render(types, ProjectSettings()), "docs/iam.md is out of date: run `make docs`"


def test_every_stack_is_listed_and_has_its_pattern_doc():
    for spec in PATTERNS:
        assert f"| `{spec.name}` | `{spec.construct.rpartition(':')[2]}` |" in README, spec.name
        assert (ROOT / spec.doc).is_file(), spec.doc


def test_every_output_of_every_stack_is_documented(synth):
    outputs = (ROOT / "docs" / "outputs.md").read_text()
    documented = set(re.findall(r"^\| `([a-z-]+)` \| `(\w+)` \|", outputs, flags=re.M))
    synthesized = {(spec.name, output) for spec in PATTERNS for output in synth.stack(spec.name).outputs}
    assert synthesized <= documented, f"missing from docs/outputs.md: {sorted(synthesized - documented)}"
    assert documented <= synthesized | _variant_outputs(synth), f"documented but never exported: {sorted(documented - synthesized)}"


def _variant_outputs(synth) -> set[tuple[str, str]]:
    from tests.conftest import all_variants

    return {(stack, output) for name, (stack, _) in all_variants().items() for output in synth.stack(name).outputs}


def test_quick_start_names_exactly_make_synth_and_make_test():
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick_start.split("```sh", 1)[1].split("```", 1)[0].splitlines() if line.strip()]
    assert commands == ["make synth", "make test"]


def test_every_make_target_is_in_the_readme_commands_table():
    targets = set(re.findall(r"^([a-z][a-z-]*):.*##", (ROOT / "Makefile").read_text(), flags=re.M))
    listed = set(re.findall(r"^\| `make ([a-z-]+)", README, flags=re.M))
    assert targets <= listed, f"not in the README's commands table: {sorted(targets - listed)}"


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_docs_link_and_cite_only_what_the_repository_has(path):
    """Relative links resolve inside the repository; nothing points at files a clone does not have."""
    text = path.read_text()
    problems = [f"cites {m}" for m in re.findall(r"(?:\.\./)*shared/seeds/\S*", text)]
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        resolved = (path.parent / target).resolve()
        if not resolved.exists() or ROOT.resolve() not in resolved.parents and resolved != ROOT.resolve():
            problems.append(f"link to {target} does not resolve inside the repository")
    assert problems == []
