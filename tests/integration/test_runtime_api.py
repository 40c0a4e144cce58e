"""The emulator against real processes in a real sandbox namespace.

Protocol tests play the runtime themselves: the launched 'bootstrap' is a process
that only sleeps, and the test thread speaks HTTP to 127.0.0.1:9001 from inside
the sandbox, exactly as a runtime would.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.backends.process import ProcessLauncher
from harness.emulator import protocol as rp
from harness.emulator.api import RuntimeAPI
from harness.function.spec import LaunchSpec
from harness.history.recorder import History
from harness.lab import netns

pytestmark = [pytest.mark.root]
API = "/2018-06-01"


def make_api(lab, tmp_path, script: str, timeout_s: float = 2.0) -> tuple[RuntimeAPI, History, list[str]]:
    boot = tmp_path / "bootstrap.py"
    boot.write_text(textwrap.dedent(script))
    history = History()
    output: list[str] = []
    backend = ProcessLauncher(lab.sandbox, lambda gen, line: output.append(f"{gen}:{line}"))
    spec = LaunchSpec([sys.executable, str(boot)], {"PATH": os.environ["PATH"],
                                                    "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"},
                      tmp_path, "bootstrap.py")
    api = RuntimeAPI(lab.sandbox, history, backend.spawn, spec, timeout_s=timeout_s)
    api.start()
    return api, history, output


SLEEPER = "import time\ntime.sleep(60)\n"


class Client:
    """An HTTP/1.1 keep-alive client living in the sandbox (like awslambdaric's curl handle)."""

    def __init__(self, ns: str, port: int = 9001) -> None:
        self.ns = ns
        with netns.entered(ns):
            self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            self.conn.connect()

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             poll_next: bool = True):
        self.conn.request(method, path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        reply = resp.status, dict(resp.getheaders()), resp.read()
        if poll_next and reply[0] == 202 and path.endswith(("/response", "/error")):
            poll_next_in_background(self.ns)
        return reply


def poll_next_in_background(ns: str) -> None:
    """What a runtime does after its result: GET /next again, which is when the RIE
    answers the invoke (on a connection of its own; it blocks until the next event)."""
    def _poll() -> None:
        try:
            Client(ns).call("GET", f"{API}/runtime/invocation/next")
        except (OSError, http.client.HTTPException):
            pass  # the emulator stopped
    threading.Thread(target=_poll, daemon=True).start()


def invoke_in_background(api: RuntimeAPI, payload: bytes = b'{"k": 1}'):
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(result=api.invoke(payload)), daemon=True)
    t.start()
    return t, box


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_next_headers_response_and_state_errors(lab, tmp_path):
    api, history, _ = make_api(lab, tmp_path, SLEEPER)
    try:
        t, box = invoke_in_background(api)
        wait_for(lambda: history.of_kind("init_start"))
        rt = Client(lab.sandbox)
        status, headers, body = rt.call("GET", f"{API}/runtime/invocation/next")
        assert status == 200 and body == b'{"k": 1}'
        assert headers["Content-Type"] == "application/json"
        rid = headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = int(headers["Lambda-Runtime-Deadline-Ms"])
        assert 0 < deadline - time.time() * 1000 <= 2000
        assert headers["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:test_function")
        # Wrong id first, then the real response, then a second response.
        status, headers, body = rt.call("POST", f"{API}/runtime/invocation/nope/response", b"{}")
        assert (status, json.loads(body)["errorType"]) == (400, "InvalidRequestID")
        assert headers["Content-Type"] == "application/json"
        status, _, body = rt.call("POST", f"{API}/runtime/invocation/{rid}/response", b'"done"')
        assert (status, body) == (202, b'{"status":"OK"}\n')
        status, _, body = rt.call("POST", f"{API}/runtime/invocation/{rid}/response", b'"again"')
        assert (status, json.loads(body)["errorType"]) == (403, "InvalidStateTransition")
        status, _, body = rt.call("POST", f"{API}/runtime/init/error", b"{}")
        assert status == 403
        t.join(5)
        n, outcome = box["result"]
        assert (n, outcome.status, outcome.body) == (1, "ok", b'"done"')
        status, headers, body = rt.call("GET", "/2018-06-01/nowhere")
        assert status == 404 and "Content-Type" in headers
    finally:
        api.stop()


def test_function_error_and_payload_limit(lab, tmp_path):
    api, history, _ = make_api(lab, tmp_path, SLEEPER)
    try:
        t, box = invoke_in_background(api)
        wait_for(lambda: history.of_kind("init_start"))
        rt = Client(lab.sandbox)
        _, headers, _ = rt.call("GET", f"{API}/runtime/invocation/next")
        rid = headers["Lambda-Runtime-Aws-Request-Id"]
        status, _, body = rt.call("POST", f"{API}/runtime/invocation/{rid}/response",
                                  b"x" * (6 * 1024 * 1024 + 101))
        assert (status, json.loads(body)["errorType"]) == (413, "RequestEntityTooLarge")
        # The 413 ended the invocation: a later result is refused, and the runtime's
        # next /next gets the next event, never this one again.
        err = json.dumps({"errorMessage": "Resource temporarily unavailable (svc.internal:8080)",
                          "errorType": "HttpRequestException", "stackTrace": []}).encode()
        status, _, _ = rt.call("POST", f"{API}/runtime/invocation/{rid}/error", err,
                               {"Lambda-Runtime-Function-Error-Type": "HttpRequestException",
                                "Content-Type": "application/vnd.aws.lambda.error+json"})
        assert status == 403
        poll_next_in_background(lab.sandbox)
        t.join(5)
        _, outcome = box["result"]
        assert (outcome.status, outcome.error_type) == ("error", "Function.ResponseSizeTooLarge")
        assert outcome.rie_response() == (200, rp.response_too_large_body(6 * 1024 * 1024 + 101))
        # A function error on the next invoke is delivered as the runtime posted it.
        t, box = invoke_in_background(api)
        wait_for(lambda: len(history.of_kind("invoke_start")) == 2)
        rt2 = Client(lab.sandbox)
        rid = next(e for e in reversed(history.events) if e["kind"] == "invoke_start")["request_id"]
        status, _, _ = rt2.call("POST", f"{API}/runtime/invocation/{rid}/error", err,
                                {"Lambda-Runtime-Function-Error-Type": "HttpRequestException",
                                 "Content-Type": "application/vnd.aws.lambda.error+json"})
        assert status == 202
        t.join(5)
        _, outcome = box["result"]
        assert outcome.status == "error" and outcome.error_type == "HttpRequestException"
        assert outcome.rie_response() == (200, err)
    finally:
        api.stop()


def test_timeout_kills_the_process_group_and_the_next_invoke_reinits(lab, tmp_path):
    # The bootstrap forks a grandchild that would outlive a plain kill of the parent.
    script = """
        import os, sys, time, urllib.request
        api = os.environ["AWS_LAMBDA_RUNTIME_API"]
        child = os.fork()
        if child == 0:
            time.sleep(120); os._exit(0)
        print("child", child, flush=True)
        while True:
            with urllib.request.urlopen(f"http://{api}/2018-06-01/runtime/invocation/next") as r:
                event = r.read()
            if event == b'"hang"':
                time.sleep(120)
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            req = urllib.request.Request(f"http://{api}/2018-06-01/runtime/invocation/{rid}/response",
                                         data=b'"ok"', method="POST")
            urllib.request.urlopen(req).read()
    """
    api, history, output = make_api(lab, tmp_path, script, timeout_s=1.0)
    try:
        _, outcome = api.invoke(b'"hang"')
        assert outcome.status == "timeout"
        assert outcome.rie_response() == (200, b"Task timed out after 1.00 seconds")
        child = int(next(line for line in output if line.startswith("1:child")).split()[1])
        wait_for(lambda: not Path(f"/proc/{child}").exists() or
                 Path(f"/proc/{child}/stat").read_text().split()[2] == "Z")
        assert [e["reason"] for e in history.of_kind("reset")] == ["timeout"]
        _, outcome = api.invoke(b'"fine"')
        assert outcome.status == "ok" and outcome.reinit
        assert [e["generation"] for e in history.of_kind("init_start")] == [1, 2]
    finally:
        api.stop()


def test_crash_during_invoke_is_502_runtime_exit_error(lab, tmp_path):
    script = """
        import os, urllib.request
        api = os.environ["AWS_LAMBDA_RUNTIME_API"]
        urllib.request.urlopen(f"http://{api}/2018-06-01/runtime/invocation/next").read()
        os._exit(3)
    """
    api, history, _ = make_api(lab, tmp_path, script)
    try:
        _, outcome = api.invoke(b"{}")
        status, body = outcome.rie_response()
        assert status == 502
        doc = json.loads(body)
        assert doc["errorType"] == "Runtime.ExitError"
        assert doc["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")
        assert history.of_kind("reset")[0]["reason"] == "runtime_exit"
    finally:
        api.stop()


def test_init_failure_starts_the_bootstrap_twice_within_one_invoke(lab, tmp_path):
    script = """
        import json, os, sys, urllib.request
        api = os.environ["AWS_LAMBDA_RUNTIME_API"]
        body = json.dumps({"errorMessage": "boom", "errorType": "Runtime.ImportModuleError"}).encode()
        req = urllib.request.Request(f"http://{api}/2018-06-01/runtime/init/error", data=body, method="POST",
                                     headers={"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
        print(urllib.request.urlopen(req).status, flush=True)
        sys.exit(1)
    """
    api, history, output = make_api(lab, tmp_path, script)
    try:
        _, outcome = api.invoke(b"{}")
        assert outcome.status == "init_error"
        assert outcome.init_starts == [1, 2]
        assert outcome.rie_response()[0] == 502
        assert json.loads(outcome.rie_response()[1])["errorType"] == "Runtime.ImportModuleError"
        assert [e["source"] for e in history.of_kind("init_error")] == ["init/error", "init/error"]
        assert "1:202" in output and "2:202" in output
        # Later invokes re-init once each, like the RIE.
        _, outcome = api.invoke(b"{}")
        assert outcome.init_starts == [3]
    finally:
        api.stop()


def test_rie_invoke_path_works_with_curl_inside_the_sandbox(lab, tmp_path):
    script = """
        import os, urllib.request
        api = os.environ["AWS_LAMBDA_RUNTIME_API"]
        while True:
            with urllib.request.urlopen(f"http://{api}/2018-06-01/runtime/invocation/next") as r:
                event, rid = r.read(), r.headers["Lambda-Runtime-Aws-Request-Id"]
            req = urllib.request.Request(f"http://{api}/2018-06-01/runtime/invocation/{rid}/response",
                                         data=b'{"echo": ' + event + b'}', method="POST")
            urllib.request.urlopen(req).read()
    """
    api, _, _ = make_api(lab, tmp_path, script)
    try:
        out = subprocess.run(
            netns.exec_prefix(lab.sandbox) + [
                "curl", "-s", "-w", "\n%{http_code}", "-XPOST",
                "http://localhost:8080/2015-03-31/functions/function/invocations", "-d", '{"hello":"rie"}'],
            capture_output=True, text=True, timeout=20)
        body, code = out.stdout.rsplit("\n", 1)
        assert code == "200"
        assert json.loads(body) == {"echo": {"hello": "rie"}}
    finally:
        api.stop()


def test_malformed_requests_never_break_the_emulator(lab, tmp_path):
    import socket

    api, history, _ = make_api(lab, tmp_path, SLEEPER)
    try:
        # Raw garbage, a bad Content-Length and a chunked body that lies about its size.
        for raw in (b"\x00\xff garbage\r\n\r\n", b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n"
                    b"Content-Length: nope\r\n\r\n", b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"):
            with netns.entered(lab.sandbox):
                s = socket.create_connection(("127.0.0.1", 9001), timeout=5)
            s.sendall(raw)
            reply = s.recv(4096)
            s.close()
            assert reply.startswith(b"HTTP/1.") and b" 400 " in reply.split(b"\r\n")[0]
        t, box = invoke_in_background(api)
        wait_for(lambda: history.of_kind("init_start"))
        rt = Client(lab.sandbox)
        _, headers, _ = rt.call("GET", f"{API}/runtime/invocation/next")
        rid = headers["Lambda-Runtime-Aws-Request-Id"]
        # /error with a body that is not JSON is kept verbatim, like the RIE does.
        status, _, _ = rt.call("POST", f"{API}/runtime/invocation/{rid}/error", b"{not json",
                               {"Lambda-Runtime-Function-Error-Type": "Function.Oops"})
        assert status == 202
        t.join(5)
        _, outcome = box["result"]
        assert outcome.status == "error" and outcome.body == b"{not json"
        assert outcome.error_type == "Function.Oops"
        # A /next from a runtime that already responded blocks until the next event: still alive.
        assert rt.call("GET", f"{API}/ping")[2] == b"pong"
    finally:
        api.stop()
