"""Who owns which lab object, and whether that owner is still alive.

Every object the harness creates (namespace, /etc/netns dir, temp dir, lease) is
named with PREFIX and the run id. A run proves it is alive by holding an flock on
its run file; the kernel drops the lock when the process dies, even on kill -9,
so cleanup can tell a dead run's leftovers from a live run's objects without
trusting PIDs (which get reused).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "enr"
STATE_DIR = Path(os.environ.get("ENIRACE_STATE_DIR", "/run/enirace"))
RUN_ID_RE = re.compile(r"^[0-9a-f]{6}$")
# Link names: enr<run><role><lab> (host links only ever belong to docker-mode networks).
LINK_RE = re.compile(rf"^{PREFIX}(?P<run>[0-9a-f]{{6}})[a-z]")
# Namespace names: enr-<run>-<lab>-<role>
NETNS_RE = re.compile(rf"^{PREFIX}-(?P<run>[0-9a-f]{{6}})-(?P<lab>\d+)-(?P<role>[a-z]+)$")


def runs_dir() -> Path:
    return STATE_DIR / "runs"  # read at call time so tests can point STATE_DIR elsewhere


def _try_lock(path: Path) -> int | None:
    """Open and exclusively lock `path`; return the fd, or None if someone holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@dataclass
class Run:
    """The live registration of this process's run. Hold it for the run's lifetime."""

    run_id: str
    _fd: int = field(repr=False)
    _labs: int = 0

    @classmethod
    def register(cls, purpose: str = "") -> Run:
        runs_dir().mkdir(parents=True, exist_ok=True)
        for _ in range(64):
            run_id = secrets.token_hex(3)
            path = runs_dir() / f"{run_id}.lock"
            if path.exists():
                continue
            fd = _try_lock(path)
            if fd is None:
                continue
            info = {"pid": os.getpid(), "started": time.time(), "purpose": purpose}
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(info).encode())
            return cls(run_id, fd)
        raise RuntimeError("could not allocate a run id")

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
        """Release the run: its lock file goes away, so nothing is left in STATE_DIR."""
        if self._fd < 0:
            return
        path = runs_dir() / f"{self.run_id}.lock"
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)
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
    fd = _try_lock(path)
    if fd is None:
        return True
    os.close(fd)
    return False


def run_of_netns(name: str) -> str | None:
    m = NETNS_RE.match(name)
    return m.group("run") if m else None
