"""SnapStart for .NET under the emulator and the freezer, as
tests/integration/test_snapstart.py is for Python: the C# loop's pooled connection
from init fails the first invocation after the restore, its hooks (the loop's
SnapshotRestore, and a published function's own Amazon.Lambda.Core) close and
reopen it, a raising hook is reported as Lambda reports it, and a slow
after-restore hook overruns the restore's limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.history import schema
from harness.scenario import model as sc
from harness.trial import run_one_trial
from tests.dotnet_functions import publish

REPO = Path(__file__).resolve().parents[2]
SNAPSTART = REPO / "scenarios" / "snapstart-restore.yaml"
PROBES = REPO / "tests" / "dotnet_functions" / "loop"
ONE = ("workload.invocations=1", "snapstart.restore_after=0s")

pytestmark = [pytest.mark.root, pytest.mark.dotnet]


@pytest.fixture
def trial(run, tmp_path: Path):
    def _trial(*overrides: str, capture: bool = False):
        out = tmp_path / "trials"
        out.mkdir(exist_ok=True)
        scenario = sc.load(SNAPSTART, ["function.runtime=dotnet", *overrides])
        return run_one_trial(scenario, run, out, capture=capture)

    return _trial


def _kinds(result, kind: str) -> list[dict]:
    return [e for e in result.events if e["kind"] == kind]


def _probe(*overrides: str) -> tuple[str, ...]:
    return (f"function.code={PROBES}", "function.handler=snapstart_probe", *overrides)


def _assert_snapshot_and_restore(result) -> dict:
    (snap,) = _kinds(result, schema.SNAPSHOT)
    (restore,) = _kinds(result, schema.RESTORE)
    assert snap["verified"] and restore["verified"] and restore["address"] != restore["from_address"]
    assert _kinds(result, schema.RUNTIME_READY)[0]["t_ms"] > restore["t_ms"] > snap["t_ms"]
    return restore


def test_the_pooled_httpclient_from_init_fails_the_first_invocation_after_restore(trial):
    result = trial("function.handler=snapstart_pool", capture=True)
    restore = _assert_snapshot_and_restore(result)
    assert restore["changes"]["nat_forgot"] >= 1
    v = result.verdict
    assert v.verdict == "recovered", v.reason
    assert v.failed_invocations == 1 and v.error_classes[0] in ("timeout", "reset"), v.failures
    first = _kinds(result, schema.INVOKE_END)[0]
    assert (first["n"], first["status"], first["error_type"]) == (1, "error", "TaskCanceledException")
    assert any(restore["from_address"] in line for line in v.evidence), v.evidence


def test_the_hooks_dispose_the_client_before_the_snapshot_and_build_one_after(trial):
    result = trial("function.handler=snapstart_hooks")
    restore = _assert_snapshot_and_restore(result)
    v = result.verdict
    assert v.verdict in ("healthy", "recovered") and v.failed_invocations == 0, (v.verdict, v.failures)
    logs = [(e["t_ms"], e["line"]) for e in _kinds(result, schema.LOG)]
    [before] = [t for t, line in logs if line.endswith("\tinfo\tsnapstart_hooks: before snapshot: pool closed")]
    [after] = [t for t, line in logs if line.endswith("\tinfo\tsnapstart_hooks: after restore: new pool")]
    # (When the harness read the before line races the snapshot; the mock test pins that order.)
    assert before < after and after > restore["t_ms"]


def test_a_published_functions_amazon_lambda_core_hooks_run_around_the_restore(trial, tmp_path):
    folder = publish(tmp_path / "SnapHooks", "SnapHooks", serializer=False)
    result = trial(f"function.code={folder}", "function.handler=SnapHooks::SnapHooks.Function::FunctionHandler",
                   *ONE)
    _assert_snapshot_and_restore(result)
    (end,) = _kinds(result, schema.INVOKE_END)
    assert (end["status"], end["body"]) == ("ok", "before2,before1,after1,after2")


def test_a_raising_before_snapshot_hook_is_an_init_error(trial):
    result = trial(*_probe("function.env.SNAP_FAIL=before", *ONE))
    errors = _kinds(result, schema.INIT_ERROR)
    assert errors and all(e["error_type"] == "Runtime.BeforeSnapshotError" for e in errors), errors
    assert errors[0]["error_message"] == "before1 hook failed"
    assert not _kinds(result, schema.SNAPSHOT)
    assert _kinds(result, schema.RUNTIME_EXIT)[0]["code"] == 0  # RuntimeSupport's RunAsync returns
    assert result.verdict.failures[0].error_class == "snapstart"


def test_a_raising_after_restore_hook_fails_the_restore(trial):
    result = trial(*_probe("function.env.SNAP_FAIL=after", *ONE))
    (err,) = _kinds(result, schema.RESTORE_ERROR)
    assert (err["source"], err["error_type"]) == ("restore/error", "Runtime.AfterRestoreError")
    assert err["error_message"] == "InvalidOperationException: after1 hook failed"
    (end,) = _kinds(result, schema.INVOKE_END)
    assert (end["status"], end["error_type"]) == ("restore_error", "SnapStartException")
    assert result.verdict.failures[0].error_class == "snapstart"


def test_a_slow_after_restore_hook_is_a_snapstart_timeout(trial):
    result = trial(*_probe("function.env.SNAP_AFTER_SLEEP_MS='5000'", "snapstart.restore_timeout=400ms", *ONE))
    (err,) = _kinds(result, schema.RESTORE_ERROR)
    assert (err["source"], err["error_type"]) == ("timeout", "SnapStartTimeoutException")
    (end,) = _kinds(result, schema.INVOKE_END)
    assert (end["status"], end["error_type"]) == ("restore_error", "SnapStartTimeoutException")
    # The limit ended it, not the hook: the restored runtime never reached its first /next.
    (restored,) = _kinds(result, schema.RESTORE)
    assert not [e for e in _kinds(result, schema.RUNTIME_READY) if e["t_ms"] > restored["t_ms"]]
