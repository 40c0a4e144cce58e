"""HTTP/1.1 request framing for the emulator, with memory bounded per connection
whatever the peer declares. The function under test is the peer, and a broken
or hostile one must fail its own invocation, not grow the harness: bodies are
read and discarded in fixed pieces, chunk lines and the header block have caps,
and malformed framing is refused the way Go's net/http (and so the RIE) does."""

from __future__ import annotations

import http.client
import re
import socket
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from harness.emulator import protocol as rp

PIECE = 64 * 1024
# Go's net/http: DefaultMaxHeaderBytes for the header block, maxLineLength for
# chunk-size and trailer lines.
MAX_HEADER_BYTES = 1 << 20
MAX_CHUNK_LINE = 4096
MAX_TRAILERS = 100
# After an error reply, how long and how much unread input a closing connection
# swallows so that the peer reads the reply instead of a reset.
LINGER_S = 1.0
LINGER_BYTES = 64 << 20

_DECIMAL = re.compile(rb"[0-9]{1,18}")
_HEX = re.compile(rb"[0-9a-fA-F]{1,16}")


class Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...


class BadFraming(ValueError):
    """A Content-Length or chunked encoding no HTTP server would accept: 400."""


class Truncated(Exception):
    """The peer closed its side in the middle of a body."""


class HeaderBudget:
    """rfile wrapper: while armed, the header lines together may not exceed the budget.

    http.client.parse_headers caps one line at 64 KiB and the count at 100, which
    still lets one connection hold 6.4 MB of headers (several times over once
    parsed); Go stops at 1 MiB for the whole block."""

    def __init__(self, raw: Reader) -> None:
        self._raw = raw
        self.budget: int | None = None

    def readline(self, limit: int = -1) -> bytes:
        if self.budget is None:
            return self._raw.readline(limit)
        cap = self.budget + 1 if limit < 0 else min(limit, self.budget + 1)
        line = self._raw.readline(cap)
        if len(line) > self.budget:
            # parse_request answers LineTooLong with 431, as Go does.
            raise http.client.LineTooLong("header block")
        self.budget -= len(line)
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


@dataclass
class Body:
    """A request body: `data` is None when it was over the limit (read and
    discarded); `size` is its full length either way, as the RIE counts it."""

    data: bytes | None
    size: int
    trailers: dict[str, str] = field(default_factory=dict)


def read_body(rfile: Reader, headers: Any, limit: int) -> bytes | None:
    """The request body; None when it is larger than `limit` (then read to its end
    and discarded, so the connection stays usable). Raises BadFraming or Truncated."""
    return read_request(rfile, headers, limit).data


def read_request(rfile: Reader, headers: Any, limit: int) -> Body:
    if headers.get("Transfer-Encoding", "").strip().lower() == "chunked":
        return _chunked(rfile, limit)
    length = content_length(headers)
    if length > limit:
        _consume(rfile, length, keep=False)
        return Body(None, length)
    return Body(_consume(rfile, length, keep=True), length)


def content_length(headers: Any) -> int:
    values = {v.strip() for v in headers.get_all("Content-Length") or []}
    if not values:
        return 0
    if len(values) > 1:
        raise BadFraming("conflicting Content-Length headers")
    value = values.pop().encode("latin-1")
    if not _DECIMAL.fullmatch(value):
        raise BadFraming(f"bad Content-Length {value[:40]!r}")
    return int(value)


def _consume(rfile: Reader, n: int, keep: bool) -> bytes:
    """Read exactly n bytes. Callers keep only sizes within the payload limit; the
    rest is discarded PIECE at a time, never allocated at the declared size."""
    if keep:
        data = rfile.read(n) if n else b""
        if len(data) < n:
            raise Truncated(f"{n - len(data)} bytes missing")
        return data
    while n > 0:
        piece = rfile.read(min(n, PIECE))
        if not piece:
            raise Truncated(f"{n} bytes missing")
        n -= len(piece)
    return b""


def _chunked(rfile: Reader, limit: int) -> Body:
    parts: list[bytes] = []
    total = 0
    while True:
        size = _chunk_size(_line(rfile))
        if size == 0:
            break
        total += size
        if total > limit:
            parts.clear()
        parts.append(_consume(rfile, size, keep=total <= limit))
        end = rfile.read(2)
        if len(end) < 2:
            raise Truncated("chunk without its CRLF")
        if end != b"\r\n":
            raise BadFraming("chunk data not followed by CRLF")
    # Every trailer line up to the blank one: a streaming runtime's error trailers.
    trailers: dict[str, str] = {}
    for _ in range(MAX_TRAILERS + 1):
        line = _line(rfile).strip()
        if line == b"":
            return Body(b"".join(parts) if total <= limit else None, total, trailers)
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise BadFraming("malformed trailer line")
        trailers[name.strip().decode("latin-1").title()] = value.strip().decode("latin-1")
    raise BadFraming("too many trailer lines")


def _line(rfile: Reader) -> bytes:
    line = rfile.readline(MAX_CHUNK_LINE + 1)
    if not line.endswith(b"\n"):
        if len(line) > MAX_CHUNK_LINE:
            raise BadFraming("chunk line too long")
        raise Truncated("chunk line cut short")
    return line


def _chunk_size(line: bytes) -> int:
    """Go's parseHexUint after trimming whitespace and the chunk extension."""
    size = line.rstrip(b" \t\r\n").split(b";", 1)[0].rstrip(b" \t")
    if not _HEX.fullmatch(size):
        raise BadFraming(f"bad chunk size {size[:40]!r}")
    return int(size, 16)


def linger(sock: socket.socket) -> None:
    """Half-close, then swallow what the peer is still sending (bounded in time and
    bytes): closing with unread input would send a reset that can destroy the
    reply before the peer reads it. Go does the same on its error paths."""
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_S
        seen = 0
        while seen < LINGER_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            sock.settimeout(left)
            piece = sock.recv(PIECE)
            if not piece:
                return
            seen += len(piece)
    except OSError:
        return


class Handler(BaseHTTPRequestHandler):
    """http.server with Go's answers to malformed requests and bounded reads.
    Subclasses implement _dispatch(method)."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; without this, Nagle plus the
    # client's delayed ACK adds ~40 ms to every reply.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.rfile = HeaderBudget(self.rfile)  # type: ignore[assignment,arg-type]
        self._linger = False

    def finish(self) -> None:
        if self._linger:
            try:
                self.wfile.flush()
            except OSError:
                pass
            linger(self.connection)
        super().finish()

    def parse_request(self) -> bool:
        budget: HeaderBudget = self.rfile  # type: ignore[assignment]
        budget.budget = MAX_HEADER_BYTES - len(self.raw_requestline)  # type: ignore[attr-defined]
        try:
            return super().parse_request()
        finally:
            budget.budget = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        """Go's net/http sends a Date and no Server header."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Unparseable requests: a plain-text `400 Bad Request` (431, 414...) with a
        status line, as Go's net/http answers, instead of http.server's HTML (and no
        status line for HTTP/0.9)."""
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        self._linger = True  # the peer may still be sending what we refused
        text = self.responses.get(code, ("Error",))[0]
        self._reply(code, f"{code} {text}\n".encode(), "text/plain; charset=utf-8", {"Connection": "close"})

    def _reply(self, status: int, body: bytes, ctype: str | None = "application/json",
               headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        # A Content-Type on every Runtime API answer with a body (awslambdaric
        # segfaults on a response without one); None only where Go sends none.
        if ctype is not None:
            self.send_header("Content-Type", ctype)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    # Other methods reach the router too: a known path answers 405, as chi does.
    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_OPTIONS(self) -> None:
        self._route("OPTIONS")

    def _route(self, method: str) -> None:
        try:
            self._dispatch(method)
        except BadFraming:
            self.send_error(400)
        except Truncated:
            # The peer closed mid-body; if it only half-closed it can still read this.
            self.close_connection = True
            self._reply(*rp.truncated_request())

    def _dispatch(self, method: str) -> None:
        raise NotImplementedError
