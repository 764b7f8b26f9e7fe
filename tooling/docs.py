"""Every generated document, from the code that is its source of truth (``make docs``).

    python -m tooling.docs            # list what is out of date (exit 1 if anything is)
    python -m tooling.docs --write    # rewrite it

- ``docs/settings.md``: the settings classes (:mod:`tooling.settings_doc`);
- ``docs/iam.md``: the deploy-role policy of each stack (:mod:`tooling.deploy_policy`; synthesizes);
- blocks between ``<!-- <name>:start -->`` and ``<!-- <name>:end -->`` markers in Markdown files:
  the README's table of stacks and ``docs/deploy.md``'s list of what the emulator profile leaves
  out, both from the pattern specs (``scaling_patterns/patterns/<pattern>/__init__.py``).

Tests keep each one equal to what this module renders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.config import PROJECT_ROOT
from scaling_patterns.registry import PATTERNS


def stacks_table() -> str:
    lines = ["| stack | construct (`scaling_patterns.`) | pattern | details |", "|---|---|---|---|"]
    for spec in PATTERNS:
        construct = spec.construct.rpartition(":")[2]
        lines.append(f"| `{spec.name}` | `{construct}` | {spec.summary} | [{spec.doc}]({spec.doc}) |")
    return "\n".join(lines)


def emulator_left_out_table() -> str:
    lines = ["| stack | resource type left out | why |", "|---|---|---|"]
    for spec in PATTERNS:
        for type_, why in spec.emulator_leaves_out.items():
            lines.append(f"| `{spec.name}` | `{type_}` | {why} |")
    return "\n".join(lines)


#: (file, block name) -> renderer.
BLOCKS = {
    ("README.md", "stacks"): stacks_table,
    ("docs/deploy.md", "emulator-left-out"): emulator_left_out_table,
}


def replace_block(text: str, name: str, content: str, path: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if text.count(start) != 1 or text.count(end) != 1:
        raise ValueError(f"{path}: needs exactly one {start} ... {end} block")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{content}\n{end}{tail}"


def rendered() -> dict[Path, str]:
    """Every generated file's content, as it should be."""
    from app.config import ProjectSettings
    from tooling import deploy_policy, settings_doc

    files: dict[Path, str] = {settings_doc.DOC: settings_doc.render()}
    for (name, block), render in BLOCKS.items():
        path = PROJECT_ROOT / name
        files[path] = replace_block(files.get(path, path.read_text()), block, render(), name)
    files[deploy_policy.DOC] = deploy_policy.render(deploy_policy.synthesized_types(ProjectSettings()), ProjectSettings())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate (or check) every generated document.")
    parser.add_argument("--write", action="store_true", help="rewrite the documents that are out of date")
    args = parser.parse_args(argv)
    files = rendered()
    stale = [path for path, text in files.items() if not path.is_file() or path.read_text() != text]
    if args.write:
        for path in stale:
            path.write_text(files[path])
        print("\n".join(f"{p.relative_to(PROJECT_ROOT)} written" for p in stale) or "all generated documents are current")
        return 0
    for path in stale:
        print(f"{path.relative_to(PROJECT_ROOT)} is out of date: run `make docs`")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
