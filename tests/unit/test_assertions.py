"""assert_recovers / assert_healthy on recorded histories: what passes, what fails,
and that a failure message carries the timeline and the classified errors."""

from pathlib import Path

import pytest

from harness.checker.verdict import judge
from harness.plugin.assertions import (
    TrialAssertionError,
    assert_expected,
    assert_healthy,
    assert_recovers,
    assert_verdict,
    recovery_point,
)
from harness.plugin.outcome import TrialOutcome
from harness.scenario.model import Scenario
from harness.trial import TrialResult

DNS = ("RuntimeError", "svc.internal could not be resolved (gaierror: [Errno -3] Temporary failure in name resolution)")


def _invoke(n, t, ok=True, reinit=False, took=5.0):
    end = {"kind": "invoke_end", "n": n, "t_ms": t + took, "status": "ok" if ok else "error", "reinit": reinit,
           "duration_ms": took}
    if not ok:
        end.update(error_type=DNS[0], error_message=DNS[1])
    return [{"kind": "invoke_start", "n": n, "t_ms": t}, end]


def _history(*invokes, eni="absent", attach_at=500.0):
    events = [{"kind": "trial_start", "t_ms": 0.0, "subnet": "198.18.7.0/24"},
              {"kind": "initial_state", "t_ms": 1.0, "eni": eni, "impairs": eni == "absent", "verified": True},
              {"kind": "init_start", "t_ms": 10.0, "generation": 1, "phase": "init"},
              {"kind": "runtime_ready", "t_ms": 200.0, "generation": 1}]
    if attach_at is not None:
        events.append({"kind": "fault", "t_ms": attach_at, "fault": "attach_eni", "trigger": "init_start + 490ms",
                       "verified": True, "impairs": False})
    for inv in invokes:
        events += inv
    return events


def _outcome(events, tmp_path: Path, expect=("healthy", "recovered")) -> TrialOutcome:
    folder = tmp_path / "trial"
    folder.mkdir(exist_ok=True)
    (folder / "function.log").write_text("".join(f"[runtime-1] line {i}\n" for i in range(100)))
    scenario = Scenario.model_validate({"name": "late-eni-attach", "function": {"handler": "my_handler"},
                                        "expect": {"verdict": list(expect)}})
    return TrialOutcome(TrialResult("late-eni-attach-my_handler-abc123-1", scenario, judge(events), events,
                                    folder, []))


def test_a_handler_that_fails_until_the_eni_then_works_recovers(tmp_path):
    out = _outcome(_history(_invoke(1, 250, ok=False), _invoke(2, 450, ok=False), _invoke(3, 650)), tmp_path)
    assert out.verdict.verdict == "recovered"
    assert recovery_point(out).invocation == 3
    assert recovery_point(out).after_network == 1
    assert_recovers(out, within_invocations=1)
    assert_expected(out)


def test_an_invocation_in_flight_when_the_eni_came_counts_as_zero(tmp_path):
    out = _outcome(_history(_invoke(1, 250, took=400.0), _invoke(2, 700)), tmp_path)
    assert recovery_point(out).after_network == 0
    assert_recovers(out, within_invocations=0)


def test_needing_two_calls_after_the_eni_fails_within_one(tmp_path):
    out = _outcome(_history(_invoke(1, 250, ok=False), _invoke(2, 600, ok=False), _invoke(3, 800)), tmp_path)
    with pytest.raises(TrialAssertionError, match="first good invocation is 3, number 2 after the network"):
        assert_recovers(out, within_invocations=1)
    assert_recovers(out, within_invocations=2)


def test_time_to_recovery_is_checked_against_within_ms(tmp_path):
    out = _outcome(_history(_invoke(1, 250, ok=False), _invoke(2, 900)), tmp_path)
    assert out.verdict.time_to_recovery_ms == pytest.approx(405.0)
    with pytest.raises(TrialAssertionError, match="405 ms after the fault cleared; allowed within 100 ms"):
        assert_recovers(out, within_ms=100)
    assert_recovers(out, within_ms=1000)


def test_a_reinit_can_be_forbidden(tmp_path):
    out = _outcome(_history(_invoke(1, 250, ok=False), _invoke(2, 600, reinit=True)), tmp_path)
    assert_recovers(out)
    with pytest.raises(TrialAssertionError, match="only through a re-init"):
        assert_recovers(out, allow_reinit=False)


def test_stuck_fails_with_the_timeline_and_the_classified_errors(tmp_path):
    out = _outcome(_history(*(_invoke(n, 50 + 200 * n, ok=False) for n in range(1, 5))), tmp_path)
    with pytest.raises(TrialAssertionError) as err:
        assert_recovers(out, within_invocations=1)
    message = str(err.value)
    first = message.splitlines()[0]
    assert first == "my_handler under late-eni-attach: the handler did not recover: stuck"
    assert "attach_eni [init_start + 490ms]" in message  # a timeline row
    assert "verdict: STUCK" in message
    assert "classified errors (4 of 4 invocations failed" in message
    assert "invoke 1-4" in message and "[dns]" in message  # identical errors are folded
    assert f"trial folder: {out.folder}" in message
    assert err.value.outcome is out


def test_a_fault_that_never_armed_is_not_a_pass(tmp_path):
    events = _history(_invoke(1, 250))
    events[4]["verified"] = False
    out = _outcome(events, tmp_path)
    with pytest.raises(TrialAssertionError, match="fault_not_armed: the fault never took effect"):
        assert_recovers(out)


def test_assert_healthy(tmp_path):
    assert_healthy(_outcome(_history(_invoke(1, 250), eni="present", attach_at=None), tmp_path))
    exposed = _outcome(_history(_invoke(1, 250, ok=False), _invoke(2, 600)), tmp_path)
    with pytest.raises(TrialAssertionError, match="expected a healthy trial, got recovered"):
        assert_healthy(exposed)


def test_assert_verdict_and_expected(tmp_path):
    stuck = _outcome(_history(_invoke(1, 250, ok=False), _invoke(2, 600, ok=False)), tmp_path)
    assert_verdict(stuck, "stuck")
    with pytest.raises(TrialAssertionError, match="expects healthy or recovered, got stuck"):
        assert_expected(stuck)
    with pytest.raises(ValueError):
        assert_verdict(stuck, "survived")


def test_the_function_log_tail_and_junit_properties(tmp_path):
    out = _outcome(_history(_invoke(1, 250)), tmp_path)
    assert out.function_log_tail(3).splitlines() == ["[runtime-1] line 97", "[runtime-1] line 98",
                                                     "[runtime-1] line 99"]
    props = dict(out.junit_properties())
    assert props["enirace_verdict"] == "recovered"
    assert props["enirace_folder"] == str(out.folder)
    assert "invoke 1" in props["enirace_timeline"]
    assert repr(out) == "<TrialOutcome late-eni-attach-my_handler-abc123-1: recovered>"
