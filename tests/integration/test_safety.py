"""The host stays untouched, teardown happens on every exit path, and cleanup
removes a dead run's leftovers but never a live run's or a foreign object."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import cleanup, ownership
from harness.lab import netns
from tests.integration.conftest import LATE_ENI, REPO, host_snapshot

pytestmark = [pytest.mark.root]
ENIRACE = [sys.executable, "-m", "harness.cli.main"]


def test_host_namespace_unchanged_after_trials(trial):
    before = host_snapshot()
    trial(LATE_ENI, "function.handler=naive_cached")
    trial(LATE_ENI, "function.handler=naive_crash")
    trial(LATE_ENI, "lab.eni=present", "schedule=[]")
    assert host_snapshot() == before


def _start_run(tmp_path: Path, handler: str = "naive_session", *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ENIRACE, "run", str(LATE_ENI), "--out", str(tmp_path), "--set", f"function.handler={handler}",
         "--set", "workload.invocations=200", *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _namespaces_of(pid: int) -> list[str]:
    """Namespaces of the run registered by process `pid`."""
    runs = [f.stem for f in ownership.runs_dir().glob("*.lock")
            if f'"pid": {pid},' in f.read_text()]
    return [n for n in netns.list_names() if any(r in n for r in runs)]


def _wait_for_lab(proc: subprocess.Popen[str]) -> list[str]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = _namespaces_of(proc.pid)
        if len(found) == 2:
            # The runtime is up once a process lives in the sandbox.
            sbx = next(n for n in found if n.endswith("-sbx"))
            if netns.pids_in(sbx):
                return found
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the run never built its lab: {proc.communicate()}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_tear_the_lab_down(tmp_path, sig):
    before = host_snapshot()
    proc = _start_run(tmp_path)
    names = _wait_for_lab(proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not [n for n in names if netns.exists(n)]
    assert not any(netns.etc_dir(n).exists() for n in names)
    assert host_snapshot() == before


def _run_id_of(pid: int) -> str:
    return next(f.stem for f in ownership.runs_dir().glob("*.lock") if f'"pid": {pid},' in f.read_text())


def test_kill_9_leftovers_go_with_cleanup_but_live_and_foreign_objects_stay(tmp_path, run):
    foreign = f"zz-foreign-{os.getpid()}"
    live = run.netns_name(1, "vpc")
    netns.create(foreign)
    netns.create_owned(run, live)  # recorded in this (live) test run's manifest
    victim = _start_run(tmp_path)
    try:
        dead = _wait_for_lab(victim)
        dead_run = _run_id_of(victim.pid)
        owned = ownership.read_manifest(dead_run)
        sandbox = next(n for n in dead if n.endswith("-sbx"))
        runtime_pids = netns.pids_in(sandbox)
        victim.kill()  # SIGKILL: no finally block runs
        victim.wait()
        assert all(netns.exists(n) for n in dead)
        leases = [Path(o.ident) for o in owned if o.kind == "lease"]
        dirs = [Path(o.ident) for o in owned if o.kind == "dir"]
        assert leases and all(p.exists() for p in leases)
        assert dirs and all(p.is_dir() for p in dirs)  # the sandbox's /etc overlay

        report = cleanup.cleanup()

        assert {f"netns {n}" for n in dead} <= set(report.removed)
        assert not [n for n in dead if netns.exists(n)]
        assert not any(netns.etc_dir(n).exists() for n in dead)
        assert not [p for p in leases + dirs if p.exists()], report
        assert not ownership.manifest_path(dead_run).exists()
        assert not (ownership.runs_dir() / f"{dead_run}.lock").exists()
        assert not any(Path(f"/proc/{pid}").exists() and
                       Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z" for pid in runtime_pids)
        assert netns.exists(live) and f"netns {live}" in report.kept_live
        assert netns.exists(foreign)
    finally:
        victim.kill()
        netns.remove_owned(run, live)
        netns.remove(foreign)


def test_cleanup_cli_reports_nothing_when_clean():
    out = subprocess.run([*ENIRACE, "cleanup", "--dry-run"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0
    assert "would remove netns" not in out.stdout


def test_cli_run_exit_codes(tmp_path):
    ok = subprocess.run([*ENIRACE, "run", str(LATE_ENI), "--out", str(tmp_path), "--set",
                         "function.handler=resilient"], cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "verdict: ABSORBED" in ok.stdout  # recovered, with no invocation failed
    stuck = subprocess.run([*ENIRACE, "run", str(LATE_ENI), "--out", str(tmp_path), "--set",
                            "function.handler=naive_cached"], cwd=REPO, capture_output=True, text=True)
    assert stuck.returncode == 1
    assert "verdict: STUCK" in stuck.stdout
    assert "Temporary failure in name resolution" in stuck.stdout
