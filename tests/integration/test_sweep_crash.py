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
from tests.integration.conftest import LATE_ENI, REPO, host_snapshot, runs_of_session

pytestmark = [pytest.mark.root]



def test_kill_9_of_a_sweep_with_workers_is_cleaned_up(tmp_path, run):
    live = run.netns_name(1, "vpc")  # a live run's namespace must survive cleanup
    netns.create_owned(run, live)
    before = host_snapshot()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli.main", "sweep", str(LATE_ENI), "--axis",
         "function.handler=naive_cached,resilient", "--axis", "schedule[0].at.offset=0ms..800ms/100ms",
         "--workers", "2", "--controls", "0", "--out", str(tmp_path / "sweep"), "--no-report"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        sweep_runs: set[str] = set()
        while time.monotonic() < deadline:
            sweep_runs |= runs_of_session(proc.pid)
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


def _worker_in_a_trial(sweep_pid: int, own_run: str) -> tuple[int, str] | None:
    """(pid, run id) of a worker of the sweep `sweep_pid` whose lab is up."""

    for name in netns.list_names():
        run_id = ownership.run_of_netns(name)
        if run_id in (None, own_run):
            continue
        try:
            pid = json.loads((ownership.runs_dir() / f"{run_id}.lock").read_text())["pid"]
            stat = open(f"/proc/{pid}/stat").read()
        except (OSError, ValueError, KeyError):
            continue
        forkserver = int(stat.rsplit(")", 1)[1].split()[1])  # a worker's parent is the sweep's forkserver
        try:
            grand = int(open(f"/proc/{forkserver}/stat").read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if grand == sweep_pid:
            return pid, run_id
    return None


def test_kill_9_of_one_worker_is_retried_on_resume(tmp_path, run):
    from harness.sweep import results as res

    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "harness.cli.main", "sweep", str(LATE_ENI), "--axis", "function.handler=resilient",
            "--axis", "schedule[0].at.offset=0ms..600ms/200ms", "--workers", "2", "--repeats", "1",
            "--controls", "0", "--out", str(out), "--no-report"]
    env = dict(os.environ, COLUMNS="250")  # rich wraps at 80 columns on a pipe
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        victim = None
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            victim = _worker_in_a_trial(proc.pid, run.run_id)
            time.sleep(0.02)
        assert victim is not None, "no worker of the sweep ever built a lab"
        pid, victim_run = victim
        os.kill(pid, signal.SIGKILL)
        printed, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, printed
    assert "1 trial(s) lost their worker process" in printed and "run the same command again" in printed
    records = list(res.iter_results(out))
    died = [r for r in records if r["verdict"]["verdict"] == res.WORKER_DIED]
    assert len(died) == 1 and died[0]["worker"] == victim_run and "SIGKILL" in died[0]["verdict"]["reason"]
    assert len(records) == 4  # the sweep went on: the other three trials finished
    assert not [n for n in netns.list_names() if f"-{victim_run}-" in n]  # the dead worker's lab was removed

    again = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming: 3 trials already in results.jsonl, 1 to go" in again.stdout
    final = list(res.iter_results(out, final_only=True))
    assert sorted(r["trial"] for r in final) == sorted(r["trial"] for r in records)
    retried = next(r for r in final if r["trial"] == died[0]["trial"])
    # A real verdict of the resilient handler; at offset 0 the attach can land before its
    # first call (not_exercised), which depends on how fast the init ran, not on the resume.
    assert retried["verdict"]["verdict"] in ("recovered", "healthy", "not_exercised"), retried["verdict"]
    assert res.lost_to_dead_workers(out) == []
