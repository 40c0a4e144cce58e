"""The checker is a pure function of the history: feed it histories, read verdicts."""

import pytest

from harness.checker.classify import classify
from harness.checker.verdict import ABSORBED, judge, shown
from harness.checker.windows import impaired_windows

DNS_PY = "RuntimeError: svc.internal could not be resolved (gaierror: [Errno -3] Temporary failure in name resolution)"
DNS_NET = "HttpRequestException: Resource temporarily unavailable (svc.internal:8080)"


@pytest.mark.parametrize("text,phase,cls", [
    (DNS_PY, "invoke", "dns"),
    (DNS_NET, "invoke", "dns"),
    ("ConnectionError: ... NameResolutionError(... Failed to resolve 'svc.internal')", "init", "dns"),
    ("ConnectionError: [Errno 101] Network is unreachable", "invoke", "connect"),
    ("ConnectionRefusedError: [Errno 111] Connection refused", "invoke", "connect"),
    ("Timeout: Task timed out after 3.00 seconds", "invoke", "timeout"),
    ("ReadTimeout: HTTPConnectionPool read timed out", "invoke", "timeout"),
    ("Runtime.ImportModuleError: Unable to import module 'x'", "init", "init_error"),
    ("ValueError: bad input", "invoke", "other"),
])
def test_classify(text, phase, cls):
    assert classify(text, phase) == cls


def _ok(n, t):
    return [{"kind": "invoke_start", "n": n, "t_ms": t}, {"kind": "invoke_end", "n": n, "t_ms": t + 5, "status": "ok"}]


def _bad(n, t, text=DNS_PY, status="error", reinit=False):
    etype, msg = text.split(": ", 1)
    return [{"kind": "invoke_start", "n": n, "t_ms": t},
            {"kind": "invoke_end", "n": n, "t_ms": t + 5, "status": status, "error_type": etype,
             "error_message": msg, "reinit": reinit}]


def _base(eni="absent", attach_at=500.0, verified=True):
    events = [{"kind": "trial_start", "t_ms": 0.0},
              {"kind": "initial_state", "t_ms": 1.0, "eni": eni, "impairs": eni == "absent", "verified": True},
              {"kind": "init_start", "t_ms": 10.0, "generation": 1, "phase": "init"},
              {"kind": "runtime_ready", "t_ms": 200.0, "generation": 1}]
    if attach_at is not None:
        events.append({"kind": "fault", "t_ms": attach_at, "fault": "attach_eni", "trigger": "init_start + 490ms",
                       "verified": verified, "impairs": False})
    return events


def test_no_fault_all_ok_is_healthy():
    v = judge(_base(eni="present", attach_at=None) + _ok(1, 300) + _ok(2, 500))
    assert v.verdict == "healthy"
    assert v.failed_invocations == 0 and not v.exposed


def test_cached_failure_is_stuck_with_the_dns_error():
    events = _base() + _bad(1, 300) + _bad(2, 600) + _bad(3, 800)
    v = judge(events)
    assert v.verdict == "stuck"
    assert v.failed_invocations == 3
    assert v.error_classes == ["dns"]
    assert "invocation 3 still fails 305 ms after the fault cleared" in v.reason
    assert "Temporary failure in name resolution" in v.reason


def test_recovery_in_the_same_runtime():
    v = judge(_base() + _bad(1, 300) + _ok(2, 600) + _ok(3, 800))
    assert v.verdict == "recovered"
    assert v.time_to_recovery_ms == pytest.approx(105)
    assert not v.reinit_needed


def test_recovery_through_reinit_counts_init_phase_failures():
    events = _base() + [
        {"kind": "init_error", "t_ms": 150.0, "generation": 1, "error_type": "ConnectionError",
         "error_message": "Failed to resolve 'svc.internal'"},
    ] + _bad(1, 300, status="init_error", reinit=True) + _ok(2, 600)
    events[-1]["reinit"] = True
    v = judge(events)
    assert v.verdict == "recovered"
    assert v.reinit_needed
    assert v.init_errors == 1
    assert [f.phase for f in v.failures] == ["init", "init"]
    assert "through a re-init" in v.reason


def test_absorbed_fault_is_recovered_not_healthy():
    v = judge(_base() + _ok(1, 300) + _ok(2, 600))
    assert v.verdict == "recovered"
    assert v.failed_invocations == 0 and v.exposed
    assert shown(v) == ABSORBED  # the word run, demo, sweep and report print


def test_unverified_fault_is_never_a_finding():
    v = judge(_base(verified=False) + _bad(1, 300) + _bad(2, 600))
    assert v.verdict == "fault_not_armed"


def test_initial_state_that_did_not_hold():
    events = _base(attach_at=None)
    events[1]["verified"] = False
    assert judge(events + _ok(1, 300)).verdict == "fault_not_armed"


def test_fault_that_never_fired():
    events = _base(attach_at=None) + [{"kind": "fault_skipped", "t_ms": 900.0, "fault": "attach_eni",
                                       "trigger": "invoke_start#9", "why": "no such event"}]
    assert judge(events + _ok(1, 300)).verdict == "fault_not_armed"


def test_harness_error_wins():
    events = _base() + _ok(1, 300) + [{"kind": "harness_error", "t_ms": 400.0, "error": "OSError: boom"}]
    v = judge(events)
    assert v.verdict == "harness_error" and "boom" in v.reason


def test_no_invocation_is_a_harness_error():
    assert judge(_base()).verdict == "harness_error"


def test_last_failure_with_fault_still_active():
    events = _base(attach_at=None) + _bad(1, 300) + _bad(2, 600)
    v = judge(events)
    assert v.verdict == "stuck"
    assert "still active" in v.reason


def test_windows():
    events = _base() + [{"kind": "fault", "t_ms": 900.0, "fault": "detach_eni", "verified": True, "impairs": True}]
    assert impaired_windows(events) == [(1.0, 500.0), (900.0, None)]


def test_headline_prefers_the_os_wording():
    from harness.checker.classify import headline

    text = ("ConnectionError: HTTPConnectionPool(host='svc.internal', port=8080): Max retries exceeded "
            "(Caused by NameResolutionError(\"Failed to resolve 'svc.internal' ([Errno -3] "
            "Temporary failure in name resolution)\"))")
    assert headline(text) == "ConnectionError: Temporary failure in name resolution"
    assert headline("ValueError: bad") == "ValueError: bad"


def test_headline_names_what_the_message_says_not_the_type_again():
    from harness.checker.classify import headline

    text = ("TaskCanceledException: The request was canceled due to the configured HttpClient.Timeout of 2 "
            "seconds elapsing. (cause: TimeoutException: The operation was canceled.)")
    assert headline(text) == "TaskCanceledException: Timeout"
    assert headline("TaskCanceledException: A task was canceled.") == "TaskCanceledException: A task was canceled."
