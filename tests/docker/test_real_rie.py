"""`docker.rie: image`: the image's own aws-lambda-rie runs the function (here the
enirace-rie drop-in installed at that path), and the lifecycle comes from its logs."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.root, pytest.mark.docker]


@pytest.mark.parametrize("handler,expected", [("naive_cached", "stuck"), ("resilient", "recovered")])
def test_verdicts_from_the_images_rie(trial, images, handler, expected):
    result = trial(f"function.handler={handler}", "docker.image=python-rie", "docker.rie=image")
    assert result.verdict.verdict == expected, result.verdict.reason
    kinds = [e["kind"] for e in result.events]
    # Derived from the RIE's `(rapid)` lines: INIT START, then INIT RTDONE.
    start = next(e for e in result.events if e["kind"] == "init_start")
    assert start["rie_phase"] == "init" and "aws-lambda-rie" in start["command"]
    assert kinds.index("init_start") < kinds.index("runtime_ready")
    # The real RIE inits lazily, inside the first invoke.
    first = next(e for e in result.events if e["kind"] == "invoke_start")
    assert first["t_ms"] <= start["t_ms"]
    fault = next(e for e in result.events if e["kind"] == "fault")
    assert fault["planned_ms"] == pytest.approx(start["t_ms"] + 500, abs=0.01)
    log = (result.folder / "function.log").read_text()
    assert "(rapid) INIT START(type: on-demand, phase: init)" in log
    assert "REPORT RequestId:" in log


def test_an_image_without_the_rie_is_a_usage_error(trial):
    from harness.errors import UserError

    with pytest.raises(UserError, match="aws-lambda-rie"):
        trial("docker.image=python", "docker.rie=image")
