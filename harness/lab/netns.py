"""Network-namespace helpers: create, enter (one thread only), remove, inspect.

A socket keeps the namespace it was created in, so the harness builds listeners and
netlink sockets inside a lab namespace by switching the *calling thread* there for
a moment. pyroute2's pushns/popns keep their saved fds in a process-global list and
save /proc/self (the main thread's namespace); with several threads entering
namespaces at once that is unsafe, so this module saves /proc/thread-self instead.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyroute2 import IPRoute


class Manifest(Protocol):
    """What a run offers to record its objects (harness.ownership.Run)."""

    run_id: str

    def record(self, kind: str, ident: str | Path) -> None: ...
    def prove(self, kind: str, ident: str | Path, **proof: Any) -> None: ...
    def forget(self, kind: str, ident: str | Path) -> None: ...

# pyroute2 is imported where it is used: the stand-alone enirace-rie drop-in
# imports this module through the emulator and must run on the stdlib alone.

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
_libc = ctypes.CDLL(None, use_errno=True)


def path(name: str | Path) -> Path:
    """/run/netns/<name>, or `name` itself when it is already a path (for
    instance a container's /proc/<pid>/ns/net)."""
    if isinstance(name, Path) or name.startswith("/"):
        return Path(name)
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return path(name).exists()


def list_names() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


MS_BIND, MS_REC, MS_SHARED = 0x1000, 0x4000, 1 << 20
_shared_dir = False


def _share_netns_dir() -> None:
    """Make /run/netns a shared mount point, as `ip netns add` does, so namespace
    mounts made later also appear in mount namespaces copied earlier (ip netns exec)."""
    global _shared_dir
    if _shared_dir:
        return
    NETNS_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    d = str(NETNS_DIR).encode()
    if _libc.mount(b"none", d, None, MS_SHARED | MS_REC, None) != 0:
        if ctypes.get_errno() != 22:  # EINVAL: not a mount point yet
            raise OSError(ctypes.get_errno(), f"mount --make-rshared {NETNS_DIR}")
        if (_libc.mount(d, d, b"none", MS_BIND | MS_REC, None) != 0
                or _libc.mount(b"none", d, None, MS_SHARED | MS_REC, None) != 0):
            err = ctypes.get_errno()
            raise OSError(err, f"mount --bind {NETNS_DIR}: {os.strerror(err)}")
    _shared_dir = True


def create(name: str, placed: Callable[[tuple[int, int]], None] | None = None) -> None:
    """A new named namespace, like `ip netns add`, without forking: a short-lived
    thread unshares its network namespace and bind-mounts it on /run/netns/<name>.
    (pyroute2's create forks a child process for this, ~10 ms per namespace.)
    `placed` gets the mount point file's (inode, ctime in ns) as soon as it exists,
    before the mount: the proof that covers a crash between the two (an inode
    number alone is reused at once on ext4)."""
    if exists(name):
        raise FileExistsError(f"network namespace {name} already exists")
    _share_netns_dir()
    target = path(name)
    fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    try:
        if placed is not None:
            st = os.fstat(fd)
            placed((st.st_ino, st.st_ctime_ns))
    finally:
        os.close(fd)
    failure: list[OSError] = []

    def unshare_and_mount() -> None:
        # unshare(CLONE_NEWNET) moves only this thread; the thread then ends.
        if _libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            failure.append(OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}"))
            return
        if _libc.mount(b"/proc/thread-self/ns/net", str(target).encode(), b"none", MS_BIND, None) != 0:
            err = ctypes.get_errno()
            failure.append(OSError(err, f"mount {target}: {os.strerror(err)}"))

    worker = threading.Thread(target=unshare_and_mount, name=f"netns-create-{name}")
    worker.start()
    worker.join()
    if failure:
        target.unlink(missing_ok=True)
        raise failure[0]


def attach(name: str, pid: int) -> None:
    """Name the network namespace of process `pid` (a container's) as `name`, like
    `ip netns attach`: a bind mount of /proc/<pid>/ns/net on /run/netns/<name>.
    The mount keeps the namespace alive after the process is gone, until remove()."""
    from pyroute2 import netns as _pr_netns

    if exists(name):
        raise FileExistsError(f"network namespace {name} already exists")
    _pr_netns.attach(name, pid)


def create_owned(run: Manifest, name: str, pid: int = 0) -> None:
    """create(name), or attach(name, pid) when `pid` is given, recorded in the run's
    manifest first and proven by the namespace's inode afterwards, so cleanup after
    a kill -9 can tell this namespace from any other of the same name."""
    run.record("netns", name)
    try:
        if pid:
            attach(name, pid)
        else:
            create(name, placed=lambda file: run.prove("netns", name, placeholder=list(file)))
    except BaseException:
        # Both leave nothing behind when they fail (and a name that was taken
        # already is someone else's): nothing of ours to remember.
        run.forget("netns", name)
        raise
    run.prove("netns", name, inode=inode(name))


def remove_owned(run: Manifest, name: str) -> None:
    remove(name)
    if not exists(name):
        run.forget("netns", name)


def mount_point_file(name: str) -> list[int] | None:
    """[inode, ctime in ns] of the file under /run/netns/<name>, beneath any namespace mounted
    on it: read through a non-recursive bind of /run/netns, which shows the
    directory without the mounts on its entries."""
    view = Path(tempfile.mkdtemp(prefix=".enirace-netns-view-", dir="/run"))
    try:
        if _libc.mount(str(NETNS_DIR).encode(), str(view).encode(), b"none", MS_BIND, None) != 0:
            return None
        try:
            st = os.stat(view / name)
            return [st.st_ino, st.st_ctime_ns]
        except FileNotFoundError:
            return None
        finally:
            _libc.umount2(str(view).encode(), 2)  # MNT_DETACH
    finally:
        view.rmdir()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def entered(name: str | Path) -> Iterator[None]:
    """Run the block with the current thread inside namespace `name` (a name
    under /run/netns, or a namespace file's path)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


@contextmanager
def rtnl(name: str | Path) -> Iterator[IPRoute]:
    """An IPRoute for namespace `name`, used and closed by this thread only.

    pyroute2 0.9 opens a new netlink socket lazily for every thread that touches
    an IPRoute, in whatever namespace that thread is in. Sharing one IPRoute
    across threads would therefore send a fault thread's changes to the host
    namespace. Keeping the thread inside `name` for the whole block rules that out.
    """
    from pyroute2 import IPRoute

    with entered(name):
        ipr = IPRoute()
        try:
            yield ipr
        finally:
            ipr.close()


def socket_in(name: str | Path, family: int, kind: int) -> socket.socket:
    with entered(name):
        return socket.socket(family, kind)


def inode(name: str | Path) -> int | None:
    try:
        return path(name).stat().st_ino
    except FileNotFoundError:
        return None


def pids_in(name: str) -> list[int]:
    """PIDs of processes whose network namespace is `name` (found by inode)."""
    ino = inode(name)
    if ino is None:
        return []
    found = []
    # os.scandir and plain strings: this runs twice per trial over every process.
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                if os.stat(f"/proc/{entry.name}/ns/net").st_ino == ino:
                    found.append(int(entry.name))
            except (FileNotFoundError, PermissionError, ProcessLookupError):
                continue
    return found


def kill_all_in(name: str) -> list[int]:
    """SIGKILL every process inside `name` (a namespace outlives its last mount otherwise)."""
    killed = []
    for pid in pids_in(name):
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    _wait_dead(killed)
    return killed


def _wait_dead(pids: list[int], timeout_s: float = 2.0) -> None:
    """Wait until each pid has exited (gone or a zombie). SIGKILL is not instant:
    a dying process still runs its exit path (closing files, dropping its mount
    namespace) for a few milliseconds, and a namespace removed before then would
    still be held by it."""
    deadline = time.monotonic() + timeout_s
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    if fh.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
                        break
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.001)


def remove(name: str) -> None:
    """Kill what runs inside, unmount and delete the namespace. (Its /etc/netns dir is
    not touched: the harness makes none, see sandbox_etc, and cleanup removes only
    what a manifest lists.)"""
    from pyroute2 import netns as _pr_netns

    kill_all_in(name)
    if exists(name):
        try:
            _pr_netns.remove(name)
        except FileNotFoundError:
            pass
        except OSError:
            # A namespace whose mount is already gone (a crash mid-delete)
            # leaves an empty file behind; removing that file is enough.
            path(name).unlink(missing_ok=True)


def etc_dir(name: str) -> Path:
    """Per-namespace config that `ip netns exec` bind-mounts over /etc."""
    return ETC_NETNS / name


def exec_prefix(name: str) -> list[str]:
    """argv prefix that runs a command inside `name`, with /etc/netns/<name> applied."""
    return ["ip", "netns", "exec", name]
