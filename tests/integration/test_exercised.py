"""A fault the function never met is not a pass: the kernel probe of the
runtime's cgroup records its network attempts even when nothing can leave the
sandbox, and an absorbed trial without one during the impaired window is
not_exercised."""

import pytest

from harness.checker import exercise
from harness.history import schema
from tests.integration.conftest import LATE_ENI, REPO

pytestmark = [pytest.mark.root]

SLOW = (f"function.code={REPO / 'tests' / 'integration' / 'handlers'}", "function.handler=slow_init.handler")


def _attempts(events):
    return [e for e in events if e["kind"] == schema.NET_ATTEMPT]


def test_an_init_that_sleeps_past_the_attach_is_not_exercised(trial):
    result = trial(LATE_ENI, *SLOW, "function.env={SLOW_INIT_S: '1.0'}")
    v = result.verdict
    assert v.verdict == "not_exercised", v.reason
    assert "still in its init" in v.reason and "after the fault cleared" in v.reason
    assert v.failed_invocations == 0
    assert result.expected is False  # the scenario's expect: does not allow it
    fault = next(e for e in result.events if e["kind"] == schema.FAULT)
    attempts = _attempts(result.events)
    assert attempts and all(a["t_ms"] > fault["t_ms"] for a in attempts)


def test_the_same_handler_starting_fast_is_exercised(trial):
    # The control: without the sleep its first call meets the missing ENI.
    result = trial(LATE_ENI, *SLOW, "function.env={SLOW_INIT_S: '0'}")
    assert result.verdict.verdict == "recovered", result.verdict.reason
    assert result.verdict.failed_invocations >= 1


def test_a_failing_attempt_with_no_route_is_seen_in_the_kernel(trial):
    result = trial(LATE_ENI, "function.handler=naive_session")
    assert result.verdict.verdict == "recovered", result.verdict.reason
    probe = next(e for e in result.events if e["kind"] == schema.NET_PROBE)
    assert probe["method"] == "ebpf_cgroup_sock_addr", probe
    seen = exercise.attempts_in(result.events, exercise.exposure_spans(result.events))
    subnet = next(e for e in result.events if e["kind"] == schema.TRIAL_START)["subnet"].rsplit(".", 1)[0]
    # glibc's resolver connects its UDP socket to the lab resolver (VPC+2) before each
    # query; with no interface that connect fails with ENETUNREACH, no packet exists.
    assert any(a["dst"] == f"{subnet}.2:53" and a["proto"] == "udp" for a in seen), seen
    # The Runtime API on loopback is the runtime talking to the emulator, not the network.
    assert not any(a["dst"].endswith(":9001") for a in _attempts(result.events))
