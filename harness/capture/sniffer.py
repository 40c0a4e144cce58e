"""Packet evidence from inside the sandbox: capture.pcap and history events.

A packet socket is opened while the thread is inside the sandbox namespace and
bound to no interface, so it sees every link of that namespace, including ENIs
attached after the capture started (a socket keeps its namespace; the kernel
hands it each packet of any device there). The capture thread only copies
packets with their kernel timestamps: dissecting with scapy while faults fire
would hold the GIL and delay them, so packets are decoded after the trial
(decode_packets), written to capture.pcap (Linux cooked v1, as `tcpdump -i any`)
and turned into events: dns_query, dns_answer, tcp_syn, tcp_retransmit, tcp_rst,
icmp_unreachable and a `capture` summary. Loopback is kept only for DNS (a
resolv.conf without nameserver sends queries to 127.0.0.1); the Runtime API's own
traffic on lo is noise.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.history import schema
from harness.history.recorder import History
from harness.lab import netns
from harness.lab.rtnetlink import socket_netns_inode

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4
LINKTYPE_LINUX_SLL = 113
MAX_PACKETS = 100_000  # a runaway client cannot grow the harness without bound
MAX_EVENTS = 2_000
SNAPLEN = 2048


@dataclass
class Packet:
    t_ns: int  # kernel receive time, CLOCK_REALTIME
    ifname: str
    proto: int
    pkttype: int
    hatype: int
    hwaddr: bytes
    data: bytes  # from the network header on

    @property
    def sent(self) -> bool:
        return self.pkttype == PACKET_OUTGOING


def _keep(ifname: str, pkttype: int, proto: int, data: bytes) -> bool:
    """All of every ENI; of lo only DNS, and each packet once (lo shows it twice)."""
    if ifname != "lo":
        return True
    if pkttype == PACKET_OUTGOING or proto != 0x0800 or len(data) < 24:
        return False
    ihl = (data[0] & 0x0F) * 4
    if data[9] == 1:  # ICMP: a port-unreachable answer to a query sent to 127.0.0.1:53
        return True
    if data[9] not in (6, 17) or len(data) < ihl + 4:
        return False
    sport, dport = struct.unpack_from("!HH", data, ihl)
    return 53 in (sport, dport)


class SandboxCapture:
    def __init__(self, sandbox: str, history: History, pcap_path: Path) -> None:
        self.sandbox = sandbox
        self.history = history
        self.pcap_path = pcap_path
        self.packets: list[Packet] = []
        self.truncated = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # Kernel timestamps are wall-clock; the history runs on the monotonic clock.
        self._rt_minus_mono = time.time_ns() - time.monotonic_ns()

    def start(self) -> None:
        with netns.entered(self.sandbox):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                                 socket.htons(ETH_P_ALL))
        if socket_netns_inode(sock) != netns.inode(self.sandbox):
            sock.close()
            raise RuntimeError(f"capture socket is not in {self.sandbox}")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock = sock
        self._thread = threading.Thread(target=self._loop, name="capture", daemon=True)
        self._thread.start()
        self.history.record(schema.CAPTURE_START, sandbox=self.sandbox)

    def _loop(self) -> None:
        assert self._sock is not None
        sock = self._sock
        cmsg_size = socket.CMSG_SPACE(16)
        while True:
            ready, _, _ = select.select([sock], [], [], 0.1)
            if not ready:
                if self._stop.is_set():
                    return  # stopped and drained
                continue
            data, anc, _flags, addr = sock.recvmsg(SNAPLEN, cmsg_size)
            ifname, proto, pkttype, hatype, hwaddr = addr
            if not _keep(ifname, pkttype, proto, data):
                continue
            if len(self.packets) >= MAX_PACKETS:
                self.truncated += 1
                continue
            t_ns = time.time_ns()
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("=qq", value[:16])
                    t_ns = sec * 1_000_000_000 + nsec
            self.packets.append(Packet(t_ns, ifname, proto, pkttype, hatype, hwaddr, data))

    def stop(self) -> dict[str, Any]:
        """Stop, write capture.pcap, record the packet events; returns the summary."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        dropped = 0
        if self._sock is not None:
            try:
                # struct tpacket_stats: packets, drops (reading resets them).
                dropped = struct.unpack("=II", self._sock.getsockopt(263, 6, 8))[1]
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        write_pcap(self.pcap_path, self.packets)
        from harness.capture.decode import decode_packets

        events = decode_packets(self.packets)
        for event in events[:MAX_EVENTS]:
            kind = event.pop("kind")
            t_ms = self.history.ms_at(event.pop("t_ns") - self._rt_minus_mono)
            self.history.record(kind, t_ms=t_ms, **event)
        summary: dict[str, Any] = {"file": self.pcap_path.name, "packets": len(self.packets),
                   "kernel_drops": dropped, "over_limit": self.truncated,
                   "events": min(len(events), MAX_EVENTS), "events_left_out": max(0, len(events) - MAX_EVENTS)}
        self.history.record(schema.CAPTURE, **summary)
        return summary


def sll_header(p: Packet) -> bytes:
    return struct.pack("!HHH8sH", p.pkttype, p.hatype, len(p.hwaddr), p.hwaddr[:8].ljust(8, b"\0"), p.proto)


def write_pcap(path: Path, packets: list[Packet]) -> None:
    from scapy.utils import RawPcapWriter

    writer = RawPcapWriter(str(path), linktype=LINKTYPE_LINUX_SLL, snaplen=SNAPLEN)
    try:
        writer.write_header(None)
        for p in packets:
            frame = sll_header(p) + p.data
            writer.write_packet(frame, sec=p.t_ns // 1_000_000_000, usec=(p.t_ns // 1000) % 1_000_000,
                                caplen=len(frame), wirelen=len(frame))
    finally:
        writer.close()
