"""Freeze and thaw between invocations (workload.freeze), as Lambda does: once
the runtime waits on /next with nothing pending the environment is frozen, and
it is thawed when the next event arrives, before /next is answered. The RIE
never freezes; neither does the emulator with workload.freeze false.

When is decided in one place, Freezing.can_freeze_now, from the emulator's
RuntimeAPI.can_freeze() (the runtime and every extension wait on next); every
change is read back from the kernel before it is recorded (`verified`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.function.freezer import Change, forced
from harness.function.handle import RuntimeHandle
from harness.history import schema
from harness.history.recorder import History
from harness.lab.egress import EgressGate


class Freezing:
    """Which runtime is frozen, since when; every change recorded as an event."""

    def __init__(self, history: History, enabled: bool, log: Callable[[str], None] | None = None,
                 sandbox: str | None = None) -> None:
        self.history = history
        self.enabled = enabled
        if enabled:
            forced()  # a bad ENIRACE_FREEZER is the user's error now, not a thread's mid-trial
        self.log = log or (lambda line: None)
        # The sandbox's kernel must not send while the environment is frozen (harness/lab/egress.py).
        self._egress = EgressGate(sandbox) if enabled and sandbox else None
        self._frozen: list[RuntimeHandle] = []  # the runtime, then its extensions' processes
        self._since = 0.0
        self._said_method = False
        self._said_egress = False

    @property
    def frozen(self) -> bool:
        return bool(self._frozen)

    def can_freeze_now(self, proc: RuntimeHandle | None, idle: bool) -> bool:
        """Lambda freezes once the runtime and every extension wait on next and
        nothing is pending: `idle` is the emulator's RuntimeAPI.can_freeze(), asked
        with its lock held in /next's wait for a pending event."""
        return self.enabled and not self._frozen and proc is not None and idle

    def maybe_freeze(self, proc: RuntimeHandle | None, idle: bool,
                     extensions: Sequence[RuntimeHandle] = ()) -> bool:
        """Freeze when can_freeze_now; True when it did (the caller looks for a
        pending event again instead of waiting: one may have come meanwhile)."""
        if not self.can_freeze_now(proc, idle):
            return False
        assert proc is not None
        self.freeze(proc, extensions)
        return True

    def freeze(self, proc: RuntimeHandle, extensions: Sequence[RuntimeHandle] = ()) -> bool:
        """Freeze the runtime and its extensions' processes (the environment);
        True when the kernel says all are frozen. A freeze that did not take is
        still thawed later: part of a group may have stopped."""
        self._frozen, self._since = [proc, *extensions], time.monotonic()
        change, rest = proc.freezer().freeze(), [p.freezer().freeze() for p in extensions]
        self._hold_egress()
        self._record(schema.FREEZE, proc, change, rest)
        if change.method == "sigstop" and not self._said_method:
            self._said_method = True
            self.log("enirace: no cgroup freezer for this runtime: freezing with SIGSTOP/SIGCONT "
                     "of its process group (visible to the function)")
        return change.verified

    def thaw(self, reason: str, inv: Any = None, timeout_s: float = 0.0) -> bool:
        """Thaw the frozen runtime, if any; True when one was thawed. For an
        invocation `inv` (the emulator's Invocation), its deadline then starts
        over: Lambda's timeout starts once the environment is thawed."""
        procs, self._frozen = self._frozen, []
        if not procs:
            return False
        frozen_ms = round((time.monotonic() - self._since) * 1000, 3)
        if self._egress is not None:
            self._egress.release()  # before the function runs again: its first packet must leave
        change, rest = procs[0].freezer().thaw(), [p.freezer().thaw() for p in procs[1:]]
        self._record(schema.THAW, procs[0], change, rest, frozen_ms=frozen_ms, reason=reason)
        if inv is not None:
            shift = time.monotonic() - (inv.deadline_mono - timeout_s)
            inv.deadline_mono += shift
            inv.deadline_epoch_ms += int(shift * 1000)
        return True

    def _hold_egress(self) -> None:
        if self._egress is None or self._egress.hold() or self._said_egress:
            return
        self._said_egress = True
        self.log(f"enirace: cannot hold the sandbox's egress while frozen ({self._egress.problem}): its "
                 "kernel's keep-alive probes and ACKs still leave, unlike Lambda's paused microVM")

    def close(self) -> None:
        if self._egress is not None:
            self._egress.close()

    def _record(self, kind: str, proc: RuntimeHandle, change: Change, rest: list[Change], **more: Any) -> None:
        failed = [c for c in rest if not c.verified]
        detail = "; ".join([change.detail] * bool(change.detail)
                           + [f"an extension's process: {c.state} {c.detail}".strip() for c in failed])
        # Typed Any: unpacked, a dict[str, str] could be the float t_ms as far as mypy knows.
        said: dict[str, Any] = {"detail": detail} if detail else {}
        self.history.record(kind, generation=proc.generation, verified=change.verified and not failed,
                            method=change.method, state=change.state,
                            took_ms=round(change.took_ms + sum(c.took_ms for c in rest), 3),
                            **more, **said)

    def forget(self, proc: RuntimeHandle) -> None:
        """`proc` exited (killed from outside while frozen): nothing left to thaw."""
        if self._frozen and self._frozen[0] is proc:
            self._frozen = []
