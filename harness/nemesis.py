"""The nemesis: turns the schedule into faults fired at precise times.

It watches the history; when a trigger's event occurs (the n-th time), it plans
the firing at event time + offset and a timer thread fires the fault then. Each
firing records planned time, actual time, the verify result and whether the
network is impaired afterwards.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from harness.history import Event, History
from harness.lab import faults
from harness.lab.topology import Lab
from harness.scenario import ScheduleEntry

# Sleep until this close to the planned time, then spin: time.sleep alone
# overshoots by up to a scheduler tick.
SPIN_NS = 1_500_000


def sleep_until(mono_ns: int, cancelled: threading.Event) -> bool:
    """Wait until time.monotonic_ns() >= mono_ns; False if cancelled first."""
    while True:
        left = mono_ns - time.monotonic_ns()
        if left <= 0:
            return True
        if left > SPIN_NS:
            if cancelled.wait((left - SPIN_NS) / 1e9):
                return False
        elif cancelled.is_set():
            return False


class Nemesis:
    def __init__(self, lab: Lab, history: History, schedule: list[ScheduleEntry]) -> None:
        self.lab = lab
        self.history = history
        self.schedule = schedule
        self._seen: Counter[str] = Counter()
        self._armed: set[int] = set()
        self._threads: list[threading.Thread] = []
        self._cancel = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        self.history.subscribe(self._on_event, replay=True)

    def _on_event(self, event: Event) -> None:
        kind = event["kind"]
        if kind not in {e.at.event for e in self.schedule}:
            return
        with self._lock:
            self._seen[kind] += 1
            count = self._seen[kind]
            for i, entry in enumerate(self.schedule):
                if i in self._armed or entry.at.event != kind or entry.at.occurrence != count:
                    continue
                self._armed.add(i)
                planned_ms = event["t_ms"] + entry.at.offset_ms
                t = threading.Thread(target=self._fire, args=(i, entry, planned_ms),
                                     name=f"nemesis-{i}", daemon=True)
                self._threads.append(t)
                t.start()

    def _fire(self, index: int, entry: ScheduleEntry, planned_ms: float) -> None:
        if not sleep_until(self.history.mono_ns_at(planned_ms), self._cancel):
            return
        actual_ms = self.history.now_ms()
        fault = faults.make(entry.do, self.lab, entry.with_)
        record: dict[str, Any] = {"fault": entry.do, "index": index, "trigger": str(entry.at),
                                  "planned_ms": round(planned_ms, 3),
                                  "error_ms": round(actual_ms - planned_ms, 3),
                                  "impairs": fault.impairs}
        try:
            record["detail"] = fault.apply()
            applied_ms = self.history.now_ms()
            ok, state = fault.verify()
            record.update(verified=ok, state=state, apply_ms=round(applied_ms - actual_ms, 3))
        except Exception as exc:  # a fault that raises did not take effect
            record.update(verified=False, error=f"{type(exc).__name__}: {exc}")
        self.history.record("fault", t_ms=actual_ms, **record)

    def stop(self) -> list[ScheduleEntry]:
        """Cancel pending firings; returns the entries that never fired."""
        self._cancel.set()
        for t in self._threads:
            t.join(timeout=5)
        with self._lock:
            return [e for i, e in enumerate(self.schedule) if i not in self._armed]
