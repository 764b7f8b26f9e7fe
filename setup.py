"""Package discovery only; the metadata is in pyproject.toml.

Every package under ``modules/scaling_patterns`` is found, and every Lambda handler folder
``functions/<name>/`` ships as ``scaling_patterns.functions.<name>``, so a new pattern needs no
line here.
"""

from pathlib import Path

from setuptools import find_packages, setup

HANDLERS = sorted(p.parent.name for p in Path(__file__).resolve().parent.glob("functions/*/handler.py"))

setup(packages=[*find_packages("modules", include=["scaling_patterns", "scaling_patterns.*"]),
                "scaling_patterns.functions", *(f"scaling_patterns.functions.{name}" for name in HANDLERS)])
