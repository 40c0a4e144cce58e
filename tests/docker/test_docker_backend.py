"""The docker backend gives the process backend's verdicts (late-eni-attach), with
ENI faults by netlink and by `docker network connect/disconnect`."""

from __future__ import annotations

import pytest

from harness.scenario import model as sc
from harness.trial import run_one_trial
from tests.docker.conftest import LATE_ENI

pytestmark = [pytest.mark.root, pytest.mark.docker]
EXPECTED = {"naive_cached": "stuck", "resilient": "recovered"}


@pytest.mark.parametrize("handler", sorted(EXPECTED))
def test_same_verdict_as_the_process_backend(trial, run, tmp_path, handler):
    process = run_one_trial(sc.load(LATE_ENI, [f"function.handler={handler}"]), run, tmp_path / "process")
    docker = trial(f"function.handler={handler}")
    assert process.verdict.verdict == docker.verdict.verdict == EXPECTED[handler], docker.verdict.reason
    assert docker.verdict.error_classes == process.verdict.error_classes
    starts = [e for e in docker.events if e["kind"] == "init_start"]
    assert starts[0]["command"].startswith("docker run enirace/python:")
    fault = next(e for e in docker.events if e["kind"] == "fault")
    assert fault["verified"] and abs(fault["error_ms"]) < 5


def test_init_start_offsets_mean_what_they_mean_on_the_process_backend(trial):
    """init_start is the bootstrap's start as the container signals it, and the image
    is warm: ten trials of naive_cached under late-eni-attach are all stuck (its
    lookup at import always precedes the ENI at init_start + 500ms)."""
    verdicts = []
    for _ in range(10):
        result = trial("function.handler=naive_cached", "workload.invocations=3")
        verdicts.append(result.verdict.verdict)
        start = next(e for e in result.events if e["kind"] == "init_start")
        fault = next(e for e in result.events if e["kind"] == "fault")
        assert fault["planned_ms"] == pytest.approx(start["t_ms"] + 500, abs=0.01)
    assert verdicts == ["stuck"] * 10


@pytest.mark.parametrize("handler", sorted(EXPECTED))
def test_docker_network_connect_mode(trial, handler):
    result = trial(f"function.handler={handler}", "docker.eni=network")
    assert result.verdict.verdict == EXPECTED[handler], result.verdict.reason
    fault = next(e for e in result.events if e["kind"] == "fault")
    assert fault["verified"], fault
    assert fault["detail"]["address"].endswith(".100")
    if handler == "resilient":
        ok = [e for e in result.events if e["kind"] == "invoke_end" and e["status"] == "ok"]
        assert '"service": "svc.internal"' in ok[-1]["body"]


def test_resolv_conf_is_the_labs(trial):
    result = trial("function.handler=naive_session", "lab.eni=present", "schedule=[]")
    assert result.verdict.verdict == "healthy", result.verdict.reason
    queries = [e for e in result.events if e["kind"] == "resolver_query"]
    assert queries and queries[0]["name"] == "svc.internal"


def test_dotnet_image(run, tmp_path, dotnet_image):
    """The .NET image: the samples' CoreCLR runtime loop behind the emulator."""
    results = {}
    for handler in ("lazy_cached", "resilient"):
        scenario = sc.load(LATE_ENI, ["backend=docker", "function.runtime=dotnet", f"function.handler={handler}"])
        results[handler] = run_one_trial(scenario, run, tmp_path)
    assert results["lazy_cached"].verdict.verdict == "stuck", results["lazy_cached"].verdict.reason
    assert "Resource temporarily unavailable" in results["lazy_cached"].verdict.failures[-1].text
    assert results["resilient"].verdict.verdict == "recovered", results["resilient"].verdict.reason
    start = next(e for e in results["resilient"].events if e["kind"] == "init_start")
    assert start["command"].startswith("docker run enirace/dotnet:")


ENI_SWAP = LATE_ENI.parent / "eni-swap.yaml"


@pytest.mark.parametrize("runtime,handler", [("python", "naive_session"), ("dotnet", "static_httpclient")])
def test_eni_swap_same_verdict_as_the_process_backend(request, run, tmp_path, images, runtime, handler):
    """A pooled keep-alive connection dies with the swap: one failed invocation, then recovery."""
    if runtime == "dotnet":
        request.getfixturevalue("dotnet_image")  # skips without a .NET runtime and compiler
    sets = [f"function.runtime={runtime}", f"function.handler={handler}"]
    results = {mode: run_one_trial(sc.load(ENI_SWAP, sets + extra), run, tmp_path / mode)
               for mode, extra in (("process", []), ("netlink", ["backend=docker"]),
                                   ("network", ["backend=docker", "docker.eni=network"]))}
    got = {mode: (r.verdict.verdict, r.verdict.failed_invocations, r.verdict.error_classes)
           for mode, r in results.items()}
    assert got["process"][0] == "recovered", results["process"].verdict.reason
    assert got["netlink"] == got["process"] and got["network"] == got["process"], got
    swap = next(e for e in results["network"].events if e["kind"] == "fault")
    assert swap["verified"], swap
