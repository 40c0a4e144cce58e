"""The lab's address pool as a scenario states it (`lab.pool`): parsed and checked
here, before any namespace exists; harness.lab.addressing leases /24s from it."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Network

from harness.errors import PoolError

DEFAULT_POOL = "198.18.0.0/15"
ALLOWED_RULE = "198.18.0.0/15 (benchmarking), 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
# Private or benchmarking (RFC 1918, RFC 2544) ranges only.
ALLOWED_POOLS = tuple(IPv4Network(n) for n in ("198.18.0.0/15", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
SPECIAL_POOLS = tuple((IPv4Network(n), why) for n, why in (
    ("0.0.0.0/8", "unspecified ('this network')"), ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved")))


def parse_pool(text: str) -> IPv4Network:
    try:
        pool = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise PoolError(f"lab.pool: {text!r} is not a network ({exc}); use e.g. {DEFAULT_POOL}") from None
    if not isinstance(pool, IPv4Network):
        raise PoolError(f"lab.pool: {text} is IPv6; the lab needs an IPv4 pool such as {DEFAULT_POOL}")
    if pool.prefixlen > 24:
        raise PoolError(f"lab.pool: {text} is smaller than a /24; each trial needs a whole /24")
    return pool


def private_problem(pool: IPv4Network) -> str | None:
    """Why `pool` may not be a lab pool, or None if it may."""
    for special, why in SPECIAL_POOLS:
        if pool.overlaps(special):
            return f"{pool} overlaps {special} ({why}); use a range inside {ALLOWED_RULE}"
    if not any(pool.subnet_of(net) for net in ALLOWED_POOLS):
        return f"{pool} is not a private range; use a range inside {ALLOWED_RULE}"
    return None
