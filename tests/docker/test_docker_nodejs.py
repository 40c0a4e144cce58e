"""The Node.js image (containers/nodejs on the official nodejs:20 base, or the offline
base carrying the host's node and aws-lambda-ric) gives the process backend's verdicts."""

from __future__ import annotations

import pytest

from harness.scenario import model as sc
from harness.trial import run_one_trial
from tests.docker.conftest import LATE_ENI

pytestmark = [pytest.mark.root, pytest.mark.docker, pytest.mark.nodejs]
ENI_SWAP = LATE_ENI.parent / "eni-swap.yaml"
# Node loads in 300-900 ms depending on the page cache and the machine's load: an attach
# at init_start + 500ms can land before the first lookup on one backend and after it on
# the other. Anchored on the runtime's first /next, it lands after init on both.
AFTER_INIT = "schedule[0].at=runtime_ready + 200ms"


@pytest.fixture(scope="module")
def nodejs_image(engine: None) -> str:
    from harness.backends.docker import images as im

    return im.ensure("nodejs")


@pytest.mark.parametrize("path,handler", [(LATE_ENI, "cached_lookup"), (LATE_ENI, "resilient"),
                                          (ENI_SWAP, "keepalive_agent")])
def test_same_verdict_as_the_process_backend(run, tmp_path, nodejs_image, path, handler):
    sets = ["function.runtime=nodejs", f"function.handler={handler}"]
    if path == LATE_ENI:
        sets.append(AFTER_INIT)
    process = run_one_trial(sc.load(path, sets), run, tmp_path / "process")
    docker = run_one_trial(sc.load(path, [*sets, "backend=docker"]), run, tmp_path / "docker")
    got = {name: (r.verdict.verdict, r.verdict.failed_invocations, r.verdict.error_classes)
           for name, r in (("process", process), ("docker", docker))}
    assert got["docker"] == got["process"], (got, docker.verdict.reason)
    start = next(e for e in docker.events if e["kind"] == "init_start")
    assert start["command"].startswith("docker run enirace/nodejs:")
