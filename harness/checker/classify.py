"""What an error says, by layer: the error classes, the one "Type: message" text
of a failed init or invocation, and the short headline a table has room for.

oom         killed for exceeding function.memory_mb, or the runtime's own out-of-memory error
dns         the name lookup failed (the .NET text "Resource temporarily unavailable" is EAI_AGAIN)
timeout     the call or the invocation ran out of time
reset       an established connection was reset or dropped by the peer (a NAT that forgot
            the flow answers with RST; a server that closed an idle keep-alive)
connect     the connection was refused or had no route
snapstart   a SnapStart hook failed or the restore overran (Runtime.BeforeSnapshotError,
            SnapStartException after Runtime.AfterRestoreError, SnapStartTimeoutException)
init_error  an init failed with none of the above
other       an invocation failed with none of the above
"""

from __future__ import annotations

import re
from typing import Any

from harness.history import schema

# Order matters: a requests ConnectionError caused by a failed lookup is a dns failure.
_CLASSES: list[tuple[str, re.Pattern[str]]] = [
    # Killed for exceeding function.memory_mb (the emulator's Runtime.OutOfMemory),
    # or the runtime's own out-of-memory error.
    ("oom", re.compile(r"Runtime\.OutOfMemory|\bMemoryError\b|OutOfMemoryException", re.I)),
    # SnapStart: the snapshot or its restore failed (a hook raised, the restore overran 10 s).
    ("snapstart", re.compile(r"SnapStart\w*Exception|Runtime\.BeforeSnapshotError|Runtime\.AfterRestoreError")),
    ("dns", re.compile(
        r"Temporary failure in name resolution|Resource temporarily unavailable|EAI_AGAIN"
        r"|Name or service not known|No address associated with hostname|NameResolutionError"
        r"|Failed to resolve|getaddrinfo|gaierror|could not be resolved|HostNotFound|TryAgain"
        r"|No such host is known|ENOTFOUND", re.I)),
    # Before timeout and connect: "ConnectionError: ('Connection aborted.', ConnectionResetError(...))"
    # is a reset, and .NET's "Unable to read data from the transport connection" too.
    ("reset", re.compile(
        r"Connection reset by peer|ECONNRESET|ConnectionResetError|socket hang up|Connection aborted"
        r"|RemoteDisconnected|Unable to read data from the transport connection"
        r"|Unable to write data to the transport connection|ConnectionReset|Broken pipe|EPIPE"
        r"|The response ended prematurely|Connection reset", re.I)),
    ("timeout", re.compile(
        r"Task timed out|timed out|Timeout|TaskCanceledException|deadline exceeded"
        r"|ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT", re.I)),
    ("connect", re.compile(
        r"Connection refused|Network is unreachable|No route to host|NewConnectionError"
        r"|ConnectionError|ECONNREFUSED|ENETUNREACH|EHOSTUNREACH"
        r"|NetworkUnreachable|HostUnreachable|ConnectionRefused", re.I)),
]

# The operating system's own words, preferred over library wrappers in headlines.
_OS_PHRASES = ("Temporary failure in name resolution", "Resource temporarily unavailable",
               "Name or service not known", "Network is unreachable", "No route to host",
               "Connection refused", "Connection reset by peer", "Connection reset",
               # Node's: the code is the cause (its messages are "getaddrinfo EAI_AGAIN host")
               "getaddrinfo EAI_AGAIN", "getaddrinfo ENOTFOUND")


def error_text(event: dict[str, Any]) -> str:
    """'ErrorType: message' of an init_error or a failed invoke_end, as the function
    (or the emulator on its behalf) reported it; either half may be missing."""
    return f"{event.get('error_type') or ''}: {event.get('error_message') or ''}".strip(": ")


def failure_phase(event: dict[str, Any]) -> str:
    """init | invoke: an invocation whose runtime failed to init failed in the init."""
    if event["kind"] == schema.INIT_ERROR or event.get("status") == "init_error":
        return "init"
    return "invoke"


def classify(text: str, phase: str = "invoke") -> str:
    """oom | snapstart | dns | reset | timeout | connect | init_error | other, from an error's text."""
    for name, pattern in _CLASSES:
        if pattern.search(text or ""):
            return name
    return "init_error" if phase == "init" else "other"


def classify_event(event: dict[str, Any]) -> str:
    """The error class of an init_error or a failed invoke_end."""
    return classify(error_text(event), failure_phase(event))


def headline(text: str, limit: int = 90) -> str:
    """'ErrorType: <the phrase that classified it>' — what a table has room for."""
    etype = text.split(":", 1)[0] if ":" in text[:60] else ""
    for phrase in _OS_PHRASES:
        if etype and phrase.lower() in text.lower():
            return f"{etype}: {phrase}"
    # Searched after the type: a type that itself classifies (TaskCanceledException)
    # would otherwise headline as "TaskCanceledException: TaskCanceledException".
    for _, pattern in _CLASSES:
        m = pattern.search(text[len(etype):]) if etype else None
        if m:
            return f"{etype}: {m.group(0)}"
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
