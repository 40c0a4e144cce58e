"""The `process` backend: the runtime is a child process inside the sandbox
namespace, in its own session so a timeout can kill its whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.lab import netns

OutputSink = Callable[[int, str], None]
MAX_LINE_BYTES = 64 * 1024


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

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait(self) -> int:
        code = self.popen.wait()
        if self._pump is not None:
            self._pump.join(timeout=2)
        return code

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Kill the runtime and everything it forked (they share its process group)."""
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass


class ProcessBackend:
    name = "process"

    def __init__(self, sandbox: str, output: OutputSink, logfile: Path | None = None,
                 etc_prefix: list[str] | None = None) -> None:
        self.sandbox = sandbox
        self.output = output
        self.logfile = logfile
        # Run inside `ip netns exec`'s private mount namespace before the runtime:
        # the lab's /etc overlay (harness/lab/sandbox_etc.py), so resolv.conf
        # changes by rename reach a running function.
        self.etc_prefix = etc_prefix or []

    def spawn(self, spec: LaunchSpec, generation: int) -> RuntimeProcess:
        popen = subprocess.Popen(
            netns.exec_prefix(self.sandbox) + self.etc_prefix + spec.argv,
            env=spec.env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # like the RIE: both streams are the function's log
            start_new_session=True,
            close_fds=True,
        )
        proc = RuntimeProcess(generation, popen)
        proc._pump = threading.Thread(target=self._pump, args=(proc,), daemon=True,
                                      name=f"runtime-{generation}-output")
        proc._pump.start()
        return proc

    def _pump(self, proc: RuntimeProcess) -> None:
        stream = proc.popen.stdout
        assert stream is not None
        # readline(limit) so a function printing one endless line cannot exhaust memory.
        while raw := stream.readline(MAX_LINE_BYTES):
            self.output(proc.generation, raw.decode("utf-8", "replace").rstrip("\r\n"))
        stream.close()
