"""A fake trial function for testing and benchmarking the sweep machinery itself
(scheduling, streaming, resume, reports) without root or namespaces.

It writes a trial folder shaped like a real one (scenario.yaml, history.jsonl,
verdict.json) from a made-up history whose outcome depends on the handler and the
fault offset the way late-eni-attach does, and sleeps ENIRACE_FAKE_TRIAL_S.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from harness.checker.verdict import judge
from harness.ownership import Run
from harness.scenario.model import dump
from harness.sweep.grid import SweepSpec, trial_scenario


def fake_history(handler: str, offset_ms: float | None, invocations: int, interval_ms: float) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [{"t_ms": 1.0, "kind": "trial_start"}]
    init = 30.0
    if offset_ms is None:
        events.append({"t_ms": 20.0, "kind": "initial_state", "eni": "present", "impairs": False, "verified": True})
        attach = None
    else:
        events.append({"t_ms": 20.0, "kind": "initial_state", "eni": "absent", "impairs": True, "verified": True})
        attach = init + offset_ms
    events.append({"t_ms": init, "kind": "init_start", "generation": 1, "phase": "init"})
    ready = init + 150
    events.append({"t_ms": ready, "kind": "runtime_ready", "generation": 1})
    cached_failure = attach is not None and attach > init + 100 and handler.startswith("naive_cached")
    for n in range(1, invocations + 1):
        start = ready + (n - 1) * interval_ms
        end = start + 2.0
        ok = not cached_failure and (attach is None or start >= attach or handler == "resilient")
        if handler == "resilient" and attach is not None and start < attach:
            end = attach + 3.0
        events.append({"t_ms": start, "kind": "invoke_start", "n": n})
        if attach is not None and start <= attach < end + interval_ms and not any(
                e["kind"] == "fault" for e in events):
            events.append({"t_ms": attach, "kind": "fault", "fault": "attach_eni", "planned_ms": attach,
                           "impairs": False, "verified": True, "trigger": f"init_start + {offset_ms}ms"})
        status = "ok" if ok else "error"
        end_event = {"t_ms": end, "kind": "invoke_end", "n": n, "status": status, "duration_ms": end - start}
        if not ok:
            end_event.update(error_type="RuntimeError", error_message="Temporary failure in name resolution")
        events.append(end_event)
    if attach is not None and not any(e["kind"] == "fault" for e in events):
        events.append({"t_ms": attach, "kind": "fault", "fault": "attach_eni", "planned_ms": attach,
                       "impairs": False, "verified": True, "trigger": f"init_start + {offset_ms}ms"})
    return sorted(events, key=lambda e: e["t_ms"])


def fake_trial(spec: SweepSpec, task: dict[str, Any], run: Run, out_root: Path, capture: bool) -> dict[str, Any]:
    scenario = trial_scenario(spec, task)
    folder = out_root / task["trial"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(dump(scenario))
    offset = scenario.schedule[0].at.offset_ms if scenario.schedule else None
    events = fake_history(scenario.function.handler, offset, scenario.workload.invocations,
                          scenario.workload.interval)
    with (folder / "history.jsonl").open("w") as fh:
        for e in events:
            fh.write(json.dumps(e) + "\n")
    verdict = judge(events)
    (folder / "verdict.json").write_text(json.dumps(verdict.to_dict(), indent=2))
    time.sleep(float(os.environ.get("ENIRACE_FAKE_TRIAL_S", "0")))
    return {"verdict": verdict.to_dict(), "teardown_problems": []}
