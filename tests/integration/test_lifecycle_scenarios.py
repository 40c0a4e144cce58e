"""The bundled lifecycle scenarios (issue 13), run as shipped: a pooled connection the
NAT forgot while the function was frozen, a keep-alive the service closed meanwhile,
a service that moved to a new address. Each naive sample fails once with a reset and
the capture says why; each resilient sample has no failed invocation."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.history import schema
from harness.scenario import model as sc
from harness.trial import run_one_trial

REPO = Path(__file__).resolve().parents[2]
NAT = REPO / "scenarios" / "nat-idle-reap.yaml"
KEEPALIVE = REPO / "scenarios" / "keepalive-close.yaml"
MOVED = REPO / "scenarios" / "dns-moved.yaml"
NAT_EVIDENCE = "RST from the NAT for a flow it forgot"
CLOSED_EVIDENCE = "request sent on a connection the service had closed"

pytestmark = pytest.mark.root


@pytest.fixture
def trial(run, tmp_path: Path):
    """conftest's trial, with the sandbox capture on: the evidence lines come from it."""

    def _trial(path: Path, *overrides: str):
        return run_one_trial(sc.load(path, list(overrides)), run, tmp_path, capture=True)

    return _trial


def _run(trial, path: Path, runtime: str, handler: str):
    return trial(path, f"function.runtime={runtime}", f"function.handler={handler}")


def _assert_frozen_each_gap(result) -> None:
    freezes = [e for e in result.events if e["kind"] == schema.FREEZE]
    thaws = [e for e in result.events if e["kind"] == schema.THAW]
    assert freezes and thaws and all(e["verified"] for e in freezes + thaws)


def _assert_failed_once_with_reset(result, evidence: str | None) -> None:
    v = result.verdict
    assert v.verdict == "recovered", v.reason
    assert v.failed_invocations == 1 and v.error_classes == ["reset"], v.failures
    if evidence is not None:
        assert any(evidence in line for line in v.evidence), v.evidence
    _assert_frozen_each_gap(result)


def _assert_nothing_failed(result) -> None:
    v = result.verdict
    assert v.verdict in ("healthy", "recovered") and v.failed_invocations == 0, (v.verdict, v.failures)
    _assert_frozen_each_gap(result)


def test_nat_idle_reap_resets_the_naive_pooled_session(trial):
    result = _run(trial, NAT, "python", "naive_session")
    _assert_failed_once_with_reset(result, NAT_EVIDENCE)
    reaps = [e for e in result.events if e["kind"] == schema.FAULT and e.get("fault") == "reap_idle"]
    assert reaps and reaps[0]["verified"]


@pytest.mark.parametrize("handler", ["pooled_retry", "resilient"])
def test_nat_idle_reap_spares_the_resilient_python_samples(trial, handler):
    _assert_nothing_failed(_run(trial, NAT, "python", handler))


def test_keepalive_close_fails_a_connection_reused_unchecked(trial):
    _assert_failed_once_with_reset(_run(trial, KEEPALIVE, "python", "kept_connection"), CLOSED_EVIDENCE)


def test_keepalive_close_spares_a_pool_that_checks_before_reuse(trial):
    _assert_nothing_failed(_run(trial, KEEPALIVE, "python", "pooled_retry"))


def test_dns_moved_resets_the_pooled_session_once(trial):
    result = _run(trial, MOVED, "python", "naive_session")
    _assert_failed_once_with_reset(result, None)
    moves = [e for e in result.events if e["kind"] == schema.FAULT and e.get("fault") == "dns"]
    assert moves and moves[0]["verified"]


def test_dns_moved_spares_the_retrying_pool(trial):
    _assert_nothing_failed(_run(trial, MOVED, "python", "pooled_retry"))


@pytest.mark.dotnet
def test_nat_idle_reap_resets_the_static_httpclient(trial):
    _assert_failed_once_with_reset(_run(trial, NAT, "dotnet", "static_httpclient"), NAT_EVIDENCE)


@pytest.mark.dotnet
def test_nat_idle_reap_spares_a_pool_idle_timeout_shorter_than_the_nats(trial):
    _assert_nothing_failed(_run(trial, NAT, "dotnet", "pooled_idle_timeout"))


@pytest.mark.dotnet
def test_dns_moved_resets_the_static_httpclient_once(trial):
    _assert_failed_once_with_reset(_run(trial, MOVED, "dotnet", "static_httpclient"), None)


@pytest.mark.dotnet
def test_dns_moved_spares_a_pool_lifetime_shorter_than_the_gap(trial):
    # A pooled idle timeout alone raced the overdue scavenge after the thaw here (1 of 2
    # demo runs reset); the lifetime is checked when the connection is taken.
    _assert_nothing_failed(_run(trial, MOVED, "dotnet", "pooled_idle_timeout"))
