"""Lab addresses: a pool (198.18.0.0/15 by default), one /24 per trial.

Leases are flock'd files, so parallel runs never share a /24 and a crashed run's
leases free themselves when the kernel drops its locks. A release unlinks the file
while still holding its lock, and a taker checks after flock that the path still
names the inode it locked (ownership.lock_file), so the directory does not fill up
and two runs never both believe they hold one /24. A crashed run's files are in
its manifest; cleanup removes them the same way.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING

from harness import ownership
from harness.errors import PoolError
from harness.scenario.pool import DEFAULT_POOL, parse_pool  # noqa: F401  (the lab's names for them)

if TYPE_CHECKING:
    from harness.lab.netns import Manifest


@dataclass(frozen=True)
class Subnet:
    """One trial's /24 and the fixed roles inside it."""

    network: IPv4Network

    def _host(self, n: int) -> IPv4Address:
        return self.network.network_address + n

    @property
    def gateway(self) -> IPv4Address:
        return self._host(1)

    @property
    def resolver(self) -> IPv4Address:
        # AmazonProvidedDNS lives at the VPC base + 2.
        return self._host(2)

    @property
    def service(self) -> IPv4Address:
        return self._host(10)

    @property
    def nat(self) -> IPv4Address:
        """The NAT's address: what the service sees as every client's (lab.nat)."""
        return self._host(250)

    def host(self, n: int) -> IPv4Address:
        return self._host(n)

    def eni(self, slot: int) -> IPv4Address:
        """ENI A is slot 0, B slot 1, ... (swaps to a new IP take the next slot)."""
        return self._host(100 + slot)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen


def overlapping(pool: IPv4Network, routes: list[IPv4Network]) -> list[IPv4Network]:
    """Host routes that overlap the pool. The default route (/0) overlaps everything
    and says nothing about address ownership, so it is ignored."""
    return [r for r in routes if r.prefixlen > 0 and r.overlaps(pool)]


def host_routes() -> list[IPv4Network]:
    """Destinations of every IPv4 route and address in the host namespace (read only),
    except those on the harness's own links: a run's Docker network (docker mode puts
    its bridge on the host, named with our prefix) holds a leased /24 of the pool and
    must not make the pool look taken to every other run."""
    from pyroute2 import IPRoute

    found: set[IPv4Network] = set()
    with IPRoute() as ipr:
        ours = {link["index"] for link in ipr.get_links()
                if ownership.LINK_RE.match(link.get("IFLA_IFNAME") or "")}
        for route in ipr.get_routes(family=2, table=0):
            if route.get("RTA_OIF") in ours:
                continue
            dst = route.get("RTA_DST") or "0.0.0.0"
            found.add(IPv4Network(f"{dst}/{route['dst_len']}", strict=False))
        for addr in ipr.get_addr(family=2):
            if addr["index"] in ours:
                continue
            found.add(IPv4Network(f"{addr.get('IFA_ADDRESS')}/{addr['prefixlen']}", strict=False))
    return sorted(found)


# Every trial checks its pool; a sweep worker runs one or two trials a second, and a
# netlink dump of the host's routes costs 5-20 ms. The host's routes are reread when
# this old.
HOST_ROUTES_TTL_S = 2.0
_host_routes_cache: tuple[float, list[IPv4Network]] | None = None


def recent_host_routes() -> list[IPv4Network]:
    global _host_routes_cache
    now = time.monotonic()
    if _host_routes_cache is None or now - _host_routes_cache[0] > HOST_ROUTES_TTL_S:
        _host_routes_cache = (now, host_routes())
    return _host_routes_cache[1]


def check_pool(pool: IPv4Network, routes: list[IPv4Network] | None = None) -> None:
    clash = overlapping(pool, recent_host_routes() if routes is None else routes)
    if clash:
        listed = ", ".join(str(r) for r in clash[:3])
        raise PoolError(
            f"lab.pool: {pool} overlaps host route(s) {listed}; "
            f"pick a free range such as {DEFAULT_POOL} (see `ip route`)"
        )


def subnets(pool: IPv4Network) -> list[IPv4Network]:
    return list(pool.subnets(new_prefix=24))


@dataclass
class Lease:
    subnet: Subnet
    _fd: int
    path: Path | None = None
    run: Manifest | None = None

    def release(self) -> None:
        if self._fd < 0:
            return
        if self.path is None:
            os.close(self._fd)
        else:
            ownership.unlink_locked(self.path, self._fd)
            if self.run is not None:
                self.run.forget("lease", self.path)
        self._fd = -1


def lease_dir() -> Path:
    d = ownership.STATE_DIR / "leases"
    d.mkdir(parents=True, exist_ok=True)
    return d


def lease_path(net: IPv4Network) -> Path:
    return lease_dir() / f"{net.network_address}_{net.prefixlen}.lock"


def acquire(pool: IPv4Network, run: Manifest | None = None) -> Lease:
    """Lock a free /24 of the pool for this process (recorded in `run`'s manifest)."""
    candidates = subnets(pool)
    # Start at a random place so parallel workers rarely contend for the same file.
    start = random.randrange(len(candidates))
    for i in range(len(candidates)):
        net = candidates[(start + i) % len(candidates)]
        path = lease_path(net)
        if run is not None:
            run.record("lease", path)  # taking it may create the file
        fd = ownership.lock_file(path)
        if fd is None:
            if run is not None:
                run.forget("lease", path)  # another run holds it: its file, not ours
            continue
        if run is not None:
            run.prove("lease", path, inode=os.fstat(fd).st_ino)
        return Lease(Subnet(net), fd, path, run)
    raise PoolError(f"lab.pool: all {len(candidates)} /24s of {pool} are in use; widen the pool")
