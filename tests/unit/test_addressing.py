from ipaddress import IPv4Network

import pytest

from harness import ownership
from harness.errors import PoolError
from harness.lab import addressing


def test_subnet_roles():
    s = addressing.Subnet(IPv4Network("198.18.7.0/24"))
    assert [str(a) for a in (s.gateway, s.resolver, s.service, s.eni(0), s.eni(1))] == [
        "198.18.7.1", "198.18.7.2", "198.18.7.10", "198.18.7.100", "198.18.7.101"]


def test_default_pool_has_512_slash24s():
    assert len(addressing.subnets(addressing.parse_pool(addressing.DEFAULT_POOL))) == 512


@pytest.mark.parametrize("text,words", [("198.18.0.0/25", "smaller than a /24"),
                                        ("fd00::/64", "IPv6"), ("198.18.0.1/15", "not a network")])
def test_bad_pools(text, words):
    with pytest.raises(PoolError, match=words):
        addressing.parse_pool(text)


def test_overlap_ignores_the_default_route():
    pool = IPv4Network("198.18.0.0/15")
    routes = [IPv4Network("0.0.0.0/0"), IPv4Network("10.0.0.0/8"), IPv4Network("198.19.4.0/24")]
    assert addressing.overlapping(pool, routes) == [IPv4Network("198.19.4.0/24")]


def test_overlapping_pool_is_refused_with_the_route_named():
    with pytest.raises(PoolError, match=r"lab.pool: 10.0.0.0/16 overlaps host route\(s\) 10.0.0.0/8"):
        addressing.check_pool(IPv4Network("10.0.0.0/16"), [IPv4Network("10.0.0.0/8")])


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(ownership, "STATE_DIR", tmp_path)
    return tmp_path


def test_leases_never_share_a_subnet_and_free_on_release(state_dir):
    pool = IPv4Network("198.18.0.0/22")  # four /24s
    leases = [addressing.acquire(pool) for _ in range(4)]
    assert len({lease.subnet.network for lease in leases}) == 4
    with pytest.raises(PoolError, match="all 4 /24s"):
        addressing.acquire(pool)
    freed = leases[2].subnet.network
    leases[2].release()
    assert addressing.acquire(pool).subnet.network == freed
