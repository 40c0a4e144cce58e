"""The fleet's mitigation samples for .NET (containers/dotnet/handlers/Fleet*.cs, on the
C# loop and CoreCLR 8) and Node.js (containers/nodejs/handlers/fleet_*.mjs, on AWS's
aws-lambda-ric), the twins of the Python ones, under the same seeded draws as
tests/integration/test_fleet.py: the naive one loses messages to the late cold starts,
each mitigation loses none, every count checked against the service."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.fleet.runner import run_mitigation
from harness.ownership import Run
from tests.integration.conftest import REPO
from tests.integration.test_fleet import _check_against_the_service, _scenario
from tests.integration.test_nodejs import warm_node  # noqa: F401  (the module's autouse fixture)

pytestmark = pytest.mark.root

QUEUE = {"visibility_timeout": "1s", "batch_size": 3, "pollers": 4, "max_receive_count": 5}
RUNTIMES = [pytest.param("dotnet", marks=pytest.mark.dotnet, id="dotnet"),
            pytest.param("nodejs", marks=pytest.mark.nodejs, id="nodejs")]


def _sample(runtime: str, sample: str, source: dict[str, object] | None = None):
    scenario = _scenario(source)
    # The C# loop looks a sample up by its name; aws-lambda-ric wants module.function.
    handler = sample if runtime == "dotnet" else f"{sample}.handler"
    fn = scenario.function.model_copy(update={
        "runtime": runtime, "code": str(REPO / "containers" / runtime / "handlers"), "handler": handler})
    return scenario.model_copy(update={"function": fn})


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_naive_sample_loses_messages_classified_dns(run: Run, tmp_path: Path, runtime):
    result = run_mitigation(_sample(runtime, "fleet_naive"), "none", run, tmp_path)
    acct = result.account
    assert acct.met_race == 2 and acct.lost > 0 and acct.errors_by_class.get("dns", 0) > 0, acct
    _check_against_the_service(result)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(("sample", "mitigation", "source"), [
    ("fleet_retry", "retry", None),
    ("fleet_wait", "wait_for_network", None),
    ("fleet_batch", "queue", QUEUE),
])
def test_each_mitigation_loses_nothing(run: Run, tmp_path: Path, runtime, sample, mitigation, source):
    result = run_mitigation(_sample(runtime, sample, source), mitigation, run, tmp_path)
    acct = result.account
    assert acct.met_race >= 1 and acct.lost == 0 and acct.in_dlq == 0, acct
    if mitigation != "queue":
        assert acct.failed_invocations == 0, acct
    else:
        assert acct.redelivered > 0 and acct.duplicated == 0, acct
    _check_against_the_service(result)
