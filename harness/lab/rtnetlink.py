"""A minimal rtnetlink client on a socket pinned to one lab namespace.

Why not pyroute2 for this: a fault has to change the kernel within a fraction of a
millisecond of its planned time. Opening an IPRoute costs milliseconds, and
pyroute2 0.9 opens its socket lazily per thread, in whatever namespace that thread
is in at the time. A raw NETLINK_ROUTE socket created while the thread is inside
the namespace stays bound to that namespace for its whole life, whichever thread
later writes to it; `open_in` proves that with SIOCGSKNS before handing it out.
So the lab opens one per namespace at build time and faults only send requests.
Reading state back (verify) stays on pyroute2 via `netns.rtnl`, so what is
written here is checked by an independent decoder.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Iterator
from ipaddress import IPv4Address

from harness.lab import netns

NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR = 20, 21
RTM_NEWROUTE, RTM_DELROUTE = 24, 25

IFF_UP = 0x1
IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
SIOCGSKNS = 0x894C

_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")


def attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def iter_attrs(data: bytes, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            return
        yield kind & ~NLA_F_NESTED, data[offset + 4: offset + length]
        offset += (length + 3) & ~3


def iter_messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, seq, payload) for each netlink message in a datagram."""
    offset = 0
    while offset + _HDR.size <= len(data):
        length, kind, _flags, seq, _pid = _HDR.unpack_from(data, offset)
        if length < _HDR.size:
            return
        yield kind, seq, data[offset + _HDR.size: offset + length]
        offset += (length + 3) & ~3


def socket_netns_inode(sock: socket.socket) -> int:
    """Inode of the network namespace a socket belongs to (SIOCGSKNS)."""
    fd = fcntl.ioctl(sock.fileno(), SIOCGSKNS)
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


class PinnedRtnl:
    """Requests to one namespace's rtnetlink; safe to call from any thread."""

    def __init__(self, ns: str, sock: socket.socket) -> None:
        self.ns = ns
        self._sock = sock
        self._lock = threading.Lock()
        self._seq = 0

    @classmethod
    def open_in(cls, ns: str, groups: int = 0) -> PinnedRtnl:
        with netns.entered(ns):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                 NETLINK_ROUTE)
        try:
            sock.bind((0, groups))
            if socket_netns_inode(sock) != netns.inode(ns):
                raise RuntimeError(f"netlink socket for {ns} is not in {ns}")
        except BaseException:
            sock.close()
            raise
        return cls(ns, sock)

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    # -- transport ---------------------------------------------------------------------

    def request(self, kind: int, body: bytes, flags: int = 0) -> list[tuple[int, bytes]]:
        """Send one request and wait for its ack; returns any replies before the ack.
        Raises OSError(errno) when the kernel refuses it."""
        with self._lock:
            self._seq += 1
            seq = self._seq
            msg = _HDR.pack(_HDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0)
            self._sock.send(msg + body)
            replies: list[tuple[int, bytes]] = []
            while True:
                data = self._sock.recv(65536)
                for mtype, mseq, payload in iter_messages(data):
                    if mseq != seq:
                        continue  # a late answer to an earlier, abandoned request
                    if mtype == NLMSG_ERROR:
                        code = -struct.unpack_from("=i", payload)[0]
                        if code:
                            raise OSError(code, f"{os.strerror(code)} (rtnetlink {kind} in {self.ns})")
                        return replies
                    replies.append((mtype, payload))

    # -- links -------------------------------------------------------------------------

    def link_index(self, ifname: str) -> int | None:
        body = _IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, ifname.encode() + b"\0")
        try:
            replies = self.request(RTM_GETLINK, body)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        for mtype, payload in replies:
            if mtype == RTM_NEWLINK:
                return int(_IFINFO.unpack_from(payload)[2])
        return None

    def link_set(self, index: int, up: bool | None = None, netns_fd: int | None = None,
                 master: int | None = None) -> None:
        """Change a link; with netns_fd it moves to that namespace first, and the
        other changes (e.g. up) apply there, all in one request."""
        flags = IFF_UP if up else 0
        change = IFF_UP if up is not None else 0
        attrs = b""
        if netns_fd is not None:
            attrs += attr(IFLA_NET_NS_FD, struct.pack("=I", netns_fd))
        if master is not None:
            attrs += attr(IFLA_MASTER, struct.pack("=I", master))
        self.request(RTM_NEWLINK, _IFINFO.pack(0, 0, index, flags, change) + attrs)

    def veth_create(self, ifname: str, index: int, master: int, peer: str, peer_index: int,
                    peer_netns_fd: int) -> None:
        """A veth pair whose `peer` end is born directly in the namespace of
        `peer_netns_fd`: no later move across namespaces, whose rcu_barrier costs
        ~20 ms. This end is enslaved to `master` and up; the peer stays down (a veth
        end cannot be opened before its partner is registered). Both ifindexes are
        chosen by the caller, so no lookup is needed afterwards."""
        peer_msg = _IFINFO.pack(0, 0, peer_index, 0, 0) + attr(IFLA_IFNAME, peer.encode() + b"\0")
        peer_msg += attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
        linkinfo = nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"veth\0"),
                          nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_msg)))
        body = _IFINFO.pack(0, 0, index, IFF_UP, IFF_UP) + attr(IFLA_IFNAME, ifname.encode() + b"\0")
        body += attr(IFLA_MASTER, struct.pack("=I", master)) + linkinfo
        self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)

    def link_del(self, index: int) -> None:
        self.request(RTM_DELLINK, _IFINFO.pack(0, 0, index, 0, 0))

    # -- addresses and routes ----------------------------------------------------------

    def addr_add(self, index: int, address: IPv4Address, prefixlen: int) -> None:
        packed = address.packed
        body = _IFADDR.pack(socket.AF_INET, prefixlen, 0, 0, index)
        body += attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
        self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def default_route(self, gateway: IPv4Address, oif: int) -> None:
        """Add (or replace) the default route via `gateway` on link `oif`."""
        body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, 0, RTN_UNICAST, 0)
        body += attr(RTA_GATEWAY, gateway.packed) + attr(RTA_OIF, struct.pack("=I", oif))
        self.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_REPLACE)
