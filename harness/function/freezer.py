"""Freezing a runtime between invocations, as Lambda does once the runtime waits
on /next: its timers stop, CLOCK_MONOTONIC goes on.

The kernel's cgroup freezer when the runtime has a cgroup with one (v2
`cgroup.freeze`, v1 `freezer.state`): the function cannot tell it from being
descheduled. Without one, SIGSTOP/SIGCONT of the runtime's process group, which
a function can observe (a parent gets SIGCHLD, ptrace sees a stop) and which
misses processes that left the group; the events say which method was used.

Every change is read back from the kernel before it is reported, so an event
with verified false is one that did not take."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.errors import UserError
from harness.function import cgroup as cgroups

SETTLE_S = 2.0  # a freeze that has not settled by then did not take
# ENIRACE_FREEZER=sigstop freezes with signals even where a cgroup freezer
# exists: to see what a function does when it can observe the freeze, and to
# test the fallback on a machine that has a freezer.
FORCE_ENV = "ENIRACE_FREEZER"
FORCE_VALUES = ("auto", "sigstop")
FREEZER_FIX = ("mount a freezer: cgroup v2 (kernel 5.2 or later has cgroup.freeze), or a v1 freezer "
               "hierarchy (mount -t cgroup -o freezer freezer /sys/fs/cgroup/freezer)")


@dataclass(frozen=True)
class Change:
    """The outcome of a freeze or a thaw, as read back."""

    verified: bool
    method: str  # cgroup_v2 | cgroup_v1 | docker_pause | sigstop
    state: str  # what the kernel (or engine) said afterwards
    took_ms: float
    detail: str = ""


class Freezer(Protocol):
    method: str

    def freeze(self) -> Change: ...

    def thaw(self) -> Change: ...


def _ms_since(t0: float) -> float:
    return round((time.monotonic() - t0) * 1000, 3)


class CgroupFreezer:
    """The runtime's own cgroup: every process in it, wherever it went."""

    def __init__(self, group: cgroups.Cgroup) -> None:
        self.group = group
        self.method = f"cgroup_v{group.layout.version}"

    def _change(self, frozen: bool) -> Change:
        t0 = time.monotonic()
        try:
            ok = self.group.set_frozen(frozen)
            detail = ""
        except OSError as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        return Change(ok, self.method, self.group.freezer_state(), _ms_since(t0), detail)

    def freeze(self) -> Change:
        return self._change(True)

    def thaw(self) -> Change:
        return self._change(False)


def _proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, process group) from /proc/<pid>/stat, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[2])


def group_members(pgid: int) -> list[int]:
    """Every live process of process group `pgid`."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_state(int(name))
            if st is not None and st[1] == pgid:
                found.append(int(name))
    return found


class SignalFreezer:
    """SIGSTOP/SIGCONT of the runtime's process group (no freezer available)."""

    method = "sigstop"

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid

    def _change(self, frozen: bool) -> Change:
        t0 = time.monotonic()
        try:
            os.killpg(self.pgid, signal.SIGSTOP if frozen else signal.SIGCONT)
        except ProcessLookupError:
            return Change(False, self.method, "gone", _ms_since(t0), "the process group has exited")
        deadline = t0 + SETTLE_S
        while True:
            states = [st[0] for pid in group_members(self.pgid) if (st := _proc_state(pid))]
            stopped = sum(s in "Tt" for s in states)
            done = stopped == len(states) if frozen else stopped == 0
            if done or time.monotonic() >= deadline:
                break
            time.sleep(0.0005)
        state = f"{stopped} of {len(states)} stopped"
        return Change(done and bool(states), self.method, state, _ms_since(t0))

    def freeze(self) -> Change:
        return self._change(True)

    def thaw(self) -> Change:
        return self._change(False)


def forced() -> bool:
    """Whether ENIRACE_FREEZER asks for SIGSTOP whatever the machine offers."""
    value = os.environ.get(FORCE_ENV, "auto").strip() or "auto"
    if value not in FORCE_VALUES:
        raise UserError(f"{FORCE_ENV}={value!r}: use one of {', '.join(FORCE_VALUES)} (or leave it unset)")
    return value == "sigstop"


def for_process(group: cgroups.Cgroup | None, pgid: int) -> Freezer:
    """The best freezer for a runtime process: its cgroup's, else signals."""
    if group is not None and group.can_freeze() and not forced():
        return CgroupFreezer(group)
    return SignalFreezer(pgid)


def available(layout: cgroups.Layout | None) -> str:
    """Which freezer the process backend uses on this machine (for doctor)."""
    if layout is not None and layout.freezer and not forced():
        return f"cgroup_v{layout.version}"
    return "sigstop"


def _v2_has_freeze(root: Path) -> bool:
    """cgroup.freeze exists in every non-root v2 group from kernel 5.2 on; the
    root group has none, so look at enirace's parent or any child."""
    children = [root / cgroups.PARENT, *(d for d in root.iterdir() if d.is_dir())] if root.is_dir() else []
    return any((d / "cgroup.freeze").exists() for d in children[:20])


def doctor_row(layout: cgroups.Layout | None = None) -> tuple[bool, str, str]:
    """(ok, found, fix) for doctor: the freezer runtimes are frozen with between
    invocations (workload.freeze) on this machine."""
    layout = layout if layout is not None else cgroups.detect()
    method = available(layout)
    if method == "cgroup_v1" and layout is not None:
        return True, f"cgroup v1 freezer (freezer.state under {layout.kill})", ""
    if method == "cgroup_v2" and layout is not None:
        if _v2_has_freeze(layout.kill):
            return True, f"cgroup v2 (cgroup.freeze under {layout.kill})", ""
    why, fix = (f"{FORCE_ENV}=sigstop", f"unset {FORCE_ENV}") if forced() else ("no cgroup freezer", FREEZER_FIX)
    return False, (f"SIGSTOP fallback ({why}): SIGSTOP/SIGCONT of the runtime's process group, "
                   "which the function can observe"), fix
