"""The invoke endpoint and the Runtime API against the RIE's own answers (its
internal/lambda rie and rapi packages): expected values are the RIE's status
codes, headers and bodies, written out here, not taken from the emulator."""

from __future__ import annotations

import base64
import json
import sys

from tests.conformance.conftest import API, SLEEPER, wait_for

MAX = 6 * 1024 * 1024 + 100  # interop.MaxPayloadSize: 6291556

APP = '''
import json, os
def handler(event, context):
    if event.get("big"):
        with open(os.path.join(os.path.dirname(__file__), "runs"), "a") as f:
            f.write("x")
        return "y" * (7 * 1024 * 1024)
    cc = context.client_context
    return {"custom": cc.custom, "env": cc.env, "client": cc.client.installation_id,
            "tenant": context.tenant_id}
'''


def awslambdaric(target) -> None:
    (target.tmp_path / "app.py").write_text(APP)
    target.start("", argv=[sys.executable, "-m", "awslambdaric", "app.handler"])


def test_awslambdaric_sees_client_context_and_tenant_id(target):
    awslambdaric(target)
    cc = {"custom": {"k": "v"}, "env": {"e": "1"}, "client": {"installation_id": "inst-1"}}
    reply = target.invoke(b"{}", {"X-Amz-Client-Context": base64.b64encode(json.dumps(cc).encode()).decode(),
                                  "X-Amz-Tenant-Id": "tenant-7"}).result()
    assert reply.status == 200, reply
    assert json.loads(reply.body) == {"custom": {"k": "v"}, "env": {"e": "1"}, "client": "inst-1",
                                      "tenant": "tenant-7"}


def test_a_7_mb_response_ends_the_invocation_once_with_function_response_size_too_large(target):
    awslambdaric(target)
    reply = target.invoke(b'{"big": 1}').result()
    # The body is interop.ErrorResponseTooLarge.AsErrorResponse (errorType first, no
    # newline). awslambdaric raises on the 413 and exits instead of polling /next, so
    # the RIE's release fails (ErrInvokeDoneFailed): 502 with that body.
    assert (reply.status, reply.headers["Content-Type"]) == (502, "text/plain; charset=utf-8")
    assert reply.body == (b'{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"Response payload size '
                          b'(7340034 bytes) exceeded maximum allowed payload size (6291556 bytes)."}')
    # The handler ran once: the event was never delivered again. A later invoke is ordinary.
    cc = base64.b64encode(b'{"custom": {}, "client": {"installation_id": "i"}}').decode()
    again = target.invoke(b"{}", {"X-Amz-Client-Context": cc}).result()
    assert again.status == 200 and json.loads(again.body)["client"] == "i", again
    assert (target.tmp_path / "runs").read_text() == "x"


def test_the_runtime_gets_413_and_a_later_response_is_refused(target):
    target.start(SLEEPER)
    first = target.invoke(b'"one"')
    target.wait_init()
    rt = target.rt()
    _, rid = target.next_event(rt)
    r = target.call("POST", f"{API}/runtime/invocation/{rid}/response", b"x" * (MAX + 1), conn=rt)
    assert (r.status, r.headers["Content-Type"]) == (413, "application/json")
    assert r.body == (b'{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).",'
                      b'"errorType":"RequestEntityTooLarge"}\n')
    r = target.call("POST", f"{API}/runtime/invocation/{rid}/response", b'"late"', conn=rt)
    assert r.status == 403 and json.loads(r.body)["errorType"] == "InvalidStateTransition"
    second = target.invoke(b'"two"')
    event, rid2 = target.next_event(rt)
    assert (event.body, rid2 != rid) == (b'"two"', True)  # the next event, never the first again
    assert first.result().body.startswith(b'{"errorType":"Function.ResponseSizeTooLarge"')
    assert target.call("POST", f"{API}/runtime/invocation/{rid2}/response", b'"ok"', conn=rt).status == 202
    target.poll_next_in_background()
    assert second.result().body == b'"ok"'


def test_invalid_base64_client_context_is_500_with_an_empty_body(target):
    target.start(SLEEPER)
    reply = target.invoke(b"{}", {"X-Amz-Client-Context": "not base64!"}).result()
    assert (reply.status, reply.body, reply.headers["Content-Length"]) == (500, b"", "0")
    assert "Content-Type" not in reply.headers and "Server" not in reply.headers


def test_client_context_and_tenant_id_reach_the_runtime_as_headers(target):
    target.start(SLEEPER)
    pending = target.invoke(b"{}", {"X-Amz-Client-Context": base64.b64encode(b'{"a":1}').decode(),
                                    "X-Amz-Tenant-Id": "t-1"})
    target.wait_init()
    event, rid = target.next_event()
    assert event.headers["Lambda-Runtime-Client-Context"] == '{"a":1}'
    assert event.headers["Lambda-Runtime-Aws-Tenant-Id"] == "t-1"
    assert event.headers["Content-Type"] == "application/json" and "Server" not in event.headers
    assert target.call("POST", f"{API}/runtime/invocation/{rid}/response", b"{}").status == 202
    target.poll_next_in_background()
    pending.result()


def test_a_response_mode_other_than_streaming_is_400_invalid_function_response_mode(target):
    target.start(SLEEPER)
    pending = target.invoke(b"{}")
    target.wait_init()
    rt = target.rt()
    _, rid = target.next_event(rt)
    r = target.call("POST", f"{API}/runtime/invocation/{rid}/response", b"{}", conn=rt,
                    headers={"Lambda-Runtime-Function-Response-Mode": "buffered"})
    assert (r.status, r.headers["Content-Type"]) == (400, "application/json")
    assert r.body == b'{"errorMessage":"Invalid function response mode","errorType":"InvalidFunctionResponseMode"}\n'
    # That ended the invocation: a second response is refused.
    r = target.call("POST", f"{API}/runtime/invocation/{rid}/response", b"{}", conn=rt)
    assert r.status == 403
    target.poll_next_in_background()
    pending.result()


def test_streaming_error_trailers_become_the_invocations_error_and_two_trailers_are_read(target):
    target.start(SLEEPER)
    pending = target.invoke(b"{}")
    target.wait_init()
    rt = target.rt()
    _, rid = target.next_event(rt)
    err_body = base64.b64encode(b'{"errorMessage":"mid-stream","errorType":"StreamBroke"}')
    rt.putrequest("POST", f"{API}/runtime/invocation/{rid}/response")
    for name, value in (("Lambda-Runtime-Function-Response-Mode", "streaming"),
                        ("Transfer-Encoding", "chunked"),
                        ("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body")):
        rt.putheader(name, value)
    rt.endheaders()
    rt.send(b"5\r\nhello\r\n0\r\nLambda-Runtime-Function-Error-Type: StreamBroke\r\n"
            b"Lambda-Runtime-Function-Error-Body: " + err_body + b"\r\n\r\n")
    reply = rt.getresponse()
    assert (reply.status, reply.read()) == (202, b'{"status":"OK"}\n')
    # The same keep-alive connection is still in sync (no '400 Bad HTTP/0.9 request type').
    assert target.call("GET", f"{API}/ping", conn=rt).body == b"pong"
    target.poll_next_in_background()
    result = pending.result()
    assert result.body.startswith(b"hello")
    if target.kind == "sandbox":
        end = target.history.of_kind("invoke_end")[-1]
        assert (end["error_type"], end["error_message"]) == ("StreamBroke", "mid-stream")


def test_the_invoke_is_answered_when_the_runtime_polls_next_again(target):
    target.start(SLEEPER)
    pending = target.invoke(b"{}")
    target.wait_init()
    _, rid = target.next_event()
    assert target.call("POST", f"{API}/runtime/invocation/{rid}/response", b'"r"').status == 202
    assert not pending.done()  # answered only at the runtime's next /next
    target.poll_next_in_background()
    assert pending.result().body == b'"r"'


def test_a_runtime_that_responds_and_hangs_times_out_as_under_the_rie(target):
    target.start(SLEEPER, timeout_s=1)
    pending = target.invoke(b"{}")
    target.wait_init()
    _, rid = target.next_event()
    assert target.call("POST", f"{API}/runtime/invocation/{rid}/response", b'"lost"').status == 202
    reply = pending.result()
    assert (reply.status, reply.body) == (200, b"Task timed out after 1.00 seconds")


def test_unknown_paths_are_404_and_wrong_methods_405_without_a_server_header(target):
    target.start(SLEEPER)
    for path in (f"{API}/nowhere", f"{API}/runtime/invocation/next/", "/"):
        r = target.call("GET", path)
        assert (r.status, r.body) == (404, b"404 page not found\n"), path
        assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert r.headers["X-Content-Type-Options"] == "nosniff" and "Server" not in r.headers
    r = target.call("POST", f"{API}/runtime/invocation/next")
    assert (r.status, r.body, r.headers["Allow"]) == (405, b"", "GET")
    r = target.call("GET", f"{API}/runtime/init/error")
    assert (r.status, r.headers["Allow"]) == (405, "POST")
    r = target.call("GET", f"{API}/ping")
    assert (r.status, r.body, r.headers["Content-Type"]) == (200, b"pong", "text/plain; charset=utf-8")
    assert "Server" not in r.headers and "Date" in r.headers
    conn = target._connect(target.invoke_port, 10)
    conn.request("GET", "/2015-03-31/functions/other/invocations")
    r2 = conn.getresponse()
    assert (r2.status, r2.read()) == (404, b"404 page not found\n")


def test_logs_and_telemetry_subscriptions_are_202_not_supported(target):
    target.start(SLEEPER)
    for path, api in (("/2020-08-15/logs", "Logs"), ("/2022-07-01/telemetry", "Telemetry")):
        r = target.call("PUT", path, b'{"types": ["platform"]}')
        assert (r.status, r.headers["Content-Type"]) == (202, "application/json")
        assert r.body == (f'{{"errorMessage":"{api} API is not supported","errorType":"{api}.NotSupported"}}\n'
                          ).encode()


INIT_ERROR_THEN_LINGER = '''
import json, os, sys, time, urllib.request
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
marker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attempt")
if os.path.exists(marker):
    sys.exit(3)  # the retry crashes without an /init/error
open(marker, "w").close()
body = json.dumps({"errorMessage": "first", "errorType": "Runtime.ImportModuleError"}).encode()
req = urllib.request.Request(f"http://{api}/2018-06-01/runtime/init/error", data=body, method="POST")
print("posted", urllib.request.urlopen(req).status, flush=True)
time.sleep(2.5)  # longer than the 2 s SIGKILL the emulator used to send
print("still alive", flush=True)
sys.exit(1)
'''


def test_init_error_waits_for_the_exit_and_the_crashing_retry_returns_the_first_error(target):
    target.start(INIT_ERROR_THEN_LINGER, timeout_s=10)
    reply = target.invoke(b"{}").result(timeout=20)
    # rapidcore.ErrInitDoneFailed: 502 with the cached init error of the first attempt.
    assert reply.status == 502
    assert json.loads(reply.body) == {"errorMessage": "first", "errorType": "Runtime.ImportModuleError"}
    output = target.output if target.kind == "sandbox" else target.out
    wait_for(lambda: any("still alive" in line for line in output), what="the runtime's own exit")
    assert any("posted 202" in line for line in output)
