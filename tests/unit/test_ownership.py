import os
import signal
import subprocess
import sys
import time

import pytest

from harness import ownership


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(ownership, "STATE_DIR", tmp_path)
    return tmp_path


def test_a_registered_run_is_alive_until_closed(state_dir):
    run = ownership.Run.register("t")
    assert ownership.RUN_ID_RE.match(run.run_id)
    assert ownership.is_alive(run.run_id)
    run.close()
    assert not ownership.is_alive(run.run_id)
    assert not list((state_dir / "runs").iterdir())


def test_a_run_killed_with_sigkill_is_dead(state_dir):
    code = ("import sys, time; from harness import ownership; from pathlib import Path;"
            f"ownership.STATE_DIR = Path({str(state_dir)!r}); r = ownership.Run.register('victim');"
            "print(r.run_id, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    assert ownership.is_alive(run_id)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while ownership.is_alive(run_id) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not ownership.is_alive(run_id)


def test_names_carry_prefix_and_run_id(state_dir):
    with ownership.Run.register() as run:
        ns = run.netns_name(3, "vpc")
        assert ns == f"enr-{run.run_id}-3-vpc"
        assert ownership.run_of_netns(ns) == run.run_id
        assert len(run.link_name(42, "e12")) <= 15
    assert ownership.run_of_netns("enr-zzzzzz-1-vpc") is None
    assert ownership.run_of_netns("myns") is None
