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


def error_body(message: str, error_type: str) -> bytes:
    """The Runtime API's own error JSON (errorMessage first, trailing newline)."""
    return (json.dumps({"errorMessage": message, "errorType": error_type},
                       separators=(",", ":")) + "\n").encode()


def invalid_request_id() -> tuple[int, bytes]:
    return 400, error_body("Invalid request ID", "InvalidRequestID")


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

    status: str  # ok | error | timeout | crash | init_error
    body: bytes = b""
    content_type: str = "application/json"
    error_type: str = ""
    error_message: str = ""
    reinit: bool = False  # a runtime start happened inside this invoke, after an earlier one
    init_starts: list[int] = field(default_factory=list)  # generations started in this invoke

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def rie_response(self) -> tuple[int, str, bytes]:
        """(status, content type, body) the RIE's invoke endpoint would return."""
        if self.status in ("ok", "error", "timeout"):
            ctype = "text/plain; charset=utf-8" if self.status == "timeout" else self.content_type
            return 200, ctype, self.body
        return 502, "application/json", self.body
