"""The local AWS emulator: moto in server mode on 127.0.0.1, managed by the project.

    python -m tooling.emulator start|status|stop [--dir DIR]

``start`` launches ``moto.server`` (the pinned dev dependency) bound to 127.0.0.1 on a free
port, waits until it answers and records ``{"pid", "port", "endpoint"}`` in
``<dir>/emulator.json`` (default dir: ``.emulator/`` in the project, gitignored). A running
emulator recorded there is reused. ``stop`` ends that process (and only it) and tolerates
one that is already gone.

Everything that talks to the emulator gets its environment from :func:`aws_env`: fake
credentials, every AWS endpoint set to the emulator, shared AWS config/credential files
disabled (so no real profile, SSO session or credential process is ever read), instance
metadata disabled, and, where asked, a proxy on a closed loopback port as a guard: a
request that does not go to the emulator (Go and botocore never proxy loopback addresses)
fails at once instead of leaving the machine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from app.config import PROJECT_ROOT

HOST = "127.0.0.1"
DEFAULT_DIR = PROJECT_ROOT / ".emulator"
STATE_FILE = "emulator.json"
REGION = "us-east-1"
#: Fake credentials; moto accepts any. Never real ones.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
#: A loopback port nothing listens on: the guard proxy for traffic not meant for the emulator.
GUARD_PROXY = f"http://{HOST}:9"


@dataclass(frozen=True)
class Emulator:
    pid: int
    port: int
    workdir: Path

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def env(self, base: dict[str, str] | None = None, guard: bool = True) -> dict[str, str]:
        return aws_env(self.endpoint, self.workdir, base, guard)

    def client(self, service: str, region: str = REGION):
        """A boto3 client for ``service`` on the emulator (explicit endpoint and fake credentials).

        The caller's ``AWS_PROFILE`` is ignored: a profile this machine lacks must not stop a
        client that uses none of it."""
        import boto3
        import botocore.session

        core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})  # not read from AWS_PROFILE
        return boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=region, botocore_session=core,
        ).client(service, endpoint_url=self.endpoint)


def aws_env(endpoint: str, workdir: Path, base: dict[str, str] | None = None, guard: bool = True) -> dict[str, str]:
    """``base`` (default: os.environ) with every AWS setting replaced to point at ``endpoint`` only."""
    assert endpoint.startswith(f"http://{HOST}:"), f"the emulator endpoint must be on {HOST} (given {endpoint})"
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.startswith("AWS_") and k.upper() not in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")}
    empty = workdir / "aws-config-empty"
    workdir.mkdir(parents=True, exist_ok=True)
    empty.touch()
    env.update(FAKE_CREDENTIALS)
    env.update({
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
        # Every service of the SDKs (boto3, the AWS provider, Terraform's S3 backend).
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ENDPOINT_URL_STS": endpoint,
        "AWS_ENDPOINT_URL_IAM": endpoint,
    })
    if guard:
        for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env[key] = GUARD_PROXY
        env["NO_PROXY"] = env["no_proxy"] = f"{HOST},localhost"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def answers(port: int, timeout: float = 1.0) -> bool:
    """True when moto answers on ``port`` (its dashboard; ``/moto-api/data.json`` would serialize
    every backend, and the Lambda backend fails that without Docker)."""
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{HOST}:{port}/moto-api/", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load(workdir: Path = DEFAULT_DIR) -> Emulator | None:
    """The emulator recorded in ``workdir`` if it is still running and answering, else None."""
    path = workdir / STATE_FILE
    try:
        data = json.loads(path.read_text())
        emulator = Emulator(int(data["pid"]), int(data["port"]), workdir)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _alive(emulator.pid) and answers(emulator.port):
        return emulator
    return None


def start(workdir: Path = DEFAULT_DIR, timeout: float = 30.0) -> tuple[Emulator, bool]:
    """Start moto (or reuse the one recorded in ``workdir``); (emulator, started_now)."""
    running = load(workdir)
    if running is not None:
        return running, False
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "moto.log").open("ab")
    last_error = ""
    for _ in range(3):  # another process may take the free port between probe and bind
        port = free_port()
        env = aws_env(f"http://{HOST}:{port}", workdir, guard=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=workdir, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if answers(port, timeout=0.5):
                emulator = Emulator(proc.pid, port, workdir)
                (workdir / STATE_FILE).write_text(json.dumps(
                    {"pid": proc.pid, "port": port, "endpoint": emulator.endpoint}, indent=2) + "\n")
                return emulator, True
            time.sleep(0.2)
        last_error = f"moto exited with {proc.returncode}" if proc.poll() is not None else f"no answer within {timeout:.0f}s"
        _terminate(proc.pid)
    raise RuntimeError(f"could not start the emulator ({last_error}); see {workdir / 'moto.log'}")


def _terminate(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)  # our child: reap it
        except ChildProcessError:  # not our child (started by another command)
            finished = 0 if _alive(pid) else pid
        if finished:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _is_moto(pid: int) -> bool:
    """The recorded pid still belongs to a moto server (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _alive(pid)  # no /proc: trust the record
    return any(b"moto" in part for part in cmdline)


def stop(workdir: Path = DEFAULT_DIR) -> bool:
    """Stop the emulator recorded in ``workdir``; False when none was running."""
    path = workdir / STATE_FILE
    try:
        pid = int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    stopped = False
    if _alive(pid) and _is_moto(pid):
        _terminate(pid)
        stopped = True
    path.unlink(missing_ok=True)
    return stopped


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tooling.emulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "status", "stop"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state folder (default: .emulator/)")
    args = parser.parse_args(argv)
    if args.command == "start":
        emulator, started = start(args.dir)
        print(f"emulator {'started' if started else 'already running'}: {emulator.endpoint} (pid {emulator.pid})")
    elif args.command == "status":
        emulator = load(args.dir)
        print(f"emulator running: {emulator.endpoint} (pid {emulator.pid})" if emulator else "emulator not running")
        return 0 if emulator else 1
    else:
        print("emulator stopped" if stop(args.dir) else "emulator was not running")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
