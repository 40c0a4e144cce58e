"""Who owns which lab object, and whether that owner is still alive.

A run proves it is alive by holding an flock on its run file; the kernel drops the
lock when the process dies, even on kill -9, so cleanup can tell a dead run's
leftovers from a live run's objects without trusting PIDs (which get reused).

A name proves nothing: anyone can make a namespace called enr-0badc0-1-vpc. So
before a run creates an object it appends it to its manifest
(runs/<id>.manifest, one JSON line per step), and once the object exists it
appends the proof that identifies it (a namespace's inode, a directory's marker
token, a link's ifindex and alias). Cleanup removes only what a dead run's
manifest lists and whose proof still matches; an entry without a proof (the run
died between creating and proving) is reported, never removed by its name alone.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREFIX = "enr"
STATE_DIR = Path(os.environ.get("ENIRACE_STATE_DIR", "/run/enirace"))
RUN_ID_RE = re.compile(r"^[0-9a-f]{6}$")
# Link names: enr<run><role><lab> (host links only ever belong to docker-mode networks).
LINK_RE = re.compile(rf"^{PREFIX}(?P<run>[0-9a-f]{{6}})[a-z]")
# Namespace names: enr-<run>-<lab>-<role>
NETNS_RE = re.compile(rf"^{PREFIX}-(?P<run>[0-9a-f]{{6}})-(?P<lab>\d+)-(?P<role>[a-z]+)$")


def runs_dir() -> Path:
    return STATE_DIR / "runs"  # read at call time so tests can point STATE_DIR elsewhere


def manifest_path(run_id: str) -> Path:
    return runs_dir() / f"{run_id}.manifest"


@dataclass(frozen=True)
class Owned:
    """One object a run recorded: what it is, how to find it, how to recognise it."""

    kind: str  # netns | etc | dir | link | cgroup | container | network | lease | process
    ident: str  # a name or a path, as the kind's remover takes it
    proof: dict[str, Any]

    @property
    def proven(self) -> bool:
        return bool(self.proof)


def read_manifest(run_id: str) -> list[Owned]:
    """The objects `run_id` recorded and did not forget, in the order it created them.
    A torn last line (kill -9 mid-write) is ignored: its object was not created yet."""
    live: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        lines = manifest_path(run_id).read_text().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            step = json.loads(line)
            key = (str(step["kind"]), str(step["id"]))
            op = step["op"]
        except (ValueError, KeyError, TypeError):
            continue
        if op == "add":
            live[key] = {}
        elif op == "proof" and key in live:
            live[key].update(step.get("proof") or {})
        elif op == "forget":
            live.pop(key, None)
    return [Owned(kind, ident, proof) for (kind, ident), proof in live.items()]


MARKER = ".enirace-owner"


def write_marker(directory: Path, run_id: str) -> dict[str, Any]:
    """Mark a directory the run created; the returned proof goes in the manifest."""
    token = secrets.token_hex(8)
    (directory / MARKER).write_text(f"{run_id} {token}\n")
    return {"marker": token, "inode": directory.stat().st_ino}


def marker_matches(directory: Path, run_id: str, proof: dict[str, Any]) -> bool:
    try:
        text = (directory / MARKER).read_text().split()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return False
    return text == [run_id, str(proof.get("marker"))]


# A process the run starts carries OWNER_ENV=<run id>:<secret token> in its
# environment; the token is proven in the manifest before the process starts, so
# cleanup can find it even if the run died before recording its pid.
OWNER_ENV = "ENIRACE_OWNER"


def process_label(run_id: str) -> str:
    return f"{run_id}:{secrets.token_hex(8)}"


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field
    22): with the pid, it names one process, whatever reuses the pid later."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_alive(pid: int) -> bool:
    """Running (a zombie is dead: it waits only for its parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def process_label_of(pid: int) -> str | None:
    """The OWNER_ENV value the process was started with, if any."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    prefix = f"{OWNER_ENV}=".encode()
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode(errors="replace")
    return None


def processes_labelled(label: str) -> list[int]:
    """Every live process started with OWNER_ENV=label."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and process_label_of(int(entry.name)) == label:
            found.append(int(entry.name))
    return found


def lock_file(path: Path | str, create: bool = True) -> int | None:
    """Open and exclusively lock `path`; the fd, or None if someone holds the lock
    (or, with create=False, the file does not exist).

    Whoever removes one of these files unlinks it while holding its lock. So after
    taking the lock, the path must still name the locked inode (fstat vs stat):
    if it does not, the file was unlinked (and maybe recreated) between our open
    and our flock, and the lock protects nothing; try again."""
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    for _ in range(16):
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
        if not create:
            return None
    raise RuntimeError(f"{path}: unlinked under us 16 times in a row")


def unlink_locked(path: Path | str, fd: int) -> None:
    """Unlink `path` (still holding the lock `fd` on it), then release the lock."""
    try:
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            os.unlink(path)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def append(run_id: str, step: dict[str, Any]) -> None:
    """One manifest step, as one write: a kill -9 leaves whole lines or a torn last one.
    Cleanup appends `forget` steps to a dead run's manifest this way too."""
    line = (json.dumps(step, default=str) + "\n").encode()
    fd = os.open(manifest_path(run_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def forget(run_id: str, kind: str, ident: str | Path) -> None:
    append(run_id, {"op": "forget", "kind": kind, "id": str(ident)})


def run_ids() -> list[str]:
    """Every run with a run file or a manifest (a run that closed with leftovers keeps
    only its manifest)."""
    try:
        names = {p.name.rsplit(".", 1)[0] for p in runs_dir().iterdir()
                 if p.suffix in (".lock", ".manifest")}
    except FileNotFoundError:
        return []
    return sorted(n for n in names if RUN_ID_RE.match(n))


def claim_dead(run_id: str) -> int | None:
    """Take a dead run's lock (recreating its run file if only the manifest is left),
    so that a second cleanup running at the same time sees the run as busy and keeps
    off. None: the run is alive (or another cleanup has it)."""
    return lock_file(runs_dir() / f"{run_id}.lock")


def release_dead(run_id: str, fd: int) -> None:
    """The dead run is cleaned up: its manifest goes, then its run file, still locked."""
    manifest_path(run_id).unlink(missing_ok=True)
    unlink_locked(runs_dir() / f"{run_id}.lock", fd)


@dataclass
class Run:
    """The live registration of this process's run. Hold it for the run's lifetime."""

    run_id: str
    _fd: int = field(repr=False)
    _labs: int = 0
    _manifest_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def register(cls, purpose: str = "") -> Run:
        runs_dir().mkdir(parents=True, exist_ok=True)
        for _ in range(64):
            run_id = secrets.token_hex(3)
            path = runs_dir() / f"{run_id}.lock"
            if path.exists():
                continue
            fd = lock_file(path)
            if fd is None:
                continue
            info = {"pid": os.getpid(), "started": time.time(), "purpose": purpose}
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(info).encode())
            return cls(run_id, fd)
        raise RuntimeError("could not allocate a run id")

    def _append(self, step: dict[str, Any]) -> None:
        with self._manifest_lock:
            append(self.run_id, step)

    def record(self, kind: str, ident: str | Path) -> None:
        """Call BEFORE creating the object, so a crash right after creation still
        leaves a trace of who made it."""
        self._append({"op": "add", "kind": kind, "id": str(ident)})

    def prove(self, kind: str, ident: str | Path, **proof: Any) -> None:
        """Call once the object exists, with what identifies it (inode, marker, ifindex)."""
        self._append({"op": "proof", "kind": kind, "id": str(ident), "proof": proof})

    def forget(self, kind: str, ident: str | Path) -> None:
        """Call after the object is gone (or was never created)."""
        self._append({"op": "forget", "kind": kind, "id": str(ident)})

    def owned(self) -> list[Owned]:
        return read_manifest(self.run_id)

    def next_lab_index(self) -> int:
        self._labs += 1
        return self._labs

    def netns_name(self, lab: int, role: str) -> str:
        return f"{PREFIX}-{self.run_id}-{lab}-{role}"

    def link_name(self, lab: int, role: str) -> str:
        # IFNAMSIZ is 16 including the NUL: "enr" + 6 + role must stay <= 15.
        name = f"{PREFIX}{self.run_id}{role}{lab % 100}"
        assert len(name) <= 15, name
        return name

    def close(self) -> None:
        """Release the run: its lock file goes away, so nothing is left in STATE_DIR.
        The manifest goes too, unless it still lists objects: then the next cleanup
        finds them as a dead run's leftovers."""
        if self._fd < 0:
            return
        if not self.owned():
            manifest_path(self.run_id).unlink(missing_ok=True)
        unlink_locked(runs_dir() / f"{self.run_id}.lock", self._fd)
        self._fd = -1

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_alive(run_id: str) -> bool:
    """True while the process that registered `run_id` still holds its lock."""
    path = runs_dir() / f"{run_id}.lock"
    if not path.exists():
        return False
    fd = lock_file(path, create=False)
    if fd is None:
        return path.exists()  # held, unless it vanished under us (the run just closed)
    os.close(fd)
    return False


def run_of_netns(name: str) -> str | None:
    m = NETNS_RE.match(name)
    return m.group("run") if m else None
