"""A sweep worker: a process of its own that registers its own Run (so its labs,
leases and cleanup are its own), joined to the parent by a pipe of its own: the
parent hands it one trial at a time on it, and it answers each with the result.

Signals: SIGINT is ignored (the terminal sends Ctrl-C to the whole process group;
the parent decides), SIGTERM stops the worker: the trial in progress is torn down
(run_one_trial's finally) and the worker exits. A worker whose parent died exits too.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any

from harness import ownership
from harness.ownership import Run
from harness.sweep.grid import SweepSpec, trial_scenario
from harness.trial import run_one_trial

TrialFn = Callable[[SweepSpec, dict[str, Any], Run, Path, bool], dict[str, Any]]
REAL_TRIAL = "harness.sweep.worker:real_trial"


class Stop(BaseException):
    """SIGTERM in a worker: unwinds through run_one_trial's teardown."""


_stopping = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _stopping
    if _stopping:
        return  # once is enough: a second signal must not interrupt the teardown
    _stopping = True
    raise Stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resolve(path: str) -> TrialFn:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def real_trial(spec: SweepSpec, task: dict[str, Any], run: Run, out_root: Path, capture: bool) -> dict[str, Any]:
    """One real trial in a real lab."""
    scenario = trial_scenario(spec, task)
    result = run_one_trial(scenario, run, out_root, trial_id=task["trial"], capture=capture)
    return {"verdict": result.verdict.to_dict(), "teardown_problems": result.teardown_problems}


def main(conn: Connection, spec_json: dict[str, Any], trial_fn: str, out_root: str,
         capture: bool, parent_pid: int, state_dir: str, max_trials: int = 0) -> None:
    """Run trials until told to stop; with `max_trials`, retire after that many (the
    parent starts a fresh worker): a guard, so that memory some trial code might
    leave behind in a long-lived process cannot pile up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    ownership.STATE_DIR = Path(state_dir)  # the parent's, even if it was changed after import
    spec = SweepSpec.from_json(spec_json)
    fn = resolve(trial_fn)
    root = Path(out_root)
    # The worker's parent is the forkserver; it exits when the sweep does, and the
    # worker is then reparented: that change is how an orphan notices.
    first_parent = os.getppid()
    try:
        with Run.register("sweep") as run:
            conn.send({"type": "ready", "run": run.run_id})
            done = 0
            while True:
                if not conn.poll(0.5):
                    if os.getppid() != first_parent or not _alive(parent_pid):
                        return  # orphaned: the sweep is gone
                    continue
                try:
                    task = conn.recv()
                except EOFError:
                    return  # the parent closed its end: the sweep is gone
                if task is None:
                    return
                done += 1
                last = bool(max_trials) and done >= max_trials
                # `last` rides on the result: the parent must not hand this worker another trial.
                _one(fn, spec, task, run, root, capture, conn, last)
                if last:
                    return
    except Stop:
        return


def _one(fn: TrialFn, spec: SweepSpec, task: dict[str, Any], run: Run, root: Path, capture: bool,
         conn: Connection, last: bool) -> None:
    folder = root / task["trial"]
    if folder.exists():  # left by an interrupted attempt or a killed worker: start clean
        shutil.rmtree(folder, ignore_errors=True)
    started = time.time()
    try:
        out = fn(spec, task, run, root, capture)
    except Stop:
        raise
    except Exception as exc:  # the harness failed: record it, keep going
        out = {"verdict": {"verdict": "harness_error", "reason": f"{type(exc).__name__}: {exc}",
                           "failures": []},
               "traceback": traceback.format_exc(limit=8)}
    out.update(trial=task["trial"], started=round(started, 3), duration_s=round(time.time() - started, 3),
               worker=run.run_id)
    conn.send({"type": "done", "result": out, "last": last})
