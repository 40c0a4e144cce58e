"""How precisely an ENI fault lands, per way of applying it (docs/docker.md).

For each mode a lab is built (no runtime) and the ENI is attached and detached
CYCLES times at planned instants. Measured from the planned instant:
  timer   when the nemesis-style timer fired (sleep, then spin)
  apply   when the attach call returned
  usable  when a DNS query from inside the sandbox first got its answer
          (an end-to-end probe: address, route and ARP all in place)
  gone    for a detach, when the sandbox could no longer send to the resolver

Modes: process (a plain namespace, the process backend's lab), docker netlink (the
same veth, in a container's namespace), docker network (docker network connect).
Run as root with a Docker engine: python benchmarks/docker_fault_precision.py [CYCLES [PAUSE_S]]
"""

from __future__ import annotations

import socket
import statistics
import sys
import threading
import time

CYCLES = int(sys.argv[1]) if len(sys.argv) > 1 else 20
PAUSE_S = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05  # between one change and the next
QUERY = bytes.fromhex("abcd01000001000000000000") + b"\x03svc\x08internal\x00\x00\x01\x00\x01"


def probe_until(sandbox: str, resolver: str, want_usable: bool, limit_s: float = 3.0) -> float:
    """Monotonic time at which the sandbox's reachability of the resolver became want_usable."""
    from harness.lab import netns

    sock = netns.socket_in(sandbox, socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.002)
    deadline = time.monotonic() + limit_s
    try:
        while time.monotonic() < deadline:
            try:
                sock.sendto(QUERY, (resolver, 53))
                sock.recv(512)
                usable = True
            except OSError:  # ENETUNREACH (no route), or no answer within 2 ms
                usable = False
            if usable == want_usable:
                return time.monotonic()
    finally:
        sock.close()
    return float("nan")


def measure(lab: object, cycles: int) -> dict[str, list[float]]:
    from harness.nemesis.firing import sleep_until

    out: dict[str, list[float]] = {"timer": [], "apply": [], "usable": [], "detach_apply": [], "gone": []}
    never = threading.Event()
    for _ in range(cycles):
        for attach in (True, False):
            planned = time.monotonic_ns() + 30_000_000
            sleep_until(planned, never)
            fired = time.monotonic()
            if attach:
                lab.attach_eni()  # type: ignore[attr-defined]
            else:
                lab.detach_eni()  # type: ignore[attr-defined]
            applied = time.monotonic()
            seen = probe_until(lab.sandbox, str(lab.subnet.resolver), attach)  # type: ignore[attr-defined]
            p = planned / 1e9
            if attach:
                out["timer"].append((fired - p) * 1000)
                out["apply"].append((applied - p) * 1000)
                out["usable"].append((seen - p) * 1000)
            else:
                out["detach_apply"].append((applied - p) * 1000)
                out["gone"].append((seen - p) * 1000)
            time.sleep(PAUSE_S)
    return out


def _row(name: str, values: list[float]) -> str:
    vals = sorted(v for v in values if v == v)
    if not vals:
        return f"{name:14} (no samples)"
    p95 = vals[min(len(vals) - 1, int(round(0.95 * (len(vals) - 1))))]
    return f"{name:14} median {statistics.median(vals):8.3f}  p95 {p95:8.3f}  max {vals[-1]:8.3f} ms"


def main() -> int:
    from harness.backends.docker import engine as de
    from harness.backends.docker import lab as docker_lab
    from harness.backends.docker.images import ensure
    from harness.lab import addressing
    from harness.lab.topology import Lab
    from harness.ownership import Run
    from harness.privileges import has_privileges

    if not has_privileges():
        print("skipped: needs root")
        return 0
    docker_ok, found = de.reachable()
    image = ensure("python") if docker_ok else None
    modes = ["process"] + (["docker netlink", "docker network"] if docker_ok else [])
    if not docker_ok:
        print(f"docker modes skipped: {found}")
    with Run.register("bench-precision") as run:
        for mode in modes:
            lease = addressing.acquire(addressing.parse_pool(addressing.DEFAULT_POOL))
            if mode == "process":
                lab: Lab = Lab(run, lease.subnet)
            else:
                lab = docker_lab.make(mode.split()[1], run=run, subnet=lease.subnet, image=image)
            try:
                lab.up()
                results = measure(lab, CYCLES)
            finally:
                lab.down()
                lease.release()
            print(f"\n{mode}: {CYCLES} attach/detach cycles, times from the planned instant")
            for key in ("timer", "apply", "usable", "detach_apply", "gone"):
                print("  " + _row(key, results[key]))
            # A new ENI whose first ARP request is lost works only after the kernel's
            # 1 s ARP retransmit: count those separately from the mechanism's own latency.
            stalls = sum(1 for v in results["usable"] if v > 500)
            print(f"  {'ARP stalls':14} {stalls}/{len(results['usable'])} attaches usable only after > 500 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
