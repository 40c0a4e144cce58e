"""The lifecycle checks: the reset error class, expect.healthy_after and
not_exercised, on hand-made histories."""

import pytest

from harness.checker.classify import classify, headline
from harness.checker.verdict import ABSORBED, judge, shown
from harness.scenario.model import validate

RESET_TEXTS = [
    # requests over a pooled connection the NAT forgot (RST on the next packet)
    "ConnectionError: ('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))",
    # requests over a keep-alive the server closed (FIN, then nothing)
    "ConnectionError: ('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))",
    # .NET 8 SocketsHttpHandler on a reset pooled connection
    "HttpRequestException: An error occurred while sending the request. (cause: IOException: Unable to read data "
    "from the transport connection: Connection reset by peer. (cause: SocketException: Connection reset by peer))",
    "Error: socket hang up",
    "Error: read ECONNRESET",
    "ConnectionResetError: [Errno 104] Connection reset by peer",
]


@pytest.mark.parametrize("text", RESET_TEXTS)
def test_resets_are_their_own_class(text):
    assert classify(text) == "reset"


@pytest.mark.parametrize("text,cls", [
    ("ConnectionError: [Errno 101] Network is unreachable", "connect"),
    ("ConnectionRefusedError: [Errno 111] Connection refused", "connect"),
    # A lookup failure inside a requests ConnectionError is still dns.
    ("ConnectionError: HTTPConnectionPool: NameResolutionError: Failed to resolve 'svc.internal'", "dns"),
    ("ReadTimeout: HTTPConnectionPool read timed out", "timeout"),
])
def test_the_other_network_classes_stay(text, cls):
    assert classify(text) == cls


def test_a_reset_headline_names_the_os_phrase():
    assert headline(RESET_TEXTS[0]) == "ConnectionError: Connection reset by peer"


def _inv(n, t, ok=True):
    end = {"kind": "invoke_end", "n": n, "t_ms": t + 5, "status": "ok" if ok else "error"}
    if not ok:
        end.update(error_type="ConnectionError", error_message="Connection reset by peer")
    return [{"kind": "invoke_start", "n": n, "t_ms": t}, end]


def _history(*invocations, healthy_after=None, probe=False, attempts=()):
    start = {"kind": "trial_start", "t_ms": 0.0}
    if healthy_after:
        start["healthy_after"] = healthy_after
    events = [start,
              {"kind": "initial_state", "t_ms": 1.0, "impairs": True, "aspects": {"eni": True}, "verified": True},
              {"kind": "init_start", "t_ms": 10.0, "generation": 1, "phase": "init"},
              {"kind": "runtime_ready", "t_ms": 100.0, "generation": 1},
              {"kind": "fault", "t_ms": 300.0, "fault": "attach_eni", "verified": True, "impairs": False,
               "aspects": {"eni": False}}]
    if probe:
        events.append({"kind": "net_probe", "t_ms": 9.0, "generation": 1, "method": "ebpf_cgroup_sock_addr"})
    events += [{"kind": "net_attempt", "t_ms": t, "generation": 1, "syscall": "connect", "proto": "udp",
                "dst": "198.18.0.2:53", "pid": 1} for t in attempts]
    for inv in invocations:
        events += inv
    return events


def test_healing_once_then_failing_again_is_not_recovered_with_healthy_after():
    flapping = [_inv(1, 200, ok=False), _inv(2, 400), _inv(3, 600, ok=False), _inv(4, 800)]
    assert judge(_history(*flapping)).verdict == "recovered"  # the last one works
    v = judge(_history(*flapping, healthy_after=3))
    assert v.verdict == "stuck"
    assert "invocation 3 failed after it had recovered" in v.reason


def test_healthy_after_is_met_by_enough_good_invocations():
    v = judge(_history(_inv(1, 200, ok=False), _inv(2, 400), _inv(3, 600), _inv(4, 800), healthy_after=3))
    assert v.verdict == "recovered", v.reason


def test_healthy_after_needs_that_many_invocations_after_the_fault_cleared():
    v = judge(_history(_inv(1, 200, ok=False), _inv(2, 400), healthy_after=3))
    assert v.verdict == "stuck"
    assert "only 1 invocation(s) started after the fault cleared" in v.reason


def test_expect_healthy_after_is_a_positive_count():
    s = validate({"expect": {"verdict": "recovered", "healthy_after": 2}}, "x.yaml")
    assert s.expect is not None and s.expect.healthy_after == 2
    with pytest.raises(Exception, match="healthy_after"):
        validate({"expect": {"verdict": "recovered", "healthy_after": 0}}, "x.yaml")


def test_absorbed_without_an_attempt_in_the_window_is_not_exercised():
    events = _history(_inv(1, 400), _inv(2, 600), probe=True, attempts=[401.0, 601.0])
    v = judge(events)
    assert v.verdict == "not_exercised"
    assert "no network attempt while the network was impaired (1-300 ms)" in v.reason
    assert "first attempt came at 401 ms" in v.reason


def test_absorbed_with_an_attempt_in_the_window_stays_recovered():
    v = judge(_history(_inv(1, 200), _inv(2, 400), probe=True, attempts=[201.0, 401.0]))
    assert v.verdict == "recovered" and shown(v) == ABSORBED


def test_without_a_probe_nothing_changes():
    # Older histories, and machines without cgroup v2 or BPF, are judged as before.
    assert judge(_history(_inv(1, 400), _inv(2, 600))).verdict == "recovered"
    unavailable = _history(_inv(1, 400), probe=False)
    unavailable.append({"kind": "net_probe", "t_ms": 9.0, "generation": 1, "method": "none", "error": "no v2"})
    assert judge(unavailable).verdict == "recovered"


def test_a_failure_says_the_fault_was_met_whatever_the_probe_saw():
    v = judge(_history(_inv(1, 200, ok=False), _inv(2, 400), probe=True, attempts=[401.0]))
    assert v.verdict == "recovered" and v.failed_invocations == 1


def test_an_invocation_in_flight_during_the_window_met_the_fault():
    # A pooled connection that an ENI swap strands takes sends the probe cannot see:
    # an invocation running inside the impaired window counts as meeting the fault.
    v = judge(_history(_inv(1, 250), _inv(2, 400), probe=True, attempts=[401.0]))
    assert v.verdict == "recovered" and v.failed_invocations == 0


def test_a_swap_strands_pooled_connections_so_the_next_invocation_meets_it():
    events = _history(_inv(1, 400), _inv(2, 600), probe=True, attempts=[401.0])
    events.append({"kind": "fault", "t_ms": 500.0, "fault": "swap_eni", "verified": True, "impairs": False,
                   "blip_ms": [500.0, 503.0]})
    events.sort(key=lambda e: e["t_ms"])
    v = judge(events)
    assert v.verdict == "recovered", v.reason
