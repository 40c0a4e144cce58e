"""Testing your own Node.js handler against a late and a swapped ENI.

my_node_handler/ is the function's folder (LAMBDA_TASK_ROOT); the handler string
is Lambda's `file.export`. enirace runs it on node with AWS's aws-lambda-ric,
installed once into ~/.cache/enirace/node/. The tests skip, with the reason, on
a machine without node or the client's build tools: see `enirace doctor`.
"""

import pytest

from harness.plugin import assert_recovers, builtin_scenario, nodejs_unavailable

MY_FUNCTION = {
    "function__runtime": "nodejs",
    "function__code": "my_node_handler",  # relative to this file
    "function__handler": "orders.handler",  # orders.mjs, export handler
    "function__env": {"ORDERS_API_URL": "http://svc.internal:8080/orders"},
}

ENI_SWAP = builtin_scenario("eni-swap")


@pytest.fixture(autouse=True)
def _needs_node():
    # A fixture, not a skipif: the check (which may install the client) runs when a test runs.
    reason = nodejs_unavailable()
    if reason is not None:
        pytest.skip(f"Node.js functions cannot run here: {reason}")


@pytest.mark.enirace("late-eni-attach", **MY_FUNCTION)
def test_survives_a_late_eni(enirace_result):
    assert_recovers(enirace_result, within_invocations=1, allow_reinit=False)


@pytest.mark.enirace("eni-swap", **MY_FUNCTION)
def test_survives_an_eni_swap(enirace_result):
    assert_recovers(enirace_result, within_invocations=1)
