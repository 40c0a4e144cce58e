"""The function's own network attempts, seen in the kernel: every connect()
(TCP, and the UDP connect glibc's resolver does before each DNS query) and every
UDP sendto/sendmsg with an address, by any process of the runtime's cgroup.

Why eBPF at the cgroup's sock_addr hooks (cgroup/connect4, connect6, sendmsg4,
sendmsg6) and not a packet capture or ftrace: the hooks run in the syscall before
the route lookup, so an attempt is seen even when there is no interface or no
route and no packet ever exists (netfilter and tcpdump see nothing then); they
see the destination the program asked for (ftrace's syscall events only carry
the sockaddr's user pointer, and this kernel has no kprobes or event probes to
read it); and the kernel does the filtering by cgroup, so there is no race with
a pid that forks before the harness could name it (ftrace's set_event_pid) and
no ptrace slowing the function (strace). The programs only observe: they always
return 1 (allow).

Each attempt is pushed to a BPF queue map and read at the end of the trial. The
programs and the map belong to file descriptors of the harness process and to
the cgroups they are attached to, so nothing outlives the trial: the cgroup's
removal (teardown, or `enirace cleanup` after a kill -9) releases them, and
nothing is pinned in bpffs. The hooks need a cgroup v2 directory: the runtime's
own group on a v2 machine, or on a hybrid one a group of the same name in the
unified hierarchy, recorded in the run's manifest like the others.

Stdlib only (ctypes and the bpf(2) syscall); the program is a few instructions
assembled here.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.function import cgroup as cgroups
from harness.history import schema

if TYPE_CHECKING:
    from harness.function.cgroup import Cgroup
    from harness.history.recorder import History
    from harness.ownership import Run

_NR_BPF = 321  # x86_64
_MAP_CREATE, _MAP_LOOKUP_AND_DELETE, _PROG_LOAD, _PROG_ATTACH, _PROG_DETACH = 0, 21, 5, 8, 9
_MAP_TYPE_QUEUE, _PROG_TYPE_CGROUP_SOCK_ADDR = 22, 18
_F_ALLOW_MULTI = 2
# attach type -> (syscall it stands for, address family, kind code in the record)
HOOKS = {10: ("connect", 4), 11: ("connect", 6), 14: ("sendmsg", 4), 15: ("sendmsg", 6)}
QUEUE_ENTRIES = 8192
RECORD = struct.Struct("<Q16sIIII")  # ktime ns, address, port (network order), sock type, tgid, hook
_RUNTIME_API_PORT_BE = 0x2923  # 9001 as the kernel stores user_port (network order, read as LE u32)
_LOOPBACK_BE = 0x0100007F


class ProbeUnavailable(RuntimeError):
    """The kernel refused the probe (no BPF, no cgroup v2, an old kernel)."""


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, max(len(attr), 128))
    ret = _libc.syscall(_NR_BPF, cmd, buf, len(buf))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return int(ret)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _program(map_fd: int, hook: int, family: int) -> bytes:
    """r6 = ctx; build the 40-byte record at r10-40; push it; return 1.
    bpf_sock_addr: user_ip4 @4, user_ip6[4] @8, user_port @24, type @32."""
    ld_w, st_w, stx_w, stx_dw = 0x61, 0x62, 0x63, 0x7B
    out = [_insn(0xBF, 6, 1)]  # r6 = r1
    if family == 4:
        # The Runtime API on 127.0.0.1:9001 is the runtime talking to us, not to
        # the network: skip to the record unless both match (jne offsets count
        # instructions after the jump).
        out += [_insn(ld_w, 1, 6, 4), _insn(0x55, 1, 0, 4, _LOOPBACK_BE),
                _insn(ld_w, 1, 6, 24), _insn(0x55, 1, 0, 2, _RUNTIME_API_PORT_BE),
                _insn(0xB7, 0, 0, 0, 1), _insn(0x95)]
    out += [_insn(0x85, imm=5), _insn(stx_dw, 10, 0, -40)]  # ktime_get_ns
    if family == 4:
        out += [_insn(ld_w, 1, 6, 4), _insn(stx_w, 10, 1, -32)]
        out += [_insn(st_w, 10, 0, -32 + 4 * i, 0) for i in (1, 2, 3)]
    else:
        out += [x for i in range(4) for x in (_insn(ld_w, 1, 6, 8 + 4 * i), _insn(stx_w, 10, 1, -32 + 4 * i))]
    out += [_insn(ld_w, 1, 6, 24), _insn(stx_w, 10, 1, -16),  # port
            _insn(ld_w, 1, 6, 32), _insn(stx_w, 10, 1, -12),  # type
            _insn(0x85, imm=14), _insn(0x77, 0, 0, 0, 32), _insn(stx_w, 10, 0, -8),  # tgid
            _insn(st_w, 10, 0, -4, hook),
            _insn(0x18, 1, 1, 0, map_fd), _insn(0),  # r1 = map (ld_imm64, pseudo map fd)
            _insn(0xBF, 2, 10), _insn(0x07, 2, 0, 0, -40), _insn(0xB7, 3, 0, 0, 0),
            _insn(0x85, imm=87),  # map_push_elem; a full queue drops the attempt, never the call
            _insn(0xB7, 0, 0, 0, 1), _insn(0x95)]
    return b"".join(out)


@dataclass(frozen=True)
class Attempt:
    mono_ns: int
    syscall: str  # connect | sendmsg
    proto: str  # tcp | udp
    address: str
    port: int
    pid: int


class NetProbe:
    """One queue and one program per hook, attached to each cgroup given."""

    def __init__(self) -> None:
        attr = struct.pack("<IIIII", _MAP_TYPE_QUEUE, 0, RECORD.size, QUEUE_ENTRIES, 0)
        try:
            self.map_fd = _bpf(_MAP_CREATE, attr)
        except OSError as exc:
            raise ProbeUnavailable(f"cannot create a BPF queue: {exc.strerror}") from None
        self.progs: dict[int, int] = {}
        self.attached: list[tuple[int, int, int]] = []  # (cgroup fd, prog fd, attach type)
        self._lock = threading.Lock()
        try:
            for hook, (_, family) in HOOKS.items():
                self.progs[hook] = self._load(_program(self.map_fd, hook, family), hook)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _load(insns: bytes, attach_type: int) -> int:
        code = ctypes.create_string_buffer(insns, len(insns))
        lic = ctypes.create_string_buffer(b"GPL")
        log = ctypes.create_string_buffer(65536)
        # bpf_attr for BPF_PROG_LOAD up to expected_attach_type (offset 68).
        attr = struct.pack("<IIQQIIQII16sIII", _PROG_TYPE_CGROUP_SOCK_ADDR, len(insns) // 8,
                           ctypes.addressof(code), ctypes.addressof(lic), 1, len(log),
                           ctypes.addressof(log), 0, 0, b"enirace_net", 0, attach_type, 0)
        try:
            return _bpf(_PROG_LOAD, attr)
        except OSError as exc:
            detail = log.value.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise ProbeUnavailable(f"the kernel refused the probe: {exc.strerror} {detail[0]}") from None

    def attach(self, cgroup_dir: Path) -> None:
        fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for hook, prog in self.progs.items():
                _bpf(_PROG_ATTACH, struct.pack("<IIII", fd, prog, hook, _F_ALLOW_MULTI))
                with self._lock:
                    self.attached.append((fd, prog, hook))
        except OSError as exc:
            raise ProbeUnavailable(f"cannot attach to {cgroup_dir}: {exc.strerror}") from None

    def drain(self) -> list[Attempt]:
        """Every attempt queued so far, oldest first."""
        out: list[Attempt] = []
        value = ctypes.create_string_buffer(RECORD.size)
        attr = struct.pack("<IIQQQ", self.map_fd, 0, 0, ctypes.addressof(value), 0)
        while True:
            try:
                _bpf(_MAP_LOOKUP_AND_DELETE, attr)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return out
                raise
            out.append(_decode(value.raw))

    def close(self) -> None:
        with self._lock:
            attached, self.attached = self.attached, []
        for fd, prog, hook in attached:
            try:
                _bpf(_PROG_DETACH, struct.pack("<IIII", fd, prog, hook, 0))
            except OSError:
                pass  # the cgroup is gone, and its programs with it
        for fd in {a[0] for a in attached} | set(self.progs.values()) | {getattr(self, "map_fd", -1)}:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.progs = {}
        self.map_fd = -1


def _decode(raw: bytes) -> Attempt:
    ts, addr, port_be, sock_type, tgid, hook = RECORD.unpack(raw)
    syscall, family = HOOKS.get(hook, ("connect", 4))
    ip = ipaddress.IPv4Address(addr[:4]) if family == 4 else ipaddress.IPv6Address(addr)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # .NET's dual-mode sockets connect to ::ffff:a.b.c.d
    port = int.from_bytes(struct.pack("<I", port_be)[:2], "big")
    proto = {1: "tcp", 2: "udp"}.get(sock_type & 0xF, f"type{sock_type}")
    return Attempt(ts, syscall, proto, str(ip), port, tgid)


def is_runtime_api(a: Attempt) -> bool:
    """The runtime's own calls to the emulator (v6 loopback or mapped: the BPF
    filter only drops the v4 ones)."""
    return a.port == 9001 and a.address in ("127.0.0.1", "::1")


def unified_dir(group: Cgroup, run: Run) -> Path | None:
    """The group's cgroup v2 directory: its own on a v2 machine; on a hybrid one
    (v1 controllers plus a unified mount) a new group of the same name in the
    unified hierarchy, joined like the others (it is added to group.dirs) and
    recorded in the manifest. None when there is no cgroup v2 at all."""
    if group.layout.version == 2:
        return group.dirs[0] if group.dirs else None
    mount = _unified_mount()
    if mount is None:
        return None
    parent = mount / "enirace"
    parent.mkdir(exist_ok=True)
    d = cgroups.make_owned(run, parent / group.name, mount)
    group.dirs.append(d)
    return d


def _unified_mount(mountinfo: str = "/proc/self/mountinfo") -> Path | None:
    try:
        text = Path(mountinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[:1] == ["cgroup2"]:
            return Path(left.split()[4])
    return None


class Watcher:
    """A probe per runtime generation, drained into the history every POLL_S and
    once more at stop (net_attempt events, on the history's clock)."""

    POLL_S = 0.05

    def __init__(self, history: History) -> None:
        self.history = history
        self.probes: dict[int, NetProbe] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.unavailable = ""

    def attach(self, group: Cgroup, generation: int, run: Run) -> None:
        """Probe the group's processes; a net_probe event says how, or why not."""
        if self.unavailable:  # said once; the next generations fare no better
            self.history.record(schema.NET_PROBE, generation=generation, method="none", error=self.unavailable)
            return
        try:
            target = unified_dir(group, run)
            if target is None:
                raise ProbeUnavailable("no cgroup v2 hierarchy is mounted")
            probe = NetProbe()
            try:
                probe.attach(target)
            except BaseException:
                probe.close()
                raise
        except (ProbeUnavailable, OSError) as exc:
            self.unavailable = str(exc)
            self.history.record(schema.NET_PROBE, generation=generation, method="none", error=self.unavailable)
            return
        with self._lock:
            self.probes[generation] = probe
        self.history.record(schema.NET_PROBE, generation=generation, method="ebpf_cgroup_sock_addr",
                            cgroup=str(target))
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, daemon=True, name="netprobe")
            self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.POLL_S):
            self.drain()

    def drain(self) -> None:
        with self._lock:
            for generation, probe in self.probes.items():
                if probe.map_fd < 0:
                    continue
                for a in probe.drain():
                    if is_runtime_api(a):
                        continue
                    self.history.record(schema.NET_ATTEMPT, t_ms=self.history.ms_at(a.mono_ns),
                                        generation=generation, syscall=a.syscall, proto=a.proto,
                                        dst=f"{a.address}:{a.port}", pid=a.pid)

    def stop(self) -> None:
        """The last attempts, then the probes go (safe to call more than once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.drain()
        with self._lock:
            for probe in self.probes.values():
                probe.close()
