"""Without CAP_NET_ADMIN/CAP_SYS_ADMIN the harness stops before touching anything."""

import os
import shutil
import subprocess
import sys

import pytest

from harness import ownership
from harness.lab import addressing, netns
from harness.scenario.pool import ALLOWED_POOLS
from tests.integration.conftest import LATE_ENI

pytestmark = [pytest.mark.root]


def made_by_others(before: list[str]) -> bool:
    """Every namespace that appeared meanwhile belongs to a run registered in the
    shared state directory: another test or lab on this machine, not the refused
    command, which was given a state directory of its own (so anything it had
    registered would be unknown here)."""
    known = set(ownership.run_ids())
    for name in set(netns.list_names()) - set(before):
        m = ownership.NETNS_RE.match(name)
        if m is None or m["run"] not in known:
            return False
    return True


def refused_env(tmp_path):
    return {**os.environ, "ENIRACE_STATE_DIR": str(tmp_path.parent / f"{tmp_path.name}-state")}
# Root, but with both capabilities dropped from the bounding set: what a container
# without --privileged, or a user without sudo, looks like to the harness.
UNPRIVILEGED = ["setpriv", "--bounding-set", "-net_admin,-sys_admin", "--inh-caps", "-net_admin,-sys_admin"]


@pytest.mark.parametrize("args", [["run", str(LATE_ENI)], ["demo"], ["cleanup"]])
def test_stops_with_one_line_before_touching_anything(args, tmp_path):
    before = netns.list_names()
    out = subprocess.run([*UNPRIVILEGED, sys.executable, "-m", "harness.cli.main", *args],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, env=refused_env(tmp_path))
    assert out.returncode == 2
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "CAP_NET_ADMIN" in lines[0] and "sudo" in lines[0]
    assert made_by_others(before)
    assert not list(tmp_path.iterdir())  # not even a trial folder


def _private_host_route() -> str | None:
    """A /24-or-larger network the host routes that a scenario may name as its pool
    (loopback and the like are refused before the overlap check)."""
    for route in addressing.host_routes():
        if route.prefixlen == 0:
            continue
        net = route if route.prefixlen <= 24 else route.supernet(new_prefix=24)
        if any(net.subnet_of(allowed) for allowed in ALLOWED_POOLS):
            return str(net)
    return None


def test_a_pool_overlapping_a_host_route_is_refused_before_anything_exists(tmp_path):
    pool = _private_host_route()
    if pool is None:
        pytest.skip("the host routes no private network to collide with")
    before = netns.list_names()
    out = subprocess.run([sys.executable, "-m", "harness.cli.main", "run", str(LATE_ENI), "--set",
                          f"lab.pool={pool}", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=60, env=refused_env(tmp_path))
    assert out.returncode == 2
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert str(LATE_ENI) in lines[0] and f"lab.pool: {pool} overlaps host route" in lines[0]
    assert made_by_others(before)
    assert not (tmp_path / "out").exists()


@pytest.mark.dotnet
def test_the_privilege_check_comes_before_a_dotnet_build(tmp_path):
    # A .NET function's preflight compiles the sources into the build cache: an
    # unprivileged run used to build (and, as a user whose cache was root's,
    # fail with a PermissionError traceback) before it was told it needs root.
    from harness.function import dotnet

    code = tmp_path / "cs"
    shutil.copytree(dotnet.SAMPLE_HANDLERS, code)
    (code / "Fresh.cs").write_text(f"// {tmp_path}: a source set no cache holds yet\n")
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    out = subprocess.run([*UNPRIVILEGED, sys.executable, "-m", "harness.cli.main", "run", str(LATE_ENI),
                          "--set", "function.runtime=dotnet", "--set", f"function.code={code}",
                          "--set", "function.handler=static_httpclient", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120, env=env)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "CAP_NET_ADMIN" in lines[0], lines
    assert not (cache / "enirace" / "dotnet").exists()  # nothing was built
