"""SnapStart in the emulator: the restore endpoints and the restore itself.

The protocol, as Lambda and the RIE (`--enable-init-caching`) run it:

- the runtime is started with AWS_LAMBDA_INITIALIZATION_TYPE=snap-start; after its
  init and its before-snapshot hooks it calls GET /2018-06-01/runtime/restore/next
  (allowed only in the runtime's Started state; elsewhere 403 InvalidStateTransition
  "State transition from <state> to Ready failed ...", the RIE's wording);
- restore/next blocks: the emulator records `snapshot` and freezes the environment
  (state RestoreReady). A failing before-snapshot hook never gets here: the runtime
  posts /init/error with Lambda-Runtime-Function-Error-Type Runtime.BeforeSnapshotError
  (the init fails with that type) and exits;
- the first invocation restores it: snapstart.restore_after has passed since the
  snapshot (a wall-clock wait, frozen), the network changes are applied (a new ENI
  with a new address, every flow forgotten by the NAT and dropped by the service),
  the environment is thawed, `restore` is recorded and restore/next answers 200 with
  an empty body and no Content-Type, as the RIE's RestoreRenderer (state Restoring);
- the runtime runs its after-restore hooks and calls /next (state Ready, recorded
  as runtime_ready), and the invocation is delivered; its timeout starts then;
- a failing after-restore hook: POST /2018-06-01/runtime/restore/error (only in
  Restoring, 202 {"status":"OK"}; elsewhere 403 ... to RuntimeRestoreErrorState). The
  restore fails (`restore_error`, Runtime.AfterRestoreError) and the invocation gets
  Lambda's Invoke error SnapStartException, HTTP 400;
- restore/next answered to /next within snapstart.restore_timeout (Lambda: 10 s),
  else the runtime is killed and the invocation gets SnapStartTimeoutException, 408.

After a failed restore the next invocation starts a new environment: init, snapshot
and restore again (Lambda would restore the same snapshot once more; the freezer
mode has only the one copy, so it runs the init again: docs/snapstart.md).

How the environment is held from snapshot to restore is a Strategy, one per
snapstart.mode, named in STRATEGIES: the freezer's keeps the process tree where it
is, frozen (harness/emulator/freeze.py). Another mode (CRIU) implements the same
two calls and registers itself there; the flow above stays as it is.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.emulator import protocol as rp
from harness.function.handle import RuntimeHandle
from harness.history import schema

RESTORE_NEXT = f"{rp.API_PREFIX}/runtime/restore/next"
RESTORE_ERROR = f"{rp.API_PREFIX}/runtime/restore/error"
ROUTES = {RESTORE_NEXT: {"GET": "restore_next"}, RESTORE_ERROR: {"POST": "restore_error"}}
INIT_TYPE = "snap-start"  # AWS_LAMBDA_INITIALIZATION_TYPE of a SnapStart function's runtime
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
BEFORE_SNAPSHOT_ERROR = "Runtime.BeforeSnapshotError"
# Lambda's Invoke API errors for a failed restore (the Invoke API reference).
HOOK_ERROR = ("SnapStartException", 400,
              "The afterRestore() runtime hook encountered an error. For more information, check the "
              "Amazon CloudWatch logs.")
TIMEOUT_ERROR = ("SnapStartTimeoutException", 408, "Lambda couldn't restore the snapshot within the timeout limit.")


class Strategy(Protocol):
    """How the environment is held between snapshot and restore (snapstart.mode)."""

    name: str

    def snapshot(self, proc: RuntimeHandle, extensions: Sequence[RuntimeHandle]) -> tuple[bool, dict[str, Any]]:
        """Take the snapshot of a runtime waiting in restore/next: (verified, detail)."""
        ...

    def restore(self) -> tuple[bool, dict[str, Any]]:
        """Bring the snapshot back, on the already changed network: (verified, detail)."""
        ...


class FreezerStrategy:
    """The process tree stays, frozen by the cgroup freezer from snapshot to restore."""

    name = "freezer"

    def __init__(self, freezing: Any) -> None:
        self.freezing = freezing  # the emulator's Freezing

    def snapshot(self, proc: RuntimeHandle, extensions: Sequence[RuntimeHandle]) -> tuple[bool, dict[str, Any]]:
        return self.freezing.freeze(proc, extensions), {}

    def restore(self) -> tuple[bool, dict[str, Any]]:
        return self.freezing.thaw("restore"), {}


STRATEGIES: dict[str, Callable[[Any], Strategy]] = {"freezer": FreezerStrategy}


@dataclass
class Plan:
    """What a trial's restore does: snapstart.* of the scenario, and the network
    changes (a callable from the backend, which has the lab) returning what it did."""

    mode: str = "freezer"
    restore_after_s: float = 0.0
    restore_timeout_s: float = 10.0
    changes: Callable[[], dict[str, Any]] = field(default=lambda: {})


def invoke_error(kind: tuple[str, int, str]) -> rp.InvokeOutcome:
    etype, status, message = kind
    body = json.dumps({"Type": "User", "message": message}).encode()
    return rp.InvokeOutcome("restore_error", body, error_type=etype, error_message=message, http_status=status)


class RestoreEndpoints:
    """The restore half of the RuntimeAPI (a mixin sharing its lock and state)."""

    # Provided by RuntimeAPI.
    _cv: threading.Condition
    _gen: int
    _state: str
    _stopping: bool
    _proc: RuntimeHandle | None
    _ext_procs: list[Any]
    _freezing: Any
    history: Any
    timeout_s: float
    snapstart: Plan | None

    def _kill(self, reason: str) -> None: ...
    def _finish(self, inv: Any, outcome: rp.InvokeOutcome, release: bool = True) -> None: ...

    def _restore_setup(self, plan: Plan | None) -> None:
        self.snapstart = plan
        self._strategy = STRATEGIES[plan.mode](self._freezing) if plan else None
        self._snapshot_mono = 0.0
        self._restoring = False
        self._restore_failure: tuple[str, str, str] | None = None  # (source, type, message)
        self._init_error_type = ""  # Runtime.BeforeSnapshotError once a before-snapshot hook failed

    def _note_init_error(self, body_type: str, headers: Any) -> str:
        """The type an /init/error is recorded with; a before-snapshot failure's is
        also the type of the invocations that init fails (init_error_type)."""
        etype = init_error_type(body_type, headers)
        self._init_error_type = etype if etype == BEFORE_SNAPSHOT_ERROR else ""
        return etype

    @property
    def restore_enabled(self) -> bool:
        return self.snapstart is not None

    def can_freeze(self) -> bool:
        # Not between restore/next's answer and the invocation the restore is for.
        return not self._restoring and super().can_freeze()  # type: ignore[misc]

    def restore_next(self) -> tuple[int, bytes] | None:
        """GET restore/next: snapshot, then block until the restore (None: drop the connection)."""
        with self._cv:
            if self._state != "starting" or self._proc is None or self._strategy is None:
                return rp.invalid_transition(rp.state_name(self._state), "Ready")
            gen = self._gen
            self._state = "restore_ready"
            ok, detail = self._strategy.snapshot(self._proc, self._ext_procs)
            self._snapshot_mono = time.monotonic()
            self.history.record(schema.SNAPSHOT, generation=gen, verified=ok, method=self._strategy.name,
                                **({"detail": detail} if detail else {}))
            self._cv.notify_all()
            while self._state == "restore_ready" and self._gen == gen and not self._stopping:
                self._cv.wait()
            if self._gen != gen or self._state != "restoring":
                return None
            return 200, b""

    def restore_error(self, body: bytes, headers: Any) -> tuple[int, bytes]:
        with self._cv:
            if self._state != "restoring":
                return rp.invalid_transition(rp.state_name(self._state), "RuntimeRestoreErrorState")
            self._state = "restore_error"
            etype, msg = rp.parse_function_error(body)
            header = headers.get(ERROR_TYPE_HEADER, "") or ""
            self._restore_failure = ("restore/error", header or "Runtime.AfterRestoreError",
                                     f"{etype}: {msg}".strip(": "))
            self._cv.notify_all()
            return 202, rp.ACCEPTED

    def _restore_within(self, inv: Any) -> None:
        """Restore the snapshot for invocation `inv` (caller holds the lock); on
        failure `inv` is finished with Lambda's error."""
        assert self.snapstart is not None and self._strategy is not None
        plan, gen = self.snapstart, self._gen
        self._restoring, self._restore_failure = True, None
        try:
            until = self._snapshot_mono + plan.restore_after_s
            while (left := until - time.monotonic()) > 0 and not self._stopping:
                self._cv.wait(left)
            if self._stopping:
                return  # the trial is ending: nothing to restore (CRIU would start a process only to kill it)
            waited_ms = round((time.monotonic() - self._snapshot_mono) * 1000, 3)
            changes = plan.changes()
            ok, detail = self._strategy.restore()
            self._state = "restoring"
            more = {k: changes[k] for k in ("from_address",) if changes.get(k)}
            now = self.history.now_ms()
            self.history.record(schema.RESTORE, t_ms=now, generation=gen, method=self._strategy.name,
                                verified=ok and changes.get("verified", True), address=changes.get("address"),
                                changes=changes, waited_ms=waited_ms, aspects={},
                                blip_ms=[round(now - waited_ms, 3), round(now, 3)],
                                **more, **({"detail": detail} if detail else {}))
            self._cv.notify_all()
            deadline = time.monotonic() + plan.restore_timeout_s
            while self._state == "restoring" and self._gen == gen and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            if self._state == "ready" and self._gen == gen:
                # Lambda's function timeout starts once the restore is done.
                inv.deadline_mono = time.monotonic() + self.timeout_s
                inv.deadline_epoch_ms = int((time.time() + self.timeout_s) * 1000)
                return
            self._restore_failed(inv, gen, plan)
        finally:
            self._restoring = False

    def _restore_failed(self, inv: Any, gen: int, plan: Plan) -> None:
        if self._restore_failure is not None:
            source, etype, msg = self._restore_failure
            kind = HOOK_ERROR
        elif self._gen == gen and self._state == "restoring":
            source, etype, kind = "timeout", TIMEOUT_ERROR[0], TIMEOUT_ERROR
            msg = f"the runtime did not call /next within {plan.restore_timeout_s:g} s of the restore"
        else:
            source, etype, kind = "exit", HOOK_ERROR[0], HOOK_ERROR
            msg = "the runtime exited during the restore, before its first /next"
        self.history.record(schema.RESTORE_ERROR, generation=gen, source=source, error_type=etype,
                            error_message=msg)
        if self._gen == gen:
            self._kill("restore_timeout" if source == "timeout" else "restore_error")
        self._finish(inv, invoke_error(kind))


def init_error_type(body_type: str, headers: Any) -> str:
    """An /init/error's type: the body's, except for a before-snapshot hook's failure,
    which the runtime names in the header (awslambdaric posts the hook's exception as
    the body and Runtime.BeforeSnapshotError as Lambda-Runtime-Function-Error-Type)."""
    header = headers.get(ERROR_TYPE_HEADER, "") or ""
    if header == BEFORE_SNAPSHOT_ERROR:
        return header
    return body_type or header
