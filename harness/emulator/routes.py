"""The emulator's HTTP routes, as the RIE mounts them: the Runtime API
(/2018-06-01), the Extensions API (/2020-01-01), the Logs and Telemetry stubs
(/2020-08-15/logs, /2022-07-01/telemetry) on the runtime port, and the single
invoke path on the invoke port. Exact paths; a known path with another method is
chi's 405 (Allow header, empty body), anything else Go's `404 page not found`."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from harness.emulator import http as rie_http
from harness.emulator import protocol as rp
from harness.emulator import restore, sniff

EXT = "/2020-01-01/extension"
ROUTES: dict[str, dict[str, str]] = {
    f"{rp.API_PREFIX}/ping": {"GET": "ping"},
    f"{rp.API_PREFIX}/runtime/invocation/next": {"GET": "next"},
    f"{rp.API_PREFIX}/runtime/init/error": {"POST": "init_error"},
    f"{EXT}/register": {"POST": "ext_register"},
    f"{EXT}/event/next": {"GET": "ext_next"},
    f"{EXT}/init/error": {"POST": "ext_error"},
    f"{EXT}/exit/error": {"POST": "ext_error"},
    "/2020-08-15/logs": {"PUT": "logs"},
    "/2022-07-01/telemetry": {"PUT": "telemetry"},
}
RESULT = re.compile(rf"^{rp.API_PREFIX}/runtime/invocation/(?P<id>[^/]*)/(?P<kind>response|error)$")
RESPONSE_MODE = "Lambda-Runtime-Function-Response-Mode"


def decode_client_context(value: str | None) -> str | None:
    """X-Amz-Client-Context as the RIE decodes it (base64.StdEncoding, which skips
    CR and LF); None when it is not valid base64."""
    try:
        raw = base64.b64decode((value or "").replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.decode("utf-8", "replace")


class Handler(rie_http.Handler):
    @property
    def api(self) -> Any:
        return self.server.api  # type: ignore[attr-defined]

    def _request(self) -> rie_http.Body:
        return rie_http.read_request(self.rfile, self.headers, rp.MAX_PAYLOAD)

    def _dispatch(self, method: str) -> None:
        role = self.server.role  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        self.api.access_log(method, self.path, self.headers, role)
        if role == "invoke":
            return self._invoke(path)
        m = RESULT.match(path)
        allowed = {"POST": "result"} if m else ROUTES.get(path)
        if allowed is None and self.api.restore_enabled:
            allowed = restore.ROUTES.get(path)  # mounted with SnapStart, as the RIE's --enable-init-caching
        if allowed is None:
            return self._reply(*rp.not_found(), "text/plain; charset=utf-8", rp.NOT_FOUND_HEADERS)
        name = allowed.get(method)
        if name is None:
            return self._reply(405, b"", None, {"Allow": ", ".join(allowed)})
        getattr(self, f"_r_{name}")(m)

    def _r_ping(self, _m: Any) -> None:
        self._reply(200, b"pong", "text/plain; charset=utf-8")

    def _r_logs(self, _m: Any) -> None:
        self._request()
        self._reply(*rp.not_supported("Logs"))

    def _r_telemetry(self, _m: Any) -> None:
        self._request()
        self._reply(*rp.not_supported("Telemetry"))

    def _r_init_error(self, _m: Any) -> None:
        body = self._request().data
        if body is None:
            return self._reply(*rp.too_large())
        self._reply(*self.api.post_init_error(body, self.headers))

    def _r_result(self, m: re.Match[str]) -> None:
        req = self._request()
        self._reply(*self.api.post_result(m.group("id"), m.group("kind"), req, self.headers))

    def _r_next(self, _m: Any) -> None:
        got = self.api.next_invocation()
        if got is None:
            self.close_connection = True
            return
        if isinstance(got, tuple):
            return self._reply(*got)
        headers = {"Lambda-Runtime-Aws-Request-Id": got.request_id,
                   "Lambda-Runtime-Client-Context": got.client_context,
                   "Lambda-Runtime-Invoked-Function-Arn": self.api.arn,
                   "Lambda-Runtime-Deadline-Ms": str(got.deadline_epoch_ms),
                   "Lambda-Runtime-Aws-Tenant-Id": got.tenant_id}
        self._reply(200, got.payload, "application/json", {k: v for k, v in headers.items() if v})

    def _r_restore_next(self, _m: Any) -> None:
        got = self.api.restore_next()
        if got is None:
            self.close_connection = True
            return
        status, body = got
        # The RIE's RestoreRenderer writes the 200 alone: no body, no Content-Type.
        self._reply(status, body, None if status == 200 else "application/json")

    def _r_restore_error(self, _m: Any) -> None:
        body = self._request().data
        if body is None:
            return self._reply(*rp.too_large())
        self._reply(*self.api.restore_error(body, self.headers))

    def _r_ext_register(self, _m: Any) -> None:
        body = self._request().data
        status, reply, headers = self.api.extension_register(self.headers, body or b"")
        self._reply(status, reply, "application/json", headers)

    def _r_ext_next(self, _m: Any) -> None:
        got = self.api.extension_next(self.headers)
        if got is None:
            self.close_connection = True
            return
        if isinstance(got, tuple):
            return self._reply(*got)
        self._reply(200, got, "application/json", {"Lambda-Extension-Event-Identifier": self.api.new_id()})

    def _r_ext_error(self, _m: Any) -> None:
        self._request()
        kind = "init" if self.path.startswith(f"{EXT}/init/") else "exit"
        self._reply(*self.api.extension_error(self.headers, kind))

    def _invoke(self, path: str) -> None:
        if path != rp.INVOKE_PATH:
            return self._reply(*rp.not_found(), "text/plain; charset=utf-8", rp.NOT_FOUND_HEADERS)
        body = self._request().data
        if body is None:
            return self._reply(*rp.too_large())
        context = decode_client_context(self.headers.get("X-Amz-Client-Context"))
        if context is None:
            return self._reply(500, b"", None)
        _, outcome = self.api.invoke(body, client_context=context,
                                     tenant_id=self.headers.get("X-Amz-Tenant-Id", ""))
        status, payload = outcome.rie_response()
        self._reply(status, payload, sniff.content_type(payload))
