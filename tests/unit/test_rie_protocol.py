import json

from harness.emulator import protocol as rp


def test_exit_reasons_match_the_rie_wording():
    assert rp.exit_reason(0) == "Runtime exited without providing a reason"
    assert rp.exit_reason(1) == "Runtime exited with error: exit status 1"
    assert rp.exit_reason(-9) == "Runtime exited with error: signal: killed"
    assert rp.exit_reason(-11) == "Runtime exited with error: signal: segmentation fault"


def test_error_bodies():
    status, body = rp.invalid_request_id()
    assert status == 400 and body == b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}\n'
    status, body = rp.too_large()
    assert status == 413 and b"6291556 bytes" in body
    status, body = rp.invalid_transition("Ready", "InitError")
    assert status == 403 and json.loads(body)["errorType"] == "InvalidStateTransition"


def test_exit_error_body_puts_error_type_first():
    body = rp.exit_error_body("abc", 1)
    assert body.startswith(b'{"errorType":"Runtime.ExitError"')
    assert json.loads(body)["errorMessage"] == "RequestId: abc Error: Runtime exited with error: exit status 1"


def test_rie_responses():
    assert rp.InvokeOutcome("ok", b"1").rie_response() == (200, b"1")
    assert rp.InvokeOutcome("timeout", rp.timeout_body(3)).rie_response() == (
        200, b"Task timed out after 3.00 seconds")
    assert rp.InvokeOutcome("ok", b"1", exited_after_reply=True).rie_response() == (502, b"1")
    assert rp.InvokeOutcome("crash", b"x").rie_response()[0] == 502
    assert rp.InvokeOutcome("init_error", b"x").rie_response()[0] == 502


def test_parse_function_error_with_cause_and_garbage():
    body = json.dumps({"errorType": "HttpRequestException", "errorMessage": "Resource temporarily unavailable",
                       "cause": {"errorType": "SocketException", "errorMessage": "Resource temporarily unavailable"}})
    etype, msg = rp.parse_function_error(body.encode())
    assert etype == "HttpRequestException"
    assert "cause: SocketException" in msg
    assert rp.parse_function_error(b"not json") == ("", "not json")


def test_parse_function_error_survives_nesting_deeper_than_the_decoder():
    body = b"[" * 100_000 + b"]" * 100_000
    assert rp.parse_function_error(body) == ("", body[:4000].decode())
    assert rp.truncated_request() == (400, b'{"errorMessage":"HTTP request detected as truncated",'
                                           b'"errorType":"TruncatedHTTPRequest"}\n')
