"""The recovery point is computed once: the verdict's time to recovery and "from
invocation N", and the plugin's recovery_point, are the same numbers."""

from __future__ import annotations

from harness.checker.recovery import failures, recovery_point
from harness.checker.verdict import judge

DNS = {"error_type": "RuntimeError", "error_message": "Temporary failure in name resolution"}


def _history(statuses: list[str], reinit_at: int | None = None) -> list[dict]:
    events = [{"kind": "initial_state", "t_ms": 1.0, "eni": "absent", "impairs": True, "verified": True,
               "aspects": {"eni": True}},
              {"kind": "init_start", "t_ms": 10.0, "generation": 1, "phase": "init"},
              {"kind": "fault", "t_ms": 450.0, "fault": "attach_eni", "trigger": "init_start + 440ms",
               "verified": True, "impairs": False, "aspects": {"eni": False}}]
    for n, status in enumerate(statuses, 1):
        t = 200.0 * n
        end = {"kind": "invoke_end", "n": n, "t_ms": t + 30, "status": status, "reinit": n == reinit_at}
        if status != "ok":
            end.update(DNS)
        events += [{"kind": "invoke_start", "n": n, "t_ms": t}, end]
    return events


def test_the_verdict_and_the_point_agree():
    events = _history(["error", "error", "ok", "error", "ok", "ok"], reinit_at=5)
    v = judge(events)
    point = recovery_point(events, v.fault_cleared_ms)
    assert point is not None
    assert (point.invocation, point.reinit) == (5, True)
    assert point.after_network == 3  # invocations 3, 4 and 5 started after 450 ms
    assert v.time_to_recovery_ms == point.time_to_recovery_ms == 1030.0 - 450.0
    assert v.reason.endswith(f"recovered through a re-init from invocation 5, {1030 - 450} ms after the fault cleared")


def test_no_point_while_the_last_invocation_fails():
    events = _history(["ok", "error"])
    assert recovery_point(events, 450.0) is None
    assert judge(events).verdict == "stuck"


def test_without_a_cleared_fault_the_place_counts_from_the_first_invocation():
    point = recovery_point(_history(["error", "ok", "ok"]), None)
    assert point is not None and (point.invocation, point.after_network) == (2, 2)
    assert point.time_to_recovery_ms is None


def test_failures_are_classified_with_the_error_text():
    (failure,) = failures(_history(["ok", "error", "ok"]))
    assert (failure.phase, failure.error_class, failure.invocation) == ("invoke", "dns", 2)
    assert failure.text == "RuntimeError: Temporary failure in name resolution"
