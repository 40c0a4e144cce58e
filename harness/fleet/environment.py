"""One execution environment of a fleet: its sandbox on the fleet's vpc, its ENI
(at once, or late: attached `delay` after its init began, as the cold start's
draw says), its own emulator and runtime (the process backend's, frozen between
invocations), its own folder (history.jsonl, function.log), as a trial's."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.backends.base import RuntimeAPILike
from harness.backends.process import ProcessBackend
from harness.fleet.envlab import EnvLab, FleetLab
from harness.fleet.invocation import Invocation
from harness.function.output import FunctionLog
from harness.function.spec import LaunchSpec
from harness.history import schema
from harness.history.recorder import Event, History
from harness.nemesis import fault as faults
from harness.nemesis.eni import AttachEni
from harness.nemesis.firing import sleep_until
from harness.scenario.model import Scenario

DRAIN_S = 0.5


class Environment:
    def __init__(self, name: str, fleet_lab: FleetLab, scenario: Scenario, launch: LaunchSpec,
                 folder: Path, draw: dict[str, Any], on_eni: Callable[..., Any] | None = None) -> None:
        self.name = name
        self.scenario = scenario
        self.launch = launch
        self.draw = draw
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.history = History(folder / "history.jsonl")
        self.flog = FunctionLog(folder / "function.log", self.history)
        self.lab = EnvLab(fleet_lab, notify=None)  # the resolver and service report to the fleet
        self.api: RuntimeAPILike | None = None
        self.invocations = 0
        self.failures = 0
        self.last_used = time.monotonic()
        self.eni_at_ms: float | None = None  # when the late ENI became usable (env history time)
        self._cancel = threading.Event()
        self._attacher: threading.Thread | None = None
        # The fleet's History.record-like: the late attach is told to the fleet's history too.
        self.on_eni = on_eni

    # -- life ---------------------------------------------------------------------------

    def start(self) -> str:
        """Build the sandbox and ENI (unless late), start the runtime and wait for
        its init (Lambda's init phase of a cold start). The init's outcome."""
        h = self.history
        h.record(schema.TRIAL_START, trial=self.name, run=self.lab.run.run_id, subnet=str(self.lab.subnet.network),
                 pid=os.getpid(), seed=self.scenario.seed, schema=schema.SCHEMA_VERSION)
        self.lab.up()
        late = bool(self.draw.get("eni_late"))
        eni = None if late else self.lab.attach_eni()
        ok, state = faults.settled(self.lab.sandbox_state, lambda st: faults.eni_usable(st) == (not late))
        if eni is not None:
            ok = ok and faults.settled(lambda: {"up": self.lab.bridge_end_up(eni)}, lambda st: st["up"])[0]
        h.record(schema.INITIAL_STATE, eni="absent" if late else "present", resolv_conf="present",
                 aspects={"eni": late, "resolv_conf": False}, impairs=late, verified=ok, state=state)
        if late:
            h.subscribe(self._on_event, replay=False)
        h.record(schema.SANDBOX_READY, sandbox=self.lab.sandbox, vpc=self.lab.vpc)
        self.api = ProcessBackend().make_runtime_api(self.scenario, self.lab, h, self.launch, self.flog,
                                                     self.flog.emulator)
        self.api.start()
        return self.api.init()

    def invoke(self, payload: bytes, cold: bool) -> Invocation:
        assert self.api is not None
        began = time.monotonic()
        _, outcome = self.api.invoke(payload)
        self.invocations += 1
        ok = outcome.status == "ok"
        self.failures += not ok
        error_type = None if ok else (outcome.error_type or outcome.status)
        return Invocation(ok=ok, body=outcome.body, error_type=error_type, environment=self.name, cold=cold,
                          duration_ms=round((time.monotonic() - began) * 1000, 3))

    def stop(self) -> list[str]:
        """Kill the runtime, remove the sandbox; what could not be removed."""
        problems: list[str] = []
        self._cancel.set()
        if self._attacher is not None:
            self._attacher.join(timeout=5)
        if self.api is not None:
            try:
                self.api.stop()
            except Exception as exc:
                problems.append(f"{self.name}: stop: {type(exc).__name__}: {exc}")
        self.flog.drain(DRAIN_S)
        self.history.flush_log_tail()
        problems += [f"{self.name}: {p}" for p in self.lab.down()]
        self.flog.close()
        self.history.close()
        return problems

    # -- the late ENI ------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event["kind"] != schema.INIT_START or self._attacher is not None:
            return
        planned_ms = event["t_ms"] + float(self.draw["delay_ms"])
        self._attacher = threading.Thread(target=self._attach_late, args=(planned_ms,), daemon=True,
                                          name=f"{self.name}-eni")
        self._attacher.start()

    def _attach_late(self, planned_ms: float) -> None:
        """The cold start's ENI, `delay` after its first init began, recorded as the
        nemesis records an attach_eni (so the timeline and checker read it)."""
        h = self.history
        if not sleep_until(h.mono_ns_at(planned_ms), self._cancel):
            return
        fault = AttachEni(self.lab)
        actual_ms = h.now_ms()
        record: dict[str, Any] = {"fault": fault.name, "index": 0, "step": "apply", "action": "apply",
                                  "trigger": f"init_start + {self.draw['delay_ms']}ms",
                                  "offset_ms": self.draw["delay_ms"], "seed": self.scenario.seed or 0,
                                  "planned_ms": round(planned_ms, 3), "error_ms": round(actual_ms - planned_ms, 3)}
        try:
            record["detail"] = fault.apply()
            applied_ms = h.now_ms()
            ok, state = fault.verify()
            aspects = fault.effect()
            record.update(verified=ok, state=state, apply_ms=round(applied_ms - actual_ms, 3), aspects=aspects,
                          impairs=any(aspects.values()))
            if ok:
                self.eni_at_ms = h.now_ms()
        except Exception as exc:  # an attach that raised did not take effect
            record.update(verified=False, impairs=True, error=f"{type(exc).__name__}: {exc}")
        h.record(schema.FAULT, t_ms=actual_ms, **record)
        if self.on_eni is not None:
            detail = record.get("detail") or {}
            self.on_eni(schema.ENVIRONMENT_ENI, environment=self.name, delay_ms=self.draw["delay_ms"],
                        verified=record["verified"], **({"address": detail["address"]} if "address" in detail else {}),
                        **({"error": record["error"]} if "error" in record else {}))
