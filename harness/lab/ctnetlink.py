"""A minimal ctnetlink client (conntrack over NETLINK_NETFILTER): dump IPv4 TCP
entries, delete one by its original tuple.

Why not pyroute2's Conntrack: with `netns=` it forks a child process for every
socket it opens (the child inherits the harness's signal handlers, and a SIGTERM
meant for the child then runs the parent's handler in a copy of the harness), and
a dump costs 15-30 ms. A raw socket created while this thread is inside the
namespace stays bound to it (as rtnetlink.PinnedRtnl), and a dump costs well
under a millisecond.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from harness.lab import netns

NETLINK_NETFILTER = 12
MSG_GET, MSG_DELETE = (1 << 8) | 1, (1 << 8) | 2  # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_*
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_PROTOINFO, CTA_TIMEOUT, CTA_ID = 1, 2, 4, 7, 12
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE = 1, 1
TCP_STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
              "TIME_WAIT", "CLOSE", "SYN_SENT2")


@dataclass(frozen=True)
class Tuple:
    src: str
    dst: str
    sport: int
    dport: int


@dataclass(frozen=True)
class Entry:
    orig: Tuple
    reply: Tuple
    state: str
    timeout_s: int  # what is left of the state's timeout, rounded down
    id: int


def _attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    at = 0
    while at + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, at)
        if length < 4:
            return
        yield kind & ~NLA_F_NESTED, data[at + 4: at + length]
        at += (length + 3) & ~3


def _attr(kind: int, payload: bytes, nested: bool = False) -> bytes:
    head = struct.pack("=HH", 4 + len(payload), kind | (NLA_F_NESTED if nested else 0))
    return head + payload + b"\0" * ((4 - len(payload) % 4) % 4)


def _tuple(data: bytes) -> Tuple | None:
    ip: dict[int, bytes] = {}
    proto: dict[int, bytes] = {}
    for kind, payload in _attrs(data):
        if kind == CTA_TUPLE_IP:
            ip = dict(_attrs(payload))
        elif kind == CTA_TUPLE_PROTO:
            proto = dict(_attrs(payload))
    if proto.get(CTA_PROTO_NUM, b"\0")[0] != socket.IPPROTO_TCP or CTA_IP_V4_SRC not in ip:
        return None
    return Tuple(socket.inet_ntoa(ip[CTA_IP_V4_SRC]), socket.inet_ntoa(ip[CTA_IP_V4_DST]),
                 struct.unpack("!H", proto[CTA_PROTO_SRC_PORT])[0], struct.unpack("!H", proto[CTA_PROTO_DST_PORT])[0])


def _entry(body: bytes) -> Entry | None:
    attrs = dict(_attrs(body[4:]))  # after the nfgenmsg header
    orig = _tuple(attrs.get(CTA_TUPLE_ORIG, b""))
    reply = _tuple(attrs.get(CTA_TUPLE_REPLY, b""))
    if orig is None or reply is None:
        return None
    state = "NONE"
    tcp = dict(_attrs(attrs.get(CTA_PROTOINFO, b""))).get(CTA_PROTOINFO_TCP)
    if tcp is not None:
        code = dict(_attrs(tcp)).get(CTA_PROTOINFO_TCP_STATE, b"\0")[0]
        state = TCP_STATES[code] if code < len(TCP_STATES) else str(code)
    timeout = struct.unpack("!I", attrs[CTA_TIMEOUT])[0] if CTA_TIMEOUT in attrs else 0
    ident = struct.unpack("!I", attrs[CTA_ID])[0] if CTA_ID in attrs else 0
    return Entry(orig, reply, state, timeout, ident)


class Conntrack:
    """One ctnetlink socket bound to namespace `ns` for its whole life."""

    def __init__(self, ns: str) -> None:
        with netns.entered(ns):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.sock.settimeout(2)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Conntrack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, kind: int, flags: int, payload: bytes) -> int:
        self.seq += 1
        nfgen = struct.pack("=BBH", socket.AF_INET, 0, 0)
        body = nfgen + payload
        self.sock.send(struct.pack("=IHHII", 16 + len(body), kind, flags | NLM_F_REQUEST, self.seq, 0) + body)
        return self.seq

    def _replies(self, seq: int) -> Iterator[tuple[int, bytes]]:
        """(type, body) of each message answering `seq`, until DONE or the ACK/error."""
        while True:
            data = self.sock.recv(1 << 20)
            at = 0
            while at + 16 <= len(data):
                length, kind, _flags, got_seq, _pid = struct.unpack_from("=IHHII", data, at)
                body = data[at + 16: at + length]
                at += (length + 3) & ~3
                if got_seq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    code = struct.unpack_from("=i", body)[0]
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    return
                yield kind, body

    def dump(self) -> list[Entry]:
        """Every IPv4 TCP entry of the namespace's conntrack table."""
        seq = self._send(MSG_GET, NLM_F_DUMP, b"")
        return [e for _, body in self._replies(seq) if (e := _entry(body)) is not None]

    def get(self, entry: Entry) -> Entry | None:
        """`entry` as conntrack has it now (a hash lookup: a dump walks the whole
        host's table, 262144 buckets here, ~20 ms), or None when it is gone."""
        try:
            found = [e for _, body in self._replies(self._send(MSG_GET, NLM_F_ACK, self._key(entry, with_id=False)))
                     if (e := _entry(body)) is not None]
        except FileNotFoundError:
            return None
        return found[0] if found else None

    def delete(self, entry: Entry) -> None:
        """Forget `entry` (OSError ENOENT when it is gone already)."""
        list(self._replies(self._send(MSG_DELETE, NLM_F_ACK, self._key(entry))))

    @staticmethod
    def _key(entry: Entry, with_id: bool = True) -> bytes:
        o = entry.orig
        ip = _attr(CTA_IP_V4_SRC, socket.inet_aton(o.src)) + _attr(CTA_IP_V4_DST, socket.inet_aton(o.dst))
        proto = (_attr(CTA_PROTO_NUM, bytes([socket.IPPROTO_TCP]))
                 + _attr(CTA_PROTO_SRC_PORT, struct.pack("!H", o.sport))
                 + _attr(CTA_PROTO_DST_PORT, struct.pack("!H", o.dport)))
        tup = _attr(CTA_TUPLE_IP, ip, nested=True) + _attr(CTA_TUPLE_PROTO, proto, nested=True)
        key = _attr(CTA_TUPLE_ORIG, tup, nested=True)
        return key + _attr(CTA_ID, struct.pack("!I", entry.id)) if with_id else key
