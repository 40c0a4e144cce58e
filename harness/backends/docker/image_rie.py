"""`docker.rie: image`: the image's own /usr/local/bin/aws-lambda-rie runs in the
sandbox, and the harness derives the lifecycle events from its log lines.

The container is started without AWS_LAMBDA_RUNTIME_API, so the image's entrypoint
runs its RIE, which listens on 0.0.0.0:8080 and 127.0.0.1:9001 inside the sandbox.
The harness invokes through a socket created in the sandbox namespace (loopback: an
ENI fault never touches that path) and reads the RIE's output with Docker's
per-line receive timestamps, mapped onto the trial's clock.

Precision lost against the harness's own emulator (docs/docker.md): event times are
those at which dockerd read the line (plus the RIE's own logging delay), not the
moment of the Runtime API call; init is lazy (the RIE inits at the first invoke, so
`workload.init: eager` has no effect); the timeout is whole seconds; a function
error is recognised by its body's shape (the RIE returns 200 with no error header).
"""

from __future__ import annotations

import http.client
import math
import re
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from harness.backends.docker import cleanup as docker_cleanup
from harness.backends.docker import engine as de
from harness.backends.docker.containers import ContainerLauncher, container_env, follow_logs
from harness.backends.docker.lab import DockerLab
from harness.emulator import protocol as rp
from harness.emulator import rie_log as rie_log
from harness.errors import UserError
from harness.function.spec import LaunchSpec
from harness.history import schema
from harness.history.recorder import History
from harness.lab import netns

RIE_PATH = "/usr/local/bin/aws-lambda-rie"
INVOKE_PORT = 8080
READY_TIMEOUT_S = 15.0
# After the invoke's response, how long to wait for the RIE's closing log line
# (END, Reset, Invoke failed) so the invocation's init starts are all counted.
SETTLE_S = 0.3
_TS_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z (.*)$", re.S)
_FIELD_ERROR = re.compile(r"\berror=(\S+)")


def parse_docker_timestamp(line: str) -> tuple[int | None, str]:
    """(epoch ns, text) from a `docker logs --timestamps` line."""
    m = _TS_RE.match(line)
    if not m:
        return None, line
    secs = int(datetime.fromisoformat(m.group(1) + "+00:00").timestamp())
    frac = (m.group(2) or "0")[:9].ljust(9, "0")
    return secs * 1_000_000_000 + int(frac), m.group(3)


class ImageRieAPI:
    """The RuntimeAPI interface (start, init, invoke, stop) over an image's real RIE."""

    def __init__(self, lab: DockerLab, launcher: ContainerLauncher, history: History, launch: LaunchSpec,
                 timeout_s: float, output: Callable[[int, str], None], emulator_log: Callable[[str], None]
                 ) -> None:
        self.lab = lab
        self.launcher = launcher
        self.history = history
        self.launch = launch
        self.timeout_s = max(1, math.ceil(timeout_s))  # the RIE reads whole seconds
        self.output = output
        self.emulator_log = emulator_log
        self._cv = threading.Condition()
        self._invoke_lock = threading.Lock()
        self._gen = 0
        self._init_failed: set[int] = set()
        self._closing_lines = 0
        self._invokes = 0
        self._current: int | None = None
        self._container: str | None = None
        self._pump: threading.Thread | None = None
        # Docker timestamps are wall-clock; the history runs on the monotonic clock.
        self._wall_minus_mono = time.time_ns() - time.monotonic_ns()
        self._lag_ms = 0.0

    # -- the RIE container --------------------------------------------------------------

    def start(self) -> None:
        api = de.client().api
        env = container_env(self.launch)
        env.pop("AWS_LAMBDA_RUNTIME_API", None)  # so the entrypoint runs the image's RIE
        env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = str(self.timeout_s)
        args = self.launcher.create_args(self.launch, f"{self.lab.sandbox}-rie",
                                         f"container:{self.launcher.sandbox_container}", env=env)
        cid = docker_cleanup.create_container(self.lab.run, **args)
        self._container = cid
        try:
            api.get_archive(cid, RIE_PATH)
        except Exception:
            raise UserError(f"docker.rie=image: image {self.launcher.image} has no {RIE_PATH}; use an image "
                            f"with the RIE (the official AWS base images, or python-rie: enirace-rie "
                            f"installed there)") from None
        api.start(cid)
        self._pump = follow_logs(cid, self._on_raw, timestamps=True)
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                self._connect(timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError(f"the image's RIE did not listen on :{INVOKE_PORT} within {READY_TIMEOUT_S:.0f} s")

    def _connect(self, timeout: float) -> socket.socket:
        sock = netns.socket_in(self.lab.sandbox, socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(("127.0.0.1", INVOKE_PORT))
        except OSError:
            sock.close()
            raise
        return sock

    def init(self) -> str:
        """The real RIE has no eager init: the first invoke runs it."""
        return "lazy"

    def stop(self) -> None:
        if self._container is not None:
            api = de.client().api
            try:
                api.kill(self._container)
            except Exception:
                pass
            if self._pump is not None:
                self._pump.join(timeout=2)
            try:
                api.remove_container(self._container, force=True)
                self.lab.run.forget("container", f"{self.lab.sandbox}-rie")
            except Exception:
                pass  # DockerLab.down removes (and forgets) whatever of the lab is left
            self._container = None

    # -- log lines → lifecycle events -----------------------------------------------------

    def _t_ms(self, wall_ns: int | None) -> float:
        now = self.history.now_ms()
        if wall_ns is None:
            return now
        return min(now, self.history.ms_at(wall_ns - self._wall_minus_mono))

    def _on_raw(self, raw: bytes) -> None:
        wall_ns, text = parse_docker_timestamp(raw.decode("utf-8", "replace").rstrip("\r"))
        line = rie_log.classify_line(text)
        if line.kind == "output":
            self.output(self._gen, text)
            return
        self.emulator_log(text)
        with self._cv:
            t_ms = self._t_ms(wall_ns)
            # How much later than dockerd's receive time the harness saw the line.
            self._lag_ms = round(self.history.now_ms() - t_ms, 3)
            self._on_line(line, t_ms)
            self._cv.notify_all()

    def _on_line(self, line: rie_log.RieLine, t_ms: float) -> None:
        f = line.fields
        if line.kind in ("end",) or line.event in ("reset", "invoke_failed"):
            self._closing_lines += 1
        rec = self._record
        if line.event == "init_start":
            self._gen += 1
            rec(schema.INIT_START, t_ms, phase="invoke", rie_phase=f["phase"], pid=None,
                command=f"{RIE_PATH} (image {self.launcher.image})")
        elif line.event == "init_done" and f["status"] == "success":
            rec(schema.RUNTIME_READY, t_ms)
        elif line.event in ("init_done", "init_failed") and self._gen not in self._init_failed:
            self._init_failed.add(self._gen)
            m = _FIELD_ERROR.search(f.get("rest", "") or "")
            rec(schema.INIT_ERROR, t_ms, source="rie-log", error_type=m.group(1) if m else "Runtime.InitError",
                error_message=f.get("message", ""))
        elif line.event == "process_exit":
            rec(schema.RUNTIME_EXIT, t_ms, code=None, during="rie", reason=f["reason"])
        elif line.event == "reset":
            reason = f["reason"]
            if reason == "Timeout":
                self.history.record(schema.TIMEOUT, t_ms=t_ms, n=self._current, request_id="")
            rec(schema.RESET, t_ms, reason=reason.lower())

    def _record(self, kind: str, t_ms: float, **fields: Any) -> None:
        """A lifecycle event from a log line, with how late the harness saw that line."""
        self.history.record(kind, t_ms=t_ms, generation=self._gen, log_lag_ms=self._lag_ms, **fields)

    # -- invocations ------------------------------------------------------------------------

    def invoke(self, payload: bytes) -> tuple[int, rp.InvokeOutcome]:
        with self._invoke_lock:
            return self._invoke(payload)

    def _post(self, payload: bytes) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", INVOKE_PORT, timeout=self.timeout_s + 10)
        conn.sock = self._connect(timeout=self.timeout_s + 10)
        try:
            conn.request("POST", rp.INVOKE_PATH, body=payload, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def _invoke(self, payload: bytes) -> tuple[int, rp.InvokeOutcome]:
        with self._cv:
            self._invokes += 1
            n = self._current = self._invokes
            gen_before, closing_before = self._gen, self._closing_lines
        started = time.monotonic()
        self.history.record(schema.INVOKE_START, n=n, request_id="")
        try:
            status, body = self._post(payload)
        except OSError as exc:
            status, body = 0, f"the RIE dropped the invoke: {exc}".encode()
        with self._cv:
            settle = time.monotonic() + SETTLE_S
            while self._closing_lines == closing_before and time.monotonic() < settle:
                self._cv.wait(settle - time.monotonic())
            starts = list(range(gen_before + 1, self._gen + 1))
            init_failed = any(g in self._init_failed for g in starts)
            self._current = None
        outcome = classify_response(status, body, init_failed)
        outcome.init_starts = starts
        outcome.reinit = any(g > 1 for g in starts)
        self.history.record(schema.INVOKE_END, n=n, request_id="", status=outcome.status,
                            error_type=outcome.error_type, error_message=outcome.error_message,
                            reinit=outcome.reinit, init_starts=starts, http_status=status,
                            body=outcome.body[:2000].decode("utf-8", "replace"),
                            duration_ms=round((time.monotonic() - started) * 1000, 3))
        return n, outcome


def classify_response(status: int, body: bytes, init_failed: bool) -> rp.InvokeOutcome:
    """What an RIE invoke response means: 200 carries a result, a function error or
    `Task timed out after N.00 seconds`; 502 a runtime crash or a failed init."""
    if status == 200:
        if body.startswith(b"Task timed out after"):
            return rp.InvokeOutcome("timeout", body, "text/plain; charset=utf-8", "Timeout", body.decode())
        etype, msg = _function_error(body)
        if etype:
            return rp.InvokeOutcome("error", body, error_type=etype, error_message=msg)
        return rp.InvokeOutcome("ok", body)
    etype, msg = rp.parse_function_error(body) if body else ("", "")
    if status == 502:
        kind = "init_error" if init_failed else "crash"
        return rp.InvokeOutcome(kind, body, error_type=etype or "Runtime.ExitError",
                                error_message=msg or "the runtime exited (empty 502 from the RIE)")
    return rp.InvokeOutcome("crash", body, error_type=etype or f"HTTP {status}",
                            error_message=msg or body.decode("utf-8", "replace")[:500])


def _function_error(body: bytes) -> tuple[str, str]:
    """A runtime's error document: a JSON object with errorType and errorMessage."""
    import json

    try:
        doc: Any = json.loads(body or b"null")
    except ValueError:
        return "", ""
    if isinstance(doc, dict) and "errorType" in doc and "errorMessage" in doc:
        return rp.parse_function_error(body)
    return "", ""
