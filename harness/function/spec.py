"""What a runtime start is, whoever starts it: the LaunchSpec, where the runtime's
output goes, and the Runtime API address the runtime is told to use.

Stdlib only: the enirace-rie drop-in builds LaunchSpecs too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# AWS_LAMBDA_RUNTIME_API of every function the harness starts; the emulator
# listens there inside the sandbox.
RUNTIME_ADDR = ("127.0.0.1", 9001)

# (runtime generation, one line of its output)
OutputSink = Callable[[int, str], None]
# A line longer than this is cut: one endless line must not grow memory.
MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True)
class LaunchSpec:
    """What to run for one runtime start: argv, environment, working directory.

    `program`: the file the function's build produced and argv runs (the .NET
    function.dll), when there is one; a container mounts its folder as the task
    root instead of function.code's sources."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    description: str = ""
    program: Path | None = None


def split_complete(carry: bytes, data: bytes) -> tuple[bytes, bytes]:
    """(the whole lines of carry + data, the unfinished rest). A rest of
    MAX_LINE_BYTES or more counts as a line, so one endless line cannot grow memory."""
    if carry:
        data = carry + data
    cut = data.rfind(b"\n") + 1
    if len(data) - cut >= MAX_LINE_BYTES:
        return data + b"\n", b""
    return data[:cut], data[cut:]
