"""The Content-Type the RIE's invoke endpoint ends up sending. Its response writer
drops the runtime's headers, so Go's net/http sniffs the first 512 bytes of the
body (http.DetectContentType): JSON comes back as text/plain; an empty body gets
no Content-Type at all. This covers the signatures a function's reply can
plausibly start with; anything else is decided text-or-binary as Go does."""

from __future__ import annotations

SNIFF_LEN = 512
_WS = b"\t\n\x0c\r "
_HTML_TAGS = (b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV",
              b"<FONT", b"<TABLE", b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR", b"<P",
              b"<!--")
_EXACT = ((b"\xfe\xff", "text/plain; charset=utf-16be"), (b"\xff\xfe", "text/plain; charset=utf-16le"),
          (b"\xef\xbb\xbf", "text/plain; charset=utf-8"), (b"%PDF-", "application/pdf"),
          (b"%!PS-Adobe-", "application/postscript"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"), (b"\x89PNG\r\n\x1a\n", "image/png"),
          (b"\xff\xd8\xff", "image/jpeg"), (b"\x1f\x8b\x08", "application/x-gzip"),
          (b"PK\x03\x04", "application/zip"), (b"\x00\x00\x01\x00", "image/x-icon"),
          (b"BM", "image/bmp"), (b"OggS\x00", "application/ogg"))
# Bytes Go's text sniffer calls binary (the WHATWG "binary data byte" set).
_BINARY = frozenset(list(range(0x00, 0x09)) + [0x0B] + list(range(0x0E, 0x1B)) + list(range(0x1C, 0x20)))


def content_type(body: bytes) -> str | None:
    """What Go would put in Content-Type for `body` written with none set."""
    if not body:
        return None
    data = body[:SNIFF_LEN]
    for sig, ctype in _EXACT:
        if data.startswith(sig):
            return ctype
    stripped = data.lstrip(_WS)
    upper = stripped[:16].upper()
    for tag in _HTML_TAGS:
        rest = stripped[len(tag):len(tag) + 1]
        if upper.startswith(tag) and rest in (b" ", b">"):
            return "text/html; charset=utf-8"
    if stripped.startswith(b"<?xml"):
        return "text/xml; charset=utf-8"
    if any(b in _BINARY for b in data):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"
