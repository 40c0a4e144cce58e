"""Delay, jitter and loss in userspace, through an NFQUEUE in a lab namespace.

Why not `tc netem`: kernels built without sch_netem (this project's CI VM is one)
cannot delay packets in the kernel at all. An iptables NFQUEUE rule hands each
matching packet to this process, which gives the verdict later (delay, with
uniform jitter, reordering allowed as with netem) or drops it (loss). The
sender sees nothing: the packet has already left its namespace.

The nfnetlink socket is created inside the namespace (queues are per namespace)
and keeps it, so the verdict thread can run anywhere.
"""

from __future__ import annotations

import errno
import heapq
import random
import select
import socket
import struct
import threading
import time

from harness.lab import netns
from harness.lab.rtnetlink import attr, iter_attrs, iter_messages, socket_netns_inode

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1
NF_DROP, NF_ACCEPT = 0, 1
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
QUEUE_MAXLEN = 4096


class DelayQueue:
    """Owns queue `num` in namespace `ns` while started."""

    def __init__(self, ns: str, num: int, delay_ms: float, jitter_ms: float, loss: float,
                 seed: int | None = None) -> None:
        self.ns = ns
        self.num = num
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        self.loss = loss  # 0.0 .. 1.0
        self.rng = random.Random(seed)
        self.delayed = 0
        self.dropped = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._seq = 0

    # -- netlink ----------------------------------------------------------------------

    def _send(self, msg_type: int, attrs: bytes, family: int = socket.AF_UNSPEC, ack: bool = False) -> int:
        assert self._sock is not None
        self._seq += 1
        body = struct.pack("=BBH", family, 0, socket.htons(self.num)) + attrs
        flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
        header = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags,
                             self._seq, 0)
        self._sock.send(header + body)
        return self._seq

    def _config(self, attrs: bytes) -> None:
        """Send a config message and wait for its ack (raises on refusal)."""
        assert self._sock is not None
        seq = self._send(NFQNL_MSG_CONFIG, attrs, ack=True)
        while True:
            for mtype, mseq, payload in iter_messages(self._sock.recv(65536)):
                if mtype == NLMSG_ERROR and mseq == seq:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise OSError(code, f"nfqueue config in {self.ns}: {errno.errorcode.get(code)}")
                    return

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        with netns.entered(self.ns):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        if socket_netns_inode(sock) != netns.inode(self.ns):
            sock.close()
            raise RuntimeError(f"nfqueue socket is not in {self.ns}")
        sock.bind((0, 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._sock = sock
        try:
            self._config(attr(NFQA_CFG_CMD, struct.pack("=BxH", NFQNL_CFG_CMD_BIND, 0)))
            self._config(attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META))
                         + attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", QUEUE_MAXLEN))
                         + attr(NFQA_CFG_FLAGS, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN))
                         + attr(NFQA_CFG_MASK, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN)))
        except BaseException:
            sock.close()
            self._sock = None
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"nfqueue-{self.num}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Release every held packet now, then unbind."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._sock is not None:
            try:
                self._config(attr(NFQA_CFG_CMD, struct.pack("=BxH", NFQNL_CFG_CMD_UNBIND, 0)))
            except OSError:
                pass
            self._sock.close()
            self._sock = None

    def _verdict(self, packet_id: int, verdict: int) -> None:
        self._send(NFQNL_MSG_VERDICT, attr(NFQA_VERDICT_HDR, struct.pack(">II", verdict, packet_id)))

    def _hold_ms(self) -> float:
        jitter = self.rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.delay_ms + jitter)

    def _loop(self) -> None:
        assert self._sock is not None
        held: list[tuple[int, int]] = []  # (release at monotonic_ns, packet id)
        while not self._stop.is_set():
            now = time.monotonic_ns()
            while held and held[0][0] <= now:
                self._verdict(heapq.heappop(held)[1], NF_ACCEPT)
            wait = 0.05 if not held else max(0.0, (held[0][0] - now) / 1e9)
            ready, _, _ = select.select([self._sock], [], [], min(wait, 0.05))
            if not ready:
                continue
            data = self._sock.recv(65536)
            arrived = time.monotonic_ns()
            for mtype, _seq, payload in iter_messages(data):
                if mtype != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    continue
                for kind, value in iter_attrs(payload, 4):
                    if kind != NFQA_PACKET_HDR:
                        continue
                    packet_id = struct.unpack_from(">I", value)[0]
                    if self.loss and self.rng.random() < self.loss:
                        self.dropped += 1
                        self._verdict(packet_id, NF_DROP)
                    else:
                        self.delayed += 1
                        heapq.heappush(held, (arrived + int(self._hold_ms() * 1e6), packet_id))
        for _, packet_id in held:  # stopping: nothing stays stuck in the kernel
            self._verdict(packet_id, NF_ACCEPT)
