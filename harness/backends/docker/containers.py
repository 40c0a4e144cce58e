"""The docker backend's launcher: each runtime start is a container of the function
image that joins the sandbox container's network namespace (`network_mode:
container:<sandbox>`), with AWS_LAMBDA_RUNTIME_API pointing at the harness's
emulator on the sandbox's loopback. The images' entrypoint then skips its own RIE
and runs /var/runtime/bootstrap, exactly as the official AWS base images do.

A runtime that exits is a container that exits; a kill is `docker kill` of the
container, which takes everything the runtime started with it (its own PID namespace).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.docker import cleanup as docker_cleanup
from harness.backends.docker import engine as de
from harness.backends.docker import exec_signal
from harness.function import freezer as freezers
from harness.function.spec import MAX_LINE_BYTES, LaunchSpec, OutputSink

if TYPE_CHECKING:
    from harness.lab.netns import Manifest
    from harness.scenario.model import FunctionConfig

TASK_ROOT = "/var/task"
# The host's values of these would break the image's own layout.
_HOST_ONLY_ENV = ("PATH", "PYTHONPATH", "LAMBDA_TASK_ROOT", "DOTNET_ROOT", "HOME", "NODE_PATH")


def exit_code(status: int) -> int:
    """Docker reports a death by signal N as 128+N; the emulator expects -N (Popen's way)."""
    return -(status - 128) if 128 < status < 160 else status


def split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Docker's log stream comes in frames, not lines; re-split, capping line length."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > MAX_LINE_BYTES:
                    yield buf[:MAX_LINE_BYTES]
                    buf = buf[MAX_LINE_BYTES:]
                    continue
                break
            yield buf[:nl]
            buf = buf[nl + 1:]
    if buf:
        yield buf


def follow_logs(container_id: str, on_line: Callable[[bytes], None], timestamps: bool = False) -> threading.Thread:
    """A thread feeding every output line of the container (from its start) to on_line."""
    def pump() -> None:
        try:
            stream = de.stream_client().api.logs(container_id, stream=True, follow=True, stdout=True, stderr=True,
                                          timestamps=timestamps)
            for line in split_lines(stream):
                on_line(line)
        except Exception:  # the container was removed under the stream: nothing more to read
            pass

    thread = threading.Thread(target=pump, daemon=True, name=f"logs-{container_id[:12]}")
    thread.start()
    return thread


@dataclass
class ContainerProcess:
    """A runtime start as a container; the RuntimeHandle the emulator drives."""

    generation: int
    container_id: str
    host_pid: int
    _pump: threading.Thread | None = field(default=None, repr=False)
    _removed: bool = False
    on_removed: Callable[[], None] | None = field(default=None, repr=False)  # the run forgets it
    exec_signal: exec_signal.ExecSignal | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.host_pid

    def started_ns(self) -> int | None:
        """When its entrypoint began, as the container signalled it (exec_signal.py)."""
        return self.exec_signal.result(0) if self.exec_signal is not None else None

    def wait(self) -> int:
        try:
            status = int(de.stream_client().api.wait(self.container_id)["StatusCode"])
        except Exception:
            status = 137  # removed under us: it was killed
        if self._pump is not None:
            self._pump.join(timeout=2)
        self.remove()
        return exit_code(status)

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        try:
            de.client().api.kill(self.container_id, signal=int(sig))
        except Exception:
            pass  # already stopped or removed

    def oom_killed(self) -> bool:
        # Not told apart under docker: wait() removes the container, and its
        # State.OOMKilled with it; an OOM kill shows as the exit by SIGKILL it is.
        return False

    def freezer(self) -> freezers.Freezer:
        return PauseFreezer(self.container_id)

    def remove(self) -> None:
        if not self._removed:
            self._removed = True
            if self.exec_signal is not None:
                self.exec_signal.close()
            try:
                de.client().api.remove_container(self.container_id, force=True)
            except Exception:
                return  # DockerLab.down removes (and forgets) whatever of the lab is left
            if self.on_removed is not None:
                self.on_removed()


class PauseFreezer:
    """`docker pause`: the engine freezes the container's cgroup with the kernel's
    freezer; State.Paused, read back, says whether it took."""

    method = "docker_pause"

    def __init__(self, container_id: str) -> None:
        self.container_id = container_id

    def _change(self, frozen: bool) -> freezers.Change:
        t0 = time.monotonic()
        api = de.client().api
        try:
            (api.pause if frozen else api.unpause)(self.container_id)
            state = api.inspect_container(self.container_id)["State"]
        except Exception as exc:  # the engine refused, or the container is gone
            return freezers.Change(False, self.method, "unknown", round((time.monotonic() - t0) * 1000, 3),
                                   f"{type(exc).__name__}: {exc}"[:300])
        paused = bool(state.get("Paused"))
        return freezers.Change(paused == frozen, self.method, "paused" if paused else str(state.get("Status")),
                               round((time.monotonic() - t0) * 1000, 3))

    def freeze(self) -> freezers.Change:
        return self._change(True)

    def thaw(self) -> freezers.Change:
        return self._change(False)


def container_env(spec: LaunchSpec) -> dict[str, str]:
    return {k: v for k, v in spec.env.items() if k not in _HOST_ONLY_ENV}


class ContainerLauncher:
    """Starts runtime containers in the sandbox container's network namespace."""

    def __init__(self, image: str, sandbox_container: str, name_prefix: str, labels: dict[str, str],
                 fn: FunctionConfig, output: OutputSink, run: Manifest | None = None,
                 signal_dir: Path | None = None) -> None:
        self.run = run  # records each container in the run's manifest
        self.signal_dir = signal_dir  # host directory for the exec FIFOs (None: no signal)
        self._entrypoint: list[str] | None = None
        self.image = image
        self.sandbox_container = sandbox_container
        self.name_prefix = name_prefix
        self.labels = labels
        self.fn = fn
        self.output = output
        self._lock = threading.Lock()
        self._started: list[ContainerProcess] = []

    def describe(self, spec: LaunchSpec) -> str:
        return f"docker run {self.image} {' '.join(self.command(spec))}"

    def command(self, spec: LaunchSpec) -> list[str]:
        if self.fn.runtime == "command":
            return list(self.fn.command or [])
        return [spec.env.get("_HANDLER", self.fn.handler)]

    def image_entrypoint(self) -> list[str]:
        if self._entrypoint is None:
            config = de.client().api.inspect_image(self.image).get("Config") or {}
            self._entrypoint = list(config.get("Entrypoint") or [])
        return self._entrypoint

    def create_args(self, spec: LaunchSpec, name: str, network_mode: str,
                    env: dict[str, str] | None = None, exec_fifo: Path | None = None) -> dict[str, Any]:
        """Arguments of APIClient.create_container for a function container; with
        exec_fifo, its entrypoint first signals through that FIFO (exec_signal.py)."""
        api = de.client().api
        binds = {}
        if self.fn.code:
            # Your code replaces the baked-in samples at /var/task; for .NET that is
            # the host's build of it (function.dll next to its runtimeconfig).
            code = spec.program.parent if spec.program is not None else Path(self.fn.code)
            binds[str(code.resolve())] = {"bind": TASK_ROOT, "mode": "ro"}
        entrypoint = None
        if self.fn.runtime == "command":
            entrypoint = self.command(spec)
        if exec_fifo is not None:
            binds[str(exec_fifo)] = {"bind": exec_signal.MOUNT, "mode": "rw"}
            entrypoint = exec_signal.wrap(entrypoint or [*self.image_entrypoint(), *self.command(spec)])
        host_config = api.create_host_config(network_mode=network_mode, binds=binds or None,  # no swap:
                                             mem_limit=f"{self.fn.memory_mb}m", memswap_limit=f"{self.fn.memory_mb}m")
        return dict(image=self.image, name=name, environment=env if env is not None else container_env(spec),
                    command=None if entrypoint else self.command(spec), entrypoint=entrypoint,
                    labels=self.labels, host_config=host_config, working_dir=TASK_ROOT, detach=True)

    def spawn(self, spec: LaunchSpec, generation: int) -> ContainerProcess:
        api = de.client().api
        name = f"{self.name_prefix}-fn{generation}"
        signal = exec_signal.ExecSignal(self.signal_dir, generation) if self.signal_dir is not None else None
        args = self.create_args(spec, name, f"container:{self.sandbox_container}",
                                exec_fifo=signal.path if signal is not None else None)
        run = self.run
        try:
            if run is not None:
                cid = docker_cleanup.create_container(run, **args)
            else:
                cid = api.create_container(**args)["Id"]
            api.start(cid)
            pid = int(api.inspect_container(cid)["State"]["Pid"])
        except BaseException:
            if signal is not None:
                signal.close()
            raise
        if signal is not None:
            signal.result(exec_signal.SETTLE_S)  # the entrypoint signals before start returns, normally
        proc = ContainerProcess(generation, cid, pid,
                                on_removed=(lambda: run.forget("container", name)) if run is not None else None,
                                exec_signal=signal)
        def on_line(raw: bytes) -> None:
            self.output(generation, raw.decode("utf-8", "replace").rstrip("\r"))

        proc._pump = follow_logs(cid, on_line)
        with self._lock:
            self._started.append(proc)
        return proc

    def close(self) -> None:
        """Remove every container this launcher started (they are normally gone already)."""
        with self._lock:
            started, self._started = self._started, []
        for proc in started:
            proc.remove()


_warmed: set[str] = set()
WARM_TIMEOUT_S = 30


def warm(launcher: ContainerLauncher, spec: LaunchSpec, run: Manifest) -> None:
    """Start the function once, offline, before the trial's first runtime start (once
    per image and process): a first start reads the image's runtime and the handler's
    imports from disk, seconds on a cold page cache, so `init_start + 500ms` would land
    in a different part of the init than on the process backend, whose host runtime is
    warm. Without a network the bootstrap imports the handler, fails to reach the
    Runtime API (port 9 of its own loopback) and exits."""
    if launcher.image in _warmed:
        return
    api = de.client().api
    env = {**container_env(spec), "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"}
    args = launcher.create_args(spec, f"{launcher.name_prefix}-warm", "none", env=env)
    cid = docker_cleanup.create_container(run, **args)
    try:
        api.start(cid)
        api.wait(cid, timeout=WARM_TIMEOUT_S)
    except Exception:
        pass  # a warm-up that hangs or fails only leaves the cache as it was
    finally:
        try:
            api.remove_container(cid, force=True)
            run.forget("container", args["name"])
        except Exception:
            pass  # DockerLab.down removes what of the lab is left
    _warmed.add(launcher.image)
