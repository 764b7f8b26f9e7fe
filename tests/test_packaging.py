"""`pip install .` gives a working library: the examples synthesize and validate from the
installed package (not the checkout), and its declared dependencies are the app's pins."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

EXAMPLES = sorted(p for p in (PROJECT_ROOT / "examples").iterdir() if (p / "main.py").is_file())


def test_the_package_declares_the_pins_of_the_pipfile():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    pipfile = tomllib.loads((PROJECT_ROOT / "Pipfile").read_text())["packages"]
    declared = {re.split(r"[=<>!~ ]", d, maxsplit=1)[0]: d[len(re.split(r"[=<>!~ ]", d, maxsplit=1)[0]):] for d in project["dependencies"]}
    pinned = {name: spec for name, spec in pipfile.items() if name != "scaling-patterns"}
    assert declared == pinned


def test_there_are_at_least_two_examples_each_a_cdktf_app():
    assert len(EXAMPLES) >= 2
    for example in EXAMPLES:
        assert json.loads((example / "cdktf.json").read_text())["app"] == "python main.py", example.name


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv with the package installed from a wheel of this checkout.

    Its dependencies (cdktf, the provider bindings: hundreds of MB) come from the project's
    virtualenv through a ``.pth`` path entry, after the fresh site-packages, so
    ``scaling_patterns`` itself is the installed copy, never the checkout.
    """
    tmp = tmp_path_factory.mktemp("packaging")
    wheel_dir = tmp / "wheel"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "-w", str(wheel_dir), str(PROJECT_ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheel_dir.glob("scaling_patterns-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.mark.slow
def test_the_installed_package_carries_the_lambda_code_and_no_checkout_path(installed):
    code = ("import scaling_patterns, pathlib\n"
            "from scaling_patterns.core.functions import FUNCTIONS_DIR\n"
            "print(pathlib.Path(scaling_patterns.__file__).parent)\n"
            "print(sorted(p.name for p in FUNCTIONS_DIR.iterdir() if (p / 'handler.py').is_file()))\n")
    run = subprocess.run([str(installed), "-c", code], cwd="/", capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    package, functions = run.stdout.splitlines()
    assert str(installed.parent.parent) in package and str(PROJECT_ROOT) not in package
    assert functions == str(sorted(p.name for p in (PROJECT_ROOT / "functions").iterdir() if (p / "handler.py").is_file()))


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_each_example_synthesizes_and_validates_from_the_installed_package(installed, example, tmp_path):
    from tooling.terraform import validate_stacks

    outdir = tmp_path / "cdktf.out"
    # The user's own app on the Node the project pins (node_modules/.bin), not the machine's end-of-life one.
    env = {"PATH": f"{PROJECT_ROOT / 'node_modules' / '.bin'}:/usr/bin:/bin", "CDKTF_OUTDIR": str(outdir), "HOME": str(tmp_path)}
    run = subprocess.run([str(installed), "main.py"], cwd=example, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    stacks = sorted(p for p in (outdir / "stacks").iterdir() if (p / "cdk.tf.json").is_file())
    assert stacks, f"{example.name} synthesized nothing"
    results = validate_stacks(stacks)
    assert all(ok for ok, _ in results.values()), results


def test_no_source_file_is_ignored_by_git():
    """A fresh clone has every module: an ignore pattern for an output folder (`simulation/`,
    `plans/`) must not match a package of the same name (it once hid scaling_patterns/simulation)."""
    sources = [str(path.relative_to(PROJECT_ROOT)) for folder in ("app", "modules", "functions", "tooling", "tests")
               for path in (PROJECT_ROOT / folder).rglob("*.py") if "__pycache__" not in path.parts]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=PROJECT_ROOT, input="\n".join(sources),
                             capture_output=True, text=True, timeout=60)
    assert ignored.stdout.split() == [], "ignored by .gitignore: " + ignored.stdout
