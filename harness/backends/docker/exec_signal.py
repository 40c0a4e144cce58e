"""When a function container's bootstrap starts, as the container sees it.

`init_start` must mean the same on both backends: the moment the bootstrap is
executed. The process backend knows it when Popen returns; the engine's `start`
call does not say (it returns after a variable amount of bookkeeping, and under
load that lag is hundreds of milliseconds, shifting every `init_start + X` fault
later into the init). So the container's entrypoint is wrapped in a shell that
writes one byte into a FIFO bind-mounted from the host, then execs the image's own
entrypoint; the host notes the monotonic time at which the byte arrives.

The FIFO lives in the lab's own state directory (recorded in the run's manifest,
removed with the lab). The host opens its read end before the container starts,
so the container's write never blocks.
"""

from __future__ import annotations

import os
import select
import threading
import time
from pathlib import Path

MOUNT = "/run/enirace-exec"  # where the FIFO appears in the container
WAIT_S = 30.0  # a container that never runs its entrypoint is reported by its exit instead
SETTLE_S = 2.0  # how long spawn waits past the engine's start for the signal
_WRAPPER = f'echo > {MOUNT}; exec "$@"'


def wrap(argv: list[str]) -> list[str]:
    """An entrypoint that signals, then execs argv (the image's entrypoint and command)."""
    return ["/bin/sh", "-c", _WRAPPER, "enirace-exec", *argv]


class ExecSignal:
    """One generation's FIFO and the thread that waits on its read end. The read end
    stays open until close() (the container is gone): a writer that found no reader
    would block, and one whose reader vanished mid-write would die of SIGPIPE."""

    def __init__(self, directory: Path, generation: int) -> None:
        directory.mkdir(exist_ok=True)
        self.path = directory / f"exec-fn{generation}"
        self.path.unlink(missing_ok=True)
        os.mkfifo(self.path)
        os.chmod(self.path, 0o622)  # the container's user may not be root
        self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._closing = False
        self.at_ns: int | None = None
        threading.Thread(target=self._wait, daemon=True, name=f"exec-signal-{generation}").start()

    def _wait(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        deadline = time.monotonic() + WAIT_S
        try:
            while not self._closing and time.monotonic() < deadline:
                if poller.poll(100):
                    self.at_ns = time.monotonic_ns()
                    return
        finally:
            with self._lock:
                self._done.set()
                if self._closing:
                    os.close(self._fd)

    def result(self, timeout_s: float) -> int | None:
        """The monotonic ns of the bootstrap's start, or None if it did not signal in time."""
        self._done.wait(timeout_s)
        return self.at_ns

    def close(self) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = True
            if self._done.is_set():
                os.close(self._fd)
        self.path.unlink(missing_ok=True)
