"""One fleet run under one mitigation: the mitigation's sample as the function,
the fleet's lab up, the messages sent through the source, the account taken
against the service's record, everything torn down (in a finally, as a trial's).

The process backend only: a fleet of containers would cost seconds per cold start."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import signals
from harness.errors import UserError
from harness.fleet import account as accounting
from harness.fleet import source as sources
from harness.fleet.engine import Fleet
from harness.history import schema
from harness.history.recorder import History
from harness.ownership import Run
from harness.scenario.fleet_config import SAMPLES
from harness.scenario.model import Scenario, dump
from harness.trial import preflight

Progress = Callable[[int, int], None]  # (messages settled, messages in all)
# The runtimes with a sample per mitigation, of the same names (containers/*/handlers/).
SAMPLE_RUNTIMES = ("python", "nodejs", "dotnet")


@dataclass
class FleetResult:
    mitigation: str
    account: accounting.Account
    folder: Path
    summary: dict[str, Any]
    problems: list[str]
    seconds: float
    received: dict[str, int]  # the service's own record: message id -> times recorded
    harness_errors: list[str]  # the harness's own failures (an environment that would not start, ...)


def scenario_for(scenario: Scenario, mitigation: str) -> Scenario:
    """The scenario as run under `mitigation`: its fleet block, and its sample
    (unless function.code names the user's own handlers)."""
    if scenario.fleet is None:
        raise UserError("fleet: the scenario has no fleet: block (see scenarios/fleet-queue.yaml)")
    if scenario.backend != "process":
        raise UserError("backend: a fleet runs on the process backend only; drop backend: docker")
    if scenario.function.runtime not in SAMPLE_RUNTIMES and not scenario.function.code:
        raise UserError(f"function.runtime: the fleet's mitigation samples are {', '.join(SAMPLE_RUNTIMES)}; "
                        "use one of them, or give function.code with your own handler")
    fn = scenario.function
    if not fn.code:
        fn = fn.model_copy(update={"handler": SAMPLES[mitigation]})
    return scenario.model_copy(update={"fleet": scenario.fleet.for_mitigation(mitigation), "function": fn})


def run_mitigation(scenario: Scenario, mitigation: str, run: Run, out: Path,
                   progress: Progress | None = None) -> FleetResult:
    scenario = scenario_for(scenario, mitigation)
    prepared = preflight(scenario)
    cfg = scenario.fleet
    assert cfg is not None
    folder = out / mitigation
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(dump(scenario))
    history = History(folder / "history.jsonl")
    fleet = Fleet(scenario, prepared.launch, run, folder, history)
    began = time.monotonic()
    dlq: list[str] = []
    try:
        with signals.deferred():
            fleet.up()
        assert fleet.lab is not None
        history.record(schema.FLEET_START, mitigation=mitigation, source=cfg.source.type, messages=cfg.messages,
                       max_environments=cfg.max_environments, seed=scenario.seed, run=run.run_id,
                       subnet=str(fleet.lab.subnet.network))
        ids = sources.message_ids(cfg.messages)
        invoke = sources.recorded(fleet.invoke, history)
        if cfg.source.type == "invoke":
            done = (lambda n: progress(n, len(ids))) if progress else None
            sources.send_invokes(invoke, ids, cfg.source.rate, cfg.source.burst, history, done)
        else:
            dlq = _through_queue(scenario, invoke, ids, history, run, folder, progress)
    except BaseException as exc:
        history.record(schema.HARNESS_ERROR, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        with signals.deferred():
            problems = fleet.down()
            history.close()
    service = fleet.lab.service if fleet.lab is not None else None
    kept = getattr(service, "received", None)  # the service's Counter, where it keeps one
    received = dict(kept) if kept is not None else {
        mid: len(ts) for mid, ts in accounting.recorded_ids(history.events).items()}
    acct = accounting.account(mitigation, cfg.source.type, list(history.events), dlq, received)
    summary = fleet.summary()
    errors = [str(e["error"]) for e in history.events if e["kind"] == schema.HARNESS_ERROR]
    errors += [f"the queue was not drained within fleet.drain_timeout ({e['left']} messages left, counted lost); "
               "raise fleet.drain_timeout" for e in history.events if e["kind"] == "queue_drain" and not e["drained"]]
    result = FleetResult(mitigation, acct, folder, summary, problems, round(time.monotonic() - began, 3),
                         received, errors)
    (folder / "account.json").write_text(json.dumps({**acct.to_dict(), "seconds": result.seconds,
                                                     "draws": summary["draws"], "problems": problems,
                                                     "harness_errors": errors}, indent=2))
    return result


def _through_queue(scenario: Scenario, invoke: Any, ids: list[str], history: History, run: Run, folder: Path,
                   progress: Progress | None) -> list[str]:
    """The sqs source: the producer sends to the queue, the event source mapping
    polls it and invokes the fleet; the DLQ's ids. Imported here: boto3 and moto
    cost a second to import, which the invoke source never needs."""
    from harness.fleet import sqs_source

    return sqs_source.run(scenario, invoke, ids, history, run, folder, progress, threading.Event())
