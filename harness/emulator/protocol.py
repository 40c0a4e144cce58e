"""Wire formats of the Lambda Runtime API (/2018-06-01/runtime/... on 127.0.0.1:9001)
and the RIE invoke API (POST /2015-03-31/functions/function/invocations on :8080),
byte for byte as aws-lambda-runtime-interface-emulator produces them. Pure
functions, no state."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

API_PREFIX = "/2018-06-01"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
MAX_PAYLOAD = 6 * 1024 * 1024 + 100
ERROR_CONTENT_TYPE = "application/vnd.aws.lambda.error+json"
CAUSE_CONTENT_TYPE = "application/vnd.aws.lambda.error.cause+json"
ACCEPTED = b'{"status":"OK"}\n'
# What the RIE delivers for an error-cause body it cannot parse: a JSON string.
INVALID_ERROR_BODY = b'"Invalid error body"'


def go_json(doc: object) -> str:
    """encoding/json's bytes: compact, UTF-8 kept, HTML characters and the line
    separators escaped (json.Encoder with SetEscapeHTML, and json.Marshal)."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def error_body(message: str, error_type: str) -> bytes:
    """The Runtime API's own error JSON (errorMessage first, trailing newline)."""
    return (go_json({"errorMessage": message, "errorType": error_type}) + "\n").encode()


def forbidden(error_type: str, message: str) -> tuple[int, bytes]:
    return 403, error_body(message, error_type)


def invalid_response_mode() -> tuple[int, bytes]:
    return 400, error_body("Invalid function response mode", "InvalidFunctionResponseMode")


def not_supported(api: str) -> tuple[int, bytes]:
    """The Logs and Telemetry API stubs of a standalone RIE: 202 and an error body."""
    return 202, error_body(f"{api} API is not supported", f"{api}.NotSupported")


# The error an invocation ends with when the runtime's /response is too large
# (interop.ErrorResponseTooLarge.AsErrorResponse: errorType first, no newline).
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"
INVALID_RESPONSE_MODE = "Runtime.InvalidResponseModeHeader"


def response_too_large_message(size: int) -> str:
    return (f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
            f"({MAX_PAYLOAD} bytes).")


def response_too_large_body(size: int) -> bytes:
    return go_json({"errorType": RESPONSE_TOO_LARGE,
                    "errorMessage": response_too_large_message(size)}).encode()


def invalid_request_id() -> tuple[int, bytes]:
    return 400, error_body("Invalid request ID", "InvalidRequestID")


def state_name(state: str) -> str:
    """The RIE's name (core/runtime_state_names.go) of an emulator state."""
    return {"none": "Started", "starting": "Started", "ready": "Ready", "running": "Running",
            "responded": "RuntimeResponseSentState", "init_error": "InitError",
            "exited": "Started", "restore_ready": "RestoreReady", "restoring": "Restoring",
            "restore_error": "RuntimeRestoreErrorState"}.get(state, state)


def invalid_transition(src: str, dst: str) -> tuple[int, bytes]:
    msg = f"State transition from {src} to {dst} failed for runtime. Error: State transition is not allowed"
    return 403, error_body(msg, "InvalidStateTransition")


def too_large() -> tuple[int, bytes]:
    return 413, error_body(f"Exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes).",
                           "RequestEntityTooLarge")


def truncated_request() -> tuple[int, bytes]:
    return 400, error_body("HTTP request detected as truncated", "TruncatedHTTPRequest")


def not_found() -> tuple[int, bytes]:
    return 404, b"404 page not found\n"


# Go's http.Error headers, which http.NotFound (chi's and ServeMux's 404) sends.
NOT_FOUND_HEADERS = {"X-Content-Type-Options": "nosniff"}


def exit_reason(returncode: int) -> str:
    """How the RIE words a runtime's exit (Go's ProcessState.String())."""
    if returncode == 0:
        return "Runtime exited without providing a reason"
    if returncode < 0:
        import signal

        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        words = {"SIGKILL": "killed", "SIGSEGV": "segmentation fault", "SIGABRT": "aborted",
                 "SIGTERM": "terminated", "SIGINT": "interrupt"}
        return f"Runtime exited with error: signal: {words.get(name, name.lower())}"
    return f"Runtime exited with error: exit status {returncode}"


# Lambda's error type for a runtime the OOM killer ended (the RIE, which sets no
# limit, only ever says Runtime.ExitError); the message stays the exit's words.
OUT_OF_MEMORY = "Runtime.OutOfMemory"


def exit_error_type(oom: bool) -> str:
    return OUT_OF_MEMORY if oom else "Runtime.ExitError"


def exit_error_body(request_id: str, returncode: int, oom: bool = False) -> bytes:
    """502 body for a runtime that died during an invoke (errorType first, no newline)."""
    return json.dumps({"errorType": exit_error_type(oom),
                       "errorMessage": f"RequestId: {request_id} Error: {exit_reason(returncode)}"},
                      separators=(",", ":")).encode()


def timeout_body(timeout_s: float) -> bytes:
    return f"Task timed out after {timeout_s:.2f} seconds".encode()


def parse_function_error(body: bytes) -> tuple[str, str]:
    """(errorType, errorMessage) from a runtime's error body, however it is shaped."""
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        # RecursionError: nesting deeper than the decoder's stack (Go's limit is
        # 10000 levels); it is just another body that is not a usable document.
        return "", body[:4000].decode("utf-8", "replace")
    if not isinstance(doc, dict):
        return "", str(doc)[:4000]
    etype = str(doc.get("errorType") or "")
    msg = str(doc.get("errorMessage") or "")
    trace = doc.get("stackTrace")
    cause = doc.get("cause")
    extra = ""
    if isinstance(cause, dict):
        extra = f" (cause: {cause.get('errorType', '')}: {cause.get('errorMessage', '')})"
    if not msg and isinstance(trace, list):
        msg = " ".join(str(x) for x in trace)[:2000]
    return etype, msg + extra


def delivered_error(body: bytes, content_type: str | None) -> tuple[bytes, str]:
    """(body, content type) the invoke client gets for an /error post. For the
    error-cause content type the RIE drops errorCause and re-marshals; a body it
    cannot parse becomes the JSON string "Invalid error body" (invocationerror.go)."""
    if content_type != CAUSE_CONTENT_TYPE:
        return body, "application/json"
    try:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except (ValueError, RecursionError):
        return INVALID_ERROR_BODY, "application/octet-stream"
    kept = {k: doc.get(k) for k in ("errorMessage", "errorType", "stackTrace")}
    return json.dumps(kept).encode(), "application/json"


@dataclass
class InvokeOutcome:
    """How one invocation ended, as the harness and the RIE client see it."""

    status: str  # ok | error | timeout | crash | init_error | restore_error
    body: bytes = b""
    content_type: str = "application/json"
    error_type: str = ""
    error_message: str = ""
    reinit: bool = False  # a runtime start happened inside this invoke, after an earlier one
    init_starts: list[int] = field(default_factory=list)  # generations started in this invoke
    # The runtime exited after its /response but before its next /next: the RIE's
    # invoke client then gets 502 with the response body.
    exited_after_reply: bool = False
    # The invoke's HTTP status where Lambda's Invoke API answers with its own error
    # (SnapStart's restore failures: harness/emulator/restore.py).
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def rie_response(self) -> tuple[int, bytes]:
        """(status, body) the RIE's invoke endpoint returns; its Content-Type is
        Go's sniff of the body (sniff.content_type), the runtime's is dropped."""
        if self.http_status is not None:
            return self.http_status, self.body
        if self.status in ("ok", "error", "timeout") and not self.exited_after_reply:
            return 200, self.body
        return 502, self.body


def _trailer_error(trailers: dict[str, str]) -> tuple[str, str] | None:
    """(type, message) from a streamed response's error trailers; the body trailer
    is base64 JSON in Lambda's streaming protocol, taken raw when it is not."""
    etype = trailers.get("Lambda-Runtime-Function-Error-Type")
    if not etype:
        return None
    raw = trailers.get("Lambda-Runtime-Function-Error-Body", "")
    try:
        import base64

        raw = base64.b64decode(raw, validate=True).decode("utf-8", "replace")
    except ValueError:
        pass
    parsed_type, msg = parse_function_error(raw.encode())
    return etype or parsed_type, msg


def result_outcome(kind: str, data: bytes | None, size: int, trailers: dict[str, str],
                   headers: object) -> tuple[InvokeOutcome | None, tuple[int, bytes]]:
    """What a /response or /error post (already past the id and state checks) does
    to its invocation, and the reply to the runtime, in the RIE's order: a bad
    response mode, then the size limit. Outcome None: the invocation goes on."""
    get = headers.get  # type: ignore[attr-defined]
    if kind == "error":
        if data is None:
            return None, too_large()
        etype, msg = parse_function_error(data)
        etype = etype or get("Lambda-Runtime-Function-Error-Type", "")
        delivered, ctype = delivered_error(data, get("Content-Type"))
        return InvokeOutcome("error", delivered, ctype, error_type=etype, error_message=msg), (202, ACCEPTED)
    mode = get("Lambda-Runtime-Function-Response-Mode")
    if mode and mode != "streaming":
        return InvokeOutcome("error", b"", error_type=INVALID_RESPONSE_MODE,
                             error_message="Invalid function response mode"), invalid_response_mode()
    if data is None:
        return InvokeOutcome("error", response_too_large_body(size), error_type=RESPONSE_TOO_LARGE,
                             error_message=response_too_large_message(size)), too_large()
    failed = _trailer_error(trailers) if mode == "streaming" else None
    if failed is not None:
        # The RIE delivers the streamed bytes and drops the trailers; Lambda reports
        # the function error, so the harness records the invocation as failed.
        return InvokeOutcome("error", data, error_type=failed[0], error_message=failed[1]), (202, ACCEPTED)
    return InvokeOutcome("ok", data, get("Content-Type") or "application/json"), (202, ACCEPTED)
