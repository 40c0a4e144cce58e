"""A sweep directory: sweep.json (the grid, so it can be resumed, merged and
reported) and results.jsonl (one line per finished trial, appended as it finishes).

    DIR/sweep.json      {"fingerprint", "shard", "spec": {...}, "created", "command"}
    DIR/results.jsonl   {"trial", "kind", "cell", "group", "repeat", "seed", "scenario",
                         "params", "verdict": {...}, "folder", "worker", "started", "duration_s"}
    DIR/trials/<id>/    each trial's folder (scenario.yaml, history.jsonl, verdict.json, ...)
    DIR/sweep.lock      flocked by the sweep writing here, for its whole life

Readers stream the file line by line and skip a torn last line (a kill -9 mid-write).
A `worker_died` line is not final: resume runs that trial again, and readers take
a trial's first final line.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from harness.errors import UserError
from harness.sweep.grid import SweepSpec

SWEEP_FILE = "sweep.json"
RESULTS_FILE = "results.jsonl"
TRIALS_DIR = "trials"
LOCK_FILE = "sweep.lock"
WORKER_DIED = "worker_died"  # the verdict of a trial whose worker process was killed: retried on resume


def _try_lock(out: Path) -> int:
    """An fd holding an exclusive flock on DIR/sweep.lock; the kernel drops it when
    the process dies, kill -9 included, so a lock never outlives its sweep."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise
        try:
            holder = (out / LOCK_FILE).read_text().strip() or "?"
        except OSError:
            holder = "?"
        raise UserError(f"{out} is in use by another sweep (pid {holder}, holding {out / LOCK_FILE}); "
                        "wait for it to finish, or pass another --out") from None
    return fd


_held: dict[Path, int] = {}  # directory -> how many `locked` blocks of this process hold it


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Held for a sweep's whole life: a second sweep on the same directory would
    write every trial twice and delete the first one's trial folders. Re-entrant
    within a process (the CLI takes it before it prints anything, the runner again)."""
    key = out.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fd = _try_lock(out)
    _held[key] = 1
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        del _held[key]
        os.close(fd)  # the lock file stays: removing it would let two sweeps lock two different files


def shard_label(shard: tuple[int, int] | None) -> str | None:
    return f"{shard[0]}/{shard[1]}" if shard else None


def write_meta(out: Path, spec: SweepSpec, shard: tuple[int, int] | None, command: list[str],
               **extra: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta = {"fingerprint": spec.fingerprint(), "shard": shard_label(shard), "created": time.time(),
            "command": command, "spec": spec.to_json(), **extra}
    tmp = out / (SWEEP_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1, default=str))
    os.replace(tmp, out / SWEEP_FILE)


def read_meta(out: Path) -> dict[str, Any]:
    path = out / SWEEP_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{out}: not a sweep directory (no {SWEEP_FILE}); run `enirace sweep` first") from None
    except ValueError as exc:
        raise UserError(f"{path}: unreadable ({exc})") from None


def read_spec(out: Path) -> SweepSpec:
    return SweepSpec.from_json(read_meta(out)["spec"])


def check_resumable(out: Path, spec: SweepSpec, shard: tuple[int, int] | None) -> bool:
    """True if `out` already holds this very sweep (then it resumes); raises if it
    holds a different one."""
    if not (out / SWEEP_FILE).exists():
        return False
    meta = read_meta(out)
    if meta.get("fingerprint") != spec.fingerprint():
        raise UserError(f"{out} holds a different sweep (other scenarios, axes, repeats or seed); "
                        f"pass another --out, or delete {out}")
    if meta.get("shard") != shard_label(shard):
        raise UserError(f"{out} holds shard {meta.get('shard') or 'all'} of this sweep, not "
                        f"{shard_label(shard) or 'all'}; give each shard its own --out")
    return True


def is_final(record: dict[str, Any]) -> bool:
    return (record.get("verdict") or {}).get("verdict") != WORKER_DIED


def iter_results(out: Path, final_only: bool = False) -> Iterator[dict[str, Any]]:
    """Every recorded trial, streamed; a line that does not parse is skipped.
    `final_only`: each trial's first final line, no `worker_died` ones."""
    seen: set[str] = set()
    for record in _lines(out):
        if final_only:
            if not is_final(record) or record["trial"] in seen:
                continue
            seen.add(record["trial"])
        yield record


def lost_to_dead_workers(out: Path) -> list[str]:
    """Trials whose worker died and that no later run has finished: resume retries them."""
    died: set[str] = set()
    final: set[str] = set()
    for record in _lines(out):
        (final if is_final(record) else died).add(record["trial"])
    return sorted(died - final)


def _lines(out: Path) -> Iterator[dict[str, Any]]:
    path = out / RESULTS_FILE
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "trial" in record:
                yield record


def done_ids(out: Path) -> set[str]:
    return {r["trial"] for r in iter_results(out) if is_final(r)}


class ResultsWriter:
    """Appends one JSON line per trial and flushes it, so a crash loses at most the
    line being written."""

    def __init__(self, out: Path) -> None:
        path = out / RESULTS_FILE
        self._fh: TextIO = path.open("a+", encoding="utf-8")
        self._fh.seek(0, os.SEEK_END)
        if self._fh.tell() > 0:
            self._fh.seek(self._fh.tell() - 1)
            if self._fh.read(1) != "\n":  # a torn line from a killed run: end it
                self._fh.write("\n")
        self._fh.seek(0, os.SEEK_END)

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, default=str) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def merge(dirs: list[Path], out: Path, command: list[str]) -> tuple[int, int, list[str]]:
    """Combine shard directories of one sweep into `out` (results and trial folders,
    hard-linked where possible). Returns (trials merged, trials in the grid, notes)."""
    from harness.sweep.grid import count

    if not dirs:
        raise UserError("merge: name at least one sweep directory")
    metas = [(d, read_meta(d)) for d in dirs]
    fingerprints = {m["fingerprint"] for _, m in metas}
    if len(fingerprints) != 1:
        listed = ", ".join(f"{d} ({m['fingerprint']})" for d, m in metas)
        raise UserError(f"merge: the directories hold different sweeps: {listed}")
    if out.resolve() in {d.resolve() for d in dirs}:
        raise UserError("merge: --out must be a new directory, not one of the inputs")
    if (out / RESULTS_FILE).exists():
        raise UserError(f"merge: {out} already holds results; pick an empty --out")
    spec = SweepSpec.from_json(metas[0][1]["spec"])
    write_meta(out, spec, None, command, merged_from=[f"{d} ({m.get('shard') or 'all'})" for d, m in metas])
    notes: list[str] = []
    seen: set[str] = set()
    with ResultsWriter(out) as writer:
        for d, _ in metas:
            notes += [f"{t}: its worker died; run that shard's sweep again to retry it"
                      for t in lost_to_dead_workers(d)]
            for record in iter_results(d, final_only=True):
                if record["trial"] in seen:
                    notes.append(f"{record['trial']} is in more than one input; kept the first")
                    continue
                seen.add(record["trial"])
                src = d / record["folder"]
                dst = out / TRIALS_DIR / record["trial"]
                if src.is_dir() and not dst.exists():
                    shutil.copytree(src, dst, copy_function=_link_or_copy)
                elif not src.is_dir():
                    notes.append(f"{record['trial']}: trial folder {src} is missing")
                record["folder"] = f"{TRIALS_DIR}/{record['trial']}"
                writer.write(record)
    total = count(spec)
    return len(seen), total, notes
