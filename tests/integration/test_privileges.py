"""Without CAP_NET_ADMIN/CAP_SYS_ADMIN the harness stops before touching anything."""

import subprocess
import sys

import pytest

from harness.lab import netns
from tests.integration.conftest import LATE_ENI

pytestmark = [pytest.mark.root]
# Root, but with both capabilities dropped from the bounding set: what a container
# without --privileged, or a user without sudo, looks like to the harness.
UNPRIVILEGED = ["setpriv", "--bounding-set", "-net_admin,-sys_admin", "--inh-caps", "-net_admin,-sys_admin"]


@pytest.mark.parametrize("args", [["run", str(LATE_ENI)], ["demo"], ["cleanup"]])
def test_stops_with_one_line_before_touching_anything(args, tmp_path):
    before = netns.list_names()
    out = subprocess.run([*UNPRIVILEGED, sys.executable, "-m", "harness.cli", *args],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "CAP_NET_ADMIN" in lines[0] and "sudo" in lines[0]
    assert netns.list_names() == before
    assert not list(tmp_path.iterdir())  # not even a trial folder


def test_a_pool_overlapping_a_host_route_is_refused_before_anything_exists(tmp_path):
    before = netns.list_names()
    out = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(LATE_ENI), "--set",
                          "lab.pool=127.0.0.0/16", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert str(LATE_ENI) in lines[0] and "lab.pool: 127.0.0.0/16 overlaps host route" in lines[0]
    assert netns.list_names() == before
    assert not (tmp_path / "out").exists()
