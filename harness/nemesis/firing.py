"""The nemesis: turns the schedule into faults fired at precise times.

When the schedule is armed (start), each entry's fault is built and prepared, and
random offsets (`init_start + 200ms..800ms`) are drawn from the trial's seed.
When a trigger's event occurs (the n-th time), the firing is planned at event
time + offset and a thread runs its steps: apply, then with `for:` a revert, or a
flap's down/up cycles. Every step records a `fault` event with its planned time,
its actual time, the verify result and the aspects it leaves impaired.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import threading
import time
from collections import Counter
from typing import Any

from harness import signals
from harness.history import schema
from harness.history.recorder import Event, History
from harness.lab.topology import Lab
from harness.nemesis import catalogue
from harness.nemesis import fault as faults
from harness.scenario.model import ScheduleEntry

# Sleep until this close to the planned time, then spin: a sleeping thread wakes
# up to a few hundred microseconds late, and later still if it must wait for the GIL.
SPIN_NS = 1_500_000
# While firings are pending, threads hand over the GIL after this long instead of
# Python's default 5 ms, so a busy thread delays a firing by at most about this.
SWITCH_INTERVAL_S = 0.0005


def realtime(on: bool) -> None:
    """Run the calling thread SCHED_FIFO (on) or back to normal. On a busy machine a
    waking thread otherwise waits its turn for a core, milliseconds past its time.
    Only the firing thread, only from its wake-up until the fault call returned;
    without the privilege, it silently stays normal."""
    try:
        if on:
            # RESET_ON_FORK: threads it starts (a detach's reaper) run normally.
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(1))
        else:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (OSError, AttributeError):
        pass


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
    def __init__(self, lab: Lab, history: History, schedule: list[ScheduleEntry],
                 seed: int = 0) -> None:
        self.lab = lab
        self.history = history
        self.schedule = schedule
        self.seed = seed
        self.offsets = [entry.at.draw_offset_ms(seed, i) for i, entry in enumerate(schedule)]
        self._faults: list[faults.Fault | None] = [None] * len(schedule)
        self._seen: Counter[str] = Counter()
        self._armed: set[int] = set()
        self._threads: list[threading.Thread] = []
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        # One fault changes the lab at a time (apply and verify): firings close
        # together would otherwise act on an ENI another one is still replacing.
        self._apply_lock = threading.Lock()
        self._switch_interval: float | None = None
        self._gc_was_enabled = True

    def start(self) -> None:
        for i, entry in enumerate(self.schedule):
            fault = catalogue.make(entry.do, self.lab, entry.with_)
            fault.seed = random.Random(f"enirace-fault/{self.seed}/{i}").getrandbits(32)
            fault.prepare()
            self._faults[i] = fault
        if self.schedule:
            self.history.record(schema.SCHEDULE, seed=self.seed, entries=[
                {"index": i, "trigger": str(e.at), "do": e.do, "with": e.with_, "for_ms": e.for_,
                 "offset_ms": self.offsets[i], "drawn": e.at.is_random}
                for i, e in enumerate(self.schedule)])
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL_S))
            # A full garbage collection scans every tracked object with the GIL
            # held, tens of ms in a harness that has imported pyroute2 and scapy,
            # and any thread may trigger it: none runs while faults can fire.
            # Not gc.freeze(): the trial's cyclic garbage alive at that moment
            # (pyroute2 messages, asyncio transports) was then never freed, and a
            # sweep worker grew by ~0.35 MB per trial. Disabled, the garbage just
            # waits for stop(), and the collector's generations stay as they were.
            self._gc_was_enabled = gc.isenabled()
            gc.disable()
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
                planned_ms = event["t_ms"] + self.offsets[i]
                t = threading.Thread(target=self._fire, args=(i, entry, planned_ms),
                                     name=f"nemesis-{i}", daemon=True)
                # Events are often recorded by the main thread, where a Ctrl-C inside
                # start() would leave a thread that stop() can neither join nor cancel.
                with signals.deferred():
                    t.start()
                self._threads.append(t)

    def _fire(self, index: int, entry: ScheduleEntry, planned_ms: float) -> None:
        fault = self._faults[index]
        assert fault is not None
        steps = fault.steps(entry.for_)
        for n, step in enumerate(steps):
            step_planned = planned_ms + step.at_ms
            realtime(True)
            woke = sleep_until(self.history.mono_ns_at(step_planned), self._cancel)
            if not woke:
                realtime(False)
                for rest in steps[n:]:
                    self.history.record(schema.FAULT_STEP_CANCELLED, fault=entry.do, index=index,
                                        step=rest.label, planned_ms=round(planned_ms + rest.at_ms, 3),
                                        why="the trial ended first")
                return
            if not self._run_step(index, entry, fault, step, step_planned):
                return  # a step that did not take effect: the rest would act on nothing

    def _run_step(self, index: int, entry: ScheduleEntry, fault: faults.Fault, step: faults.Step,
                  planned_ms: float) -> bool:
        actual_ms = self.history.now_ms()
        reverting = step.action == "revert"
        record: dict[str, Any] = {"fault": entry.do, "index": index, "step": step.label,
                                  "action": step.action, "trigger": str(entry.at),
                                  "offset_ms": self.offsets[index], "seed": self.seed,
                                  "planned_ms": round(planned_ms, 3),
                                  "error_ms": round(actual_ms - planned_ms, 3)}
        try:
            with self._apply_lock:
                try:
                    record["detail"] = fault.revert() if reverting else fault.apply()
                finally:
                    realtime(False)
                applied_ms = self.history.now_ms()
                # Under the lock too: another firing must not change the lab
                # between this apply and the read-back that proves it.
                ok, state = fault.verify_reverted() if reverting else fault.verify()
            aspects = fault.revert_effect() if reverting else fault.effect()
            record.update(verified=ok, state=state, apply_ms=round(applied_ms - actual_ms, 3),
                          aspects=aspects, impairs=any(aspects.values()))
            if fault.transient:
                # The network was down for the length of the call (a swap's gap).
                record["blip_ms"] = [round(actual_ms, 3), round(applied_ms, 3)]
        except Exception as exc:  # a fault that raises did not take effect
            ok = False
            record.update(verified=False, impairs=fault.impairs, error=f"{type(exc).__name__}: {exc}")
        self.history.record(schema.FAULT, t_ms=actual_ms, **record)
        return ok

    def stop(self) -> list[ScheduleEntry]:
        """Cancel pending firings; returns the entries that never fired."""
        self._cancel.set()
        for t in self._threads:
            t.join(timeout=5)
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
            if self._gc_was_enabled:
                gc.enable()
        with self._lock:
            return [e for i, e in enumerate(self.schedule) if i not in self._armed]
