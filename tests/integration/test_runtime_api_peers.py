"""The emulator against peers that lie about what they send: declared sizes it
must not allocate, malformed framing, header floods, unparseable error bodies.
Each answer is checked on the wire, and the harness process (where the emulator's
threads run) must not have grown by more than a few megabytes."""

from __future__ import annotations

import contextlib
import http.client
import json
import resource
import socket
import tracemalloc

import pytest

from harness.emulator import protocol as rp
from harness.lab import netns
from tests.integration.test_runtime_api import (
    SLEEPER,
    Client,
    invoke_in_background,
    make_api,
    poll_next_in_background,
    wait_for,
)

pytestmark = [pytest.mark.root]
API = "/2018-06-01"
GROWTH_LIMIT_MB = 50


@contextlib.contextmanager
def bounded_memory():
    """Fails when this process allocated (Python heap peak) or reached (max RSS)
    GROWTH_LIMIT_MB more inside the block."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert peak / 2**20 < GROWTH_LIMIT_MB, f"heap peak {peak / 2**20:.0f} MB"
    assert rss_growth < GROWTH_LIMIT_MB, f"max RSS grew {rss_growth:.0f} MB"


def raw(lab, data: bytes) -> tuple[int, bytes]:
    """Send `data`, half-close, and read the one reply: (status, body)."""
    with netns.entered(lab.sandbox):
        s = socket.create_connection(("127.0.0.1", 9001), timeout=10)
    with s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        return resp.status, resp.read()


def running(lab, tmp_path):
    """An API with one invocation delivered to a test-played runtime."""
    api, history, _ = make_api(lab, tmp_path, SLEEPER)
    t, box = invoke_in_background(api)
    wait_for(lambda: history.of_kind("init_start"))
    rt = Client(lab.sandbox)
    _, headers, _ = rt.call("GET", f"{API}/runtime/invocation/next")
    return api, t, box, rt, headers["Lambda-Runtime-Aws-Request-Id"]


def post(path: str, extra: bytes) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode() + extra


def test_a_function_declaring_3_gb_and_exiting_costs_no_memory(lab, tmp_path):
    # The reproducer: Content-Length 3e9, a few bytes, exit. The drain used to
    # allocate the missing bytes in one piece (2.9 GB of RSS per invocation).
    script = """
        import os, socket, urllib.request
        api = os.environ["AWS_LAMBDA_RUNTIME_API"]
        with urllib.request.urlopen(f"http://{api}/2018-06-01/runtime/invocation/next") as r:
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        host, port = api.split(":")
        s = socket.create_connection((host, int(port)))
        s.sendall(f"POST /2018-06-01/runtime/invocation/{rid}/response HTTP/1.1\\r\\n"
                  "Content-Length: 3000000000\\r\\n\\r\\nabc".encode())
        os._exit(0)
    """
    api, _, _ = make_api(lab, tmp_path, script)
    try:
        with bounded_memory():
            _, outcome = api.invoke(b"{}")
            assert (outcome.status, outcome.error_type) == ("crash", "Runtime.ExitError")
    finally:
        api.stop()


def test_truncated_bodies_are_refused_without_allocating_their_declared_size(lab, tmp_path):
    api, t, box, rt, rid = running(lab, tmp_path)
    try:
        path = f"{API}/runtime/invocation/{rid}/response"
        with bounded_memory():
            for extra in (b"Content-Length: 3000000000\r\n\r\nabc",
                          b"Transfer-Encoding: chunked\r\n\r\nB2D05E00\r\nabc"):
                status, body = raw(lab, post(path, extra))
                assert (status, json.loads(body)["errorType"]) == (400, "TruncatedHTTPRequest")
        assert rt.call("POST", path, b'"fine"')[0] == 202
        t.join(5)
        assert box["result"][1].body == b'"fine"'
    finally:
        api.stop()


@pytest.mark.parametrize("framing", [
    pytest.param(b"-1\r\n" + b"x" * 7_000_000, id="negative-reads-to-eof"),
    pytest.param(b"zz\r\n", id="not-hex"),
    pytest.param(b"1" * 5000 + b"\r\n", id="size-line-too-long"),
    pytest.param(b"1" * 17 + b"\r\n", id="more-than-16-hex-digits"),
    pytest.param(b"5\r\nhelloXX0\r\n\r\n", id="no-crlf-after-data"),
])
def test_malformed_chunked_bodies_are_400_and_never_delivered(lab, tmp_path, framing):
    api, t, box, rt, rid = running(lab, tmp_path)
    try:
        path = f"{API}/runtime/invocation/{rid}/response"
        with bounded_memory():
            status, body = raw(lab, post(path, b"Transfer-Encoding: chunked\r\n\r\n" + framing))
        assert (status, body) == (400, b"400 Bad Request\n")
        assert "result" not in box
        assert rt.call("POST", path, b'"fine"')[0] == 202
        t.join(5)
        assert box["result"][1].body == b'"fine"'
    finally:
        api.stop()


def test_the_payload_limit_applies_to_chunked_bodies(lab, tmp_path):
    api, t, box, rt, rid = running(lab, tmp_path)
    try:
        path = f"{API}/runtime/invocation/{rid}/response"
        piece = b"x" * 65536
        chunks = (b"10000\r\n" + piece + b"\r\n") * (rp.MAX_PAYLOAD // len(piece) + 1) + b"0\r\n\r\n"
        with bounded_memory():
            status, body = raw(lab, post(path, b"Transfer-Encoding: chunked\r\n\r\n" + chunks))
        assert (status, json.loads(body)["errorType"]) == (413, "RequestEntityTooLarge")
        poll_next_in_background(lab.sandbox)  # which also takes the next event
        t.join(5)  # the 413 ended that invocation (released by the runtime's next /next)
        assert box["result"][1].error_type == "Function.ResponseSizeTooLarge"
        t, box = invoke_in_background(api)
        wait_for(lambda: len(api.history.of_kind("invoke_start")) == 2)
        rid = api.history.of_kind("invoke_start")[-1]["request_id"]
        path = f"{API}/runtime/invocation/{rid}/response"
        # Exactly at the limit is still a response, in several chunks with an extension and a trailer.
        at_limit = b"x" * rp.MAX_PAYLOAD
        half = len(at_limit) // 2
        framed = (f"{half:x};ext=1\r\n".encode() + at_limit[:half] + b"\r\n" +
                  f"{len(at_limit) - half:X}\r\n".encode() + at_limit[half:] + b"\r\n0\r\nX-T: 1\r\n\r\n")
        status, _ = raw(lab, post(path, b"Transfer-Encoding: chunked\r\n\r\n" + framed))
        assert status == 202
        poll_next_in_background(lab.sandbox)
        t.join(5)
        assert box["result"][1].body == at_limit
    finally:
        api.stop()


def test_header_floods_are_431_and_bounded(lab, tmp_path):
    api, _, _ = make_api(lab, tmp_path, SLEEPER)
    try:
        ping = f"GET {API}/ping HTTP/1.1\r\n".encode()
        with bounded_memory():
            for headers in (b"".join(b"X-%d: 1\r\n" % i for i in range(101)),   # count
                            b"X-Long: " + b"a" * 70_000 + b"\r\n",                # one line
                            b"".join(b"X-%d: " % i + b"a" * 60_000 + b"\r\n" for i in range(40))):  # total
                status, body = raw(lab, ping + headers + b"\r\n")
                assert (status, body) == (431, b"431 Request Header Fields Too Large\n")
        assert raw(lab, ping + b"X-Fine: " + b"a" * 60_000 + b"\r\n\r\n") == (200, b"pong")
    finally:
        api.stop()


def test_bad_content_lengths_are_400(lab, tmp_path):
    api, _, _ = make_api(lab, tmp_path, SLEEPER)
    try:
        path = f"{API}/runtime/init/error"
        for extra in (b"Content-Length: -5\r\n\r\n", b"Content-Length: 1_0\r\n\r\n0123456789",
                      b"Content-Length: +3\r\n\r\nabc", b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"):
            assert raw(lab, post(path, extra)) == (400, b"400 Bad Request\n")
    finally:
        api.stop()


NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("ctype, delivered, delivered_type", [
    pytest.param(rp.ERROR_CONTENT_TYPE, NESTED, "application/json", id="verbatim"),
    # The RIE re-marshals this content type; what it cannot parse becomes this JSON string.
    pytest.param(rp.CAUSE_CONTENT_TYPE, b'"Invalid error body"', "application/octet-stream", id="cause"),
])
def test_an_unparseable_error_body_fails_the_invocation(lab, tmp_path, ctype, delivered, delivered_type):
    api, t, box, rt, rid = running(lab, tmp_path)
    try:
        status, _, body = rt.call("POST", f"{API}/runtime/invocation/{rid}/error", NESTED,
                                  {"Content-Type": ctype, "Lambda-Runtime-Function-Error-Type": "Function.Deep"})
        assert (status, body) == (202, rp.ACCEPTED)
        t.join(5)
        _, outcome = box["result"]
        assert (outcome.status, outcome.error_type) == ("error", "Function.Deep")
        assert (outcome.rie_response(), outcome.content_type) == ((200, delivered), delivered_type)
    finally:
        api.stop()


def test_an_unparseable_init_error_body_is_an_init_error(lab, tmp_path):
    script = """
        import os, sys, urllib.request
        api = os.environ["AWS_LAMBDA_RUNTIME_API"]
        req = urllib.request.Request(f"http://{api}/2018-06-01/runtime/init/error",
                                     data=b"[" * 100000, method="POST")
        print(urllib.request.urlopen(req).status, flush=True)
        sys.exit(1)
    """
    api, history, output = make_api(lab, tmp_path, script)
    try:
        _, outcome = api.invoke(b"{}")
        assert outcome.status == "init_error" and outcome.rie_response() == (502, b"[" * 100_000)
        assert "1:202" in output and "2:202" in output
        assert [e["source"] for e in history.of_kind("init_error")] == ["init/error", "init/error"]
    finally:
        api.stop()
