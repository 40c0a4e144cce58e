"""enirace-rie --enable-init-caching: the restore endpoints exist only with the
flag, as in the RIE. A real awslambdaric started with
AWS_LAMBDA_INITIALIZATION_TYPE=snap-start then runs its before-snapshot hook,
waits in restore/next, and runs its after-restore hook before the first event;
without the flag restore/next is 404 and its init fails (Runtime.BeforeSnapshotError)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness.emulator import dropin
from harness.emulator.protocol import INVOKE_PATH

APP = '''
from snapshot_restore_py import register_after_restore, register_before_snapshot
STATE = {"restored": False}

@register_before_snapshot
def before():
    print("hook: before snapshot", flush=True)

@register_after_restore
def after():
    STATE["restored"] = True
    print("hook: after restore", flush=True)

def handler(event, context):
    return {"restored": STATE["restored"]}
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _invoke_once(tmp_path: Path, *flags: str) -> tuple[int, bytes, str]:
    (tmp_path / "app.py").write_text(APP)
    invoke, api = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_LAMBDA_FUNCTION_TIMEOUT="5", PYTHONUNBUFFERED="1", AWS_LAMBDA_INITIALIZATION_TYPE="snap-start")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.emulator.dropin", *flags, "--runtime-interface-emulator-address",
         f"127.0.0.1:{invoke}", f"--runtime-api-address=127.0.0.1:{api}", sys.executable, "-m", "awslambdaric",
         "app.handler"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", invoke), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        req = urllib.request.Request(f"http://127.0.0.1:{invoke}{INVOKE_PATH}", data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    return status, body, out


def test_init_caching_is_off_unless_asked():
    assert not dropin.parse_args(["python", "-m", "awslambdaric", "app.handler"]).init_caching
    assert dropin.parse_args(["--enable-init-caching", "python", "-m", "awslambdaric", "app.handler"]).init_caching


def test_with_init_caching_the_hooks_run_around_the_restore(tmp_path):
    status, body, out = _invoke_once(tmp_path, "--enable-init-caching")
    assert (status, body) == (200, b'{"restored": true}'), out
    assert out.index("hook: before snapshot") < out.index("hook: after restore") < out.index("END RequestId")


def test_without_init_caching_restore_next_is_404_and_the_init_fails(tmp_path):
    status, body, out = _invoke_once(tmp_path)
    # awslambdaric reports the failed restore/next (chi's 404) as its init error and exits 64.
    assert status == 502 and b"LambdaRuntimeClientError" in body and b"404 page not found" in body, body
    assert "hook: before snapshot" in out and "hook: after restore" not in out
    assert "exited: exit status 64" in out, out
