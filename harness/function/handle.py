"""What the emulator needs from a started runtime, whichever launcher started it,
and the handle of a runtime that is a local process group."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Protocol

from harness.function import cgroup as cgroups
from harness.function import freezer as freezers
from harness.ownership import Run


class RuntimeHandle(Protocol):
    """A started runtime: a process group (process launcher) or a container (docker)."""

    generation: int

    @property
    def pid(self) -> int: ...

    def wait(self) -> int:
        """Block until it exits; its exit code, negative for a signal (Popen's convention)."""
        ...

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Kill the runtime and everything it started."""
        ...

    def oom_killed(self) -> bool:
        """Did the OOM killer end it (over function.memory_mb)? Asked after wait()."""
        ...

    def started_ns(self) -> int | None:
        """When its bootstrap began (monotonic ns), if the launcher knows better than
        the moment spawn returned (a container's entrypoint signals it); else None."""
        ...

    def freezer(self) -> freezers.Freezer:
        """How to freeze and thaw it between invocations (workload.freeze)."""
        ...


@dataclass
class RuntimeProcess:
    """A runtime started as a child process in its own session, with, when contained,
    a cgroup of its own."""

    generation: int
    popen: subprocess.Popen[bytes]
    _pump: threading.Thread | None = field(default=None, repr=False)
    cgroup: cgroups.Cgroup | None = None
    run: Run | None = field(default=None, repr=False)
    _oom: bool | None = field(default=None, repr=False)
    _settle_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    problems: list[str] = field(default_factory=list)  # what its cgroup's removal left
    _freezer: freezers.Freezer | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait(self) -> int:
        code = self.popen.wait()
        if self._pump is not None:
            self._pump.join(timeout=2)
        self._settle()
        return code

    def _settle(self) -> None:
        """Once the runtime is gone: note whether the OOM killer did it, then kill
        whatever it left in its cgroup (Lambda ends the whole environment) and
        remove the group."""
        with self._settle_lock:
            if self._oom is not None:
                return
            cg = self.cgroup
            self._oom = bool(cg and cg.oom_killed())
            if cg is not None and self.run is not None:
                self.problems = cg.remove(self.run)

    def oom_killed(self) -> bool:
        """Was the runtime killed for exceeding function.memory_mb? (after wait())"""
        return bool(self._oom)

    def started_ns(self) -> int | None:
        return None  # Popen returns once the bootstrap is executed: spawn's return is the moment

    def freezer(self) -> freezers.Freezer:
        """Its cgroup's freezer; SIGSTOP of its process group without one."""
        if self._freezer is None:
            self._freezer = freezers.for_process(self.cgroup, self.popen.pid)
        return self._freezer

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Kill the runtime and everything it forked: its cgroup, and its process
        group (all there is without a cgroup)."""
        if self.cgroup is not None and sig == signal.SIGKILL:
            self.cgroup.kill_all()
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass
