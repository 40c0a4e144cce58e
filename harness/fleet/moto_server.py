"""moto's server on loopback, as an object the run owns, and boto3 clients that
can only ever reach it.

The server is a process of its own (harness/fleet/moto_main.py: moto's server
with its SQS made thread-safe) on 127.0.0.1, on a port the kernel picks (-p 0)
unless one is asked for. Before it starts, the run's manifest records it and
proves its secret label (OWNER_ENV in its environment); once it runs, its pid
and start time. `enirace cleanup` after a kill -9 of the run kills it by that
proof, and nothing else: a moto server the user started by hand, or another
live run's, carries no label of a dead run's."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import ownership
from harness.errors import UserError
from harness.ownership import Run

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account: every ARN it makes names it
START_TIMEOUT_S = 30.0
_RUNNING = re.compile(rb"Running on http://127\.0\.0\.1:(\d+)")
_IN_USE = re.compile(rb"Port (\d+) is in use")
INSTALL_FIX = "install it with: pip install 'moto[server]' boto3 (./setup.sh installs both)"


def missing() -> str | None:
    """Why moto's server cannot run here (one line with the fix), or None."""
    for module in ("moto.server", "flask", "boto3"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"moto server: {module.split('.')[0]} is not installed for {sys.executable}; {INSTALL_FIX}"
    return None


def _child_env(label: str) -> dict[str, str]:
    """The server's environment: no AWS settings of the user's (it needs none, and
    moto reads some, e.g. a default region), and the run's label."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("MOTO_")}
    env[ownership.OWNER_ENV] = label
    return env


class MotoServer:
    """start() -> the endpoint; stop() kills it and forgets it. A server that cannot
    start is a UserError naming the cause and the fix."""

    def __init__(self, run: Run, log_dir: Path, port: int = 0) -> None:
        self.run = run
        self.log_path = log_dir / "moto.log"
        self.requested_port = port
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.label = ownership.process_label(run.run_id)
        self.ident = f"moto-server:{self.label.split(':', 1)[1]}"

    @property
    def endpoint(self) -> str:
        assert self.port is not None, "the moto server is not started"
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> str:
        why = missing()
        if why:
            raise UserError(why)
        self.run.record("process", self.ident)
        self.run.prove("process", self.ident, label=self.label)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "harness.fleet.moto_main", "-H", "127.0.0.1", "-p", str(self.requested_port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=_child_env(self.label),
                start_new_session=True, cwd=self.log_path.parent)
        start = ownership.process_start(self.proc.pid)
        self.run.prove("process", self.ident, pid=self.proc.pid, start=start, label=self.label)
        try:
            self.port = self._wait_running(timeout_s)
            self._wait_answering(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.endpoint

    def _wait_running(self, timeout_s: float) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.log_path.read_bytes()
            found = _RUNNING.search(text)
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                raise UserError(self._why_it_exited(text))
            if time.monotonic() > deadline:
                raise UserError(f"moto server: not listening after {timeout_s:.0f}s (see {self.log_path}); "
                                "is the machine overloaded? try again")
            time.sleep(0.02)

    def _why_it_exited(self, text: bytes) -> str:
        taken = _IN_USE.search(text)
        if taken:
            return (f"moto server: port {taken.group(1).decode()} on 127.0.0.1 is taken by another program; "
                    "free it or let enirace pick a free port (port 0)")
        last = next((ln for ln in reversed(text.decode(errors="replace").splitlines()) if ln.strip()), "no output")
        return f"moto server: exited with code {self.proc.returncode if self.proc else '?'} ({last.strip()[:160]}); " \
               f"see {self.log_path}; {INSTALL_FIX} if moto is broken"

    def _wait_answering(self, timeout_s: float) -> None:
        """Werkzeug prints its line before it serves; ask until SQS answers."""
        client = sqs_client(self.endpoint)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.list_queues()
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise UserError(f"moto server: {self.endpoint} does not answer SQS ({type(exc).__name__}); "
                                    f"see {self.log_path}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self.run.forget("process", self.ident)

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sqs_client(endpoint: str, max_connections: int = 10) -> Any:
    """A boto3 SQS client that can only reach `endpoint` (loopback): dummy
    credentials, a fixed region, no retries of its own (the caller decides), and
    none of the user's AWS settings: no profile, config or credentials file, no
    AWS_* variable, no proxy."""
    import boto3
    import botocore.session
    from botocore.config import Config

    if not endpoint.startswith("http://127.0.0.1:"):
        raise ValueError(f"{endpoint}: enirace's SQS clients talk to loopback only")
    # (config name, environment variable, default, conversion): none read from the environment.
    core = botocore.session.Session(session_vars={
        "profile": (None, None, None, None),
        "config_file": (None, None, os.devnull, None),
        "credentials_file": (None, None, os.devnull, None),
        "ignore_configured_endpoint_urls": (None, None, True, None),
    })
    session = boto3.session.Session(botocore_session=core, aws_access_key_id="enirace",
                                    aws_secret_access_key="enirace", aws_session_token=None, region_name=REGION)
    config = Config(region_name=REGION, retries={"max_attempts": 1, "mode": "standard"}, proxies={},
                    max_pool_connections=max_connections, connect_timeout=5, read_timeout=60,
                    parameter_validation=True)
    return session.client("sqs", endpoint_url=endpoint, config=config)
