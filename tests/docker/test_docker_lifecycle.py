"""The NAT-idle-reap scenario on the docker backend: the container is paused while
the NAT forgets its pooled flow, and the naive session fails once with a reset,
as on the process backend; the resilient sample has no failed invocation."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.history import schema
from harness.scenario import model as sc
from harness.trial import run_one_trial

NAT = Path(__file__).resolve().parents[2] / "scenarios" / "nat-idle-reap.yaml"

pytestmark = [pytest.mark.root, pytest.mark.docker]


def _run(run, tmp_path, handler):
    return run_one_trial(sc.load(NAT, ["backend=docker", f"function.handler={handler}"]), run, tmp_path,
                         capture=True)


def test_nat_idle_reap_resets_the_naive_session_in_a_paused_container(run, tmp_path, images):
    result = _run(run, tmp_path, "naive_session")
    v = result.verdict
    assert v.verdict == "recovered" and v.failed_invocations == 1 and v.error_classes == ["reset"], v.reason
    assert any("RST from the NAT for a flow it forgot" in line for line in v.evidence), v.evidence
    freezes = [e for e in result.events if e["kind"] == schema.FREEZE]
    assert freezes and all(e["verified"] and e["method"] == "docker_pause" for e in freezes)


def test_nat_idle_reap_spares_the_resilient_sample_in_a_container(run, tmp_path, images):
    v = _run(run, tmp_path, "pooled_retry").verdict
    assert v.verdict in ("healthy", "recovered") and v.failed_invocations == 0, (v.verdict, v.failures)
