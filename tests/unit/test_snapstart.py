"""SnapStart's scenario keys and the restore endpoints, as Lambda and the RIE
(--enable-init-caching) answer them. The route tests play the runtime over HTTP
against an emulator on loopback, with a real (sleeping) process as its runtime."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.emulator.api import RuntimeAPI
from harness.emulator.restore import Plan
from harness.errors import ScenarioError
from harness.function.handle import RuntimeProcess
from harness.function.spec import LaunchSpec
from harness.history import schema
from harness.history.recorder import History
from harness.scenario import model as sc
from harness.scenario.triggers import parse_trigger

REPO = Path(__file__).resolve().parents[2]
SNAPSTART = REPO / "scenarios" / "snapstart-restore.yaml"
LATE_ENI = REPO / "scenarios" / "late-eni-attach.yaml"
API = "/2018-06-01/runtime"


# -- scenario keys -------------------------------------------------------------------

def test_the_bundled_scenario_has_lambdas_defaults():
    s = sc.load(SNAPSTART)
    assert s.function.snapstart and s.snapstart is not None
    assert (s.snapstart.mode, s.snapstart.new_address, s.snapstart.drop_flows) == ("freezer", True, True)
    assert s.snapstart.restore_timeout == 10_000.0 and s.snapstart.restore_after == 1000.0


def test_a_snapstart_function_without_the_block_gets_the_defaults_and_dumps_them():
    s = sc.load(LATE_ENI, ["function.snapstart=true"])
    assert s.snapstart is not None and s.snapstart.restore_after == 0.0
    again = sc.validate(__import__("yaml").safe_load(sc.dump(s)), "dumped")
    assert again.snapstart == s.snapstart
    assert "snapstart" not in __import__("yaml").safe_load(sc.dump(sc.load(LATE_ENI)))


@pytest.mark.parametrize("sets, message", [
    (["snapstart.restore_after=1s"], "snapstart: this block configures SnapStart's restore; set function.snapstart"),
    (["function.snapstart=true", "backend=docker"], "does not offer SnapStart for container images"),
    (["function.snapstart=true", "function.runtime=command", "function.command=[/bin/true]"],
     "not OS-only (custom) runtimes"),
    (["function.snapstart=true", "snapstart.mode=xen"], "snapstart.mode: 'xen' is not allowed"),
    (["function.snapstart=true", "snapstart.restore_after=6m"], "snapstart.restore_after: at most 300s"),
    (["function.snapstart=true", "snapstart.restore_timeout=0s"], "snapstart.restore_timeout: must be longer"),
    (["function.snapstart=true", "snapstart.drop=true"], "snapstart.drop: unknown field"),
])
def test_snapstart_mistakes_are_one_line(sets, message):
    with pytest.raises(ScenarioError) as err:
        sc.load(LATE_ENI, sets)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_schedule_entries_can_fire_at_the_snapshot_and_the_restore():
    assert parse_trigger("snapshot + 100ms").event == schema.SNAPSHOT
    assert parse_trigger("restore#2 + 0ms").occurrence == 2


def test_the_runtime_is_told_it_is_snap_start():
    from harness.function.launch import launch_spec

    assert launch_spec(sc.load(SNAPSTART).function).env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "snap-start"
    assert "AWS_LAMBDA_INITIALIZATION_TYPE" not in launch_spec(sc.load(LATE_ENI).function).env


# -- the endpoints -------------------------------------------------------------------

def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(spec: LaunchSpec, generation: int) -> RuntimeProcess:
    return RuntimeProcess(generation, subprocess.Popen(spec.argv, start_new_session=True))


@pytest.fixture
def emulator():
    made = []

    def _make(plan: Plan | None) -> tuple[RuntimeAPI, History, int]:
        history, port = History(), _port()
        spec = LaunchSpec([sys.executable, "-c", "import time; time.sleep(60)"], {}, Path("."), "sleeper")
        api = RuntimeAPI(None, history, _spawn, spec, timeout_s=5, runtime_addr=("127.0.0.1", port),
                         snapstart=plan)
        api.start(serve_invoke_port=False)
        made.append(api)
        return api, history, port

    yield _make
    for api in made:
        api.stop()


def _call(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def _in_thread(fn, *args):
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(result=fn(*args)), daemon=True)
    t.start()
    return t, box


def test_without_snapstart_the_restore_routes_are_404(emulator):
    _, _, port = emulator(None)
    for method, path in (("GET", f"{API}/restore/next"), ("POST", f"{API}/restore/error")):
        status, _, body = _call(port, method, path, b"{}" if method == "POST" else None)
        assert (status, body) == (404, b"404 page not found\n")


def _transition(src: str, dst: str) -> dict:
    return {"errorMessage": f"State transition from {src} to {dst} failed for runtime. "
                            "Error: State transition is not allowed", "errorType": "InvalidStateTransition"}


def test_restore_next_snapshots_and_answers_at_the_restore(emulator):
    api, history, port = emulator(Plan(restore_after_s=0.2))
    init, got = _in_thread(api.init)
    time.sleep(0.2)  # the "runtime" is up: Started
    status, headers, body = _call(port, "POST", f"{API}/restore/next", b"")
    assert (status, headers.get("Allow")) == (405, "GET")
    status, _, body = _call(port, "POST", f"{API}/restore/error", b"{}")
    assert (status, json.loads(body)) == (403, _transition("Started", "RuntimeRestoreErrorState"))
    waiting, reply = _in_thread(_call, port, "GET", f"{API}/restore/next")
    init.join(5)
    assert got["result"] == "ready" and history.of_kind(schema.SNAPSHOT)
    assert not reply  # restore/next blocks until the restore
    status, _, body = _call(port, "GET", f"{API}/restore/next")
    assert (status, json.loads(body)) == (403, _transition("RestoreReady", "Ready"))
    invoke, outcome = _in_thread(api.invoke, b"{}")
    waiting.join(5)
    status, headers, body = reply["result"]
    assert (status, body) == (200, b"") and "Content-Type" not in headers
    (restore,) = history.of_kind(schema.RESTORE)
    assert restore["waited_ms"] >= 200 and restore["verified"]
    hook_error = b'{"errorType": "ValueError", "errorMessage": "boom"}'
    status, _, body = _call(port, "POST", f"{API}/restore/error", hook_error,
                            {"Lambda-Runtime-Function-Error-Type": "Runtime.AfterRestoreError"})
    assert (status, body) == (202, b'{"status":"OK"}\n')
    invoke.join(5)
    _, result = outcome["result"]
    assert (result.status, result.error_type) == ("restore_error", "SnapStartException")
    assert result.rie_response()[0] == 400
    assert json.loads(result.body)["message"].startswith("The afterRestore() runtime hook encountered an error")
    (err,) = history.of_kind(schema.RESTORE_ERROR)
    assert (err["error_type"], err["error_message"]) == ("Runtime.AfterRestoreError", "ValueError: boom")


def test_a_runtime_that_never_polls_next_after_the_restore_times_out(emulator):
    api, history, port = emulator(Plan(restore_timeout_s=0.3))
    init, _ = _in_thread(api.init)
    time.sleep(0.2)
    waiting, _ = _in_thread(_call, port, "GET", f"{API}/restore/next")
    init.join(5)
    _, result = api.invoke(b"{}")
    assert (result.status, result.error_type, result.rie_response()[0]) == (
        "restore_error", "SnapStartTimeoutException", 408)
    assert [e["reason"] for e in history.of_kind(schema.RESET)] == ["restore_timeout"]


def test_a_dumped_scenario_with_lab_durations_loads_again():
    # scenario.yaml is what `enirace judge` reads back: lab.nat.idle_timeout and the
    # service's keepalive_timeout were dumped as bare numbers, which a duration refuses.
    s = sc.load(SNAPSTART, ["lab.service.keepalive_timeout=500ms"])
    again = sc.validate(__import__("yaml").safe_load(sc.dump(s)), "dumped")
    assert again.lab == s.lab and again.snapstart == s.snapstart


# -- the report ------------------------------------------------------------------------

def _restored_history() -> list[dict]:
    def log(t, line):
        return {"t_ms": t, "kind": schema.LOG, "source": "function", "line": line}

    frozen = {"generation": 1, "verified": True, "method": "cgroup_v1", "took_ms": 0.3}
    changes = {"new_address": True, "drop_flows": True, "address": "198.18.7.101",
               "from_address": "198.18.7.100", "verified": True, "service_dropped": 1, "nat_forgot": 2}
    return [
        {"t_ms": 1.0, "kind": schema.TRIAL_START, "trial": "t", "run": "r", "subnet": "198.18.7.0/24", "pid": 1,
         "seed": 0, "schema": schema.SCHEMA_VERSION},
        {"t_ms": 30.0, "kind": schema.INIT_START, "generation": 1, "phase": "init", "pid": 2, "command": "python"},
        log(150.0, "import done"),
        log(200.0, "before snapshot: pooled connections closed"),
        {"t_ms": 205.0, "kind": schema.FREEZE, "state": "FROZEN", **frozen},
        {"t_ms": 205.1, "kind": schema.SNAPSHOT, "generation": 1, "verified": True, "method": "freezer"},
        {"t_ms": 206.0, "kind": schema.INVOKE_START, "n": 1, "request_id": "r1"},
        {"t_ms": 1210.0, "kind": schema.THAW, "state": "THAWED", "frozen_ms": 1005.0, "reason": "restore", **frozen},
        {"t_ms": 1211.0, "kind": schema.RESTORE, "generation": 1, "method": "freezer", "verified": True,
         "address": "198.18.7.101", "from_address": "198.18.7.100", "changes": changes, "waited_ms": 1005.9,
         "aspects": {}, "blip_ms": [205.1, 1211.0]},
        {"t_ms": 1212.0, "kind": schema.RUNTIME_READY, "generation": 1},
        log(1213.0, "after restore: new session"),  # read after the /next it came before
        {"t_ms": 1220.0, "kind": schema.INVOKE_END, "n": 1, "request_id": "r1", "status": "ok", "error_type": "",
         "error_message": "", "reinit": False, "init_starts": [], "body": "{}", "duration_ms": 1014.0},
        log(1300.0, "a line of the handler, later"),
    ]


def test_the_timeline_shows_snapshot_restore_and_the_hooks_output():
    import io

    from rich.console import Console

    from harness.checker.verdict import judge
    from harness.report import timeline

    events = _restored_history()
    verdict = judge(events)
    assert verdict.verdict == "recovered" and not verdict.failed_invocations  # absorbed: it ran under the restore
    assert verdict.reason.startswith(
        "ran under the restore and all 1 invocations succeeded, 9 ms after the restore"), verdict.reason
    out = io.StringIO()
    timeline.render(Console(file=out, width=200), "t", events, verdict)
    text = out.getvalue()
    assert "snapshot       runtime #1 called restore/next: snapshot taken (freezer)" in text
    assert ("restore        runtime #1 restored after 1.0 s onto 198.18.7.101 (was 198.18.7.100), "
            "flows dropped: service 1, NAT 2") in text
    assert "output         before snapshot: pooled connections closed" in text
    assert "output         after restore: new session" in text
    assert "runtime #1 polled /next: restore done" in text
    assert "a line of the handler, later" not in text  # outside the hooks' spans: --verbose only
