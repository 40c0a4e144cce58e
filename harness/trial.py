"""One trial: build the lab, start the emulator and the function, send the
workload, fire the schedule, judge, write the trial folder, tear down.

Teardown is guaranteed (finally), and the verdict is written before it starts, so
a teardown failure can never hide what the trial found.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import backends, signals
from harness.backends import Backend, RuntimeAPILike
from harness.capture.sniffer import SandboxCapture
from harness.checker.config import misconfiguration
from harness.checker.verdict import Verdict, judge
from harness.errors import UserError
from harness.function import launch as functions
from harness.function.output import FunctionLog
from harness.function.spec import LaunchSpec
from harness.history import schema
from harness.history.recorder import History
from harness.lab import addressing
from harness.lab.topology import Lab
from harness.nemesis import fault as faults
from harness.nemesis.firing import Nemesis, sleep_until
from harness.ownership import Run
from harness.scenario.model import Scenario, dump

# How long teardown waits for a dead runtime's pump to read the rest of its output.
DRAIN_S = 0.5


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


def _checker_params(scenario: Scenario) -> dict[str, Any]:
    """What of expect: the checker needs, recorded so `enirace judge` sees it too."""
    n = scenario.expect.healthy_after if scenario.expect is not None else None
    return {"healthy_after": n} if n else {}


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
    history.record(schema.INITIAL_STATE, eni=scenario.lab.eni, resolv_conf=resolv, aspects=aspects,
                   impairs=any(aspects.values()), verified=ok, state=state)


def _workload(api: RuntimeAPILike, scenario: Scenario, history: History) -> None:
    wl = scenario.workload
    if wl.init == "eager":
        api.init()
    payload = _payload_bytes(wl.payload)
    first = time.monotonic_ns()
    never = threading.Event()
    for offset_ms in wl.start_offsets_ms():
        if misconfiguration(history.events):
            return  # every further start fails the same way: the verdict is broken already
        sleep_until(first + int(offset_ms * 1e6), never)
        api.invoke(payload)


@dataclass
class _Parts:
    """What a trial has built so far, for teardown to take apart in order."""

    folder: Path
    history: History
    flog: FunctionLog
    lease: addressing.Lease | None = None
    lab: Lab | None = None
    api: RuntimeAPILike | None = None
    nemesis: Nemesis | None = None
    sniffer: SandboxCapture | None = None

    def _stop_nemesis(self) -> None:
        if self.nemesis is not None:
            for entry in self.nemesis.stop():
                self.history.record(schema.FAULT_SKIPPED, fault=entry.do, trigger=str(entry.at),
                                    why="its trigger event did not occur during the trial")

    def _stop_sniffer(self) -> None:
        if self.sniffer is not None:
            try:
                self.sniffer.stop()
            except Exception as exc:  # evidence is a bonus; never lose the verdict over it
                self.history.record(schema.CAPTURE, error=f"{type(exc).__name__}: {exc}")

    def quiesce(self) -> list[str]:
        """Stop everything that still adds to the history; each step whatever the
        one before did. Returns what failed."""
        problems = []
        for step in (self._stop_nemesis, self.api.stop if self.api else None, self._stop_sniffer):
            try:
                if step is not None:
                    step()
            except Exception as exc:
                problems.append(f"stop: {type(exc).__name__}: {exc}")
        self.flog.drain(DRAIN_S)  # the last lines of a runtime killed on timeout
        self.history.flush_log_tail()
        return problems

    def teardown(self) -> tuple[Verdict, list[str]]:
        """Verdict first (so a teardown failure cannot hide it), then the lab."""
        problems = self.quiesce()
        verdict = judge(self.history.events)
        (self.folder / "verdict.json").write_text(json.dumps(verdict.to_dict(), indent=2))
        if self.lab is not None:
            problems += self.lab.down()
        if self.lease is not None:
            self.lease.release()
        self.flog.drain(DRAIN_S)
        self.flog.close()
        self.history.close()
        if problems:
            (self.folder / "teardown.txt").write_text("\n".join(problems) + "\n")
        return verdict, problems


@dataclass(frozen=True)
class Prepared:
    """A scenario that passed preflight: its launch spec resolved, its pool and
    its backend checked, the backend chosen."""

    scenario: Scenario
    launch: LaunchSpec
    backend: Backend


def preflight(scenario: Scenario) -> Prepared:
    """Everything the user could get wrong, checked before any namespace exists:
    one line (UserError) naming the field. `enirace run`, the sweep and the pytest
    plugin call this; run_one_trial does when handed a bare Scenario."""
    from harness.backends.docker import user_image

    if user_image.is_own_image(scenario):
        # A team's own image holds its function: nothing to build here, and the
        # handler is the image's CMD unless given (recorded as the trial's).
        scenario = user_image.adopt(scenario)
        launch = functions.image_launch(scenario.function)
    else:
        launch = functions.launch_spec(scenario.function)
    addressing.check_pool(scenario.lab.pool)
    backend = backends.for_scenario(scenario)
    backend.preflight(scenario)
    return Prepared(scenario, launch, backend)


def handler_slug(handler: str) -> str:
    """A handler string as a folder-name part: `Asm::Ns.Type::Method` has `:`, which
    Windows and GitHub's upload-artifact refuse, and a command may have `/`."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", handler).strip("._-")[:60]
    return slug or "handler"


def run_one_trial(scenario: Scenario | Prepared, run: Run, out_root: Path, trial_id: str | None = None,
                  capture: bool = False) -> TrialResult:
    """One trial of a scenario, or of a Prepared one (then not checked again).
    `capture`: sniff in the sandbox, write capture.pcap and packet evidence (on
    for `enirace run`, off for sweeps: it costs a thread and a pass of scapy per
    trial).

    An interrupt (KeyboardInterrupt, or whatever a SIGTERM handler raises) is
    re-raised once the lab is down and verdict.json written, with the trial
    folder as its `trial_folder` attribute. Signals arriving during teardown wait
    for it to finish (harness/signals.py)."""
    prepared = scenario if isinstance(scenario, Prepared) else preflight(scenario)
    scenario = prepared.scenario
    if scenario.seed is None:
        # A seed for the random offsets; recorded (trial_start, scenario.yaml)
        # so the trial can be replayed with the same draws.
        scenario = scenario.model_copy(update={"seed": secrets.randbelow(2**31)})
        prepared = replace(prepared, scenario=scenario)

    trial_id = trial_id or f"{scenario.name}-{handler_slug(scenario.function.handler)}-{run.run_id}-{run._labs + 1}"
    folder = out_root / trial_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(dump(scenario))
    history = History(folder / "history.jsonl")
    parts = _Parts(folder, history, FunctionLog(folder / "function.log", history))
    interrupted: BaseException | None = None
    try:
        try:
            _run(parts, prepared, run, trial_id, capture)
        except UserError:
            raise
        except BaseException as exc:  # KeyboardInterrupt and SIGTERM included
            history.record(schema.HARNESS_ERROR, error=f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, Exception):
                interrupted = exc
        finally:
            with signals.deferred():
                verdict, problems = parts.teardown()
    except BaseException as exc:  # a signal held back during teardown, delivered now
        exc.trial_folder = folder  # type: ignore[attr-defined]
        raise
    if interrupted is not None:
        interrupted.trial_folder = folder  # type: ignore[attr-defined]
        raise interrupted
    return TrialResult(trial_id, scenario, verdict, list(history.events), folder, problems)


def _run(parts: _Parts, prepared: Prepared, run: Run, trial_id: str, capture: bool) -> None:
    # Building is uninterruptible (tens of ms): a Ctrl-C halfway through a
    # namespace's creation, a thread's start or a namespace switch leaves state
    # that teardown cannot see. It is delivered once the trial is built.
    with signals.deferred():
        _build(parts, prepared, run, trial_id, capture)
    assert parts.api is not None
    _workload(parts.api, prepared.scenario, parts.history)


def _build(parts: _Parts, prepared: Prepared, run: Run, trial_id: str, capture: bool) -> None:
    history, scenario, backend = parts.history, prepared.scenario, prepared.backend
    parts.lease = lease = addressing.acquire(scenario.lab.pool, run)
    parts.lab = lab = backend.make_lab(scenario, run, lease.subnet, history.record)
    history.record(schema.TRIAL_START, trial=trial_id, run=run.run_id, subnet=str(lease.subnet.network),
                   pid=os.getpid(), seed=scenario.seed, schema=schema.SCHEMA_VERSION,
                   **_checker_params(scenario))
    lab.up()
    if capture:
        parts.sniffer = SandboxCapture(lab.sandbox, history, parts.folder / "capture.pcap")
        parts.sniffer.start()
    _set_initial_state(lab, scenario, history)
    parts.nemesis = Nemesis(lab, history, scenario.schedule, seed=scenario.seed or 0)
    parts.nemesis.start()
    history.record(schema.SANDBOX_READY, sandbox=lab.sandbox, vpc=lab.vpc)
    parts.api = backend.make_runtime_api(scenario, lab, history, prepared.launch, parts.flog,
                                         parts.flog.emulator)
    parts.api.start()
