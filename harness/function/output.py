"""function.log and the history's share of the function's output, at a cost per
read instead of per line.

A function printing hundreds of MB of short lines used to cost the harness a
readline, a decode, a locked write and flush and a history append per line: a
core's worth of Python holding the GIL against the emulator's timeout and the
nemesis's firings. The process backend's pump now hands over whole reads (up to
64 KiB) and this class does a few C-level bytes operations per read: prefix
every line at once and write function.log in one call (capped at MAX_LOG_BYTES,
after which output is only counted), record the first lines in the history as
they come (HEAD_LOG_LINES), and hold back the last ones, undecoded, for the end
(TAIL_LOG_LINES). Between head and tail nothing is decoded or kept, so the
history's size and the harness's work stay bounded however much is printed.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from harness.function.spec import split_complete
from harness.history.recorder import TAIL_LOG_LINES, History


class FunctionLog:
    """The trial's output sink: call it with one line (the docker backend), or
    give it whole reads with chunk() (the process backend's pump); emulator()
    adds the emulator's START/END lines."""

    MAX_LOG_BYTES = 32 * 1024 * 1024

    def __init__(self, path: Path, history: History) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.history = history
        self._written = 0
        self.truncated = False
        self._lock = threading.Lock()  # the fd, the byte count and the cap
        self._carry: dict[int, bytes] = {}  # each stream's unfinished last line
        self._streams = threading.Condition()
        self._open: set[int] = set()

    # -- sinks --------------------------------------------------------------------

    def __call__(self, generation: int, line: str) -> None:
        for part in line.split("\r") if "\r" in line else (line,):  # awslambdaric's joined traceback
            self._write(f"[runtime-{generation}] {part}\n".encode("utf-8", "replace"))
            self.history.log(f"runtime-{generation}", part)

    def chunk(self, generation: int, data: bytes) -> None:
        """Output of runtime `generation` as read from its pipe; b"" ends the stream."""
        carry = self._carry.pop(generation, b"")  # only that stream's pump touches its entry
        if not data:
            if carry:
                self._lines(generation, carry + b"\n")
            with self._streams:
                self._open.discard(generation)
                self._streams.notify_all()
            return
        if generation not in self._open:
            with self._streams:
                self._open.add(generation)
        complete, self._carry[generation] = split_complete(carry, data)
        if complete:
            self._lines(generation, complete)

    def emulator(self, line: str) -> None:
        self._write(f"[rie] {line}\n".encode("utf-8", "replace"))

    # -- the work per read ----------------------------------------------------------

    def _lines(self, generation: int, block: bytes) -> None:
        """`block`: whole lines, each ending in a newline."""
        source = f"runtime-{generation}"
        if b"\r" in block:
            # awslambdaric writes a traceback as one line joined by \r (one log event
            # in CloudWatch); read as a file, each of its lines is a line.
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not self.truncated:
            prefix = f"[{source}] ".encode()
            self._write(prefix + block[:-1].replace(b"\n", b"\n" + prefix) + b"\n")
        body = block[:-1]
        n = block.count(b"\n")
        head = min(self.history.log_room(), n)
        if head:
            for line in body.split(b"\n", head)[:head]:
                self.history.log(source, line)
        rest = n - head
        if rest:
            keep = min(rest, TAIL_LOG_LINES)
            self.history.log_tail(source, body.rsplit(b"\n", keep)[-keep:], skipped=rest - keep)

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._fd < 0 or self.truncated:
                return
            room = self.MAX_LOG_BYTES - self._written
            if len(data) > room:
                data = (data[:data.rfind(b"\n", 0, room) + 1]
                        + f"[enirace] function.log truncated at {self.MAX_LOG_BYTES} bytes\n".encode())
                self.truncated = True
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            self._written += len(data)

    # -- the end ------------------------------------------------------------------------

    def drain(self, timeout_s: float) -> bool:
        """Wait until every stream that produced output has ended (its runtime is
        gone and its pump read the rest); False if some are still open."""
        deadline = time.monotonic() + timeout_s
        with self._streams:
            while self._open:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._streams.wait(left)
        return True

    def close(self) -> None:
        """Close function.log; output arriving later (a stream that outlived
        drain) is dropped, never written to a reused descriptor."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
