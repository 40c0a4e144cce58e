"""kill -9 of a sweep and its workers: the next `enirace cleanup` removes what they
left, and nothing else."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness import cleanup, ownership
from harness.lab import netns
from tests.integration.conftest import LATE_ENI, REPO, host_snapshot

pytestmark = [pytest.mark.root]


def _runs_of_session(sid: int) -> set[str]:
    """Run ids registered by processes of session `sid` (the sweep and its workers), so
    that runs of other suites on the machine do not count."""
    found = set()
    for f in ownership.runs_dir().glob("*.lock"):
        try:
            if os.getsid(json.loads(f.read_text())["pid"]) == sid:
                found.add(f.stem)
        except (OSError, ValueError, KeyError):
            continue
    return found


def test_kill_9_of_a_sweep_with_workers_is_cleaned_up(tmp_path, run):
    live = run.netns_name(1, "vpc")  # a live run's namespace must survive cleanup
    netns.create_owned(run, live)
    before = host_snapshot()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "sweep", str(LATE_ENI), "--axis",
         "function.handler=naive_cached,resilient", "--axis", "schedule[0].at.offset=0ms..800ms/100ms",
         "--workers", "2", "--controls", "0", "--out", str(tmp_path / "sweep"), "--no-report"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        sweep_runs: set[str] = set()
        while time.monotonic() < deadline:
            sweep_runs |= _runs_of_session(proc.pid)
            mine = [n for n in netns.list_names() if ownership.run_of_netns(n) in sweep_runs]
            if len(mine) >= 4:  # both workers are inside a trial
                break
            time.sleep(0.05)
        else:
            pytest.fail("the sweep's workers never built their labs")
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, like a killed CI job
        proc.wait()
        dead = [n for n in netns.list_names() if ownership.run_of_netns(n) in sweep_runs]
        assert dead

        time.sleep(0.2)  # the kernel drops the dead processes' locks as it reaps them
        report = cleanup.cleanup()

        assert not [n for n in dead if netns.exists(n)], report
        assert not [r for r in sweep_runs if ownership.manifest_path(r).exists()], report
        assert netns.exists(live) and f"netns {live}" in report.kept_live
        assert host_snapshot() == before
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        netns.remove_owned(run, live)
