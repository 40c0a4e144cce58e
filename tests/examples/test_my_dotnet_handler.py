"""Testing your own C# handler against a late and a swapped ENI.

my_dotnet_handler/ is a directory of *.cs files; enirace compiles it with its
Runtime API loop (a .NET 8 SDK if installed, else Mono's mcs) and runs it on
CoreCLR 8. The tests skip, with the reason, on a machine without the runtime or
the compiler: see `enirace doctor`.
"""

import pytest

from harness.plugin import assert_recovers, builtin_scenario, dotnet_unavailable

pytestmark = pytest.mark.dotnet

MY_FUNCTION = {
    "function__runtime": "dotnet",
    "function__code": "my_dotnet_handler",  # relative to this file
    "function__handler": "orders",  # the [LambdaHandler("orders")] name
    "function__timeout": "5s",
    "function__env": {"ORDERS_API_URL": "http://svc.internal:8080/orders"},
}

ENI_SWAP = builtin_scenario("eni-swap")


@pytest.fixture(autouse=True)
def _needs_dotnet():
    # A fixture, not a skipif: the check runs when a test runs, not at import.
    reason = dotnet_unavailable()
    if reason is not None:
        pytest.skip(f".NET functions cannot run here: {reason}")


@pytest.mark.enirace("late-eni-attach", **MY_FUNCTION)
def test_survives_a_late_eni(enirace_result):
    assert_recovers(enirace_result, within_invocations=1, allow_reinit=False)


@pytest.mark.skipif(not ENI_SWAP.exists(), reason=f"{ENI_SWAP} is not part of this enirace version yet")
@pytest.mark.enirace("eni-swap", **MY_FUNCTION)
def test_survives_an_eni_swap(enirace_result):
    assert_recovers(enirace_result, within_invocations=1)
