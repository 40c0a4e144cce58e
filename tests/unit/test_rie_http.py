import http.client
import io
import tracemalloc

import pytest

from harness.emulator import http as rie_http


def headers(*lines: str) -> http.client.HTTPMessage:
    return http.client.parse_headers(io.BytesIO("".join(f"{x}\r\n" for x in lines).encode() + b"\r\n"))


def chunked(body: bytes, limit: int = 100) -> bytes | None:
    return rie_http.read_body(io.BytesIO(body), headers("Transfer-Encoding: chunked"), limit)


def test_chunked_bodies_with_extensions_trailers_and_bare_lf():
    assert chunked(b"3;name=v\r\nabc\r\n2 \r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n") == b"abcde"
    assert chunked(b"3\nabc\r\n0\n\n") == b"abc"
    assert chunked(b"0\r\n\r\n") == b""


@pytest.mark.parametrize("body", [b"-1\r\n", b"zz\r\n", b"\r\n", b" 3\r\nabc\r\n0\r\n\r\n", b"0x3\r\n",
                                  b"1" * 17 + b"\r\n", b"1" * 5000, b"3\r\nabcXY0\r\n\r\n",
                                  b"0\r\n" + b"X: 1\r\n" * 101 + b"\r\n"])
def test_malformed_chunked_framing_is_bad(body):
    with pytest.raises(rie_http.BadFraming):
        chunked(body)


@pytest.mark.parametrize("body", [b"", b"3\r\nab", b"3\r\nabc", b"3\r\nabc\r\n", b"3\r\nabc\r\n0\r\n", b"5"])
def test_a_chunked_body_cut_short_is_truncated(body):
    with pytest.raises(rie_http.Truncated):
        chunked(body)


def test_declared_sizes_are_never_allocated():
    tracemalloc.start()
    try:
        with pytest.raises(rie_http.Truncated):
            chunked(b"FFFFFFFFFFFFFFFF\r\nabc", limit=6 << 20)
        with pytest.raises(rie_http.Truncated):
            rie_http.read_body(io.BytesIO(b"abc"), headers("Content-Length: 3000000000"), 6 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_over_the_limit_is_drained_and_none():
    stream = io.BytesIO(b"40\r\n" + b"x" * 64 + b"\r\n" + b"50\r\n" + b"y" * 80 + b"\r\n0\r\n\r\nNEXT")
    assert rie_http.read_body(stream, headers("Transfer-Encoding: chunked"), 100) is None
    assert stream.read() == b"NEXT"
    stream = io.BytesIO(b"z" * 101 + b"NEXT")
    assert rie_http.read_body(stream, headers("Content-Length: 101"), 100) is None
    assert stream.read() == b"NEXT"
    assert rie_http.read_body(io.BytesIO(b"z" * 100), headers("Content-Length: 100"), 100) == b"z" * 100


@pytest.mark.parametrize("value", ["-1", "+3", "1_0", "0x10", "3 4", "\u00b2", "1" * 19])
def test_bad_content_lengths(value):
    with pytest.raises(rie_http.BadFraming):
        rie_http.content_length(headers(f"Content-Length: {value}"))


def test_content_length_repeated():
    assert rie_http.content_length(headers("Content-Length: 3", "Content-Length: 3")) == 3
    with pytest.raises(rie_http.BadFraming):
        rie_http.content_length(headers("Content-Length: 3", "Content-Length: 4"))
    assert rie_http.content_length(headers()) == 0


def test_header_budget_caps_the_whole_block():
    block = b"".join(b"X-%d: " % i + b"a" * 1000 + b"\r\n" for i in range(10)) + b"\r\n"
    wrapped = rie_http.HeaderBudget(io.BytesIO(block))
    wrapped.budget = 5000
    with pytest.raises(http.client.LineTooLong):
        http.client.parse_headers(wrapped)
    wrapped = rie_http.HeaderBudget(io.BytesIO(block + b"body"))
    wrapped.budget = 20000
    assert len(http.client.parse_headers(wrapped)) == 10
    wrapped.budget = None
    assert wrapped.read() == b"body"
