"""Real checkpoint/restore of a runtime's process tree with CRIU (snapstart.mode: criu).

Lambda's SnapStart restores one snapshot into many execution environments, so every
copy starts with the same memory: the same random seed, the same cached UUID, the
same clock readings. The freezer mode keeps the one process tree and cannot show
that; CRIU can: dump the runtime once, restore it as often as wanted, each copy in
a sandbox of its own (docs/snapstart.md, "CRIU mode", says what was tried and why
the pieces below are as they are).

The shape a runtime needs to be dumped and restored more than once:

- CRIU gives a restored process the pid it had. Two copies at once can only have
  it in two pid namespaces, so the runtime runs as pid 2 of its own pid namespace
  (pid 1 is a small reaper, HOLDER), in a session of its own. CRIU runs inside that
  pid namespace and its mount namespace (where /proc is the namespace's own, which
  CRIU's parasite needs). A copy goes either into a fresh sandbox, in a new pid
  namespace whose pid 1 is CRIU itself (criu_restore.restore), or back into the
  runtime's own namespaces under the held pid 1 (criu_restore.restore_in_place,
  snapstart.mode: criu).
- The dump runs as the runtime's own user with CRIU's capabilities (CRIU's
  --unprivileged mode): reading another user's rlimits needs CAP_SYS_RESOURCE,
  which this kind of machine does not grant even to root.
- TCP connections are dumped established (--tcp-established). A connection bound to
  an address the sandbox no longer has (the ENI changed on restore) cannot be bound
  back, so the old local addresses are lent to the sandbox's lo for the restore only
  (criu_restore.borrowed); the restored sockets keep them and meet the changed
  network as Lambda's do.
- Output: a copy in a fresh sandbox writes to new pipes (--inherit-fd); one
  restored in place, to the pipes its pid 1 still holds.

Every image directory is recorded in the run's manifest before it is made and
proven after (inode and marker), and removed when done; the copies run in a cgroup
the caller owns, so cleanup after a kill -9 finds both.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import ownership, paths
from harness.ownership import Run

CRIU_HOME = Path(os.environ.get("ENIRACE_CRIU_HOME", "/var/cache/enirace/criu"))
INSTALL = paths.CONTAINERS / "criu" / "install.sh"
FIX = f"run {INSTALL} as root (it fetches a CRIU that works on this kernel into {CRIU_HOME})"
MIN_VERSION = (4, 2)  # 3.17 fails on kernels >= 6.13 (vDSO), 4.1 on >= 6.16 (SO_PASSCRED)
IMAGES = ownership.STATE_DIR / "criu"
# What CRIU needs in --unprivileged mode, and nothing this machine's root lacks.
CAPS = ",".join("+" + c for c in (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_chroot", "sys_ptrace",
    "sys_admin", "sys_nice", "mknod", "checkpoint_restore"))
RUNTIME_NSPID = 2
TIMEOUT_S = 30.0


class CheckpointError(Exception):
    """A dump or restore that failed; the message has CRIU's first error line."""


def locate() -> list[str] | None:
    """argv of a CRIU recent enough for this kernel: ENIRACE_CRIU_HOME's, else PATH's."""
    own = CRIU_HOME / "criu"
    candidates = ([str(own)] if own.is_file() else []) + ([found] if (found := shutil.which("criu")) else [])
    for exe in candidates:
        if (v := version([exe])) is not None and v >= MIN_VERSION:
            return [exe]
    return None


def version(argv: Sequence[str]) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Version:\s*(\d+(?:\.\d+)*)", out)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


@functools.cache
def unusable() -> str | None:
    """Why CRIU cannot checkpoint a runtime here (None: it can), as one line."""
    if os.geteuid() != 0:
        return "CRIU needs root"
    argv = locate()
    if argv is None:
        found = shutil.which("criu")
        seen = f"criu {'.'.join(map(str, version([found]) or ()))} at {found} is too old for kernel " \
               f"{platform.release()}; " if found else "no CRIU; "
        return seen + FIX
    proc = subprocess.run([*argv, "check"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return f"`criu check` failed: {first_error(proc.stdout + proc.stderr)}; {FIX}"
    return None


def first_error(text: str) -> str:
    for line in text.splitlines():
        if "Error" in line and "RLIMIT_NOFILE for self" not in line:
            return line.strip()
    return text.strip().splitlines()[-1] if text.strip() else "no output"


def pid_holder(argv: Sequence[str]) -> list[str]:
    """argv that runs `argv` as pid 2 of a new pid namespace, in a session of its own,
    so it can be dumped and restored more than once. Pid 1 (HOLDER) waits for it and
    exits with its status; when the holder dies the kernel kills the namespace."""
    return ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc",
            holder_python(), "-c", HOLDER, *argv]


def holder_python() -> str:
    """An interpreter pid 1 can run inside the runtime's mount namespace, where the
    host's /tmp is hidden (a venv there, as a CI clone may have, is not reachable)."""
    real = os.path.realpath(sys.executable)
    return "/usr/bin/python3" if real.startswith("/tmp/") and os.path.exists("/usr/bin/python3") else real


# Pid 1 of the runtime's pid namespace. It reaps what the namespace leaves it and
# exits with the runtime's (pid 2's) status, 128 + the signal for a signal. SIGUSR1
# holds it: a dump is coming, and a restore into this very namespace will follow
# (the dump kills pid 2, the restored copy is pid 2 again, reparented to pid 1);
# SIGUSR2 releases it. The runtime's stdin is /dev/null opened in its own mount
# namespace (CRIU cannot dump a file of a mount it cannot see).
HOLDER = """
import os, signal, sys, time
held = False
def hold(sig, frame):
    global held
    held = sig == signal.SIGUSR1
signal.signal(signal.SIGUSR1, hold)
signal.signal(signal.SIGUSR2, hold)
fd = os.open("/dev/null", os.O_RDONLY)
os.dup2(fd, 0)
os.close(fd)
if os.fork() == 0:
    os.setsid()
    os.execvp(sys.argv[1], sys.argv[1:])
code = 0
while True:
    try:
        pid, status = os.waitpid(-1, 0)
        if pid == 2:
            code = os.waitstatus_to_exitcode(status)
        continue
    except ChildProcessError:
        pass
    if not held and not os.path.exists("/proc/2"):
        break
    time.sleep(0.005)
sys.exit(code if code >= 0 else 128 - code)
"""


def hold(pid1: int, held: bool = True) -> None:
    """Hold (or release) the runtime's pid 1 across a dump and restore in place."""
    try:
        os.kill(pid1, signal.SIGUSR1 if held else signal.SIGUSR2)
    except ProcessLookupError:
        pass


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _nspid(pid: int) -> list[int]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return []
    line = next((x for x in status.splitlines() if x.startswith("NSpid:")), "")
    return [int(x) for x in line.split()[1:]]


def find_runtime(root: int, timeout_s: float = 5.0, nspid: int = 2) -> int | None:
    """Host pid of the process that is pid `nspid` (2: the runtime, 1: its holder) of
    its own pid namespace below `root`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        todo = [root]
        while todo:
            pid = todo.pop()
            ns = _nspid(pid)
            if len(ns) > 1 and ns[-1] == nspid:
                return pid
            todo += _children(pid)
        time.sleep(0.005)
    return None


def _socket_inodes(pid: int) -> set[int]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def _hex_ip(text: str) -> str:
    raw = bytes.fromhex(text)[::-1]  # /proc/net/tcp prints IPv4 in host (little-endian) order
    return ".".join(str(b) for b in raw)


def tcp_local_addresses(pid: int) -> list[str]:
    """The non-loopback IPv4 addresses the process's TCP sockets are bound to, also
    through IPv6 sockets bound to IPv4-mapped addresses (.NET's dual-stack sockets)."""
    inodes = _socket_inodes(pid)
    out: list[str] = []
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) <= 9 or int(cols[9]) not in inodes:
                continue
            raw = cols[1].split(":")[0]
            if table == "tcp6":
                if not raw.startswith(V4_MAPPED):
                    continue
                raw = raw[len(V4_MAPPED):]
            addr = _hex_ip(raw)
            if not addr.startswith("127.") and addr != "0.0.0.0" and addr not in out:
                out.append(addr)
    return out


# ::ffff:0:0/96 as /proc/net/tcp6 prints it (four 32-bit words, each in host order).
V4_MAPPED = "0000000000000000FFFF0000"


def _pipe_inode(pid: int, fd: int) -> int | None:
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return None
    return int(target[6:-1]) if target.startswith("pipe:[") else None


@dataclass
class Snapshot:
    """One dumped runtime: its image directory (owned by the run) and what a restore needs."""

    run: Run
    path: Path
    criu: list[str]
    uid: int
    gid: int
    local_addresses: list[str] = field(default_factory=list)
    pipes: dict[int, int] = field(default_factory=dict)  # fd -> the pipe inode it had
    dump_s: float = 0.0
    restores: int = 0

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def remove(self) -> None:
        """Remove the image (again: a no-op)."""
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
            self.run.forget("dir", self.path)


def make_image_dir(run: Run, uid: int, gid: int) -> Path:
    """A fresh image directory, in the manifest before mkdir and proven after."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    os.chmod(IMAGES, 0o755)
    for _ in range(100):
        path = IMAGES / f"{ownership.PREFIX}-{run.run_id}-{os.urandom(3).hex()}"
        if not os.path.lexists(path):
            break
    run.record("dir", path)
    try:
        path.mkdir(mode=0o700)
        run.prove("dir", path, **ownership.write_marker(path, run.run_id))
        os.chown(path, uid, gid)  # CRIU writes the images as the runtime's user
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        run.forget("dir", path)
        raise
    return path


def _as_user(uid: int, gid: int) -> list[str]:
    if uid == 0:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
            "--inh-caps", CAPS, "--ambient-caps", CAPS, "--"]


def dump(run: Run, runtime_pid: int, criu: list[str] | None = None, keep_holder: bool = False) -> Snapshot:
    """Dump the runtime (pid 2 of its pid namespace, see pid_holder) and its children;
    CRIU kills them once the images are written (their sockets close silently).
    Pid 1 is held meanwhile (CRIU runs in its namespace, which dies with it); with
    keep_holder it stays held for restore_in_place, else it ends as the runtime did."""
    criu = criu or locate()
    if criu is None:
        raise CheckpointError(unusable() or "no CRIU")
    st = os.stat(f"/proc/{runtime_pid}")
    pid1 = _parent(runtime_pid)
    path = make_image_dir(run, st.st_uid, st.st_gid)
    snap = Snapshot(run, path, criu, st.st_uid, st.st_gid, tcp_local_addresses(runtime_pid),
                    {fd: ino for fd in (1, 2) if (ino := _pipe_inode(runtime_pid, fd)) is not None})
    argv = ["nsenter", "-t", str(runtime_pid), "-m", "-n", "-p", "--", *_as_user(st.st_uid, st.st_gid), *criu,
            "dump", *(["--unprivileged"] if st.st_uid else []), "-t", str(RUNTIME_NSPID), "-D", str(path),
            "--tcp-established", "--network-lock", "skip", "-o", "dump.log", "-v2"]
    hold(pid1)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    except BaseException:
        hold(pid1, False)
        snap.remove()
        raise
    snap.dump_s = time.monotonic() - t0
    if proc.returncode != 0 or not keep_holder:
        hold(pid1, False)
    if proc.returncode != 0:
        reason = first_error(_log(path / "dump.log") + proc.stderr)
        snap.remove()
        raise CheckpointError(f"criu dump: {reason}")
    return snap


def _parent(pid: int) -> int:
    """The runtime's pid 1 (its parent), checked to be pid 1 of the runtime's namespace."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    ppid = int(stat.rsplit(")", 1)[1].split()[1])
    if _nspid(ppid)[-1:] != [1]:
        raise CheckpointError("the runtime is not pid 2 under a pid 1 of its own (see pid_holder)")
    return ppid


def _log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
