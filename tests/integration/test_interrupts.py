"""Ctrl-C and SIGTERM at any point of a real `enirace run`, also a second one
during teardown: the lab always goes, verdict.json is always written, the
message says what really happened, and the exit code is 130.

Signals are sent when the trial's history.jsonl shows an event, not after a
fixed sleep, so each case hits the phase it names."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import ownership
from harness.lab import netns
from tests.integration.conftest import LATE_ENI, REPO

pytestmark = [pytest.mark.root]
ENIRACE = [sys.executable, "-m", "harness.cli.main"]
SIGINT, SIGTERM = signal.SIGINT, signal.SIGTERM


def _events(out: Path) -> tuple[list[dict], Path | None]:
    found = list(out.glob("*/history.jsonl"))
    if not found:
        return [], None
    events = []
    for line in found[0].read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # the line being written
            pass
    return events, found[0].parent


def _wait_for(proc: subprocess.Popen[str], out: Path, kind: str) -> list[dict]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events, _ = _events(out)
        if any(e["kind"] == kind for e in events):
            return events
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {kind}: {proc.communicate()}")
        time.sleep(0.001)
    proc.kill()
    raise AssertionError(f"no {kind} event within 30 s")


def _ip_netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


CASES = [
    # (signals, event the first is sent at, event the second is sent at)
    ((SIGINT,), "trial_start", None),  # while the lab is being built
    ((SIGTERM,), "sandbox_ready", None),
    ((SIGINT,), "runtime_ready", None),
    ((SIGINT, SIGINT), "init_start", "harness_error"),  # the second during teardown
    ((SIGINT, SIGINT), "invoke_end", "harness_error"),
    ((SIGTERM, SIGINT), "fault", "harness_error"),
    ((SIGINT, SIGTERM), "trial_start", "harness_error"),
]


@pytest.mark.parametrize("sigs,first_at,second_at", CASES,
                         ids=[f"{'+'.join(s.name for s in c[0])}@{c[1]}" for c in CASES])
def test_interrupt_tears_down_and_says_so(tmp_path, sigs, first_at, second_at):
    proc = subprocess.Popen(
        [*ENIRACE, "run", str(LATE_ENI), "--out", str(tmp_path), "--set", "function.handler=naive_session",
         "--set", "workload.invocations=200"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        events = _wait_for(proc, tmp_path, first_at)
        run_id = next(e["run"] for e in events if e["kind"] == "trial_start")
        proc.send_signal(sigs[0])
        if second_at is not None:
            _wait_for(proc, tmp_path, second_at)
            # Teardown has begun; the lab must still be there for this to test anything.
            sandbox_there = any(run_id in n and n.endswith("-sbx") for n in netns.list_names())
            proc.send_signal(sigs[1])
            assert sandbox_there, "teardown was over before the second signal was sent"
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    _, folder = _events(tmp_path)
    assert folder is not None
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not [n for n in _ip_netns_names() if run_id in n]
    assert not [d for d in (ownership.STATE_DIR / "sandboxes").glob(f"*{run_id}*")]
    cgroups = Path("/sys/fs/cgroup")
    assert not [*cgroups.glob(f"enirace/{run_id}-*"), *cgroups.glob(f"*/enirace/{run_id}-*")]
    verdict = json.loads((folder / "verdict.json").read_text())
    assert verdict["verdict"] == "harness_error"
    assert f"interrupted: the lab was torn down; the trial so far is in {folder}" in " ".join(err.split())
