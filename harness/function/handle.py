"""What the emulator needs from a started runtime, whichever backend started it."""

from __future__ import annotations

import signal
from typing import Protocol


class RuntimeHandle(Protocol):
    """A started runtime: a process group (process backend) or a container (docker)."""

    generation: int

    @property
    def pid(self) -> int: ...

    def wait(self) -> int:
        """Block until it exits; its exit code, negative for a signal (Popen's convention)."""
        ...

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Kill the runtime and everything it started."""
        ...
