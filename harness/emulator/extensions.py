"""The Extensions API (/2020-01-01/extension/...) of one runtime generation, as
the RIE's rapi handlers answer it: register (while the init runs), event/next
(INVOKE and SHUTDOWN events), init/error and exit/error. State only; the
RuntimeAPI owns the lock (its condition variable) and calls in with it held.

An invocation is released, and the environment may freeze, only when the runtime
and every registered extension wait on their next call."""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from harness.emulator import protocol as rp

ID_HEADER = "Lambda-Extension-Identifier"
NAME_HEADER = "Lambda-Extension-Name"
ERROR_TYPE_HEADER = "Lambda-Extension-Function-Error-Type"
EVENTS = ("INVOKE", "SHUTDOWN")


@dataclass
class Extension:
    name: str
    events: list[str]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    waiting: bool = False  # blocked in event/next
    state: str = "Registered"  # Registered | Ready | Running | InitError | ExitError
    queue: deque[bytes] = field(default_factory=deque)


class Extensions:
    def __init__(self) -> None:
        self.by_id: dict[str, Extension] = {}
        self.open = True  # registration closes when the init ends
        # Extension processes launched with this generation: the RIE's init waits
        # for each of them to register (its register count) before it can end.
        self.expected = 0

    def reset(self) -> None:
        self.by_id.clear()
        self.open = True
        self.expected = 0

    def all_waiting(self) -> bool:
        if self.open and len(self.by_id) < self.expected:
            return False
        # An extension with an event queued is busy from the dispatch on, though its
        # thread may not have left event/next's wait yet.
        return all(e.waiting and not e.queue or e.state in ("InitError", "ExitError")
                   for e in self.by_id.values())

    def register(self, headers: Any, body: bytes, meta: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        name = headers.get(NAME_HEADER, "")
        if not name:
            return (*rp.forbidden("Extension.InvalidExtensionName", "Empty extension name"), {})
        try:
            doc = json.loads(body or b"null")
            events = doc.get("events") or [] if isinstance(doc, dict) else None
            if events is None or not isinstance(events, list):
                raise ValueError("json: cannot unmarshal into Go value of type handler.RegisterRequest")
            if isinstance(doc, dict) and doc.get("configurationKeys"):
                raise ValueError("configurationKeys are deprecated; use environment variables instead")
        except (ValueError, RecursionError) as exc:
            return (*rp.forbidden("InvalidRequestFormat", str(exc)), {})
        for ev in events:
            if ev not in EVENTS:
                return (*rp.forbidden("Extension.InvalidEventType", f"{ev}: EventType not supported"), {})
        if not self.open:
            return (*rp.forbidden("Extension.RegistrationClosed", "Extension registration closed already"), {})
        if any(e.name == name for e in self.by_id.values()):
            return (*rp.forbidden("Extension.InvalidExtensionState",
                                  "Extension with this name already registered"), {})
        ext = Extension(name, list(events))
        self.by_id[ext.id] = ext
        reply: dict[str, str] = {}
        if "accountId" in [f.strip() for f in headers.get("Lambda-Extension-Accept-Feature", "").split(",")]:
            reply["accountId"] = meta.get("accountId", "")
        reply.update(functionName=meta["functionName"], functionVersion=meta["functionVersion"],
                     handler=meta["handler"])
        return 200, (rp.go_json(reply) + "\n").encode(), {ID_HEADER: ext.id}

    def valid_id(self, headers: Any) -> str | tuple[int, bytes]:
        """The caller's id, or the RIE's 403 for a missing or malformed one."""
        ident = headers.get(ID_HEADER, "")
        if not ident:
            return rp.forbidden("Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")
        try:
            return str(uuid.UUID(ident))
        except ValueError:
            return rp.forbidden("Extension.InvalidExtensionIdentifier", "Invalid Lambda-Extension-Identifier")

    def lookup(self, headers: Any) -> Extension | tuple[int, bytes]:
        """The caller's extension, or the RIE's 403 for a missing/bad/unknown id."""
        ident = self.valid_id(headers)
        if isinstance(ident, tuple):
            return ident
        ext = self.by_id.get(ident)
        if ext is None:
            return rp.forbidden("Extension.UnknownExtensionIdentifier", f"Unknown extension {ident}")
        return ext

    def post_error(self, ext: Extension, kind: str, headers: Any) -> tuple[int, bytes]:
        ext.state = "InitError" if kind == "init" else "ExitError"
        return 202, rp.ACCEPTED

    def dispatch_invoke(self, request_id: str, deadline_ms: int, arn: str) -> None:
        event = rp.go_json({"eventType": "INVOKE", "deadlineMs": deadline_ms, "requestId": request_id,
                            "invokedFunctionArn": arn}).encode()
        for ext in self.by_id.values():
            if "INVOKE" in ext.events:
                ext.queue.append(event)

    def dispatch_shutdown(self, reason: str, grace_s: float = 2.0) -> None:
        deadline = int((time.time() + grace_s) * 1000)
        event = rp.go_json({"eventType": "SHUTDOWN", "deadlineMs": deadline,
                            "shutdownReason": reason}).encode()
        for ext in self.by_id.values():
            if "SHUTDOWN" in ext.events:
                ext.queue.append(event)
