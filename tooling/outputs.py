"""What every command that writes results does first and last (`make plan`, `make simulate`,
`make deploy-local`): check the user's own settings file and arguments before anything starts
or is written, write the new results to a staging folder beside ``--out``, and move them into
place only once they are complete. On any failure the previous results are untouched.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from app.config import ProjectConfig, load_config, settings_source
from scaling_patterns.core.settings import SettingsError
from scaling_patterns.registry import PATTERNS


class UserError(Exception):
    """Bad arguments or settings: one line per problem, exit status 2, nothing started or written."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def given_settings(settings: Path | None) -> str:
    """The settings file as the user named it: ``--settings``, ``$SCALING_PATTERNS_SETTINGS`` or settings.toml."""
    return settings_source(settings)[1]


def check_settings(settings: Path | None) -> ProjectConfig:
    """The user's settings file validated; its problems (``UserError``) name it as the user gave it."""
    try:
        return load_config(settings)
    except SettingsError as exc:
        raise UserError(exc.problems) from None


def check_stacks(stacks: Iterable[str] | None, option: str = "--stack") -> list[str]:
    """The asked-for stack names in registry order (all when none); unknown names are one ``UserError`` line."""
    known = [spec.name for spec in PATTERNS]
    wanted = list(stacks or [])
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise UserError([f"{option} {', '.join(unknown)}: unknown stack{'s' if len(unknown) > 1 else ''} "
                         f"(known: {', '.join(known)})"])
    return [name for name in known if not wanted or name in wanted]


def report_user_error(command: str, error: UserError, what: str) -> int:
    """Print ``error`` (one line per problem) after a headline saying what did not happen; exit status 2."""
    print(f"{command}: {what}:", file=sys.stderr)
    for line in error.lines:
        print(f"  {line}", file=sys.stderr)
    return 2


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """An empty folder beside ``out`` (same file system, so moving out of it is a rename); removed
    when the block ends, whether or not ``publish`` moved its files into ``out``."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish(folder: Path, out: Path, stale: Iterable[Path] = ()) -> list[Path]:
    """Replace the previous results in ``out``: remove ``stale`` (what the previous run wrote), then
    move every file of the complete staging ``folder`` into ``out``. Other files in ``out`` stay."""
    out.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.unlink(missing_ok=True)
    moved = []
    for source in sorted(p for p in folder.rglob("*") if p.is_file()):
        target = out / source.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        moved.append(target)
    return moved
