"""The Runtime API emulator: one RIE-compatible endpoint per trial, bound inside
the sandbox (127.0.0.1:9001 for the runtime, 0.0.0.0:8080 for RIE-style invokes),
served by threads of the harness so lifecycle events cost no IPC.

Lifecycle, as the RIE runs it: the first /next of a runtime ends its init. An
init failure (posted /init/error, or an exit before /next) inside an invoke is
retried once when it was the environment's first init, as RIE and Lambda do. A
timeout SIGKILLs the runtime's process group; the next invoke re-inits.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness import signals
from harness.emulator import ext_api
from harness.emulator import http as rie_http
from harness.emulator import protocol as rp
from harness.emulator.ext_api import ExtensionEndpoints
from harness.emulator.extensions import Extensions
from harness.emulator.freeze import Freezing
from harness.emulator.restore import Plan, RestoreEndpoints
from harness.emulator.routes import Handler  # noqa: E402  (below the lab layer on purpose)
from harness.function.handle import RuntimeHandle
from harness.function.spec import RUNTIME_ADDR, LaunchSpec
from harness.history import schema
from harness.history.recorder import History
from harness.lab.netserver import NamespacedTCPServer

INVOKE_ADDR = ("0.0.0.0", 8080)

Spawner = Callable[[LaunchSpec, int], RuntimeHandle]


@dataclass
class Invocation:
    n: int
    payload: bytes
    deadline_mono: float
    deadline_epoch_ms: int
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    outcome: rp.InvokeOutcome | None = None
    client_context: str = ""  # X-Amz-Client-Context, decoded
    tenant_id: str = ""
    # The RIE answers the invoke once the runtime (and every extension) polls next again.
    released: bool = False


class RuntimeAPI(RestoreEndpoints, ExtensionEndpoints):
    def __init__(self, sandbox: str | None, history: History, spawn: Spawner, launch: LaunchSpec,
                 timeout_s: float, init_timeout_s: float = 10.0,
                 function_name: str = "test_function", log: Callable[[str], None] | None = None,
                 runtime_addr: tuple[str, int] = RUNTIME_ADDR, invoke_addr: tuple[str, int] = INVOKE_ADDR,
                 freeze: bool = False, extensions: list[LaunchSpec] | None = None,
                 handler: str = "", snapstart: Plan | None = None) -> None:
        # sandbox None: listen in the caller's own namespace (the enirace-rie drop-in).
        self.sandbox = sandbox
        self.runtime_addr = runtime_addr
        self.invoke_addr = invoke_addr
        self.history = history
        self._spawn = spawn
        self.launch = launch
        self.timeout_s = timeout_s
        self.init_timeout_s = init_timeout_s
        self.arn = f"arn:aws:lambda:us-east-1:012345678912:function:{function_name}"
        self.log = log or (lambda line: None)
        self._cv = threading.Condition()
        self._invoke_lock = threading.Lock()
        self._gen = 0
        self._proc: RuntimeHandle | None = None
        # none | starting | ready | running | responded | init_error | exited
        self._state = "none"
        self._init_error: bytes = b""
        self._exit_code: int | None = None
        self._exit_oom = False
        self._pending: Invocation | None = None
        self._current: Invocation | None = None
        self._inits = 0
        self._invokes = 0
        self._stopping = False
        self._servers: list[NamespacedTCPServer] = []
        self._freezing = Freezing(history, freeze, self.log, sandbox)  # Lambda's freeze; False: the RIE's way
        self._restore_setup(snapstart)  # SnapStart (harness/emulator/restore.py); None: on-demand
        self.extensions = Extensions()
        self._ext_specs = list(extensions or [])
        self._ext_procs: list[RuntimeHandle] = []
        self.function_name = function_name
        self.handler = handler
        # (method, path, headers, role) of every request: the drop-in's debug access log.
        self.access_log: Callable[[str, str, Any, str], None] = lambda *a: None

    # -- listeners --------------------------------------------------------------

    def start(self, serve_invoke_port: bool = True) -> None:
        runtime = NamespacedTCPServer(self.sandbox, self.runtime_addr, Handler, api=self, role="runtime")
        runtime.start("runtime-api")
        self._servers.append(runtime)
        if serve_invoke_port:
            invoke = NamespacedTCPServer(self.sandbox, self.invoke_addr, Handler, api=self, role="invoke")
            invoke.start("rie-invoke")
            self._servers.append(invoke)

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._freezing.thaw("shutdown")  # a paused container cannot be killed
            proc, self._proc = self._proc, None
            self.extensions.dispatch_shutdown("spindown", ext_api.SHUTDOWN_GRACE_S)
            self._cv.notify_all()
        if proc is not None:
            proc.kill_group()
            proc.wait()
        self._stop_extensions(ext_api.SHUTDOWN_GRACE_S)
        for server in self._servers:
            server.stop()
        self._servers.clear()
        self._freezing.close()

    # -- runtime processes --------------------------------------------------------

    def _start_runtime(self, phase: str) -> None:
        """Spawn a bootstrap (caller holds the lock)."""
        self._gen += 1
        self._inits += 1
        self._state = "starting"
        self._init_error = b""
        self._exit_code = None
        self._exit_oom = False
        self._stop_extensions(0.0)
        self.extensions.reset()
        # Uninterruptible until the runtime and its watcher are both known: a Ctrl-C
        # in between would leave a process (and its cgroup) that stop() never sees.
        with signals.deferred():
            proc = self._spawn(self.launch, self._gen)
            self._proc = proc
            started = proc.started_ns()  # init_start + X then counts from the bootstrap's start
            self.history.record(schema.INIT_START, t_ms=None if started is None else self.history.ms_at(started),
                                generation=self._gen, phase=phase, pid=proc.pid, command=self.launch.description)
            threading.Thread(target=self._watch, args=(proc,), daemon=True,
                             name=f"runtime-{self._gen}-watch").start()
            # Extension processes of this generation are numbered 1000*gen + 1, + 2, ...
            self._ext_procs = [self._spawn(spec, self._gen * 1000 + i + 1)
                               for i, spec in enumerate(self._ext_specs)]
            self.extensions.expected = len(self._ext_procs)

    def _watch(self, proc: RuntimeHandle) -> None:
        code = proc.wait()
        oom = proc.oom_killed()  # the process backend's cgroup knows (function.memory_mb)
        reason = rp.exit_reason(code) + (" (out of memory: over function.memory_mb)" if oom else "")
        with self._cv:
            self._freezing.forget(proc)
            if proc is not self._proc:
                # Killed on purpose (timeout, shutdown); _kill already recorded the reset.
                self.history.record(schema.RUNTIME_EXIT, generation=proc.generation, code=code,
                                    during="killed", reason=reason, oom=oom)
                return
            during = self._state
            self.history.record(schema.RUNTIME_EXIT, generation=proc.generation, code=code, during=during,
                                reason=reason, oom=oom)
            self._exit_code, self._exit_oom = code, oom
            self._proc = None
            if during == "starting":
                etype, msg = (rp.exit_error_type(oom), rp.exit_reason(code))
                self.history.record(schema.INIT_ERROR, generation=proc.generation, source="exit",
                                    error_type=etype, error_message=msg)
            elif during == "running" and self._current and not self._current.outcome:
                inv = self._current
                self._finish(inv, rp.InvokeOutcome("crash", rp.exit_error_body(inv.request_id, code, oom),
                                                   error_type=rp.exit_error_type(oom),
                                                   error_message=rp.exit_reason(code)))
                self.history.record(schema.RESET, reason="runtime_exit", generation=proc.generation)
            elif during == "responded" and self._current and not self._current.released:
                assert self._current.outcome is not None
                self._current.outcome.exited_after_reply = True
                self._release(self._current)
            self._state = "exited"
            self._cv.notify_all()

    def _kill(self, reason: str) -> None:
        """SIGKILL the runtime's process group (caller holds the lock)."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None  # tells its watcher the exit was ours
        self._state = "exited"
        proc.kill_group()
        self._stop_extensions(0.0)  # a reset ends the whole runtime domain, as the RIE's does
        self.history.record(schema.RESET, reason=reason, generation=proc.generation, pid=proc.pid)

    def _await_init(self, deadline: float) -> str:
        """Wait for the starting runtime to become ready. Returns ready|failed|timeout."""
        gen = self._gen
        while True:
            if self._gen != gen or self._state == "exited":
                return "failed"
            if self._state == "restore_ready" or self._state == "ready" and self.extensions.all_waiting():
                self.extensions.open = False
                return "ready"
            if self._state == "init_error" and self._proc is None:
                return "failed"
            # After /init/error the RIE waits for the runtime to exit or the deadline.
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stopping:
                return "timeout"
            self._cv.wait(remaining)

    def init(self) -> str:
        """Eager init (Lambda's init phase, limited to init_timeout_s)."""
        with self._cv:
            self._start_runtime("init")
            result = self._await_init(time.monotonic() + self.init_timeout_s)
            if result == "timeout":
                self.history.record(schema.INIT_ERROR, generation=self._gen, source="timeout",
                                    error_type="Runtime.InitTimeout",
                                    error_message=f"init exceeded {self.init_timeout_s:.1f} s")
                self._kill("init_timeout")
            return result

    # -- invocations --------------------------------------------------------------------

    def invoke(self, payload: bytes, client_context: str = "", tenant_id: str = ""
               ) -> tuple[int, rp.InvokeOutcome]:
        """Deliver one event and wait for its outcome.

        Invocations are serialised, as Lambda runs one per environment; the real RIE
        crashes on a concurrent invoke instead (a nil-pointer panic kills the process)."""
        with self._invoke_lock:
            return self._invoke(payload, client_context, tenant_id)

    def _init_within(self, inv: Invocation) -> tuple[list[int], bool]:
        """Start the runtime inside the invoke (retried once on the environment's
        first init); finishes `inv` when the init fails. (generations, reinit)."""
        starts: list[int] = []
        reinit = False
        attempts = 2 if self._inits == 0 else 1
        result, first_error = "failed", b""
        for _ in range(attempts):
            reinit = reinit or self._inits > 0
            self._start_runtime("invoke")
            starts.append(self._gen)
            result = self._await_init(inv.deadline_mono)
            first_error = first_error or self._init_error
            if result != "failed":
                break
        if result == "timeout":
            self._kill("timeout")
            self._finish(inv, self._timeout_outcome())
        elif result == "failed":
            # The retry's /init/error, else the first attempt's (the RIE's cached init error).
            body = self._init_error or first_error
            etype, msg = rp.parse_function_error(body) if body else (
                rp.exit_error_type(self._exit_oom), rp.exit_reason(self._exit_code or 0))
            self._finish(inv, rp.InvokeOutcome("init_error", body, error_type=self._init_error_type or etype,
                                               error_message=msg))
        return starts, reinit

    def _invoke(self, payload: bytes, client_context: str, tenant_id: str) -> tuple[int, rp.InvokeOutcome]:
        with self._cv:
            self._invokes += 1
            n = self._invokes
            now = time.monotonic()
            inv = Invocation(n, payload, now + self.timeout_s, int((time.time() + self.timeout_s) * 1000),
                             client_context=client_context, tenant_id=tenant_id)
            self.history.record(schema.INVOKE_START, n=n, request_id=inv.request_id)
            self.log(f"START RequestId: {inv.request_id} Version: $LATEST")
            starts: list[int] = []
            reinit = False
            if self._state not in ("ready", "responded", "restore_ready"):
                starts, reinit = self._init_within(inv)
            if self._state == "restore_ready" and not inv.released:
                self._restore_within(inv)  # SnapStart: the snapshot is restored for this invocation
            if not inv.released:
                self._pending = inv
                self._cv.notify_all()
                while not inv.released:
                    remaining = inv.deadline_mono - time.monotonic()
                    if remaining <= 0 or self._stopping:
                        self.history.record(schema.TIMEOUT, n=n, request_id=inv.request_id)
                        self._pending = None
                        self._kill("timeout")
                        inv.outcome = None  # a response not yet released is lost, as under the RIE
                        self._finish(inv, self._timeout_outcome())
                        break
                    self._cv.wait(remaining)
            outcome = inv.outcome
            assert outcome is not None
            outcome.reinit = reinit
            outcome.init_starts = starts
            self.history.record(schema.INVOKE_END, n=n, request_id=inv.request_id, status=outcome.status,
                                error_type=outcome.error_type, error_message=outcome.error_message,
                                reinit=reinit, init_starts=starts,
                                body=outcome.body[:2000].decode("utf-8", "replace"),
                                duration_ms=round((time.monotonic() - now) * 1000, 3))
            if outcome.status in ("ok", "error", "timeout") and not outcome.exited_after_reply:
                self.log(f"END RequestId: {inv.request_id}")
            return n, outcome

    def _timeout_outcome(self) -> rp.InvokeOutcome:
        return rp.InvokeOutcome("timeout", rp.timeout_body(self.timeout_s),
                                content_type="text/plain; charset=utf-8", error_type="Timeout",
                                error_message=f"Task timed out after {self.timeout_s:.2f} seconds")

    def _finish(self, inv: Invocation, outcome: rp.InvokeOutcome, release: bool = True) -> None:
        """Set the outcome (the first one wins); `release` answers the invoke now
        (a crash, a timeout, a failed init), else at the runtime's next /next."""
        if inv.outcome is None:
            inv.outcome = outcome
        if release:
            self._release(inv)
        self._cv.notify_all()

    def _release(self, inv: Invocation) -> None:
        inv.released = True
        self._cv.notify_all()

    def _maybe_release(self) -> None:
        """The RIE releases an answered invoke once the runtime and every extension
        wait on next (caller holds the lock)."""
        cur = self._current
        if (cur is not None and cur.outcome is not None and not cur.released
                and self._state == "ready" and self.extensions.all_waiting()):
            self._release(cur)

    # -- Runtime API endpoints (called from handler threads) ----------------------------

    def next_invocation(self) -> Invocation | tuple[int, bytes] | None:
        with self._cv:
            gen = self._gen
            if self._state == "init_error":
                return rp.invalid_transition("InitError", "Ready")
            if self._state in ("starting", "restoring"):
                self._state = "ready"
                self.history.record(schema.RUNTIME_READY, generation=gen)
                self._cv.notify_all()
            elif self._state == "running" and self._current is not None:
                return self._current  # RIE re-renders the current event
            elif self._state in ("responded", "ready"):
                self._state = "ready"
                self._maybe_release()
            while self._pending is None:
                if self._gen != gen or self._stopping:
                    return None  # the runtime was replaced: drop the connection
                # Lambda freezes only when every extension waits on its next as well.
                if not self._freezing.maybe_freeze(self._proc, self.can_freeze(), self._ext_procs):
                    self._cv.wait()
            if self._gen != gen:
                return None
            inv, self._pending = self._pending, None
            self._current = inv
            self._state = "running"
            self._freezing.thaw("invoke", inv, self.timeout_s)
            self.extensions.dispatch_invoke(inv.request_id, inv.deadline_epoch_ms, self.arn)
            self._cv.notify_all()  # wake the extensions waiting on event/next
            return inv

    def post_result(self, request_id: str, kind: str, req: rie_http.Body, headers: Any
                    ) -> tuple[int, bytes]:
        """/response or /error for `request_id`. Whatever ends the invocation here
        (a result, a bad response mode, a response over the limit) ends it once:
        a later post is refused and the event is never delivered again."""
        with self._cv:
            cur = self._current
            if cur is None or cur.request_id != request_id:
                return rp.invalid_request_id()
            dst = "InvocationResponse" if kind == "response" else "InvocationErrorResponse"
            if self._state != "running" or cur.outcome is not None:
                return rp.invalid_transition(rp.state_name(self._state), dst)
            outcome, reply = rp.result_outcome(kind, req.data, req.size, req.trailers, headers)
            if outcome is not None:
                self._finish(cur, outcome, release=False)
                self._state = "responded"
            return reply

    def post_init_error(self, body: bytes, headers: Any) -> tuple[int, bytes]:
        with self._cv:
            if self._state != "starting":
                return rp.invalid_transition(rp.state_name(self._state), "InitError")
            self._state = "init_error"
            self._init_error = body
            etype, msg = rp.parse_function_error(body)
            self.history.record(schema.INIT_ERROR, generation=self._gen, source="init/error",
                                error_type=self._note_init_error(etype, headers),
                                error_message=msg)
            self._cv.notify_all()
            return 202, rp.ACCEPTED

