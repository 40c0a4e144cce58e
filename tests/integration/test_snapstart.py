"""SnapStart on the real awslambdaric (4.x, snapshot_restore_py's hooks) and the
freezer: the snapshot after init, the restore onto a new address with every flow
gone, the hooks' failures as Lambda reports them, and the restore's time limit."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.history import schema
from harness.scenario import model as sc
from harness.trial import run_one_trial

REPO = Path(__file__).resolve().parents[2]
SNAPSTART = REPO / "scenarios" / "snapstart-restore.yaml"

pytestmark = pytest.mark.root


@pytest.fixture
def trial(run, tmp_path: Path):
    def _trial(*overrides: str, capture: bool = False):
        out = tmp_path / "trials"
        out.mkdir(exist_ok=True)
        return run_one_trial(sc.load(SNAPSTART, list(overrides)), run, out, capture=capture)

    return _trial


def _kinds(result, kind: str) -> list[dict]:
    return [e for e in result.events if e["kind"] == kind]


def _code(tmp_path: Path, body: str) -> str:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "fn.py").write_text(textwrap.dedent(body))
    return str(code)


def _assert_snapshot_and_restore(result) -> dict:
    (snap,) = _kinds(result, schema.SNAPSHOT)
    (restore,) = _kinds(result, schema.RESTORE)
    assert snap["verified"] and snap["method"] == "freezer"
    assert restore["verified"] and restore["address"] != restore["from_address"]
    # Frozen from the snapshot until the restore, and the runtime's first /next follows it.
    freeze, thaw = _kinds(result, schema.FREEZE)[0], _kinds(result, schema.THAW)[0]
    assert freeze["verified"] and thaw["verified"] and thaw["reason"] == "restore"
    assert freeze["t_ms"] <= snap["t_ms"] <= thaw["t_ms"] <= restore["t_ms"]
    ready = _kinds(result, schema.RUNTIME_READY)[0]
    assert ready["t_ms"] > restore["t_ms"]
    return restore


def test_pooled_connection_from_init_fails_the_first_invocation_after_restore(trial):
    result = trial("function.handler=snapstart_pool", capture=True)
    restore = _assert_snapshot_and_restore(result)
    # The init's pooled connection was there to drop, at the service and in the NAT.
    assert restore["changes"]["service_dropped"] == 1 and restore["changes"]["nat_forgot"] >= 1
    v = result.verdict
    assert v.verdict == "recovered", v.reason
    assert v.failed_invocations == 1 and v.error_classes[0] in ("timeout", "reset"), v.failures
    first = next(e for e in result.events if e["kind"] == schema.INVOKE_END)
    assert first["n"] == 1 and first["status"] == "error"
    assert any(restore["from_address"] in line for line in v.evidence), v.evidence


def test_hooks_close_and_reopen_the_pool(trial):
    result = trial("function.handler=snapstart_hooks")
    _assert_snapshot_and_restore(result)
    v = result.verdict
    assert v.verdict in ("healthy", "recovered") and v.failed_invocations == 0, (v.verdict, v.failures)
    lines = [e["line"] for e in _kinds(result, schema.LOG)]
    before = lines.index("before snapshot: pooled connections closed")
    assert lines.index("after restore: new session") > before


def test_a_raising_before_snapshot_hook_is_an_init_error(trial, tmp_path):
    code = _code(tmp_path, """
        from snapshot_restore_py import register_before_snapshot

        @register_before_snapshot
        def refuse():
            raise RuntimeError("no snapshot today")

        def handler(event, context):
            return "never"
        """)
    result = trial(f"function.code={code}", "function.handler=fn.handler", "workload.invocations=1")
    errors = _kinds(result, schema.INIT_ERROR)
    assert errors and all(e["error_type"] == "Runtime.BeforeSnapshotError" for e in errors), errors
    assert "no snapshot today" in errors[0]["error_message"]
    assert not _kinds(result, schema.SNAPSHOT)
    assert [e["code"] for e in _kinds(result, schema.RUNTIME_EXIT)][0] == 64  # awslambdaric's exit
    assert result.verdict.failures[0].error_class == "snapstart"
    (end,) = _kinds(result, schema.INVOKE_END)
    assert (end["status"], end["error_type"]) == ("init_error", "Runtime.BeforeSnapshotError")


def test_a_raising_after_restore_hook_fails_the_restore(trial, tmp_path):
    code = _code(tmp_path, """
        from snapshot_restore_py import register_after_restore

        @register_after_restore
        def refuse():
            raise ValueError("cannot reconnect")

        def handler(event, context):
            return "never"
        """)
    result = trial(f"function.code={code}", "function.handler=fn.handler", "workload.invocations=1",
                   "snapstart.restore_after=0s")
    (err,) = _kinds(result, schema.RESTORE_ERROR)
    assert (err["source"], err["error_type"]) == ("restore/error", "Runtime.AfterRestoreError")
    assert "cannot reconnect" in err["error_message"]
    (end,) = _kinds(result, schema.INVOKE_END)
    assert (end["status"], end["error_type"]) == ("restore_error", "SnapStartException")
    assert "afterRestore() runtime hook encountered an error" in end["body"]
    assert result.verdict.failures[0].error_class == "snapstart"


def test_a_restore_over_the_limit_is_a_snapstart_timeout(trial, tmp_path):
    code = _code(tmp_path, """
        import time
        from snapshot_restore_py import register_after_restore

        @register_after_restore
        def slow():
            time.sleep(5)

        def handler(event, context):
            return "late"
        """)
    result = trial(f"function.code={code}", "function.handler=fn.handler", "workload.invocations=1",
                   "snapstart.restore_after=0s", "snapstart.restore_timeout=400ms")
    (err,) = _kinds(result, schema.RESTORE_ERROR)
    assert (err["source"], err["error_type"]) == ("timeout", "SnapStartTimeoutException")
    (end,) = _kinds(result, schema.INVOKE_END)
    assert (end["status"], end["error_type"]) == ("restore_error", "SnapStartTimeoutException")
    # The limit ended it, not the hook: the restored runtime never reached its first /next.
    (restored,) = _kinds(result, schema.RESTORE)
    assert not [e for e in _kinds(result, schema.RUNTIME_READY) if e["t_ms"] > restored["t_ms"]]
    assert any(e["reason"] == "restore_timeout" for e in _kinds(result, schema.RESET))


def test_a_schedule_entry_at_the_snapshot_fires_while_frozen(trial):
    # The service moves while the environment sits in its snapshot; the hooked
    # sample's new session resolves the new address after the restore.
    result = trial("function.handler=snapstart_hooks", "lab.dns.ttl=1",
                   "schedule=[{at: snapshot + 100ms, do: dns, with: {move_to: '.11', old: rst}}]")
    (fault,) = [e for e in _kinds(result, schema.FAULT) if e["fault"] == "dns"]
    (snap,) = _kinds(result, schema.SNAPSHOT)
    (restore,) = _kinds(result, schema.RESTORE)
    assert fault["verified"] and fault["trigger"] == "snapshot + 100ms"
    assert snap["t_ms"] + 100 <= fault["t_ms"] < restore["t_ms"]
    assert result.verdict.failed_invocations == 0, result.verdict.failures
    assert all(e["server"].endswith(".11:8080") for e in _kinds(result, schema.SERVICE_REQUEST)
               if e["t_ms"] > restore["t_ms"])
