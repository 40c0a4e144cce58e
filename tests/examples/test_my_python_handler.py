"""Testing your own Python handler against a late and a swapped ENI.

Copy this file and my_python_handler/ into your project, point MY_FUNCTION at
your code, and run (namespaces need root):

    sudo .venv/bin/pytest tests/examples -v --enirace-require-root

Without root every test here skips with the reason; --enirace-require-root turns
that into a failure, which is what CI wants.
"""

import pytest

from harness.plugin import assert_healthy, assert_recovers, builtin_scenario

# The function under test. function.code is relative to this file. Your code reads
# its own configuration; point it at the lab's service (svc.internal:8080).
MY_FUNCTION = {
    "function__code": "my_python_handler",
    "function__handler": "app.handler",
    "function__env": {"ORDERS_API_URL": "http://svc.internal:8080/orders"},
}

ENI_SWAP = builtin_scenario("eni-swap")


def test_works_with_the_eni_present(run_trial):
    """The control: with the network there from the start, nothing may fail."""
    result = run_trial("late-eni-attach", lab__eni="present", schedule=[], **MY_FUNCTION)
    assert_healthy(result)


@pytest.mark.enirace("late-eni-attach", **MY_FUNCTION)
def test_survives_a_late_eni(enirace_result):
    """The ENI arrives 500 ms after the runtime started: the first call after it
    must work, without restarting the runtime."""
    assert_recovers(enirace_result, within_invocations=1, allow_reinit=False)
    assert enirace_result.verdict.exposed, "the fault should have hit the function"


@pytest.mark.enirace(
    "late-eni-attach",
    axes={"schedule[0].at": ["invoke_start#1 + 20ms", "runtime_ready + 50ms", "invoke_start#2 + 100ms"]},
    **MY_FUNCTION,
)
def test_survives_the_eni_arriving_at_any_point(enirace_result):
    """One test per attach point: inside the first invocation, right after init, inside
    a later invocation. (An attach during init would never meet this handler: it
    does not touch the network at import, so that trial reads not_exercised.)"""
    assert_recovers(enirace_result, within_invocations=1)


@pytest.mark.skipif(not ENI_SWAP.exists(), reason=f"{ENI_SWAP} is not part of this enirace version yet")
@pytest.mark.enirace("eni-swap", **MY_FUNCTION)
def test_survives_an_eni_swap(enirace_result):
    """ENI A is replaced by ENI B with a new IP: pooled connections die silently."""
    assert_recovers(enirace_result, within_invocations=1)
