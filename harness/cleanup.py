"""Remove what dead runs left behind, and nothing else.

A name proves nothing: anyone can make a namespace called enr-0badc0-1-vpc or a
directory called /tmp/enirace-251201-results. So cleanup never looks for objects
by name. It reads the manifest of every run whose lock nobody holds (a dead run:
ownership.py), and removes, in reverse creation order, only the objects listed
there whose proof still matches (a namespace's inode, a directory's marker, a
link's ifindex and alias, a container's id and run label, ...). An object that is
listed but unproven (the run died while creating it) or no longer matches its
proof is kept and reported. A live run's objects are never touched.

Each kind of object has one remover in REMOVERS; a new kind plugs in there.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import backends, ownership
from harness.backends.base import Remover
from harness.function import cgroup as cgroups
from harness.lab import netns

REMOVED, GONE, KEPT, LIVE = "removed", "gone", "kept", "live"


@dataclass
class CleanupReport:
    removed: list[str] = field(default_factory=list)
    kept_live: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    kept_unproven: list[str] = field(default_factory=list)  # "kept: not proven ours", with why


def _mismatch(what: str, found: object, recorded: object) -> tuple[str, str]:
    return KEPT, f"{what} is {found}, the run recorded {recorded}"


def remove_netns(ident: str, run_id: str, proof: dict[str, Any], dry_run: bool) -> tuple[str, str]:
    found = netns.inode(ident)
    if found is None:
        return GONE, ""
    if "inode" not in proof:
        # The run died between creating the mount point and proving the mount: the
        # file beneath the mount is still the one it made, or the name is not ours.
        beneath = netns.mount_point_file(ident)
        if beneath != proof.get("placeholder"):
            return _mismatch("its mount point file (inode, ctime)", beneath, proof.get("placeholder"))
    elif found != proof.get("inode"):
        return _mismatch("its inode", found, proof.get("inode"))
    if not dry_run:
        netns.remove(ident)  # kills what runs inside first
    return REMOVED, ""


def remove_dir(ident: str, run_id: str, proof: dict[str, Any], dry_run: bool) -> tuple[str, str]:
    path = Path(ident)
    if not os.path.lexists(path):
        return GONE, ""
    if path.is_symlink() or not path.is_dir():
        return KEPT, "no longer a directory"
    if path.stat().st_ino != proof.get("inode"):
        return _mismatch("its inode", path.stat().st_ino, proof.get("inode"))
    if not ownership.marker_matches(path, run_id, proof):
        return KEPT, f"its {ownership.MARKER} marker is missing or not the run's"
    if not dry_run:
        shutil.rmtree(path)
    return REMOVED, ""


def remove_lease(ident: str, run_id: str, proof: dict[str, Any], dry_run: bool) -> tuple[str, str]:
    """The kernel freed the dead run's lock; the file goes under the flock protocol
    (lock, check the path still names the locked inode, unlink holding the lock)."""
    fd = ownership.lock_file(ident, create=False)
    if fd is None:
        return (LIVE, "taken again by a live run") if os.path.exists(ident) else (GONE, "")
    if os.fstat(fd).st_ino != proof.get("inode"):
        os.close(fd)
        return _mismatch("its inode", "another", proof.get("inode"))
    if dry_run:
        os.close(fd)
    else:
        ownership.unlink_locked(ident, fd)
    return REMOVED, ""


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except FileNotFoundError:
        pass


def _thaw_their_freezers(tree: list[Path]) -> None:
    """Thaw the v1 freezer group of every process in `tree`: a task frozen there
    ignores SIGKILL until thawed, whichever hierarchy it is killed through (the
    unified group of a hybrid host's probe, removed before its freezer group)."""
    layout = cgroups.detect()
    if layout is None or layout.version != 1 or not layout.freezer:
        return
    for cg in tree:
        for pid in _read_text(cg / "cgroup.procs").split():
            for line in _read_text(Path(f"/proc/{pid}/cgroup")).splitlines():
                _, controllers, rel = line.split(":", 2)
                state = layout.kill / rel.lstrip("/") / "freezer.state"
                if "freezer" in controllers.split(",") and _read_text(state).strip() not in ("", "THAWED"):
                    _write(state, "THAWED")


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _empty_cgroup(path: Path, timeout_s: float = 5.0) -> None:
    """Thaw `path` and every cgroup below it, kill their processes, wait until none is left."""
    tree = [Path(d) for d, _, _ in os.walk(path)]
    for cg in tree:
        if (cg / "cgroup.freeze").exists() and (cg / "cgroup.freeze").read_text().strip() == "1":
            _write(cg / "cgroup.freeze", "0")  # v2: a frozen task cannot run its exit path
        if (cg / "freezer.state").exists():
            _write(cg / "freezer.state", "THAWED")  # v1 freezer
    deadline = time.monotonic() + timeout_s
    while True:
        _thaw_their_freezers(tree)
        if (path / "cgroup.kill").exists():
            _write(path / "cgroup.kill", "1")  # the whole subtree, race-free against forks
        else:
            for cg in tree:
                for pid in (cg / "cgroup.procs").read_text().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        if not any((cg / "cgroup.procs").read_text().strip() for cg in tree if cg.exists()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path}: processes still inside after SIGKILL")
        time.sleep(0.01)


def remove_cgroup(ident: str, run_id: str, proof: dict[str, Any], dry_run: bool) -> tuple[str, str]:
    path = Path(ident)
    try:
        ino = path.stat().st_ino
    except FileNotFoundError:
        return GONE, ""
    if ino != proof.get("inode"):
        return _mismatch("its inode", ino, proof.get("inode"))
    if not (path / "cgroup.procs").exists():
        return KEPT, "not a cgroup"
    if not dry_run:
        _empty_cgroup(path)
        for d, _, _ in os.walk(path, topdown=False):  # children first: rmdir refuses a parent
            os.rmdir(d)
    return REMOVED, ""


def _kill_and_wait(pids: list[int], timeout_s: float = 5.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    # A dead run's child is reparented and reaped by init; until then it is a zombie.
    while any(ownership.process_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} still alive after SIGKILL")
        time.sleep(0.01)


def remove_process(ident: str, run_id: str, proof: dict[str, Any], dry_run: bool) -> tuple[str, str]:
    """A process the run started (e.g. the fleet's moto server): killed only if it
    still carries the run's secret label in its environment. With a pid, the pid
    and its start time must match too; without one (the run died between starting
    it and recording its pid), every process carrying the label is the run's."""
    label = proof.get("label")
    if not label or not str(label).startswith(f"{run_id}:"):
        return KEPT, "no label of the run's recorded"
    if "pid" in proof:
        pid = int(proof["pid"])
        start = ownership.process_start(pid)
        if start is None or start != proof.get("start") or not ownership.process_alive(pid):
            return GONE, ""  # exited (maybe a zombie); a process reusing the pid is someone else's
        if ownership.process_label_of(pid) != label:
            return _mismatch("its owner label", "another", "the run's")
        pids = [pid]
    else:
        pids = ownership.processes_labelled(str(label))
        if not pids:
            return GONE, ""
    if not dry_run:
        _kill_and_wait(pids)
    return REMOVED, ""


REMOVERS: dict[str, Remover] = {
    "netns": remove_netns,
    "etc": remove_dir,  # /etc/netns/<name>: a directory with a marker like any other
    "dir": remove_dir,
    "cgroup": remove_cgroup,
    "lease": remove_lease,
    "process": remove_process,
    **backends.removers(),  # e.g. docker's containers, networks and host links
}


def _clean_run(run_id: str, report: CleanupReport, dry_run: bool) -> bool:
    """Remove what dead run `run_id` lists, newest first; False if something failed
    (then its manifest stays, minus what was dealt with, for the next cleanup)."""
    ok = True
    for entry in reversed(ownership.read_manifest(run_id)):
        label = f"{entry.kind} {entry.ident}"
        remover = REMOVERS.get(entry.kind)
        if not entry.proven:
            outcome, why = KEPT, "recorded but never proven (the run died while creating it)"
        elif remover is None:
            outcome, why = KEPT, f"no remover for kind {entry.kind!r}"
        else:
            try:
                outcome, why = remover(entry.ident, run_id, entry.proof, dry_run)
            except Exception as exc:
                report.failed.append(f"{label}: {exc}")
                ok = False
                continue
        if outcome == REMOVED:
            report.removed.append(label)
        elif outcome == KEPT:
            report.kept_unproven.append(f"{label}: {why}")
        elif outcome == LIVE:
            report.kept_live.append(f"{label} ({why})")
        if not dry_run:
            ownership.forget(run_id, entry.kind, entry.ident)
    return ok


def cleanup(dry_run: bool = False) -> CleanupReport:
    report = CleanupReport()
    for run_id in ownership.run_ids():
        lock = ownership.runs_dir() / f"{run_id}.lock"
        # A run that closed with leftovers has no run file; a dry run does not create one.
        claimed = -1 if dry_run and not lock.exists() else ownership.claim_dead(run_id)
        if claimed is None:
            report.kept_live += [f"{o.kind} {o.ident}" for o in ownership.read_manifest(run_id)]
            continue
        fd: int = claimed
        try:
            ok = _clean_run(run_id, report, dry_run)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        if ok:
            report.removed.append(f"run {run_id}")  # its run file and manifest
        if ok and not dry_run:
            ownership.release_dead(run_id, fd)
        elif fd >= 0:
            os.close(fd)
    return report
