import os
import subprocess
import sys
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


def test_a_released_lease_leaves_no_file_and_a_run_forgets_it(state_dir):
    pool = IPv4Network("198.18.0.0/23")
    with ownership.Run.register() as run:
        lease = addressing.acquire(pool, run)
        assert lease.path.exists()
        assert [(o.kind, o.proof) for o in run.owned()] == [("lease", {"inode": lease.path.stat().st_ino})]
        lease.release()
        assert not lease.path.exists()
        assert run.owned() == []
    assert not list((state_dir / "leases").iterdir())


def test_a_lease_unlinked_between_open_and_flock_is_not_taken_on_the_dead_inode(state_dir, monkeypatch):
    """The flock protocol: a release unlinks the file while holding the lock, so a
    taker that opened the old file before that and locks it afterwards holds a lock
    on an inode no path names; it must notice (fstat vs stat) and take the new file."""
    pool = IPv4Network("198.18.0.0/24")
    holder = addressing.acquire(pool)
    real_flock = ownership.fcntl.flock
    released = []

    def flock_after_release(fd, op):
        if not released:
            released.append(True)
            holder.release()  # between the taker's open and its flock
        return real_flock(fd, op)

    monkeypatch.setattr(ownership.fcntl, "flock", flock_after_release)
    taker = addressing.acquire(pool)
    monkeypatch.setattr(ownership.fcntl, "flock", real_flock)
    assert released
    assert os.fstat(taker._fd).st_ino == taker.path.stat().st_ino
    # ... so a third taker really is refused while the second holds it
    with pytest.raises(PoolError):
        addressing.acquire(pool)
    taker.release()


def test_cleanup_removes_the_lease_file_of_a_run_killed_with_sigkill(state_dir):
    from harness import cleanup

    code = ("import time; from pathlib import Path; from ipaddress import IPv4Network;"
            "from harness import ownership; from harness.lab import addressing;"
            f"ownership.STATE_DIR = Path({str(state_dir)!r}); r = ownership.Run.register('victim');"
            "lease = addressing.acquire(IPv4Network('198.18.0.0/24'), r);"
            "print(r.run_id, lease.path, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    run_id, path = proc.stdout.readline().split()
    report = cleanup.cleanup()
    assert f"lease {path}" in report.kept_live and os.path.exists(path)  # alive: kept
    proc.kill()
    proc.wait()
    report = cleanup.cleanup()
    assert f"lease {path}" in report.removed
    assert not os.path.exists(path)
    assert not list(ownership.runs_dir().iterdir())  # run file and manifest gone too
