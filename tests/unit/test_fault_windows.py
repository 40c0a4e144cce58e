"""Fault windows from aspects: overlapping faults, `for:` reverts and swap blips."""

from __future__ import annotations

from harness.checker.verdict import judge
from harness.checker.windows import aspects_at, impaired_windows


def fault(t, aspects, verified=True, **extra):
    return {"t_ms": t, "kind": "fault", "fault": "x", "verified": verified, "aspects": aspects,
            "impairs": any(aspects.values()), **extra}


def test_overlapping_faults_keep_the_window_open_until_both_clear():
    events = [
        {"t_ms": 0, "kind": "initial_state", "aspects": {"eni": False, "resolv_conf": False}, "verified": True},
        fault(100, {"dns": True}),
        fault(200, {"blackhole": True}),
        fault(300, {"dns": False}),  # dns's for: revert; the blackhole still holds
        fault(500, {"blackhole": False}),
    ]
    assert impaired_windows(events) == [(100, 500)]
    assert aspects_at(events, 250) == {"dns": True, "blackhole": True}
    assert aspects_at(events, 400) == {"blackhole": True}
    assert aspects_at(events, 600) == {}


def test_late_attach_closes_the_initial_window_but_not_an_empty_resolv_conf():
    events = [
        {"t_ms": 0, "kind": "initial_state", "aspects": {"eni": True, "resolv_conf": True}, "verified": True},
        fault(100, {"eni": False, "link": False}),
        fault(300, {"resolv_conf": False}),
    ]
    assert impaired_windows(events) == [(0, 300)]


def test_a_swap_blip_is_a_window_of_its_own():
    events = [
        {"t_ms": 0, "kind": "initial_state", "aspects": {"eni": False}, "verified": True},
        fault(100, {"eni": False, "link": False}, blip_ms=[100, 103.5]),
    ]
    assert impaired_windows(events) == [(100, 103.5)]


def test_unverified_changes_do_not_count_and_legacy_events_still_work():
    legacy = [
        {"t_ms": 0, "kind": "initial_state", "impairs": True, "verified": True},
        {"t_ms": 50, "kind": "fault", "fault": "attach_eni", "impairs": False, "verified": True},
    ]
    assert impaired_windows(legacy) == [(0, 50)]
    assert impaired_windows([fault(10, {"dns": True}, verified=False)]) == []


def test_a_revert_that_did_not_take_effect_is_fault_not_armed():
    events = [
        {"t_ms": 0, "kind": "initial_state", "aspects": {"eni": False}, "verified": True},
        fault(10, {"dns": True}, trigger="init_start + 0ms", step="apply"),
        fault(20, {"dns": False}, verified=False, trigger="init_start + 0ms", step="revert",
              error="RuntimeError: nope"),
        {"t_ms": 30, "kind": "invoke_end", "n": 1, "status": "ok"},
    ]
    verdict = judge(events)
    assert verdict.verdict == "fault_not_armed"
    assert "x (revert)" in verdict.reason
