"""Freeze and thaw on the docker backend: the function's container is paused
(`docker pause`, the engine's cgroup freezer) in each gap and unpaused before
/next is answered; kill -9 of a run while it is paused, then `enirace cleanup`,
leaves no paused container (nor any other of the run's containers)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from harness import cleanup
from harness.backends.docker import engine as de
from harness.history import schema
from tests.docker.conftest import REPO, owned

pytestmark = [pytest.mark.root, pytest.mark.docker]


def _kinds(events, *kinds):
    return [e for e in events if e["kind"] in kinds]


def test_each_gap_pauses_the_container_verified(trial):
    result = trial("schedule=[]", "lab.eni=present", "workload.gaps=[200ms, 500ms]")
    events = result.events
    freezes, thaws = _kinds(events, schema.FREEZE), _kinds(events, schema.THAW)
    assert len(_kinds(events, schema.INVOKE_START)) == 3
    assert len(freezes) >= 3 and all(e["verified"] for e in freezes + thaws)
    assert {e["method"] for e in freezes + thaws} == {"docker_pause"}
    assert {e["state"] for e in freezes} == {"paused"} and {e["state"] for e in thaws} == {"running"}
    for start in _kinds(events, schema.INVOKE_START):
        before = [e for e in events if e["t_ms"] <= start["t_ms"] and e["kind"] in (schema.FREEZE, schema.THAW)]
        after = next(e for e in events if e["t_ms"] >= start["t_ms"] and e["kind"] == schema.THAW)
        assert before[-1]["kind"] == schema.FREEZE and after["reason"] == "invoke"
    assert max(e["frozen_ms"] for e in thaws) >= 400
    assert result.verdict.verdict == "healthy", result.verdict.reason


def _paused(run_id: str) -> list[str]:
    api = de.client().api
    return [c["Names"][0] for c in api.containers(all=True, filters=de.owned_filter(run_id))
            if api.inspect_container(c["Id"])["State"].get("Paused")]


def _frozen_history(out) -> tuple[str, str] | None:
    """(run id, history text) once the run has frozen after its first invocation."""
    for path in out.glob("*/history.jsonl"):
        text = path.read_text()
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        ended = [e for e in lines if e["kind"] == schema.INVOKE_END]
        if ended and any(e["kind"] == schema.FREEZE and e["t_ms"] >= ended[0]["t_ms"] - 5 for e in lines):
            start = next(e for e in lines if e["kind"] == schema.TRIAL_START)
            return start["run"], text
    return None


def test_kill_9_while_paused_then_cleanup_leaves_no_paused_container(tmp_path, images, run):
    scenario = tmp_path / "paused.yaml"
    scenario.write_text("name: paused\nworkload: {gaps: [60s]}\n")
    victim = subprocess.Popen([sys.executable, "-m", "harness.cli.main", "run", str(scenario), "--out",
                               str(tmp_path / "out"), "--backend", "docker"], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        found = None
        while time.monotonic() < deadline and found is None:
            assert victim.poll() is None, victim.communicate()
            found = _frozen_history(tmp_path / "out")
            time.sleep(0.1)
        assert found is not None, "the run never froze after its first invocation"
        run_id = found[0]
        deadline = time.monotonic() + 10
        while not _paused(run_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _paused(run_id), "the function's container is not paused in the gap"
        victim.kill()
        victim.wait(10)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)
    report = cleanup.cleanup()
    assert _paused(run_id) == [], report.removed
    assert owned(run_id) == ([], []), report.removed
