"""The trial's single history: lifecycle, fault, invocation and log events on one
monotonic clock, streamed to history.jsonl as they happen (Jepsen-style).

Every event is checked against harness/history/schema.py. Strict (the project's
tests set ENIRACE_STRICT_HISTORY=1, inherited by the processes they start), an
event the schema does not describe is refused: HistorySchemaError, after a
harness_error event saying so, so a refusal in a server or nemesis thread still
shows in the verdict. Otherwise it is recorded as given and warned about once."""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from harness.history import queries, schema
from harness.history.queries import Event
from harness.history.schema import HARNESS_ERROR, LOG, LOG_DROPPED, HistorySchemaError

Listener = Callable[[Event], None]

# Function output goes to function.log (itself capped); the history keeps the first
# HEAD_LOG_LINES lines as they come and the last TAIL_LOG_LINES at the end, so a
# function that floods stdout cannot grow the harness's memory or the history.
HEAD_LOG_LINES = 200
TAIL_LOG_LINES = 200
MAX_LINE = 2000

STRICT_ENV = "ENIRACE_STRICT_HISTORY"
_warned: set[str] = set()


def strict_default() -> bool:
    return os.environ.get(STRICT_ENV) == "1"


class History:
    def __init__(self, path: Path | None = None, strict: bool | None = None) -> None:
        self.strict = strict_default() if strict is None else strict
        self.t0_ns = time.monotonic_ns()
        self.events: list[Event] = []
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()
        self._file: TextIO | None = path.open("w", encoding="utf-8") if path else None
        self._log_events = 0
        self._tail: deque[tuple[float, str, str | bytes]] = deque(maxlen=TAIL_LOG_LINES)
        self.dropped_log_lines = 0

    def now_ms(self) -> float:
        return (time.monotonic_ns() - self.t0_ns) / 1e6

    def ms_at(self, mono_ns: int) -> float:
        return (mono_ns - self.t0_ns) / 1e6

    def mono_ns_at(self, t_ms: float) -> int:
        return self.t0_ns + int(t_ms * 1e6)

    def record(self, kind: str, t_ms: float | None = None, **fields: Any) -> Event:
        wrong = schema.problem(kind, fields.keys())
        if wrong is not None:
            self._refuse_or_warn(wrong)
        with self._lock:
            event: Event = {"t_ms": round(self.now_ms() if t_ms is None else t_ms, 3), "kind": kind}
            event.update(fields)
            self.events.append(event)
            if self._file:
                self._file.write(json.dumps(event, default=str) + "\n")
                self._file.flush()
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)
        return event

    def _refuse_or_warn(self, wrong: str) -> None:
        if self.strict:
            self.record(HARNESS_ERROR, error=f"history schema: {wrong}")
            raise HistorySchemaError(wrong)
        if wrong not in _warned:
            _warned.add(wrong)
            warnings.warn(f"history: {wrong}; recorded anyway", RuntimeWarning, stacklevel=3)

    def log(self, source: str, line: str | bytes) -> None:
        """A line of function output (see HEAD_LOG_LINES)."""
        with self._lock:
            if self._log_events >= HEAD_LOG_LINES:
                if len(self._tail) == self._tail.maxlen:
                    self.dropped_log_lines += 1
                self._tail.append((self.now_ms(), source, as_text(line)))
                return
            self._log_events += 1
        self.record(LOG, source=source, line=as_text(line))

    def log_room(self) -> int:
        """How many more lines log() would record as they come (the head's room)."""
        with self._lock:
            return max(0, HEAD_LOG_LINES - self._log_events)

    def log_tail(self, source: str, lines: list[bytes], skipped: int = 0) -> None:
        """Output lines past the head, read together just now. They stay raw bytes
        (only the last TAIL_LOG_LINES are ever decoded, by flush_log_tail);
        `skipped` lines of the same read before them were never kept."""
        t_ms = self.now_ms()
        with self._lock:
            self.dropped_log_lines += skipped + max(0, len(self._tail) + len(lines) - TAIL_LOG_LINES)
            self._tail.extend((t_ms, source, line) for line in lines)

    def flush_log_tail(self) -> None:
        """Record the last lines held back by log(), and how many were dropped."""
        with self._lock:
            tail, self._tail = list(self._tail), deque(maxlen=TAIL_LOG_LINES)
            dropped, self.dropped_log_lines = self.dropped_log_lines, 0
        if dropped:
            self.record(LOG_DROPPED, lines=dropped)
        for t_ms, source, line in tail:
            self.record(LOG, t_ms=t_ms, source=source, line=as_text(line))

    def subscribe(self, listener: Listener, replay: bool = True) -> None:
        """Deliver every future event to `listener`; with replay, past ones first."""
        with self._lock:
            # Replaying under the lock keeps past events ahead of any new one.
            if replay:
                for event in self.events:
                    listener(event)
            self._listeners.append(listener)

    def of_kind(self, *kinds: str) -> list[Event]:
        with self._lock:
            return queries.of_kind(self.events, *kinds)

    def close(self) -> None:
        with self._lock:
            if self._file:
                self._file.close()
                self._file = None


def as_text(line: str | bytes) -> str:
    """A line of output as the history holds it: text, at most MAX_LINE characters."""
    if isinstance(line, bytes):
        # Decoding is bounded too: a line can be up to 64 KiB (MAX_LINE_BYTES, harness/function/spec.py).
        line = line[:4 * MAX_LINE].decode("utf-8", "replace")
    return line[:MAX_LINE]
