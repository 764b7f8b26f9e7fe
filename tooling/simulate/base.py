"""The settings file as it was at a git ref (``make simulate BASE=<ref>``); read-only git only.

``settings_at_ref`` runs ``git rev-parse`` (the ref must name a commit), ``git cat-file -e``
(did the file exist there?) and ``git show <ref>:<path>``. A settings file that did not exist
at the ref means "all defaults", as a missing settings file does today.
"""

from __future__ import annotations

import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaling_patterns.simulation.scenario import SimulationError


@dataclass(frozen=True)
class BaseSettings:
    ref: str
    commit: str
    path: str  # the settings file, relative to the repository root
    data: dict[str, Any]
    existed: bool


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SimulationError("--base needs git on the PATH (not found)") from None


def settings_at_ref(ref: str, settings_file: Path) -> BaseSettings:
    """Parsed TOML of ``settings_file`` at ``ref`` (``{}`` if it did not exist there)."""
    folder = settings_file.resolve().parent
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise SimulationError(f"--base {ref}: {folder} is not inside a git repository")
    root = Path(top.stdout.strip())
    if not ref or ref.startswith("-"):
        raise SimulationError(f"--base {ref!r}: not a git ref")
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if commit.returncode != 0:
        raise SimulationError(f"--base {ref}: no such commit, branch or tag in {root} (git rev-parse found nothing)")
    try:
        relative = settings_file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise SimulationError(f"--base {ref}: the settings file {settings_file} is outside the repository {root}") from None
    sha = commit.stdout.strip()
    if _git(root, "cat-file", "-e", f"{sha}:{relative}").returncode != 0:
        return BaseSettings(ref, sha, relative, {}, existed=False)
    shown = _git(root, "show", f"{sha}:{relative}")
    if shown.returncode != 0:
        raise SimulationError(f"--base {ref}: git show {relative} failed: {shown.stderr.strip()}")
    try:
        data = tomllib.loads(shown.stdout)
    except tomllib.TOMLDecodeError as exc:
        raise SimulationError(f"--base {ref}: {relative} at that commit is not valid TOML: {exc}") from None
    return BaseSettings(ref, sha, relative, data, existed=True)
