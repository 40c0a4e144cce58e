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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2 import netns as _pr_netns

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
_libc = ctypes.CDLL(None, use_errno=True)


def path(name: str) -> Path:
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return path(name).exists()


def list_names() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def create(name: str) -> None:
    if exists(name):
        raise FileExistsError(f"network namespace {name} already exists")
    _pr_netns.create(name)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the block with the current thread inside namespace `name`."""
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
def rtnl(name: str) -> Iterator[IPRoute]:
    """An IPRoute for namespace `name`, used and closed by this thread only.

    pyroute2 0.9 opens a new netlink socket lazily for every thread that touches
    an IPRoute, in whatever namespace that thread is in. Sharing one IPRoute
    across threads would therefore send a fault thread's changes to the host
    namespace. Keeping the thread inside `name` for the whole block rules that out.
    """
    with entered(name):
        ipr = IPRoute()
        try:
            yield ipr
        finally:
            ipr.close()


def socket_in(name: str, family: int, kind: int) -> socket.socket:
    with entered(name):
        return socket.socket(family, kind)


def inode(name: str) -> int | None:
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
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "ns" / "net").stat().st_ino == ino:
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
    return killed


def remove(name: str) -> None:
    """Kill what runs inside, unmount and delete the namespace, and its /etc/netns dir."""
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
    remove_etc(name)


def etc_dir(name: str) -> Path:
    """Per-namespace config that `ip netns exec` bind-mounts over /etc."""
    return ETC_NETNS / name


def remove_etc(name: str) -> None:
    d = etc_dir(name)
    if d.is_dir():
        for child in d.iterdir():
            child.unlink(missing_ok=True)
        d.rmdir()


def exec_prefix(name: str) -> list[str]:
    """argv prefix that runs a command inside `name`, with /etc/netns/<name> applied."""
    return ["ip", "netns", "exec", name]
