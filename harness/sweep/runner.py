"""Run a sweep: the trials of a grid (or of one shard) on N worker processes,
streamed to results.jsonl, resumable.

The parent is the only writer of results.jsonl and never holds the results: it
keeps counters, so memory stays flat however long the sweep. It holds DIR/sweep.lock
for the sweep's life. A worker that dies (kill -9, OOM) has its trial recorded as
`worker_died`, which is not final (resume runs it again), and is replaced. On Ctrl-C or SIGTERM
it stops feeding, sends SIGTERM to every worker (each tears its trial's lab down),
waits, SIGKILLs stragglers, then removes whatever their dead runs left and checks
that no namespace of theirs remains.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing import connection
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

from rich.console import Console

from harness import ownership
from harness import trial as trial_mod
from harness.errors import UserError
from harness.sweep import results as res
from harness.sweep.grid import SweepSpec, shard_trials, trial_scenario
from harness.sweep.progress import LineProgress
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
    worker_died: list[str] = field(default_factory=list)  # trials not final: resume retries them
    leftovers: list[str] = field(default_factory=list)
    worker_runs: list[str] = field(default_factory=list)


def preflight(spec: SweepSpec, tasks: Iterator[dict[str, Any]]) -> None:
    """Every distinct function must launch (a missing handler is a usage error now,
    not a harness_error per trial; .NET builds happen here, once, not in workers)."""
    seen: set[str] = set()
    for task in tasks:
        relevant = [a for a in task["assignments"] if a[0].startswith(("function", "lab", "backend", "docker"))]
        key = json.dumps([task["plan"], task["kind"], relevant])
        if key in seen:
            continue
        seen.add(key)
        scenario = trial_scenario(spec, task)
        try:
            trial_mod.preflight(scenario)  # docker: the image is built here, once, not per worker
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
    """The workers, each joined to the parent by a pipe of its own, which carries its
    trials one way and its results the other: the parent hands a trial to an idle
    worker, so it always knows which trial a worker holds. A worker killed in the
    middle of a message breaks only its own pipe (the parent reads EOF on it); with
    one queue shared by all, it would take the queue's write lock with it and
    starve every other worker."""

    def __init__(self, workers: int, spec: SweepSpec, trial_fn: str, root: Path, capture: bool) -> None:
        self.ctx = _context()
        self.args = (spec.to_json(), trial_fn, str(root), capture, os.getpid(),
                     str(ownership.STATE_DIR), TRIALS_PER_WORKER)
        self.procs: dict[int, Any] = {}  # pid -> process
        self.conns: dict[int, Connection] = {}  # pid -> the parent's end of its pipe
        self.runs: dict[int, str] = {}  # pid -> run id
        self.idle: list[int] = []  # ready, holding no trial
        self.assigned: dict[int, dict[str, Any]] = {}  # pid -> the task it is running
        for _ in range(workers):
            self.spawn()

    def spawn(self) -> None:
        from harness.sweep.worker import main

        ours, theirs = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=main, args=(theirs, *self.args), name="enirace-sweep-worker")
        proc.start()
        theirs.close()  # the worker holds the only other end: its death is EOF here
        self.procs[proc.pid] = proc
        self.conns[proc.pid] = ours

    def assign(self, pid: int, task: dict[str, Any]) -> None:
        self.assigned[pid] = task
        self.send(pid, task)

    def send(self, pid: int, message: dict[str, Any] | None) -> None:
        try:
            self.conns[pid].send(message)
        except (OSError, KeyError):
            pass  # it died: the next reap records its trial as worker_died

    def receive(self, timeout: float) -> list[tuple[int, dict[str, Any]]]:
        """The messages ready within `timeout`, with the pid of their sender. A pipe
        at EOF is closed; its worker is reaped as exited."""
        by_conn = {conn: pid for pid, conn in self.conns.items() if not conn.closed}
        got: list[tuple[int, dict[str, Any]]] = []
        # wait() returns some of the objects it was given, here only Connections;
        # typeshed types it as any waitable (a socket, an fd).
        ready = cast("list[Connection]", connection.wait(list(by_conn), timeout))
        for conn in ready:
            pid = by_conn[conn]
            try:
                got.append((pid, conn.recv()))
            except (EOFError, OSError):
                conn.close()
                self.procs[pid].join(1)  # it is gone or going: let its exit code show
        return got

    def forget(self, pid: int) -> None:
        self.procs.pop(pid, None)
        if pid in self.idle:
            self.idle.remove(pid)
        conn = self.conns.pop(pid, None)
        if conn is not None:
            conn.close()

    def retire(self, pid: int) -> None:
        proc = self.procs.get(pid)
        if proc is not None:
            proc.join(5)
            if proc.exitcode is None:
                proc.kill()
                proc.join(5)
        self.forget(pid)

    def exited(self) -> list[Any]:
        """Workers that exited without being told to (killed, crashed) or are retiring."""
        return [proc for proc in self.procs.values() if proc.exitcode is not None]

    def stop(self, graceful: bool) -> None:
        procs = list(self.procs.values())
        for pid, proc in self.procs.items():
            if graceful:
                self.send(pid, None)
            elif proc.exitcode is None:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in procs:
            proc.join(max(0.1, deadline - time.monotonic()))
        for proc in procs:
            if proc.exitcode is None:
                proc.kill()
                proc.join(5)
        for pid in [p.pid for p in procs]:
            self.forget(pid)


def run_sweep(spec: SweepSpec, out: Path, workers: int, console: Console, shard: tuple[int, int] | None = None,
              capture: bool = False, trial_fn: str = REAL_TRIAL, command: list[str] | None = None,
              check_functions: bool = True, progress: type[LineProgress] = LineProgress) -> SweepOutcome:
    """The sweep holds DIR/sweep.lock from before it reads anything there until it
    returns; a second sweep on the same directory stops with a UserError.
    `progress` tells the console about each finished trial (the CLI passes its bar)."""
    with res.locked(out):
        return _run_locked(spec, out, workers, console, shard, capture, trial_fn, command, check_functions,
                           progress)


def _run_locked(spec: SweepSpec, out: Path, workers: int, console: Console, shard: tuple[int, int] | None,
                capture: bool, trial_fn: str, command: list[str] | None, check_functions: bool,
                progress_cls: type[LineProgress]) -> SweepOutcome:
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
        with res.ResultsWriter(out) as writer, progress_cls(console, remaining, len(done), label) as progress:
            pool = _Pool(workers, spec, trial_fn, root, capture)
            _Driver(pool, pending(spec, shard, done), remaining, writer, progress, outcome).run()
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


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


class _Driver:
    """Hands trials to idle workers, records their results, replaces dead workers."""

    DEATH_CHECK_S = 1.0  # also checked whenever the pipes are quiet

    def __init__(self, pool: _Pool, tasks: Iterator[dict[str, Any]], remaining: int, writer: res.ResultsWriter,
                 progress: LineProgress, outcome: SweepOutcome) -> None:
        self.pool, self.tasks, self.remaining = pool, tasks, remaining
        self.writer, self.progress, self.outcome = writer, progress, outcome
        self.exhausted = False

    def run(self) -> None:
        checked = time.monotonic()
        while self.remaining > 0:
            messages = self.pool.receive(timeout=0.5)
            if not messages or time.monotonic() - checked > self.DEATH_CHECK_S:
                self.reap()
                checked = time.monotonic()
            for pid, msg in messages:
                self.handle(pid, msg)
            self.feed()

    def feed(self) -> None:
        while self.pool.idle and not self.exhausted:
            task = next(self.tasks, None)
            if task is None:
                self.exhausted = True
                return
            self.pool.assign(self.pool.idle.pop(0), task)

    def handle(self, pid: int, msg: dict[str, Any]) -> None:
        if msg["type"] == "ready":
            self.pool.runs[pid] = msg["run"]
            if pid in self.pool.procs:
                self.pool.idle.append(pid)
        elif msg["type"] == "done":
            task = self.pool.assigned.pop(pid, None)
            if task is None:
                return  # its worker was already found dead and the trial recorded as worker_died
            self.record(task, msg["result"])
            if msg.get("last"):  # the worker retires after this trial (flat memory)
                self.pool.retire(pid)
                if not self.exhausted:
                    self.pool.spawn()
            elif pid in self.pool.procs:
                self.pool.idle.append(pid)

    def reap(self) -> None:
        exited = self.pool.exited()
        if exited:
            self.drain()  # what they sent before they died is in the pipe already: a finished trial counts
        for proc in exited:
            if proc.pid not in self.pool.procs:
                continue  # retired by its last `done`
            task = self.pool.assigned.pop(proc.pid, None)
            self.pool.forget(proc.pid)
            run_id = self.pool.runs.get(proc.pid)
            if task is not None:
                self.record(task, {"verdict": {"verdict": res.WORKER_DIED, "failures": [],
                                               "reason": f"the worker process {proc.pid} {_death(proc.exitcode)}; "
                                                         "resume runs this trial again"},
                                   "worker": run_id})
                self.outcome.worker_died.append(task["trial"])
            if run_id is not None:
                _clean_after([run_id])  # its lab and function, now rather than at the end
                if not self.exhausted:
                    self.pool.spawn()
        if not self.pool.procs:
            raise RuntimeError("every sweep worker exited; see the messages above") from None

    def drain(self) -> None:
        while self.remaining > 0:
            messages = self.pool.receive(timeout=0)
            if not messages:
                return
            for pid, msg in messages:
                self.handle(pid, msg)

    def record(self, task: dict[str, Any], result: dict[str, Any]) -> None:
        line = {k: task[k] for k in ("trial", "kind", "cell", "group", "repeat", "seed", "scenario", "params")}
        line.update(verdict=result["verdict"], folder=f"{res.TRIALS_DIR}/{task['trial']}",
                    worker=result.get("worker"), started=result.get("started"),
                    duration_s=result.get("duration_s"))
        for key in ("teardown_problems", "traceback"):
            if result.get(key):
                line[key] = result[key]
        self.writer.write(line)
        self.progress.update(line)
        self.outcome.ran += 1
        self.outcome.harness_errors += line["verdict"]["verdict"] == "harness_error"
        self.remaining -= 1


def _clean_after(run_ids: list[str]) -> list[str]:
    """Remove what the (now dead) worker runs left; return any namespace still there."""
    from harness import cleanup
    from harness.lab import netns

    def theirs() -> list[str]:
        return [n for n in netns.list_names() if any(f"-{r}-" in n for r in run_ids)]

    if run_ids and theirs():
        cleanup.cleanup()
    return theirs()
