"""Functions that misbehave get a clear verdict, and leave nothing behind."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from harness.function.output import FunctionLog
from harness.history.recorder import HEAD_LOG_LINES, TAIL_LOG_LINES
from harness.lab import netns
from harness.scenario import model as sc
from harness.trial import run_one_trial

pytestmark = [pytest.mark.root]

LOOP = """
    import os, urllib.request
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    def serve(handle):
        while True:
            with urllib.request.urlopen(f"http://{api}/2018-06-01/runtime/invocation/next") as r:
                event, rid = r.read(), r.headers["Lambda-Runtime-Aws-Request-Id"]
            body = handle(event)
            req = urllib.request.Request(f"http://{api}/2018-06-01/runtime/invocation/{rid}/response",
                                         data=body, method="POST")
            urllib.request.urlopen(req).read()
"""


def trial_with(run, tmp_path: Path, body: str, timeout: str = "1s", **workload):
    code = tmp_path / "fn"
    code.mkdir(exist_ok=True)
    (code / "bootstrap.py").write_text(textwrap.dedent(LOOP) + textwrap.dedent(body))
    doc = {"name": "misbehaving",
           "function": {"runtime": "command", "command": [sys.executable, "bootstrap.py"], "code": str(code),
                        "handler": "bootstrap", "timeout": timeout},
           "lab": {"eni": "present"},
           "workload": {"invocations": 2, "interval": "50ms", "init_timeout": "1s", **workload}}
    result = run_one_trial(sc.validate(doc, "test"), run, tmp_path / "out")
    assert not [n for n in netns.list_names() if run.run_id in n]
    return result


def _no_process_left(result) -> None:
    pids = [e["pid"] for e in result.events if e["kind"] == "init_start"]
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z", f"runtime {pid} still running"


def test_exits_at_once(run, tmp_path):
    result = trial_with(run, tmp_path, "raise SystemExit(0)\n")
    v = result.verdict
    assert v.verdict == "stuck"
    assert "Runtime exited without providing a reason" in v.reason
    assert all(e["status"] == "init_error" for e in result.events if e["kind"] == "invoke_end")
    _no_process_left(result)


def test_never_calls_next(run, tmp_path):
    result = trial_with(run, tmp_path, "import time\ntime.sleep(600)\n")
    v = result.verdict
    assert v.verdict == "stuck"
    assert [f.error_class for f in v.failures] == ["timeout", "timeout", "timeout"]
    assert any(e["kind"] == "init_error" and e["source"] == "timeout" for e in result.events)
    _no_process_left(result)


def test_forks_a_child_that_escapes_the_process_group(run, tmp_path):
    body = """
        import subprocess
        # A grandchild in its own session: killpg cannot reach it, the namespace sweep must.
        subprocess.Popen(["sleep", "600"], start_new_session=True)
        serve(lambda event: b'"ok"')
    """
    result = trial_with(run, tmp_path, body)
    assert result.verdict.verdict == "healthy"
    # Everything ran in the (now deleted) sandbox; no `sleep 600` may survive it.
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                 and (p / "cmdline").exists() and (p / "cmdline").read_bytes() == b"sleep\x00600\x00"]
    assert not leftovers


def test_ignores_sigterm_and_hangs_in_the_handler(run, tmp_path):
    body = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        serve(lambda event: time.sleep(600))
    """
    result = trial_with(run, tmp_path, body)
    assert result.verdict.verdict == "stuck"
    assert {f.error_class for f in result.verdict.failures} == {"timeout"}
    assert [e["reason"] for e in result.events if e["kind"] == "reset"] == ["timeout", "timeout"]
    _no_process_left(result)


def test_floods_stdout(run, tmp_path):
    body = """
        import sys
        def flood(event):
            for i in range(20000):
                print(f"line {i}", flush=False)
            sys.stdout.write("x" * 300000)  # one endless line, no newline
            print(flush=True)
            return b'"done"'
        serve(flood)
    """
    result = trial_with(run, tmp_path, body)
    assert result.verdict.verdict == "healthy"
    logs = [e for e in result.events if e["kind"] == "log"]
    assert len(logs) <= HEAD_LOG_LINES + TAIL_LOG_LINES
    assert any(e["kind"] == "log_dropped" for e in result.events)
    # The tail is the *last* output: the endless line is in it (after it, at most what
    # the runtime prints when teardown closes its /next, such as a traceback).
    assert any(e["line"].startswith("x") for e in logs[-TAIL_LOG_LINES:])
    assert logs[0]["line"].startswith("line 0")  # and the head the first
    assert max(len(e["line"]) for e in logs) <= 2000
    history_lines = (result.folder / "history.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in history_lines)


# A pump thread that fails (writing to function.log after it was closed, say) must fail the test.
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_flood_past_the_log_cap_keeps_the_verdict_and_every_line_counted(run, tmp_path, monkeypatch):
    monkeypatch.setattr(FunctionLog, "MAX_LOG_BYTES", 1024 * 1024)
    lines = 600_000  # 8.4 MB of 14-byte lines, eight times the cap
    body = f"""
        def flood(event):
            block = b"".join(b"noise %07d\\n" % i for i in range(1000))
            for _ in range({lines // 1000}):
                os.write(1, block)
            return b'"flooded"'
        serve(flood)
    """
    # A generous function timeout: this test is about what is kept, not how fast.
    result = trial_with(run, tmp_path, body, timeout="60s", invocations=1)
    assert result.verdict.verdict == "healthy"
    assert json.loads((result.folder / "verdict.json").read_text())["verdict"] == "healthy"
    log = (result.folder / "function.log").read_bytes()
    note = b"[enirace] function.log truncated at 1048576 bytes\n"
    assert log.endswith(note) and len(log) <= FunctionLog.MAX_LOG_BYTES + len(note)
    logs = [e for e in result.events if e["kind"] == "log"]
    dropped = sum(e["lines"] for e in result.events if e["kind"] == "log_dropped")
    assert len(logs) == HEAD_LOG_LINES + TAIL_LOG_LINES
    # Every line was read and none invented. What follows the flood in the tail is the
    # runtime's own last words (its /next connection closing as the trial ends).
    noise = [e["line"] for e in logs if e["line"].startswith("noise ")]
    assert len(noise) + dropped == lines
    assert noise[:2] == ["noise 0000000", "noise 0000001"] and noise[-1] == "noise 0000999"
