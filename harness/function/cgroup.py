"""A cgroup per runtime: the function's memory limit, and a kill that reaches
every process the runtime started, wherever it went (its own session, another
namespace through nsenter).

cgroup v2 (one hierarchy: memory.max, cgroup.kill) and v1 (a memory hierarchy
and a freezer hierarchy: memory.limit_in_bytes, freeze, SIGKILL each pid, thaw)
are both handled. The groups live under a parent named `enirace` at the top of
each hierarchy; the parent is shared by all runs and never removed (it is
empty between runs). Every group is recorded in the run's manifest before it
is made and proved by its inode, so cleanup after a crash removes exactly it.

Freezing is also how the emulator freezes the runtime between invocations
(harness/function/freezer.py), as Lambda does.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.ownership import Run

PARENT = "enirace"
SETTLE_S = 2.0  # how long a kill or an rmdir may take before we give up


@dataclass(frozen=True)
class Layout:
    """Where this machine's cgroup hierarchies are mounted."""

    version: int  # 1 or 2
    memory: Path | None  # the hierarchy with the memory controller (None: no limit possible)
    kill: Path  # the hierarchy used to kill: v2's, or v1's freezer (else v1's memory)
    freezer: bool = True  # whether the kill hierarchy can freeze (v1 without a freezer cannot)

    @property
    def hierarchies(self) -> list[Path]:
        return list(dict.fromkeys(p for p in (self.memory, self.kill) if p is not None))


def _mounts(mountinfo: str) -> list[tuple[Path, str, set[str]]]:
    out = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            out.append((Path(fields[4]), tail[0], set(tail[2].split(","))))
    return out


def detect(mountinfo_path: str = "/proc/self/mountinfo") -> Layout | None:
    """v1 when a v1 memory hierarchy is mounted (hybrid machines keep memory on
    v1), else v2; None when no cgroup filesystem is mounted at all."""
    try:
        mounts = _mounts(Path(mountinfo_path).read_text())
    except OSError:
        return None
    v1 = {opt: path for path, fs, opts in mounts if fs == "cgroup" for opt in opts}
    if "memory" in v1:
        return Layout(1, v1["memory"], v1.get("freezer", v1["memory"]), freezer="freezer" in v1)
    for path, fs, _ in mounts:
        if fs == "cgroup2":
            try:
                controllers = (path / "cgroup.controllers").read_text().split()
            except OSError:
                continue
            return Layout(2, path if "memory" in controllers else None, path)
    return None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _prepare_parent(layout: Layout, hierarchy: Path) -> Path:
    parent = hierarchy / PARENT
    parent.mkdir(exist_ok=True)
    if layout.version == 2 and hierarchy == layout.memory:
        # Children get memory.max only if the controller is enabled on the way down.
        for level in (hierarchy, parent):
            if "memory" not in _read(level / "cgroup.subtree_control").split():
                _write(level / "cgroup.subtree_control", "+memory")
    return parent


@dataclass
class Cgroup:
    layout: Layout
    name: str
    dirs: list[Path] = field(default_factory=list)
    memory_mb: int | None = None
    limit_error: str = ""  # why memory_mb is not enforced, when it is not

    # -- membership -----------------------------------------------------------

    def procs_files(self) -> list[Path]:
        """Write a pid to each of these to put it in the group (all hierarchies)."""
        return [d / "cgroup.procs" for d in self.dirs]

    def join_prefix(self) -> list[str]:
        """argv prefix: the process joins the group, then execs the rest, so even
        its very first fork is inside."""
        script = ('for f in ' + " ".join(f"'{p}'" for p in self.procs_files()) + '; do '
                  'echo $$ > "$f" || { echo "enirace: cannot join cgroup $f" >&2; exit 125; }; '
                  'done; exec "$@"')
        return ["/bin/sh", "-c", script, "enirace-cgroup"]

    def add_pid(self, pid: int) -> None:
        for procs in self.procs_files():
            _write(procs, str(pid))

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files():
            found.update(int(x) for x in _read(procs).split())
        return found

    # -- memory ---------------------------------------------------------------

    def _memory_dir(self) -> Path | None:
        if self.layout.memory is None:
            return None
        return next((d for d in self.dirs if d.is_relative_to(self.layout.memory)), None)

    def set_memory_limit(self, mb: int) -> None:
        d = self._memory_dir()
        if d is None:
            self.limit_error = "no memory controller is mounted"
            return
        limit = str(mb * 1024 * 1024)
        try:
            if self.layout.version == 2:
                _write(d / "memory.max", limit)
                for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                    if (d / name).exists():
                        _write(d / name, value)
            else:
                _write(d / "memory.limit_in_bytes", limit)
                if (d / "memory.memsw.limit_in_bytes").exists():  # swap accounting on
                    _write(d / "memory.memsw.limit_in_bytes", limit)
            self.memory_mb = mb
        except OSError as exc:
            self.limit_error = f"cannot set the memory limit: {exc}"

    def oom_killed(self) -> bool:
        """Did the kernel's OOM killer kill a process of this group?"""
        d = self._memory_dir()
        if d is None:
            return False
        text = _read(d / ("memory.events" if self.layout.version == 2 else "memory.oom_control"))
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
        return False

    # -- freezing and killing -------------------------------------------------

    def _kill_dir(self) -> Path:
        return next(d for d in self.dirs if d.is_relative_to(self.layout.kill))

    def can_freeze(self) -> bool:
        d = self._kill_dir()
        return (d / ("cgroup.freeze" if self.layout.version == 2 else "freezer.state")).exists()

    def freezer_state(self) -> str:
        """What the kernel says: v2 `frozen 0|1` (cgroup.events), v1 THAWED|FREEZING|FROZEN."""
        d = self._kill_dir()
        if self.layout.version == 2:
            return next((line for line in _read(d / "cgroup.events").splitlines()
                         if line.startswith("frozen ")), "unknown")
        return _read(d / "freezer.state").strip() or "unknown"

    def set_frozen(self, frozen: bool) -> bool:
        """Freeze or thaw every process of the group; True once the kernel reads
        back the new state (v1 passes through FREEZING; v2's cgroup.events says
        `frozen 1` only when every task has stopped)."""
        return self._set_frozen(frozen)

    def _set_frozen(self, frozen: bool) -> bool:
        d = self._kill_dir()
        if self.layout.version == 2:
            if not (d / "cgroup.freeze").exists():
                return False
            _write(d / "cgroup.freeze", "1" if frozen else "0")
            want, key = ("1" if frozen else "0"), "frozen"
            done = lambda: f"{key} {want}" in _read(d / "cgroup.events")  # noqa: E731
        else:
            if not (d / "freezer.state").exists():
                return False  # the kill hierarchy is memory's: no freezer mounted
            state = "FROZEN" if frozen else "THAWED"
            _write(d / "freezer.state", state)
            done = lambda: _read(d / "freezer.state").strip() == state  # noqa: E731
        deadline = time.monotonic() + SETTLE_S
        while not done() and time.monotonic() < deadline:
            time.sleep(0.0002)  # a thaw waits for this: it is on an invocation's path
        return done()

    def freeze(self) -> bool:
        return self._set_frozen(True)

    def thaw(self) -> bool:
        return self._set_frozen(False)

    def kill_all(self) -> bool:
        """SIGKILL every process in the group, including any it forks meanwhile;
        True once the group is empty."""
        if not self.dirs:
            return True
        d = self._kill_dir()
        if self.layout.version == 2 and (d / "cgroup.kill").exists():
            _write(d / "cgroup.kill", "1")
        else:
            # Frozen tasks cannot fork, so one pass over cgroup.procs gets them all.
            frozen = bool(self.pids()) and self._set_frozen(True)
            deadline = time.monotonic() + SETTLE_S
            while (pids := self.pids()) and time.monotonic() < deadline:
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if frozen:
                    break
                time.sleep(0.001)
            if frozen:
                self._set_frozen(False)  # killed tasks die once thawed
        deadline = time.monotonic() + SETTLE_S
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.001)
        return not self.pids()

    # -- lifetime -------------------------------------------------------------

    def remove(self, run: Run) -> list[str]:
        """Kill what is left, remove the directories; returns what could not be removed."""
        problems = [] if self.kill_all() else [f"cgroup {self.name}: processes survive SIGKILL"]
        for d in reversed(self.dirs):
            deadline = time.monotonic() + SETTLE_S
            while True:
                try:
                    d.rmdir()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    # EBUSY while a killed task is still exiting.
                    if exc.errno == errno.EBUSY and time.monotonic() < deadline:
                        time.sleep(0.002)
                        continue
                    problems.append(f"rmdir {d}: {exc}")
                    break
                run.forget("cgroup", d)
                break
        self.dirs = [d for d in self.dirs if d.exists()]
        return problems


def make_owned(run: Run, d: Path, hierarchy: Path) -> Path:
    """mkdir one cgroup directory, recorded in the run's manifest before and proved
    by its inode after, so cleanup after a kill -9 can tell it is the run's."""
    run.record("cgroup", d)
    try:
        d.mkdir()
    except BaseException:
        run.forget("cgroup", d)
        raise
    run.prove("cgroup", d, inode=d.stat().st_ino, hierarchy=str(hierarchy))
    return d


def create(layout: Layout, run: Run, name: str, memory_mb: int | None) -> Cgroup:
    """A new, empty group `name` in every hierarchy the layout uses, recorded in
    the run's manifest (before mkdir) and proved by inode (after)."""
    group = Cgroup(layout, name)
    try:
        for hierarchy in layout.hierarchies:
            group.dirs.append(make_owned(run, _prepare_parent(layout, hierarchy) / name, hierarchy))
        if memory_mb is not None:
            group.set_memory_limit(memory_mb)
    except BaseException:
        group.remove(run)
        raise
    return group
