"""`terraform validate` on every synthesized stack and variant (diagnostics shown on failure)."""

from __future__ import annotations

from modules.registry import STACKS


def test_every_registered_stack_was_synthesized(synth):
    from tests.conftest import ONLY

    if ONLY:
        import pytest

        pytest.skip(f"SYNTH_ONLY={','.join(sorted(ONLY))}")
    assert {spec.name for spec in STACKS} <= set(synth.names())


def test_every_stack_is_valid_terraform(validated):
    invalid = {name: text for name, (ok, text) in validated.items() if not ok}
    assert not invalid, "\n\n".join(f"{name}:\n{text}" for name, text in invalid.items())
