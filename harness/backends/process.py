"""The `process` backend: the runtime is a child process inside the sandbox
namespace, in its own session and, when contained (harness/function/contain.py), in
a cgroup of its own: a timeout or a teardown kills the whole group, even the
processes that left the session or the namespace."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.backends.base import Check, Notify, Remover, RuntimeAPILike
from harness.emulator import restore_criu as _restore_criu  # noqa: F401  (registers snapstart.mode criu)
from harness.emulator import restore_net
from harness.emulator.api import RuntimeAPI
from harness.errors import UserError
from harness.function import cgroup as cgroups
from harness.function import checkpoint, netprobe
from harness.function import contain as contain
from harness.function import extensions as fn_extensions
from harness.function.contain import Containment
from harness.function.handle import RuntimeProcess
from harness.function.spec import LaunchSpec, OutputSink, split_complete
from harness.history import schema
from harness.lab import netns
from harness.lab.topology import Lab
from harness.ownership import Run

if TYPE_CHECKING:
    from harness.emulator.protocol import InvokeOutcome
    from harness.history.recorder import History
    from harness.lab.addressing import Subnet
    from harness.scenario.model import Scenario

# The pump's reads: a pipe's default capacity, so one read takes all that is there
# and holds the GIL for tens of microseconds at most.
READ_BYTES = 64 * 1024
# How long the pump waits after a read that did not fill READ_BYTES.
TRICKLE_S = 0.001


class ProcessLauncher:
    """Starts runtime processes in the sandbox namespace (the RuntimeAPI's spawner)."""

    def __init__(self, sandbox: str, output: OutputSink, logfile: Path | None = None,
                 etc_prefix: list[str] | None = None, contain: Containment | None = None,
                 run: Run | None = None, state_dir: Path | None = None,
                 netwatch: netprobe.Watcher | None = None, wrap: list[str] | None = None) -> None:
        self.sandbox = sandbox
        self.wrap = wrap or []  # runs as root between the containment and the runtime (criu's pid 1)
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
        # Probes each runtime's cgroup for the function's own network attempts.
        self.netwatch = netwatch

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
        if self.netwatch is not None:
            try:
                self.netwatch.attach(cg, generation, self.run)
            except BaseException:
                cg.remove(self.run)
                raise
        return cg

    def spawn(self, spec: LaunchSpec, generation: int) -> RuntimeProcess:
        inner: list[str] = []
        if self.contain is not None:
            state = self.state_dir or Path(spec.cwd)
            inner = self.contain.prefix(spec.argv, spec.env, Path(spec.cwd), state, wrap=self.wrap)
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


def _criu(scenario: Scenario) -> bool:
    return bool(scenario.function.snapstart and scenario.snapstart and scenario.snapstart.mode == "criu")


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


class ProcessBackend:
    """The lab is two fresh namespaces; the harness's emulator starts each runtime
    with a ProcessLauncher."""

    name = "process"

    def preflight(self, scenario: Scenario) -> None:
        """Beyond what every trial checks (launch spec, pool): function.extensions,
        and that snapstart.mode criu can run here."""
        fn_extensions.paths(scenario.function)
        if _criu(scenario):
            if scenario.function.extensions:
                raise UserError("snapstart.mode: criu dumps the runtime only, not function.extensions; "
                                "drop the extensions or use mode: freezer")
            if reason := checkpoint.unusable():
                raise UserError(f"snapstart.mode: criu cannot run here: {reason}; or use mode: freezer")

    def make_lab(self, scenario: Scenario, run: Run, subnet: Subnet, notify: Notify) -> Lab:
        return Lab(run, subnet, notify=notify, config=scenario.lab)

    def make_runtime_api(self, scenario: Scenario, lab: Lab, history: History, launch: LaunchSpec,
                         output: OutputSink, emulator_log: Callable[[str], None]) -> RuntimeAPILike:
        fn = scenario.function
        if fn.user == "root":
            contain.warn_root_once()
        netwatch = netprobe.Watcher(history)
        launcher = ProcessLauncher(lab.sandbox, output, etc_prefix=lab.etc.mount_prefix(),
                                   contain=contain.Containment(fn.user, fn.memory_mb), run=lab.run,
                                   state_dir=lab.etc.root, netwatch=netwatch,
                                   wrap=checkpoint.pid_holder([]) if _criu(scenario) else None)
        lab.on_down(launcher.check_removed)
        layout = launcher.cgroup_layout
        history.record(schema.CONTAINMENT, user=fn.user, memory_mb=fn.memory_mb, tmp_mb=contain.TMP_SIZE_MB,
                       cgroup=f"v{layout.version}" if layout else None)
        api = RuntimeAPI(lab.sandbox, history, launcher.spawn, launch, timeout_s=fn.timeout / 1000,
                         init_timeout_s=scenario.workload.init_timeout / 1000, function_name=fn.name,
                         log=emulator_log, freeze=scenario.workload.freeze,
                         extensions=fn_extensions.specs(fn, launch), snapstart=restore_net.plan_for(scenario, lab))
        return _Probed(api, netwatch)

    def doctor_checks(self) -> list[Check]:
        return []  # the rows every backend needs (privileges, lab, ...) are doctor's own

    def removers(self) -> dict[str, Remover]:
        return {}  # namespaces, directories and leases: cleanup's own kinds


class _Probed:
    """The emulator, whose stop() also takes the last network attempts the probe
    saw (before the trial is judged) and closes the probe."""

    def __init__(self, api: RuntimeAPI, netwatch: netprobe.Watcher) -> None:
        self._api = api
        self._netwatch = netwatch

    def __getattr__(self, name: str) -> object:
        return getattr(self._api, name)

    def start(self) -> None:
        self._api.start()

    def init(self) -> str:
        return self._api.init()

    def invoke(self, payload: bytes) -> tuple[int, InvokeOutcome]:
        return self._api.invoke(payload)

    def stop(self) -> None:
        try:
            self._api.stop()
        finally:
            self._netwatch.stop()
