"""One trial: build the lab, start the emulator and the function, send the
workload, fire the schedule, judge, write the trial folder, tear down.

Teardown is guaranteed (finally), and the verdict is written before it starts, so
a teardown failure can never hide what the trial found.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import backends, functions
from harness.capture import SandboxCapture
from harness.errors import UserError
from harness.history import History
from harness.lab import addressing, faults
from harness.lab.topology import Lab
from harness.nemesis import Nemesis, sleep_until
from harness.ownership import Run
from harness.runtime_api import RuntimeAPI
from harness.scenario import Scenario, dump
from harness.verdict import Verdict, judge


@dataclass
class TrialResult:
    trial_id: str
    scenario: Scenario
    verdict: Verdict
    events: list[dict[str, Any]]
    folder: Path
    teardown_problems: list[str]

    @property
    def expected(self) -> bool | None:
        if self.scenario.expect is None:
            return None
        return self.verdict.verdict in self.scenario.expect.verdict


def _payload_bytes(payload: Any) -> bytes:
    return payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()


class _FunctionLog:
    """function.log in the trial folder (capped at MAX_LOG_BYTES), plus the
    history's bounded head and tail of the output."""

    MAX_LOG_BYTES = 32 * 1024 * 1024

    def __init__(self, path: Path, history: History) -> None:
        self._fh = path.open("a", encoding="utf-8")
        self.history = history
        self._written = 0
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self._lock:
            if self._written > self.MAX_LOG_BYTES:
                return
            self._written += len(text)
            if self._written > self.MAX_LOG_BYTES:
                text = f"[enirace] function.log truncated at {self.MAX_LOG_BYTES} bytes\n"
            self._fh.write(text)
            self._fh.flush()

    def output(self, generation: int, line: str) -> None:
        self._write(f"[runtime-{generation}] {line}\n")
        self.history.log(f"runtime-{generation}", line)

    def emulator(self, line: str) -> None:
        self._write(f"[rie] {line}\n")

    def close(self) -> None:
        self._fh.close()


def _set_initial_state(lab: Lab, scenario: Scenario, history: History) -> None:
    eni = lab.attach_eni() if scenario.lab.eni == "present" else None
    want_usable = scenario.lab.eni == "present"
    ok, state = faults.settled(lab.sandbox_state, lambda st: faults.eni_usable(st) == want_usable)
    if eni is not None:  # and replies can reach it
        ok = ok and faults.settled(lambda: {"up": lab.bridge_end_up(eni)}, lambda st: st["up"])[0]
    resolv = scenario.lab.resolv_conf
    if resolv != "present":
        written = lab.write_resolv_conf("" if resolv == "empty" else None)
        ok = ok and written["content"] == ("" if resolv == "empty" else None)
    aspects = {"eni": not want_usable, "resolv_conf": resolv != "present"}
    history.record("initial_state", eni=scenario.lab.eni, resolv_conf=resolv, aspects=aspects,
                   impairs=any(aspects.values()), verified=ok, state=state)


def _workload(api: RuntimeAPI, scenario: Scenario, history: History) -> None:
    wl = scenario.workload
    if wl.init == "eager":
        api.init()
    payload = _payload_bytes(wl.payload)
    first = time.monotonic_ns()
    never = threading.Event()
    for i in range(wl.invocations):
        sleep_until(first + int(i * wl.interval * 1e6), never)
        api.invoke(payload)


def run_trial(scenario: Scenario, run: Run, out_root: Path, trial_id: str | None = None,
              capture: bool = False) -> TrialResult:
    """One trial. `capture`: sniff in the sandbox, write capture.pcap and packet
    evidence (on for `enirace run`, off for sweeps: it costs a thread and a pass
    of scapy per trial)."""
    if scenario.seed is None:
        # A seed for the random offsets; recorded (trial_start, scenario.yaml)
        # so the trial can be replayed with the same draws.
        scenario = scenario.model_copy(update={"seed": secrets.randbelow(2**31)})
    # Resolve everything the user could get wrong before any namespace exists.
    launch = functions.launch_spec(scenario.function)
    addressing.check_pool(scenario.lab.pool)
    backends.check(scenario)

    trial_id = trial_id or f"{scenario.name}-{scenario.function.handler}-{run.run_id}-{run._labs + 1}"
    folder = out_root / trial_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(dump(scenario))
    history = History(folder / "history.jsonl")
    flog = _FunctionLog(folder / "function.log", history)
    lease = addressing.acquire(scenario.lab.pool, run)
    lab = backends.make_lab(scenario, run, lease.subnet, history.record)
    api: RuntimeAPI | None = None
    nemesis: Nemesis | None = None
    sniffer: SandboxCapture | None = None
    interrupted: BaseException | None = None
    try:
        history.record("trial_start", trial=trial_id, run=run.run_id, subnet=str(lease.subnet.network),
                       pid=os.getpid(), seed=scenario.seed)
        lab.up()
        if capture:
            sniffer = SandboxCapture(lab.sandbox, history, folder / "capture.pcap")
            sniffer.start()
        _set_initial_state(lab, scenario, history)
        nemesis = Nemesis(lab, history, scenario.schedule, seed=scenario.seed or 0)
        nemesis.start()
        history.record("sandbox_ready", sandbox=lab.sandbox, vpc=lab.vpc)
        api = backends.make_runtime_api(scenario, lab, history, launch, flog.output, flog.emulator)
        api.start()
        _workload(api, scenario, history)
    except UserError:
        raise
    except BaseException as exc:  # KeyboardInterrupt and SIGTERM included
        history.record("harness_error", error=f"{type(exc).__name__}: {exc}")
        if not isinstance(exc, Exception):
            interrupted = exc
    finally:
        if nemesis is not None:
            for entry in nemesis.stop():
                history.record("fault_skipped", fault=entry.do, trigger=str(entry.at),
                               why="its trigger event did not occur during the trial")
        if api is not None:
            api.stop()
        if sniffer is not None:
            try:
                sniffer.stop()
            except Exception as exc:  # evidence is a bonus; never lose the verdict over it
                history.record("capture", error=f"{type(exc).__name__}: {exc}")
        history.flush_log_tail()
        verdict = judge(history.events)
        (folder / "verdict.json").write_text(json.dumps(verdict.to_dict(), indent=2))
        problems = lab.down()
        lease.release()
        flog.close()
        history.close()
        if problems:
            (folder / "teardown.txt").write_text("\n".join(problems) + "\n")
    if interrupted is not None:
        raise interrupted
    return TrialResult(trial_id, scenario, verdict, list(history.events), folder, problems)
