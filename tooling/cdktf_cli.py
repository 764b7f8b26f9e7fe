"""The cdktf CLI (`npx cdktf synth|diff|deploy|destroy`) as a first-class way to work.

    python -m tooling.cdktf_cli app           # what cdktf.json runs: main.py, then the provider lock
    python -m tooling.cdktf_cli emulator-env  # start or reuse the emulator; print `export` lines
    python -m tooling.cdktf_cli emulator-stop # stop it

``app``: cdktf 0.21 runs ``terraform init`` in each stack folder and then, when the folder
has no ``.terraform.lock.hcl`` that pins the stack's providers, ``terraform providers lock
-platform=linux_amd64``. That command asks the registry, whatever the CLI config says, so on
a machine without the registry it fails ("Could not retrieve providers for locking"), and
every synth starts the folder afresh. So, when a local mirror of the pinned AWS provider is
found (tooling/terraform.py), the app writes into every synthesized stack folder a lock made
from that mirror by ``terraform providers lock -fs-mirror`` (made once, kept in
``.terraform/mirror-lock/``); cdktf then finds the provider locked and skips the registry.
Without a mirror nothing is written and cdktf locks from the registry as usual.

``emulator-env``: the environment `make deploy-local` gives Terraform, as shell lines for
``eval "$(make -s emulator-env)"``: the emulator's endpoints and fake credentials (every other
``AWS_*`` variable unset), your settings file in ``SCALING_PATTERNS_SETTINGS`` and the emulator
workspace in ``SCALING_PATTERNS_EMULATOR_WORKSPACE``: every synth (``app``) copies your file as it
is then, with ``project.emulator = true`` and the S3 backend on the emulator's state bucket, a separate output folder
(``CDKTF_OUTPUT``, so ``cdktf.out/`` keeps the AWS stacks) and the mirror CLI config.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from app.config import PROJECT_ROOT, SETTINGS_ENV, load_config, settings_path
from scaling_patterns.core.versions import AWS_PROVIDER_VERSION
from tooling.terraform import _os_arch, cli_config_env, find_provider_mirror, terraform

LOCK_FILE = ".terraform.lock.hcl"
LOCK_CACHE = PROJECT_ROOT / ".terraform" / "mirror-lock"
#: The emulator workspace of cdktf CLI users: settings copy and synthesized stacks (beside deploy-local's).
WORKSPACE = Path(".emulator") / "cdktf"
#: Set by emulator-env: the emulator workspace whose settings copy ``app`` rebuilds from the user's file on every synth.
EMULATOR_WORKSPACE_ENV = "SCALING_PATTERNS_EMULATOR_WORKSPACE"


def mirror_lock(mirror: Path | None = None) -> str | None:
    """The ``.terraform.lock.hcl`` text for the pinned AWS provider from the local mirror (None without one)."""
    mirror = mirror or find_provider_mirror()
    if mirror is None:
        return None
    lock, stamp = LOCK_CACHE / AWS_PROVIDER_VERSION / LOCK_FILE, LOCK_CACHE / AWS_PROVIDER_VERSION / "mirror"
    if lock.is_file() and stamp.is_file() and stamp.read_text() == str(mirror):
        return lock.read_text()
    LOCK_CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lock-", dir=LOCK_CACHE))  # parallel runs each make their own, then replace
    try:
        (work / "main.tf.json").write_text(json.dumps({"terraform": {"required_providers": {
            "aws": {"source": "hashicorp/aws", "version": AWS_PROVIDER_VERSION}}}}))
        run = terraform(["providers", "lock", f"-fs-mirror={mirror}", f"-platform={_os_arch()}", "-no-color"],
                        work, cli_config_env())
        if not run.ok:
            raise RuntimeError(f"terraform providers lock -fs-mirror={mirror} failed:\n{run.stdout}{run.stderr}")
        text = (work / LOCK_FILE).read_text()
        lock.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / LOCK_FILE, lock)
        (work / "mirror").write_text(str(mirror))
        os.replace(work / "mirror", stamp)
        return text
    finally:
        shutil.rmtree(work, ignore_errors=True)


def lock_stacks(outdir: Path) -> list[Path]:
    """Write the mirror's lock into every synthesized stack folder of ``outdir``; the files written."""
    text = mirror_lock()
    if text is None:
        return []
    written = []
    for doc in sorted(outdir.glob("stacks/*/cdk.tf.json")):
        path = doc.parent / LOCK_FILE
        path.write_text(text)
        written.append(path)
    return written


def emulator_settings_copy(workspace: Path) -> Path:
    """In the emulator shell: the user's settings file (``$SCALING_PATTERNS_SETTINGS``, as it is now)
    validated, then copied with the emulator profile into ``workspace``; the copy's path. Every synth
    makes it anew, so an edit of the user's file reaches the next ``cdktf diff``. A problem names
    the user's file (SettingsError); nothing is written then."""
    from tooling import deploy_local as local

    load_config()
    ws = local.Workspace(workspace)
    local.write_settings(ws, settings_path())
    return ws.settings


def app(argv: list[str]) -> int:
    """cdktf.json's app: ``main.py`` in this process, then the stack folders' provider lock. In the
    emulator shell (``emulator-env``), ``main.py`` reads the emulator copy of the user's settings."""
    sys.path.insert(0, str(PROJECT_ROOT))
    import main

    workspace = os.environ.get(EMULATOR_WORKSPACE_ENV)
    if workspace:
        from scaling_patterns.core.settings import SettingsError

        try:
            os.environ[SETTINGS_ENV] = str(emulator_settings_copy(Path(workspace)))
        except SettingsError as exc:
            print("Settings are not valid; nothing was written:", file=sys.stderr)
            print("\n".join(f"  {line}" for line in exc.problems), file=sys.stderr)
            return 2
    code = main.main(argv)
    if code == 0:
        try:
            lock_stacks(Path(os.environ.get("CDKTF_OUTDIR") or PROJECT_ROOT / "cdktf.out"))
        except RuntimeError as exc:
            print(f"cannot lock the AWS provider from the local mirror: {exc}", file=sys.stderr)
            return 1
    return code


def emulator_exports(emulator_dir: Path, base_settings: Path | None = None, environ: dict[str, str] | None = None,
                     ) -> tuple[list[str], bool]:
    """Start or reuse the emulator in ``emulator_dir``; (shell lines to eval, started now).

    The settings file is validated first (SettingsError names it, the user's file, not the copy):
    nothing is started or written for bad settings."""
    from tooling import deploy_local as local
    from tooling import emulator as emu

    environ = dict(os.environ if environ is None else environ)
    load_config(base_settings)  # errors name the file as the user gave it
    base_settings = base_settings or settings_path()
    emulator, started = emu.start(emulator_dir)
    ws = local.Workspace(emulator_dir.resolve() / "cdktf")
    data = local.write_settings(ws, base_settings)
    local.ensure_state_bucket(emulator, local.project_region(data))
    local.write_backend_config(ws, emulator)
    env = cli_config_env(emulator.env(base={}, guard=False))
    env.pop("TF_IN_AUTOMATION", None)  # a person runs cdktf here: keep Terraform's hints
    env.update({
        # Your own file, absolute (the shell may change folders); each synth copies it with the
        # emulator profile into the workspace (app), so edits show in the next diff.
        SETTINGS_ENV: str(Path(base_settings).resolve()),
        EMULATOR_WORKSPACE_ENV: str(ws.dir),
        "CDKTF_OUTPUT": str(ws.outdir),  # cdktf's --output: cdktf.out/ keeps the stacks for AWS
        "CHECKPOINT_DISABLE": "1",  # no version check call from cdktf or Terraform
        # cdktf runs `terraform init` with no way to pass the S3 backend's emulator endpoint and
        # path-style addressing (a bucket name cannot go in front of 127.0.0.1): Terraform adds
        # these arguments to every init, as `make deploy-local` passes them.
        "TF_CLI_ARGS_init": f"-backend-config={ws.backend_config}",
    })
    unset = sorted(k for k in environ if k.startswith("AWS_") and k not in env)
    lines = [f"# the local emulator {emulator.endpoint} (pid {emulator.pid}); stop it: make emulator-stop",
             f"# back to AWS in this shell: unset {' '.join(sorted(env))}"]
    if unset:
        lines.append("unset " + " ".join(unset))
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    return lines, started


def main(argv: list[str]) -> int:
    import argparse

    if argv[:1] == ["app"]:
        return app(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m tooling.cdktf_cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["app", "emulator-env", "emulator-stop"])
    parser.add_argument("--dir", type=Path, default=None, help="emulator state folder (default: .emulator/)")
    args = parser.parse_args(argv)
    from tooling import emulator as emu

    emulator_dir = args.dir or emu.DEFAULT_DIR
    if args.command == "emulator-env":
        from scaling_patterns.core.settings import SettingsError

        try:
            lines, started = emulator_exports(emulator_dir)
        except SettingsError as exc:
            print("Settings are not valid; nothing was started or written:", file=sys.stderr)
            print("\n".join(f"  {line}" for line in exc.problems), file=sys.stderr)
            return 2
        except RuntimeError as exc:
            print(f"emulator-env: {exc}", file=sys.stderr)
            return 1
        print("\n".join(lines))
        print(f"# emulator {'started' if started else 'reused'}", file=sys.stderr)
        return 0
    print("emulator stopped" if emu.stop(emulator_dir) else "emulator was not running")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
