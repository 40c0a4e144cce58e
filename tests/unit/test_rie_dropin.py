"""enirace-rie, the stand-alone drop-in for aws-lambda-rie: flags, environment,
ports and log lines, run for real on loopback (no root, no Docker)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from harness.emulator import dropin as rie_cli
from harness.emulator import rie_log as rie_log
from harness.emulator.protocol import INVOKE_PATH

APP = '''
import os
print("init", os.environ["_HANDLER"], os.environ["AWS_LAMBDA_FUNCTION_NAME"], os.environ["AWS_ACCESS_KEY_ID"] == "")
def handler(event, context):
    if event.get("boom"):
        raise ValueError("boom")
    return {"echo": event, "arn": context.invoked_function_arn}
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_parse_args_like_go_flags():
    opts = rie_cli.parse_args(["--log-level=debug", "python", "-m", "awslambdaric",
                               "--runtime-api-address", "127.0.0.1:9", "app.handler"])
    assert opts.log_level == "debug" and opts.runtime_api == "127.0.0.1:9"
    assert opts.args == ["python", "-m", "awslambdaric", "app.handler"]  # unknown flags stay positional
    assert rie_cli.bootstrap(opts.args)[2] == "app.handler"  # more than one arg: the last is the handler
    with pytest.raises(SystemExit):
        rie_cli.parse_args(["--log-level", "loud"])


@pytest.fixture
def rie(tmp_path: Path):
    (tmp_path / "app.py").write_text(APP)
    invoke, api = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_LAMBDA_FUNCTION_TIMEOUT="2", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.emulator.dropin", "--runtime-interface-emulator-address", f"127.0.0.1:{invoke}",
         f"--runtime-api-address=127.0.0.1:{api}", sys.executable, "-m", "awslambdaric", "app.handler"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{invoke}{INVOKE_PATH}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", invoke), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.02)
    yield proc, url
    if proc.poll() is None:
        proc.terminate()
        proc.communicate(timeout=10)


def _post(url: str, doc: object) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=json.dumps(doc).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read()


def test_invokes_and_log_lines(rie):
    proc, url = rie
    status, body = _post(url, {"a": 1})
    assert status == 200
    assert json.loads(body) == {"echo": {"a": 1}, "arn": "arn:aws:lambda:us-east-1:012345678912:function:test_function"}
    status, body = _post(url, {"boom": 1})
    assert status == 200 and json.loads(body)["errorType"] == "ValueError"  # 200, as the RIE does
    proc.terminate()
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "init app.handler test_function True" in out  # RIE defaults, empty credentials
    starts = [ln for ln in out.splitlines() if ln.startswith("START RequestId: ")]
    reports = [ln for ln in out.splitlines() if ln.startswith("REPORT RequestId: ")]
    assert len(starts) == 2 and len(reports) == 2
    assert "Init Duration: " in reports[0] and "Init Duration" not in reports[1] and reports[0].endswith("\t")
    events = [rie_log.classify_line(ln) for ln in err.splitlines()]
    assert all(e.kind == "rapid" for e in events), err
    names = [e.event for e in events]
    assert names[0] == "exec" and events[0].fields["handler"] == "app.handler"
    for expected in ("init_start", "init_done", "init_report", "invoke_start", "invoke_done"):
        assert expected in names
    assert "Received signal signal=terminated" in err


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_usage_and_exits_0_without_serving(flag):
    # Before: the drop-in took --help as the bootstrap and bound 0.0.0.0:8080 forever.
    proc = subprocess.run([sys.executable, "-m", "harness.emulator.dropin", flag], capture_output=True,
                          text=True, timeout=20)
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage:\n  aws-lambda-rie [OPTIONS]")
    assert "--runtime-interface-emulator-address=" in proc.stdout
