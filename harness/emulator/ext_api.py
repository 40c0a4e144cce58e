"""The Extensions API endpoints of the RuntimeAPI (a mixin: it shares the
emulator's lock, state and invocation), and the extension processes it launches
with each runtime generation, as the RIE launches /opt/extensions/*."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from harness.emulator import protocol as rp
from harness.emulator.extensions import ERROR_TYPE_HEADER, ID_HEADER, Extension
from harness.history import schema

# How long extensions get after a SHUTDOWN event before they are killed (the RIE's reset).
SHUTDOWN_GRACE_S = 2.0


class ExtensionEndpoints:
    # Provided by RuntimeAPI.
    _cv: threading.Condition
    _ext_procs: list[Any]
    _gen: int
    _state: str
    _stopping: bool
    _pending: Any
    _current: Any
    extensions: Any
    history: Any
    function_name: str
    handler: str

    def _maybe_release(self) -> None: ...

    def _stop_extensions(self, grace_s: float) -> None:
        """Kill this generation's extension processes, after `grace_s` to exit on their own."""
        procs, self._ext_procs = self._ext_procs, []
        deadline = time.monotonic() + grace_s
        for proc in procs:
            waiter = threading.Thread(target=proc.wait, daemon=True)
            waiter.start()
            waiter.join(max(0.0, deadline - time.monotonic()))
            proc.kill_group()
            proc.wait()


    def new_id(self) -> str:
        return str(uuid.uuid4())

    def extension_register(self, headers: Any, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        with self._cv:
            if self._state not in ("starting", "ready"):
                self.extensions.open = False  # the RIE's registration ends with the init
            meta = {"functionName": self.function_name, "functionVersion": "$LATEST",
                    "handler": self.handler, "accountId": "012345678912"}
            return self.extensions.register(headers, body, meta)

    def extension_next(self, headers: Any) -> bytes | tuple[int, bytes] | None:
        """Block until this extension's next event; while it waits it counts as
        idle for the invoke's release and the freeze."""
        with self._cv:
            ext = self.extensions.lookup(headers)
            if not isinstance(ext, Extension):
                return ext
            gen = self._gen
            ext.waiting, ext.state = True, "Ready"
            self.history.record(schema.EXTENSION_NEXT, generation=gen, name=ext.name)
            self._maybe_release()
            self._cv.notify_all()
            try:
                while not ext.queue:
                    if self._gen != gen or self._stopping and not ext.queue:
                        return None
                    self._cv.wait()
                ext.state = "Running"
                return ext.queue.popleft()
            finally:
                ext.waiting = False

    def extension_error(self, headers: Any, kind: str) -> tuple[int, bytes]:
        with self._cv:
            ident = self.extensions.valid_id(headers)
            if isinstance(ident, tuple):
                return ident  # a missing or malformed id: the RIE's header validator answers first
            if not headers.get(ERROR_TYPE_HEADER):
                return rp.forbidden("Extension.MissingHeader", f"{ERROR_TYPE_HEADER} not found")
            ext = self.extensions.by_id.get(ident)
            if ext is None:
                # The error handlers word an unknown id differently from event/next.
                return rp.forbidden("Extension.UnknownExtensionIdentifier", f"Unknown {ID_HEADER}")
            reply = self.extensions.post_error(ext, kind, headers)
            self._cv.notify_all()
            return reply

    def can_freeze(self) -> bool:
        """The one "can freeze now?" condition (caller holds the lock): the runtime
        waits on /next with nothing pending and every extension waits on its next."""
        return (self._state == "ready" and not self._stopping and self._pending is None
                and self.extensions.all_waiting() and (self._current is None or self._current.released))
