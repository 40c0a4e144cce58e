"""Reap precision: from a `reap_idle` to the RST on the wire, over N reaps.

A lab with `lab.nat` (on_expired: rst); each round the sandbox opens a
keep-alive connection to the service and makes one request, then reap_idle
(min_idle 0) forgets it, the sandbox sends its next request at once, and a
packet socket on the sandbox's ENI waits for the NAT's RST. Printed, p50/p99 in
ms: the reap itself (conntrack dump + delete over ctnetlink), its verify (a
lookup per reaped flow), request to RST (the kernel's REJECT), and reap start to RST on
the wire. Needs root.

    .nox/tests/bin/python benchmarks/reap_precision.py [--n 100]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import time

from harness.lab import addressing, netns
from harness.lab.services import SERVICE_NAME, SERVICE_PORT
from harness.lab.topology import Lab
from harness.nemesis import catalogue
from harness.nemesis import fault as faults
from harness.ownership import Run
from harness.scenario.model import LabConfig

GET = f"GET / HTTP/1.1\r\nHost: {SERVICE_NAME}\r\n\r\n".encode()
ETH_P_IP = 0x0800


def _rst_seen(raw: socket.socket, port: int, deadline: float) -> float | None:
    """monotonic time of the first RST to `port` on the packet socket."""
    while time.monotonic() < deadline:
        raw.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            data = raw.recv(256)
        except TimeoutError:
            return None
        now = time.monotonic()
        ihl = (data[0] & 0xF) * 4
        if data[9] != 6:
            continue
        dport, flags = struct.unpack("!H", data[ihl + 2: ihl + 4])[0], data[ihl + 13]
        if dport == port and flags & 0x04:
            return now
    return None


def one_round(lab: Lab, raw: socket.socket) -> tuple[float, float, float, float]:
    sock = netns.socket_in(lab.sandbox, socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(2)
    with sock:
        sock.connect((str(lab.subnet.service), SERVICE_PORT))
        sock.sendall(GET)
        sock.recv(4096)
        port = sock.getsockname()[1]
        fault = catalogue.make("reap_idle", lab, {"min_idle": "0s"})
        t0 = time.monotonic()
        fault.apply()
        t1 = time.monotonic()
        ok, state = fault.verify()
        t2 = time.monotonic()
        assert ok, state
        sent = time.monotonic()
        sock.sendall(GET)
        got = _rst_seen(raw, port, sent + 2)
        assert got is not None, "no RST within 2 s"
    return (t1 - t0) * 1000, (t2 - t1) * 1000, (got - sent) * 1000, (got - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100)
    n = ap.parse_args().n
    with Run.register("bench reap_precision") as run:
        lease = addressing.acquire(addressing.parse_pool(addressing.DEFAULT_POOL), run)
        lab = Lab(run, lease.subnet, config=LabConfig.model_validate({"nat": {"idle_timeout": "350s"}}))
        try:
            lab.up()
            eni = lab.attach_eni()
            faults.settled(lambda: {**lab.sandbox_state(), "bridge": lab.bridge_end_up(eni)},
                           lambda st: faults.eni_usable(st) and st["bridge"])
            with netns.entered(lab.sandbox):
                raw = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
            raw.bind((eni.ifname, ETH_P_IP))
            rounds = [one_round(lab, raw) for _ in range(n)]
            raw.close()
        finally:
            lab.down()
            lease.release()
    print(f"reap precision, {n} reaps, lab.nat on_expired rst (ms):")
    for i, what in enumerate(("reap (dump + delete)", "verify (lookups)", "request -> RST", "reap start -> RST")):
        values = sorted(r[i] for r in rounds)
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"  {what:22s} p50 {statistics.median(values):7.3f}  p99 {p99:7.3f}  max {values[-1]:7.3f}")


if __name__ == "__main__":
    main()
