"""enirace-rie --freeze: off by default, as the RIE (which never freezes); with
the flag the runtime is frozen between invocations (SIGSTOP/SIGCONT of its
process group: the drop-in has no cgroup), so its timers stop in a gap."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from harness.emulator import dropin
from harness.emulator.protocol import INVOKE_PATH

TICKER = '''
import threading, time
ticks = []
def tick():
    while True:
        ticks.append(time.monotonic())
        time.sleep(0.01)
threading.Thread(target=tick, daemon=True).start()
def handler(event, context):
    return {"now": time.monotonic(), "ticks": list(ticks)}
'''


def test_freeze_is_off_unless_asked():
    assert not dropin.parse_args(["python", "-m", "awslambdaric", "app.handler"]).freeze
    opts = dropin.parse_args(["--freeze", "python", "-m", "awslambdaric", "app.handler"])
    assert opts.freeze and opts.args == ["python", "-m", "awslambdaric", "app.handler"]


def test_help_lists_freeze():
    proc = subprocess.run([sys.executable, "-m", "harness.emulator.dropin", "--help"], capture_output=True,
                          text=True, timeout=20)
    assert proc.returncode == 0
    line = next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith("--freeze"))
    assert "as Lambda does" in line and "the RIE never does" in line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _invoke(url: str) -> dict:
    req = urllib.request.Request(url, data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _ticks_in_a_gap(tmp_path: Path, *flags: str) -> tuple[float, int, str]:
    """(seconds between two invocations, the ticker's ticks meanwhile, stdout)."""
    (tmp_path / "app.py").write_text(TICKER)
    invoke, api = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_LAMBDA_FUNCTION_TIMEOUT="5", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.emulator.dropin", *flags, "--runtime-interface-emulator-address",
         f"127.0.0.1:{invoke}", f"--runtime-api-address=127.0.0.1:{api}", sys.executable, "-m", "awslambdaric",
         "app.handler"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{invoke}{INVOKE_PATH}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", invoke), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        first = _invoke(url)
        time.sleep(0.5)
        second = _invoke(url)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    return second["now"] - first["now"], sum(first["now"] < t < second["now"] for t in second["ticks"]), out


def test_without_freeze_the_runtime_ticks_through_a_gap(tmp_path):
    elapsed, ticks, out = _ticks_in_a_gap(tmp_path)
    assert elapsed >= 0.45 and ticks >= 25
    assert "SIGSTOP" not in out


def test_with_freeze_the_runtime_is_stopped_in_a_gap(tmp_path):
    elapsed, ticks, out = _ticks_in_a_gap(tmp_path, "--freeze")
    # CLOCK_MONOTONIC went on; the 10 ms ticker did not (a tick may squeeze in
    # between the response and the freeze, and one after the thaw).
    assert elapsed >= 0.45 and ticks <= 3
    assert "freezing with SIGSTOP/SIGCONT of its process group" in out
