"""Where the Lambda handlers' code is, and loading one as a module (no cdktf, no boto3).

Handlers live in ``functions/<name>/handler.py`` of a checkout, packaged as
``scaling_patterns/functions/<name>/handler.py`` in an installed distribution (pyproject.toml
maps the one onto the other). Their pure logic is reused outside Lambda: the simulator runs
the scaling controller's own decision functions, tests call handlers in-process.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _functions_dir() -> Path:
    installed = Path(__file__).resolve().parents[1] / "functions"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[3] / "functions"


#: ``functions/`` (checkout) or ``scaling_patterns/functions`` (installed).
FUNCTIONS_DIR = _functions_dir()


def load_handler(name: str) -> ModuleType:
    """``<FUNCTIONS_DIR>/<name>/handler.py`` as module ``function_<name>`` (one copy per process)."""
    module_name = f"function_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = FUNCTIONS_DIR / name / "handler.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no handler at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
