"""Evidence lines from packet events: what happened below the error text."""

from __future__ import annotations

from harness.checker.evidence import explain

BASE = [{"t_ms": 0, "kind": "initial_state", "aspects": {"eni": True}, "verified": True},
        {"t_ms": 1, "kind": "capture_start"}]


def invoke(n, start, end, status="ok", message=""):
    return [{"t_ms": start, "kind": "invoke_start", "n": n},
            {"t_ms": end, "kind": "invoke_end", "n": n, "status": status, "error_type": "E",
             "error_message": message}]


def with_capture(*events):
    return [*BASE, *events, {"t_ms": 10_000, "kind": "capture", "packets": 1}]


def test_no_capture_no_evidence():
    assert explain([*BASE, *invoke(1, 10, 20, "error", "Temporary failure in name resolution")]) == []


def test_dns_that_never_left_names_the_missing_interface_and_merges_repeats():
    events = with_capture(*invoke(1, 10, 20, "error", "Temporary failure in name resolution"),
                          *invoke(2, 30, 40, "error", "Temporary failure in name resolution"))
    assert explain(events) == ["invokes 1, 2: DNS query never left the sandbox (no interface, no route)"]


def test_syn_retransmits_and_unanswered_queries():
    events = with_capture(
        {"t_ms": 5, "kind": "fault", "fault": "attach_eni", "verified": True, "aspects": {"eni": False}},
        *invoke(1, 10, 5000, "timeout", "Task timed out after 3.00 seconds"),
        {"t_ms": 11, "kind": "dns_query", "sent": True, "iface": "e1", "name": "svc.internal",
         "dst": "198.18.3.2:53", "answered": False},
        {"t_ms": 12, "kind": "tcp_syn", "dst": "198.18.3.10:8080", "answered": False, "retransmits": 3},
    )
    [line] = explain(events)
    assert line.startswith("invoke 1: 1 DNS query for svc.internal to 198.18.3.2:53 got no answer")
    assert "SYN to 198.18.3.10:8080 retransmitted 3 times, no answer" in line


def test_servfail_and_loopback_dns():
    events = with_capture(
        {"t_ms": 5, "kind": "fault", "fault": "attach_eni", "verified": True, "aspects": {"eni": False}},
        *invoke(1, 10, 20, "error", "Temporary failure in name resolution"),
        {"t_ms": 11, "kind": "dns_query", "sent": True, "iface": "e1", "name": "svc.internal",
         "dst": "198.18.3.2:53", "answered": True, "rcode": "SERVFAIL"},
        *invoke(2, 30, 40, "error", "Temporary failure in name resolution"),
        {"t_ms": 31, "kind": "dns_query", "sent": True, "iface": "lo", "name": "svc.internal",
         "dst": "127.0.0.1:53", "answered": False},
        {"t_ms": 31.1, "kind": "icmp_unreachable", "about": "127.0.0.1:53", "reason": "port unreachable"},
    )
    assert explain(events) == [
        "invoke 1: DNS for svc.internal answered SERVFAIL",
        "invoke 2: DNS query went to 127.0.0.1:53 (resolv.conf has no nameserver), refused",
    ]


def test_a_request_on_a_connection_pooled_before_a_swap():
    events = with_capture(
        {"t_ms": 5, "kind": "fault", "fault": "attach_eni", "verified": True, "aspects": {"eni": False}},
        {"t_ms": 50, "kind": "fault", "fault": "swap_eni", "verified": True, "aspects": {"eni": False},
         "detail": {"from": {"address": "198.18.3.100"}, "to": {"address": "198.18.3.101"}}},
        *invoke(2, 100, 3100, "timeout", "Task timed out after 3.00 seconds"),
    )
    [line] = explain(events)
    assert "pooled before the ENI swap at 50 ms still uses 198.18.3.100" in line
