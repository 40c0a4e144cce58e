"""One emulator under test, two ways of running it, the same expected bytes.

`target` is parametrized: "sandbox" is the trial's emulator (RuntimeAPI serving in a
real lab sandbox, the runtime started by the process launcher; root), "dropin" is
`enirace-rie` as a subprocess on loopback with ports of its own (no root). A test
starts it with a bootstrap, then plays the runtime (and the invoke client) over
plain HTTP, so every status, header and body is checked on the wire."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.emulator.protocol import INVOKE_PATH
from harness.function.spec import LaunchSpec
from harness.history.recorder import History

API = "/2018-06-01"
SLEEPER = "import time\ntime.sleep(60)\n"


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached"
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reply:
    def __init__(self, resp: http.client.HTTPResponse) -> None:
        self.status = resp.status
        self.headers = resp.headers  # case-insensitive, repeated names kept
        self.body = resp.read()

    def __repr__(self) -> str:
        return f"Reply({self.status}, {dict(self.headers)}, {self.body[:200]!r})"


class Pending:
    """An invoke in flight on its own connection."""

    def __init__(self, conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> None:
        self.reply: Reply | None = None
        self.error: BaseException | None = None

        def _run() -> None:
            try:
                conn.request("POST", INVOKE_PATH, body=body, headers=headers)
                self.reply = Reply(conn.getresponse())
            except BaseException as exc:  # noqa: BLE001 (reported by result())
                self.error = exc

        self._thread = threading.Thread(target=_run, daemon=True)
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self, timeout: float = 15.0) -> Reply:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the invoke was not answered"
        if self.error is not None:
            raise self.error
        assert self.reply is not None
        return self.reply


class Target:
    kind = ""
    runtime_port = 9001

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.events = tmp_path / "extension-events"  # written by extensions/gate.py

    def _connect(self, port: int, timeout: float) -> http.client.HTTPConnection:
        raise NotImplementedError

    def inits(self) -> int:
        raise NotImplementedError

    def start(self, script: str, timeout_s: int = 2, argv: list[str] | None = None,
              extensions: list[Path] | None = None) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def bootstrap(self, script: str) -> Path:
        path = self.tmp_path / "bootstrap.py"
        path.write_text(textwrap.dedent(script))
        return path

    def rt(self, timeout: float = 15.0) -> http.client.HTTPConnection:
        """A keep-alive connection to the Runtime API, as a runtime's HTTP client."""
        return self._connect(self.runtime_port, timeout)

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None, conn: http.client.HTTPConnection | None = None) -> Reply:
        conn = conn or self.rt()
        conn.request(method, path, body=body, headers=headers or {})
        return Reply(conn.getresponse())

    def invoke(self, body: bytes = b"{}", headers: dict[str, str] | None = None) -> Pending:
        return Pending(self._connect(self.invoke_port, 30.0), body, headers or {})

    def wait_init(self, n: int = 1) -> None:
        wait_for(lambda: self.inits() >= n, what=f"runtime start #{n}")

    def next_event(self, conn: http.client.HTTPConnection | None = None) -> tuple[Reply, str]:
        reply = self.call("GET", f"{API}/runtime/invocation/next", conn=conn)
        assert reply.status == 200, reply
        return reply, reply.headers["Lambda-Runtime-Aws-Request-Id"]

    def poll_next_in_background(self) -> None:
        """A runtime's next /next after its result: the RIE answers the invoke then."""
        def _poll() -> None:
            try:
                self.call("GET", f"{API}/runtime/invocation/next", conn=self.rt(timeout=60))
            except (OSError, http.client.HTTPException):
                pass  # the emulator stopped
        threading.Thread(target=_poll, daemon=True).start()


class SandboxTarget(Target):
    kind = "sandbox"
    invoke_port = 8080

    def __init__(self, tmp_path: Path, lab: Any) -> None:
        super().__init__(tmp_path)
        self.lab = lab
        self.history = History()
        self.output: list[str] = []
        self.api: Any = None

    def _connect(self, port: int, timeout: float) -> http.client.HTTPConnection:
        from harness.lab import netns

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        with netns.entered(self.lab.sandbox):
            conn.connect()
        return conn

    def inits(self) -> int:
        return len(self.history.of_kind("init_start"))

    def start(self, script: str, timeout_s: int = 2, argv: list[str] | None = None,
              extensions: list[Path] | None = None) -> None:
        from harness.backends.process import ProcessLauncher
        from harness.emulator.api import RuntimeAPI

        boot = self.bootstrap(script)
        env = {"PATH": os.environ["PATH"], "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
               "GATE_EVENTS": str(self.events),
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONUNBUFFERED": "1"}
        launcher = ProcessLauncher(self.lab.sandbox, lambda gen, line: self.output.append(f"{gen}:{line}"))
        spec = LaunchSpec(argv or [sys.executable, str(boot)], env, self.tmp_path, "bootstrap.py")
        exts = [LaunchSpec([sys.executable, str(p)], env, self.tmp_path, p.name) for p in extensions or []]
        self.api = RuntimeAPI(self.lab.sandbox, self.history, launcher.spawn, spec, timeout_s=timeout_s,
                              extensions=exts, handler="app.handler")
        self.api.start()

    def stop(self) -> None:
        if self.api is not None:
            self.api.stop()


class DropinTarget(Target):
    """`enirace-rie` on loopback; its stderr (the rapid lines) and stdout are kept."""

    kind = "dropin"

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.invoke_port, self.runtime_port = free_port(), free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.err: list[str] = []
        self.out: list[str] = []

    def _connect(self, port: int, timeout: float) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.connect()
        return conn

    def inits(self) -> int:
        return sum("INIT START(" in line for line in list(self.err))

    def start(self, script: str, timeout_s: int = 2, argv: list[str] | None = None,
              extensions: list[Path] | None = None, log_level: str = "info",
              prefix: list[str] | None = None) -> None:
        boot = self.bootstrap(script)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_LAMBDA_FUNCTION_TIMEOUT=str(timeout_s), PYTHONUNBUFFERED="1", GATE_EVENTS=str(self.events))
        self.proc = subprocess.Popen(
            [*(prefix or []), sys.executable, "-m", "harness.emulator.dropin", "--log-level", log_level,
             "--runtime-interface-emulator-address", f"127.0.0.1:{self.invoke_port}",
             f"--runtime-api-address=127.0.0.1:{self.runtime_port}", *(argv or [sys.executable, str(boot)])],
            cwd=self.tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=lambda s=stream, k=sink: [k.append(ln.rstrip("\n")) for ln in s],
                             daemon=True).start()
        for port in (self.invoke_port, self.runtime_port):
            wait_for(lambda p=port: _listening(p), what=f"enirace-rie listening on {port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@pytest.fixture(params=[pytest.param("sandbox", marks=pytest.mark.root), "dropin"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    t: Target
    if request.param == "sandbox":
        t = SandboxTarget(tmp_path, request.getfixturevalue("enirace_lab"))
    else:
        t = DropinTarget(tmp_path)
    try:
        yield t
    finally:
        t.stop()


@pytest.fixture
def dropin(tmp_path: Path) -> Iterator[DropinTarget]:
    t = DropinTarget(tmp_path)
    try:
        yield t
    finally:
        t.stop()
