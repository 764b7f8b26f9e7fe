"""`make synth` skips the synthesis when nothing that shapes its output changed.

The key is a SHA-256 over everything that shapes ``cdktf.out/``:

- the settings file's resolved path and bytes, and every file the settings read
  (:attr:`app.config.ProjectConfig.inputs`, e.g. a CSV profile);
- the environment variables the app reads (``SCALING_PATTERNS_*``, ``CDKTF_*``, ``ENV``);
- the code: ``main.py``, ``cdktf.json``, ``app/``, the installed library package (wherever it is
  installed from), ``functions/`` (their code becomes Lambda packages), ``pyproject.toml``;
- the lock files (``Pipfile.lock``, ``package-lock.json``: the cdktf, provider and Node versions);
- the Python version.

After a synthesis, ``cdktf.out/.synth-cache.json`` holds the key, the stacks' summary rows and a
hash of every other file in ``cdktf.out/``. A later run with the same key and an output whose
hash still matches (``cdktf synth`` or ``cdktf deploy`` rewrite ``cdktf.out/``; a hand edit changes
it) prints the same table and does not load the provider bindings. Anything else synthesizes.
No cdktf import here: the check runs before the bindings would load.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Iterable

from app.config import PROJECT_ROOT, ProjectConfig
from app.synth import SynthResult

MANIFEST = ".synth-cache.json"
#: Environment variables that change what main.py synthesizes or where.
ENV_PREFIXES = ("SCALING_PATTERNS_", "CDKTF_")
ENV_NAMES = ("ENV",)
#: Project files and folders whose content shapes the output (the library is added from its import path).
CODE = ("main.py", "cdktf.json", "pyproject.toml", "Pipfile.lock", "package-lock.json", "app", "functions")
_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def _files(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not _SKIP_PARTS & set(path.parts) and path.suffix not in (".pyc", ".pyo"):
            yield path


def _update(digest: "hashlib._Hash", label: str, data: bytes) -> None:
    digest.update(label.encode())
    digest.update(len(data).to_bytes(8, "big"))
    digest.update(data)


def library_root() -> Path:
    import scaling_patterns

    return Path(scaling_patterns.__file__).resolve().parent


def input_key(config: ProjectConfig, project_root: Path = PROJECT_ROOT, environ: dict[str, str] | None = None) -> str:
    """The hash of everything that shapes the synthesized output (module docstring)."""
    environ = dict(os.environ if environ is None else environ)
    digest = hashlib.sha256()
    _update(digest, "python", sys.version.encode())
    source = config.source.resolve()
    _update(digest, "settings-path", str(source).encode())
    _update(digest, "settings", source.read_bytes() if source.is_file() else b"")
    for path in config.inputs:
        _update(digest, f"input:{path}", path.read_bytes() if path.is_file() else b"<missing>")
    for name in sorted(environ):
        if name.startswith(ENV_PREFIXES) or name in ENV_NAMES:
            _update(digest, f"env:{name}", environ[name].encode())
    roots = [project_root / item for item in CODE] + [library_root()]
    for root in roots:
        if not root.exists():
            _update(digest, f"absent:{root}", b"")
            continue
        for path in _files(root):
            _update(digest, f"file:{path}", path.read_bytes())
    return digest.hexdigest()


def output_hash(outdir: Path) -> str:
    digest = hashlib.sha256()
    for path in _files(outdir):
        if path.name != MANIFEST or path.parent != outdir:
            _update(digest, str(path.relative_to(outdir)), path.read_bytes())
    return digest.hexdigest()


def cached(outdir: Path, key: str) -> list[SynthResult] | None:
    """The summary rows of ``outdir`` when it holds the synthesis of ``key``, unchanged; else None."""
    manifest = outdir / MANIFEST
    try:
        data = json.loads(manifest.read_text())
        if data.get("key") != key or data.get("output") != output_hash(outdir):
            return None
        return [SynthResult(row["name"], row["resources"], row["outputs"], Path(row["path"])) for row in data["stacks"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record(outdir: Path, key: str, rows: list[SynthResult]) -> None:
    """Write the manifest after a successful synthesis (the output hash excludes the manifest)."""
    (outdir / MANIFEST).write_text(json.dumps({"key": key, "output": output_hash(outdir), "stacks": [{**vars(r), "path": str(r.path)} for r in rows]},
                                              indent=2) + "\n")
