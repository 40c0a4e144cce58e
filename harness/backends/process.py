"""The `process` backend: the runtime is a child process inside the sandbox
namespace, in its own session and, when contained (harness/function/contain.py), in
a cgroup of its own: a timeout or a teardown kills the whole group, even the
processes that left the session or the namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.function import cgroup as cgroups
from harness.function.contain import Containment
from harness.lab import netns
from harness.ownership import Run

OutputSink = Callable[[int, str], None]
MAX_LINE_BYTES = 64 * 1024
# The pump's reads: a pipe's default capacity, so one read takes all that is there
# and holds the GIL for tens of microseconds at most.
READ_BYTES = 64 * 1024
# How long the pump waits after a read that did not fill READ_BYTES.
TRICKLE_S = 0.001


@dataclass(frozen=True)
class LaunchSpec:
    """What to run for one runtime start: argv, environment, working directory."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    description: str = ""


@dataclass
class RuntimeProcess:
    generation: int
    popen: subprocess.Popen[bytes]
    _pump: threading.Thread | None = field(default=None, repr=False)
    cgroup: cgroups.Cgroup | None = None
    run: Run | None = field(default=None, repr=False)
    _oom: bool | None = field(default=None, repr=False)
    _settle_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    problems: list[str] = field(default_factory=list)  # what its cgroup's removal left

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

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Kill the runtime and everything it forked: its cgroup, and its process
        group (all there is without a cgroup)."""
        if self.cgroup is not None and sig == signal.SIGKILL:
            self.cgroup.kill_all()
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass


class ProcessBackend:
    name = "process"

    def __init__(self, sandbox: str, output: OutputSink, logfile: Path | None = None,
                 etc_prefix: list[str] | None = None, contain: Containment | None = None,
                 run: Run | None = None, state_dir: Path | None = None) -> None:
        self.sandbox = sandbox
        self.output = output
        self.logfile = logfile
        # Run inside `ip netns exec`'s private mount namespace before the runtime:
        # the lab's /etc overlay (harness/lab/sandbox_etc.py), so resolv.conf
        # changes by rename reach a running function.
        self.etc_prefix = etc_prefix or []
        # contain: user, private /tmp, read-only task root, and with `run` a
        # cgroup per runtime; state_dir holds the mount helpers (the sandbox's dir).
        self.contain = contain
        self.run = run
        self.state_dir = state_dir
        self.cgroup_layout = cgroups.detect() if contain is not None and run is not None else None
        self.unenforced: str = ""  # why memory_mb is not enforced, if it is not
        self.started: list[RuntimeProcess] = []

    def check_removed(self) -> None:
        """Raise if a runtime's cgroup could not be emptied or removed (teardown reports it)."""
        problems = [p for proc in self.started for p in proc.problems]
        if problems:
            raise RuntimeError("; ".join(problems))

    def _cgroup(self, generation: int) -> cgroups.Cgroup | None:
        if self.cgroup_layout is None or self.run is None or self.contain is None:
            if self.contain is not None and not self.unenforced:
                self.unenforced = "no cgroup filesystem is mounted"
                print(f"warning: function.memory_mb is not enforced: {self.unenforced}", file=sys.stderr)
            return None
        lab = self.sandbox.rsplit("-", 2)[-2] if self.sandbox.count("-") >= 2 else "0"
        cg = cgroups.create(self.cgroup_layout, self.run, f"{self.run.run_id}-{lab}-rt{generation}",
                            self.contain.memory_mb)
        if cg.limit_error and not self.unenforced:
            print(f"warning: function.memory_mb is not enforced: {cg.limit_error}", file=sys.stderr)
        self.unenforced = cg.limit_error
        return cg

    def spawn(self, spec: LaunchSpec, generation: int) -> RuntimeProcess:
        inner: list[str] = []
        if self.contain is not None:
            state = self.state_dir or Path(spec.cwd)
            inner = self.contain.prefix(spec.argv, spec.env, Path(spec.cwd), state)
        cg = self._cgroup(generation)
        try:
            popen = subprocess.Popen(
                (cg.join_prefix() if cg else []) + netns.exec_prefix(self.sandbox)
                + self.etc_prefix + inner + spec.argv,
                env=spec.env,
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # like the RIE: both streams are the function's log
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            if cg is not None and self.run is not None:
                cg.remove(self.run)
            raise
        proc = RuntimeProcess(generation, popen, cgroup=cg, run=self.run)
        self.started.append(proc)
        proc._pump = threading.Thread(target=self._pump, args=(proc,), daemon=True,
                                      name=f"runtime-{generation}-output")
        proc._pump.start()
        return proc

    def _pump(self, proc: RuntimeProcess) -> None:
        """Read the runtime's output in whole chunks and hand them as they are to a
        sink with chunk() (the trial's FunctionLog), else split into lines. With
        chunk() no Python work here is per line, so a function flooding its stdout
        cannot hold the GIL against the emulator's timers and the nemesis's firings."""
        stream = proc.popen.stdout
        assert stream is not None
        sink = getattr(self.output, "chunk", None) or _LineSink(self.output)
        try:
            while data := os.read(stream.fileno(), READ_BYTES):
                sink(proc.generation, data)
                if len(data) < READ_BYTES:
                    # A trickle: let it gather, so line-by-line writes cost a bounded
                    # number of reads a second; a flood fills the pipe and never waits.
                    time.sleep(TRICKLE_S)
        except OSError:
            pass  # the pipe went away under us: nothing more to read
        finally:
            sink(proc.generation, b"")
            stream.close()


def split_complete(carry: bytes, data: bytes) -> tuple[bytes, bytes]:
    """(the whole lines of carry + data, the unfinished rest). A rest of
    MAX_LINE_BYTES or more counts as a line, so one endless line cannot grow memory."""
    if carry:
        data = carry + data
    cut = data.rfind(b"\n") + 1
    if len(data) - cut >= MAX_LINE_BYTES:
        return data + b"\n", b""
    return data[:cut], data[cut:]


class _LineSink:
    """Adapts a per-line OutputSink to the pump's chunks."""

    def __init__(self, output: OutputSink) -> None:
        self.output = output
        self._carry = b""

    def __call__(self, generation: int, data: bytes) -> None:
        complete, self._carry = split_complete(self._carry, data) if data else (
            self._carry + b"\n" if self._carry else b"", b"")
        for raw in complete[:-1].split(b"\n") if complete else ():
            self.output(generation, raw.rstrip(b"\r").decode("utf-8", "replace"))
