"""The host's namespace is the same after what SnapStart and fleets do inside the
namespaces enirace made: a restore onto a new ENI address with its flows dropped and
the frozen sandbox's egress rule (an xt_recent list), a CRIU restore (the old
addresses lent to the sandbox's lo behind an OUTPUT drop, arp_ignore switched), and a
fleet behind a queue (an ENI per environment on one vpc bridge, moto on loopback).
Each of those commands names the sandbox; a slip that ran one in the host would show
here: links, addresses, routes, rules, qdiscs, nft and iptables rules, resolv.conf,
and the sysctls and xt_recent lists those pieces touch."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.fleet.runner import run_mitigation
from harness.ownership import Run
from harness.scenario import model as sc
from harness.trial import run_one_trial
from tests.integration.conftest import REPO, host_snapshot
from tests.integration.test_fleet import _scenario

pytestmark = pytest.mark.root

SNAPSTART = REPO / "scenarios" / "snapstart-restore.yaml"


def _host() -> dict[str, object]:
    conf = Path("/proc/sys/net/ipv4/conf")
    recent = Path("/proc/net/xt_recent")
    return {**host_snapshot(),
            "arp_ignore": {d.name: (d / "arp_ignore").read_text() for d in sorted(conf.iterdir())},
            "xt_recent": sorted(p.name for p in recent.iterdir()) if recent.is_dir() else []}


def _snapstart_trial(run: Run, tmp_path: Path, *overrides: str) -> None:
    scenario = sc.load(SNAPSTART, ["function.handler=snapstart_pool", "workload.invocations=2", *overrides])
    result = run_one_trial(scenario, run, tmp_path, capture=False)
    assert [e["kind"] for e in result.events if e["kind"] == "restore"] == ["restore"]


def test_a_snapstart_restore_leaves_the_host_unchanged(run: Run, tmp_path: Path) -> None:
    before = _host()
    _snapstart_trial(run, tmp_path)
    assert _host() == before


@pytest.mark.criu
def test_a_criu_restore_leaves_the_host_unchanged(run: Run, tmp_path: Path) -> None:
    before = _host()
    _snapstart_trial(run, tmp_path, "snapstart.mode=criu")
    assert _host() == before


def test_a_fleet_behind_a_queue_leaves_the_host_unchanged(run: Run, tmp_path: Path) -> None:
    before = _host()
    result = run_mitigation(_scenario({"visibility_timeout": "1s", "batch_size": 3}), "queue", run, tmp_path)
    assert result.account.met_race >= 1 and result.account.lost == 0, result.account
    assert _host() == before
