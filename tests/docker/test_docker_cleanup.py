"""Labelled cleanup: a run killed with SIGKILL leaves containers, a docker network and
namespaces; `cleanup` removes them, and never a live run's. Plus the host is untouched."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from harness import cleanup, ownership
from harness.lab import netns
from tests.docker.conftest import LATE_ENI, REPO, owned
from tests.integration.conftest import host_snapshot

pytestmark = [pytest.mark.root, pytest.mark.docker]


def _run_id_of(pid: int) -> str | None:
    for f in ownership.runs_dir().glob("*.lock"):
        try:
            if f'"pid": {pid},' in f.read_text():
                return f.stem
        except FileNotFoundError:
            continue
    return None


def test_kill_9_leftovers_are_removed_by_label(tmp_path, images, run):
    victim = subprocess.Popen(
        [sys.executable, "-m", "harness.cli.main", "run", str(LATE_ENI), "--out", str(tmp_path), "--backend", "docker",
         "--eni-mode", "network", "--set", "function.handler=naive_session", "--set", "workload.invocations=500"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        run_id = None
        while time.monotonic() < deadline:
            run_id = run_id or _run_id_of(victim.pid)
            if run_id and any("-fn" in c for c in owned(run_id)[0]):
                break
            assert victim.poll() is None, victim.communicate()
            time.sleep(0.1)
        else:
            raise AssertionError("the run never started its function container")
        victim.kill()
        victim.wait()
        containers, networks = owned(run_id)
        assert len(containers) >= 3 and networks  # sandbox, vpc, function; the lab network

        report = cleanup.cleanup()

        assert {f"container {c.lstrip('/')}" for c in containers} <= set(report.removed)
        assert owned(run_id) == ([], [])
        assert not [n for n in netns.list_names() if run_id in n]
        assert not any(run.run_id in item for item in report.removed)  # the live run is kept
    finally:
        victim.kill()


_KILLED_WHILE_CREATING = """
import os, signal, sys
from harness.backends.docker import cleanup as dc, engine as de
from harness.ownership import Run
api = de.client().api
create = api.create_container
def create_then_die(**kw):
    create(**kw)  # the engine made it; the run dies before it hears the id
    os.kill(os.getpid(), signal.SIGKILL)
api.create_container = create_then_die
run = Run.register("killed-while-creating")
print(run.run_id, flush=True)
dc.create_container(run, image=sys.argv[1], name=f"enr-{run.run_id}-1-sbx-fn1", entrypoint=["sleep", "infinity"],
                    labels=de.labels(run.run_id, "function"), detach=True)
"""


def test_container_created_as_the_run_dies_is_removed(images, run):
    """kill -9 between the engine creating a container and the run recording its id."""
    child = subprocess.run([sys.executable, "-c", _KILLED_WHILE_CREATING, images["python"]], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == -9, child.stderr
    run_id = child.stdout.split()[0]
    assert owned(run_id)[0], "the engine did not create the container"

    report = cleanup.cleanup()

    assert f"container enr-{run_id}-1-sbx-fn1" in report.removed, report
    assert owned(run_id) == ([], [])


def test_host_namespace_unchanged(trial):
    before = host_snapshot()
    trial("function.handler=naive_cached")
    assert host_snapshot() == before
