"""late-eni-attach for real: namespaces, the real awslambdaric, a real resolver."""

import json

import pytest

from harness.history import queries as history
from tests.integration.conftest import LATE_ENI, REPO

pytestmark = [pytest.mark.root]


def test_naive_cached_is_stuck_on_a_dns_failure(trial):
    result = trial(LATE_ENI, "function.handler=naive_cached")
    v = result.verdict
    assert v.verdict == "stuck", v.reason
    assert v.failed_invocations == v.invocations == 5
    assert v.error_classes == ["dns"]
    assert "Temporary failure in name resolution" in v.failures[-1].text
    assert result.expected is False  # the scenario expects survival


def test_resilient_recovers(trial):
    result = trial(LATE_ENI, "function.handler=resilient")
    v = result.verdict
    assert v.verdict == "recovered", v.reason
    assert v.exposed and not v.reinit_needed
    assert v.time_to_recovery_ms is not None
    assert result.expected is True
    ok = [e for e in result.events if e["kind"] == "invoke_end"]
    assert all(e["status"] == "ok" for e in ok)
    assert '"service": "svc.internal"' in ok[-1]["body"]


def test_naive_crash_recovers_through_a_reinit(trial):
    result = trial(LATE_ENI, "function.handler=naive_crash")
    v = result.verdict
    assert v.verdict == "recovered", v.reason
    assert v.reinit_needed
    assert v.init_errors >= 1
    starts = [e for e in result.events if e["kind"] == "init_start"]
    assert len(starts) >= 2 and starts[0]["phase"] == "init"
    assert {f.error_class for f in v.failures} == {"dns"}


def test_eni_present_is_healthy(trial):
    result = trial(LATE_ENI, "lab.eni=present", "schedule=[]", "function.handler=naive_cached")
    assert result.verdict.verdict == "healthy", result.verdict.reason
    assert not result.verdict.exposed


def test_the_fault_fires_on_time_and_is_verified(trial):
    result = trial(LATE_ENI, "function.handler=naive_session")
    fault = next(e for e in result.events if e["kind"] == "fault")
    init = next(e for e in result.events if e["kind"] == "init_start")
    assert fault["verified"] is True
    assert fault["planned_ms"] == pytest.approx(init["t_ms"] + 500, abs=0.01)
    assert fault["state"]["default_via"].endswith(".1")


def test_trial_folder(trial):
    result = trial(LATE_ENI, "function.handler=naive_cached")
    names = {p.name for p in result.folder.iterdir()}
    assert {"scenario.yaml", "history.jsonl", "function.log", "verdict.json"} <= names
    events = history.load(result.folder / "history.jsonl")
    kinds = [e["kind"] for e in events]
    for kind in ("trial_start", "sandbox_ready", "init_start", "runtime_ready", "invoke_start",
                 "invoke_end", "fault"):
        assert kind in kinds
    assert json.loads((result.folder / "verdict.json").read_text())["verdict"] == "stuck"
    log = (result.folder / "function.log").read_text()
    assert "START RequestId:" in log


def test_lazy_init_like_the_rie(trial):
    result = trial(LATE_ENI, "function.handler=naive_crash", "workload.init=lazy",
                   "schedule[0].at=trial_start + 1500ms")
    starts = [e for e in result.events if e["kind"] == "init_start"]
    # RIE semantics: the first invoke inits, a failed init is retried once in the same invoke.
    assert [s["phase"] for s in starts[:2]] == ["invoke", "invoke"]
    first = next(e for e in result.events if e["kind"] == "invoke_end" and e["n"] == 1)
    assert first["status"] == "init_error"
    assert first["init_starts"] == [1, 2]


def test_any_handler_module_path(trial, tmp_path):
    code = tmp_path / "mycode"
    code.mkdir()
    (code / "app.py").write_text("def main(event, context):\n    return {'echo': event}\n")
    result = trial(LATE_ENI, f"function.code={code}", "function.handler=app.main",
                   "workload.payload={x: 1}", "workload.invocations=2")
    end = [e for e in result.events if e["kind"] == "invoke_end"][-1]
    assert json.loads(end["body"]) == {"echo": {"x": 1}}
    assert REPO not in code.parents
