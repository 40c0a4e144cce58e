"""Run a sweep: the trials of a grid (or of one shard) on N worker processes,
streamed to results.jsonl, resumable.

The parent is the only writer of results.jsonl and never holds the results: it
keeps counters, so memory stays flat however long the sweep. On Ctrl-C or SIGTERM
it stops feeding, sends SIGTERM to every worker (each tears its trial's lab down),
waits, SIGKILLs stragglers, then removes whatever their dead runs left and checks
that no namespace of theirs remains.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from harness import ownership
from harness.errors import UserError
from harness.sweep import results as res
from harness.sweep.grid import SweepSpec, shard_trials, trial_scenario
from harness.sweep.progress import SweepProgress
from harness.sweep.worker import REAL_TRIAL

STOP_GRACE_S = 15.0
CHUNK = 512  # trials shuffled together; bounds what the parent holds
TRIALS_PER_WORKER = 50  # then a worker retires and a fresh one takes over (flat memory)


@dataclass
class SweepOutcome:
    out: Path
    planned: int  # trials in this run's slice
    resumed: int  # already in results.jsonl when it started
    ran: int = 0
    interrupted: bool = False
    harness_errors: int = 0
    leftovers: list[str] = field(default_factory=list)
    worker_runs: list[str] = field(default_factory=list)


def preflight(spec: SweepSpec, tasks: Iterator[dict[str, Any]]) -> None:
    """Every distinct function must launch (a missing handler is a usage error now,
    not a harness_error per trial; .NET builds happen here, once, not in workers)."""
    from harness import backends, functions
    from harness.lab import addressing

    seen: set[str] = set()
    for task in tasks:
        relevant = [a for a in task["assignments"] if a[0].startswith(("function", "lab", "backend", "docker"))]
        key = json.dumps([task["plan"], task["kind"], relevant])
        if key in seen:
            continue
        seen.add(key)
        scenario = trial_scenario(spec, task)
        try:
            functions.launch_spec(scenario.function)
            addressing.check_pool(scenario.lab.pool)
            check_backend = getattr(backends, "check", None)
            if check_backend is not None:  # docker: the image is built here, once, not per worker
                check_backend(scenario)
        except UserError as exc:
            raise UserError(f"{spec.plans[task['plan']].source}: {exc}") from None


def pending(spec: SweepSpec, shard: tuple[int, int] | None, done: set[str]) -> Iterator[dict[str, Any]]:
    """The trials still to run, streamed from the grid in chunks shuffled with the
    sweep seed: neighbouring offsets and their controls do not run back to back, and
    the parent never holds more than one chunk, however big the grid."""
    rng = random.Random(spec.seed)
    chunk: list[dict[str, Any]] = []
    for trial in shard_trials(spec, shard):
        if trial.trial_id in done:
            continue
        chunk.append(trial.to_task())
        if len(chunk) >= CHUNK:
            rng.shuffle(chunk)
            yield from chunk
            chunk = []
    rng.shuffle(chunk)
    yield from chunk


def _context() -> Any:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["harness.sweep.worker", "harness.trial"])
    return ctx


class _Pool:
    def __init__(self, workers: int, spec: SweepSpec, trial_fn: str, root: Path, capture: bool) -> None:
        self.ctx = _context()
        self.task_q = self.ctx.Queue()
        self.result_q = self.ctx.Queue()
        self.args = (self.task_q, self.result_q, spec.to_json(), trial_fn, str(root), capture, os.getpid(),
                     str(ownership.STATE_DIR), TRIALS_PER_WORKER)
        self.procs: list[Any] = []
        self.runs: dict[int, str] = {}  # pid -> run id
        self.inflight: dict[int, str] = {}  # pid -> trial id
        for _ in range(workers):
            self.spawn()

    def spawn(self) -> None:
        from harness.sweep.worker import main

        proc = self.ctx.Process(target=main, args=self.args, name="enirace-sweep-worker")
        proc.start()
        self.procs.append(proc)

    def retire(self, pid: int) -> None:
        for proc in [p for p in self.procs if p.pid == pid]:
            proc.join(5)
            if proc.exitcode is None:
                proc.kill()
                proc.join(5)
            self.procs.remove(proc)

    def dead_with_work(self) -> list[tuple[Any, str]]:
        """Workers that died while running a trial (not stopped by us)."""
        lost = []
        for proc in list(self.procs):
            if proc.exitcode is not None:
                self.procs.remove(proc)
                trial = self.inflight.pop(proc.pid, None)
                if trial is not None:
                    lost.append((proc, trial))
        return lost

    def stop(self, graceful: bool) -> None:
        if graceful:
            for _ in self.procs:
                self.task_q.put(None)
        else:
            for proc in self.procs:
                if proc.exitcode is None and proc.pid:
                    try:
                        os.kill(proc.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self.procs:
            proc.join(max(0.1, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.exitcode is None:
                proc.kill()
                proc.join(5)
        for q in (self.task_q, self.result_q):
            q.cancel_join_thread()
            q.close()


def run_sweep(spec: SweepSpec, out: Path, workers: int, console: Console, shard: tuple[int, int] | None = None,
              capture: bool = False, trial_fn: str = REAL_TRIAL, command: list[str] | None = None,
              check_functions: bool = True) -> SweepOutcome:
    resuming = res.check_resumable(out, spec, shard)
    done = res.done_ids(out) if resuming else set()
    remaining = sum(1 for _ in pending(spec, shard, done))
    outcome = SweepOutcome(out, planned=remaining + len(done), resumed=len(done))
    if check_functions and remaining:
        preflight(spec, pending(spec, shard, done))  # before anything is written
    if not resuming:
        res.write_meta(out, spec, shard, command or [])
    if not remaining:
        return outcome
    root = out / res.TRIALS_DIR
    root.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers, remaining))
    label = f"sweep {', '.join(p.name for p in spec.plans)}" + (f" shard {shard[0]}/{shard[1]}" if shard else "")
    pool: _Pool | None = None
    graceful = False
    try:
        with res.ResultsWriter(out) as writer, SweepProgress(console, remaining, len(done), label) as progress:
            pool = _Pool(workers, spec, trial_fn, root, capture)
            _drive(pool, pending(spec, shard, done), remaining, writer, progress, outcome, workers)
        graceful = True
    except BaseException:
        outcome.interrupted = True
        raise
    finally:
        if pool is not None:
            pool.stop(graceful)
            outcome.worker_runs = sorted(set(pool.runs.values()))
            outcome.leftovers = _clean_after(outcome.worker_runs)
            if outcome.interrupted:
                left = f"; [bold red]left behind[/]: {', '.join(outcome.leftovers)}" if outcome.leftovers else (
                    "; no namespace of theirs is left")
                console.print(f"interrupted: {outcome.ran} trial(s) finished in this run are in "
                              f"{out / res.RESULTS_FILE}; the workers' labs were torn down{left}. "
                              "Run the same command again to resume.")
    return outcome


def _drive(pool: _Pool, tasks: Iterator[dict[str, Any]], remaining: int, writer: res.ResultsWriter,
           progress: SweepProgress, outcome: SweepOutcome, workers: int) -> None:
    queued: dict[str, dict[str, Any]] = {}  # handed to the queue, not finished yet

    def feed() -> None:
        # A small window of queued tasks: the parent never holds the whole plan in a queue.
        while len(queued) < workers * 2:
            task = next(tasks, None)
            if task is None:
                return
            queued[task["trial"]] = task
            pool.task_q.put(task)

    def record(result: dict[str, Any]) -> None:
        nonlocal remaining
        task = queued.pop(result["trial"])
        line = {k: task[k] for k in ("trial", "kind", "cell", "group", "repeat", "seed", "scenario", "params")}
        line.update(verdict=result["verdict"], folder=f"{res.TRIALS_DIR}/{task['trial']}",
                    worker=result.get("worker"), started=result.get("started"),
                    duration_s=result.get("duration_s"))
        for key in ("teardown_problems", "traceback"):
            if result.get(key):
                line[key] = result[key]
        writer.write(line)
        progress.update(line)
        outcome.ran += 1
        outcome.harness_errors += line["verdict"]["verdict"] == "harness_error"
        remaining -= 1

    feed()
    while remaining > 0:
        try:
            msg = pool.result_q.get(timeout=0.5)
        except queue.Empty:
            for proc, trial in pool.dead_with_work():
                record({"trial": trial, "worker": pool.runs.get(proc.pid),
                        "verdict": {"verdict": "harness_error", "failures": [],
                                    "reason": f"the worker process died (exit code {proc.exitcode})"}})
                pool.spawn()
            if not pool.procs:
                raise RuntimeError("every sweep worker exited; see the messages above") from None
            feed()
            continue
        if msg["type"] == "ready":
            pool.runs[msg["pid"]] = msg["run"]
        elif msg["type"] == "retire":
            pool.retire(msg["pid"])
            if remaining > 0:
                pool.spawn()
        elif msg["type"] == "start":
            pool.inflight[msg["pid"]] = msg["trial"]
        elif msg["type"] == "done":
            pool.inflight = {p: t for p, t in pool.inflight.items() if t != msg["result"]["trial"]}
            record(msg["result"])
            feed()


def _clean_after(run_ids: list[str]) -> list[str]:
    """Remove what the (now dead) worker runs left; return any namespace still there."""
    from harness import cleanup
    from harness.lab import netns

    def theirs() -> list[str]:
        return [n for n in netns.list_names() if any(f"-{r}-" in n for r in run_ids)]

    if run_ids and theirs():
        cleanup.cleanup()
    return theirs()
