"""Restoring a CRIU snapshot (harness/function/checkpoint.py): copies into fresh
sandboxes (each in a pid namespace of its own whose pid 1 is CRIU), or the one
copy back into the runtime's own, held, pid namespace (snapstart.mode: criu)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.function.checkpoint import (
    TIMEOUT_S,
    CheckpointError,
    Snapshot,
    _children,
    _log,
    find_runtime,
    first_error,
)


def criu_restore(snap: Snapshot, fds: dict[int, int], log_name: str) -> list[str]:
    """`criu restore` of the snapshot; `fds` maps each original output fd to the fd
    of the calling process that replaces it in the copy."""
    first: dict[int, int] = {}  # one --inherit-fd per pipe: stdout and stderr are often the same one
    for fd, ino in snap.pipes.items():
        if fd in fds:
            first.setdefault(ino, fds[fd])
    inherit = [a for ino, fd in first.items() for a in ("--inherit-fd", f"fd[{fd}]:pipe:[{ino}]")]
    criu = [*snap.criu, "restore", "-D", str(snap.path), "--tcp-established", "--network-lock", "skip",
            "--manage-cgroups=ignore", *inherit, "-o", log_name, "-v3"]
    return criu


def restore_argv(snap: Snapshot, fds: dict[int, int], log_name: str) -> list[str]:
    """argv that restores one copy as pid 2 of a new pid namespace whose pid 1 is
    CRIU (it waits for the copy): run inside the sandbox's netns and a mount
    namespace like the runtime's."""
    criu = criu_restore(snap, fds, log_name)
    # ns_last_pid 1: the next pid is 2, the one CRIU gives the copy (pid 1 is CRIU).
    return ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "/bin/sh", "-c",
            'echo 1 > /proc/sys/kernel/ns_last_pid && exec "$@"', "enirace-restore", *criu]


@dataclass
class Restored:
    """One copy restored from a snapshot: the holder process (its exit is the copy's)."""

    popen: subprocess.Popen[bytes]
    pid: int  # the copy's host pid
    restore_s: float


@contextlib.contextmanager
def borrowed(enter: Sequence[str], addrs: Sequence[str]) -> Iterator[list[str]]:
    """The snapshot's local addresses the sandbox lacks, on its lo while CRIU binds
    the restored sockets back to them; `enter` runs a command in the sandbox's netns.
    Meanwhile nothing leaves from them (CRIU sends a window probe on each restored
    socket, whose ARP would teach the vpc the old address again) and the sandbox
    answers no ARP for them (arp_ignore 1): a peer's FIN or RST for the old flow
    cannot reach the copy, so the stale pooled connection is found by the function's
    first use of it, as on Lambda."""
    out = subprocess.run([*enter, "ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
    have = set(re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out))
    missing = [a for a in addrs if a not in have]
    if not missing:
        yield missing
        return
    knob = "/proc/sys/net/ipv4/conf/all/arp_ignore"
    was = subprocess.run([*enter, "cat", knob], capture_output=True, text=True).stdout.strip() or "0"
    _sh(enter, f"echo 1 > {knob}")
    for a in missing:
        _sh(enter, f"iptables -w -I OUTPUT -s {a}/32 -j DROP && ip addr add {a}/32 dev lo")
    try:
        yield missing
    finally:
        for a in missing:
            _sh(enter, f"ip addr del {a}/32 dev lo; iptables -w -D OUTPUT -s {a}/32 -j DROP")
        _sh(enter, f"echo {shlex.quote(was)} > {knob}")


def _sh(enter: Sequence[str], script: str) -> None:
    subprocess.run([*enter, "sh", "-c", script], capture_output=True)


def restore(snap: Snapshot, netns_name: str, prefix: Sequence[str], **popen_kw) -> Restored:
    """Restore one copy into `netns_name`. `prefix` runs before the restore argv and
    ends in exec "$@" as root: the cgroup to join, `ip netns exec`, the containment's
    mounts. popen_kw's stdout/stderr become the copy's fds 1 and 2."""
    snap.restores += 1
    log_name = f"restore-{snap.restores}.log"
    fds = {fd: fd for fd in snap.pipes}
    t0 = time.monotonic()
    with borrowed(["ip", "netns", "exec", netns_name], snap.local_addresses):
        popen = subprocess.Popen([*prefix, *restore_argv(snap, fds, log_name)], start_new_session=True, **popen_kw)
        pid = _wait_restored(popen, snap.path / log_name)
    return Restored(popen, pid, time.monotonic() - t0)


def _wait_restored(popen: subprocess.Popen[bytes], log: Path) -> int:
    """The copy's host pid once CRIU has let it run (its log says so)."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        text = _log(log)
        if "Restore finished successfully" in text:
            pid = find_runtime(popen.pid, timeout_s=1.0)
            if pid is not None:
                return pid
        if popen.poll() is not None:
            raise CheckpointError(f"criu restore: {first_error(text or 'exited ' + str(popen.returncode))}")
        time.sleep(0.002)
    popen.kill()
    raise CheckpointError(f"criu restore: not done after {TIMEOUT_S:.0f}s")


def restore_in_place(snap: Snapshot, pid1: int, join: Sequence[str] = ()) -> tuple[int, float]:
    """Restore the snapshot into the namespaces it was dumped from, as pid 2 under the
    held pid 1 (see HOLDER), writing to the pipes pid 1 still holds; `join` is the
    runtime's cgroup join prefix, so the copy is frozen and killed with it.
    Returns the copy's host pid and how long the restore took."""
    deadline = time.monotonic() + TIMEOUT_S
    while _children(pid1) and time.monotonic() < deadline:  # the dumped pid 2 reaped: its pid is free
        time.sleep(0.002)
    snap.restores += 1
    log_name = f"restore-{snap.restores}.log"
    fds = {fd: os.open(f"/proc/{pid1}/fd/{fd}", os.O_WRONLY) for fd in snap.pipes}
    t0 = time.monotonic()
    try:
        with borrowed(["nsenter", "-t", str(pid1), "-n"], snap.local_addresses):
            argv = [*join, "nsenter", "-t", str(pid1), "-m", "-n", "-p", "--",
                    *criu_restore(snap, fds, log_name), "--restore-detached"]
            proc = subprocess.run(argv, pass_fds=tuple(fds.values()), capture_output=True, text=True,
                                  timeout=TIMEOUT_S)
    finally:
        for fd in fds.values():
            os.close(fd)
    if proc.returncode != 0:
        raise CheckpointError(f"criu restore: {first_error(_log(snap.path / log_name) + proc.stderr)}")
    pid = find_runtime(pid1, timeout_s=2.0)
    if pid is None:
        raise CheckpointError("criu restore: the copy did not appear as pid 2")
    return pid, time.monotonic() - t0
