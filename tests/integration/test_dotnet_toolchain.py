"""The real C# samples on a real CoreCLR 8, driven by a small Runtime API mock
on 127.0.0.1: success, handler errors (with RuntimeSupport's error JSON),
init errors, cached failures and the resilient handler's retries.

Needs a .NET 8 runtime and a C# compiler (see harness/function/dotnet.py); skips
without them, except under ENIRACE_REQUIRE_ALL=1 (CI), where it fails.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.function import dotnet as dotnet

pytestmark = pytest.mark.dotnet

ERROR_CONTENT_TYPE = "application/vnd.aws.lambda.error+json"
EXIT_USAGE = 2
# After an init error or a Runtime API failure the loop leaves the exception
# unhandled, as RuntimeSupport does: CoreCLR aborts (the RIE: "signal: aborted").
SIGABRT = -6
EXIT_INIT_ERROR = EXIT_RUNTIME_API = SIGABRT


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class MockRuntimeAPI:
    """Serves queued events on /next, records everything, and answers /next
    with 500 once the queue is empty, so the runtime exits on its own."""

    events: queue.Queue[tuple[bytes, Callable[[], None] | None, dict[str, str | None]] | None] = field(
        default_factory=queue.Queue)
    requests: list[Recorded] = field(default_factory=list)
    served_ids: list[str] = field(default_factory=list)
    # SnapStart: called when GET /runtime/restore/next arrives, before its 200.
    on_restore: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                api.requests.append(Recorded(self.command, self.path,
                                             {k.lower(): v for k, v in self.headers.items()},
                                             self.rfile.read(length)))

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._record()
                if self.path.endswith("/runtime/restore/next"):
                    if api.on_restore is not None:
                        api.on_restore()
                    self._reply(200, b"", {})
                    return
                try:
                    item = api.events.get_nowait()
                except queue.Empty:
                    item = None
                if item is None:
                    self._reply(500, b'{"errorType":"Container error"}',
                                {"Content-Type": "application/json"})
                    return
                payload, before, extra = item
                if before is not None:
                    before()
                request_id = str(uuid.uuid4())
                api.served_ids.append(request_id)
                deadline = int(time.time() * 1000) + 30_000
                # Lower-case names on purpose: the runtime must not care.
                headers = {"content-type": "application/json", "lambda-runtime-aws-request-id": request_id,
                           "lambda-runtime-deadline-ms": str(deadline),
                           "lambda-runtime-trace-id": "Root=1-5e1b4151-test", **extra}
                self._reply(200, payload, {k: v for k, v in headers.items() if v is not None})

            def do_POST(self) -> None:
                self._record()
                self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def add_event(self, payload: bytes = b'{"hello":"world"}', before: Callable[[], None] | None = None,
                  headers: dict[str, str | None] | None = None) -> None:
        """`headers` add to /next's or replace them (None: leave that one out)."""
        self.events.put((payload, before, headers or {}))

    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Service:
    """The function's target on 127.0.0.1. Bound at once but not listening
    until start(): until then connections are refused, like a service behind
    a network that is not there yet."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = b'{"service":"ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.server_bind()
        self.started = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.server.server_activate()
            threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        if self.started:
            self.server.shutdown()
        self.server.server_close()


@dataclass
class Toolchain:
    runtime: dotnet.DotnetRuntime
    build: dotnet.BuildResult


@pytest.fixture(scope="module")
def toolchain(tmp_path_factory: pytest.TempPathFactory) -> Toolchain:
    runtime, compiler = dotnet.locate_runtime(), dotnet.locate_compiler()
    missing = [d for d, ok in ((dotnet.describe_runtime(runtime), runtime),
                               (dotnet.describe_compiler(compiler), compiler)) if not ok]
    if missing:
        reason = "; ".join(missing)
        if os.environ.get("ENIRACE_REQUIRE_ALL") == "1":
            pytest.fail(f"ENIRACE_REQUIRE_ALL=1 but the dotnet tests cannot run: {reason}")
        pytest.skip(reason)
    assert runtime is not None
    return Toolchain(runtime, dotnet.build_samples(tmp_path_factory.mktemp("dotnet-cache")))


@pytest.fixture
def api() -> Iterator[MockRuntimeAPI]:
    mock = MockRuntimeAPI()
    yield mock
    mock.close()


@pytest.fixture
def service() -> Iterator[Service]:
    svc = Service()
    yield svc
    svc.close()


@dataclass
class Run:
    returncode: int
    stderr: str


def run_loop(tc: Toolchain, handler: str, env: dict[str, str],
             on_stderr: Callable[[str], None] | None = None) -> Run:
    """Run the loop to its own exit (the mock's final 500); never hangs the suite."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp",
                **tc.runtime.env(), **env}
    proc = subprocess.Popen(tc.build.argv(handler, tc.runtime), env=full_env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if on_stderr is not None:
                on_stderr(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{handler}: the runtime loop did not exit; stderr:\n{''.join(lines)}")
    reader.join(timeout=5)
    return Run(code, "".join(lines))


def env_for(api: MockRuntimeAPI, target: str) -> dict[str, str]:
    return {"AWS_LAMBDA_RUNTIME_API": api.endpoint, "TARGET_URL": target}


def test_build_is_cached(toolchain: Toolchain) -> None:
    again = dotnet.build_samples(toolchain.build.directory.parent)
    assert again.cached and again.dll == toolchain.build.dll


def test_success_round_trip(toolchain: Toolchain, api: MockRuntimeAPI, service: Service) -> None:
    service.start()
    api.add_event()
    run = run_loop(toolchain, "static_httpclient", env_for(api, service.url))

    assert run.returncode == EXIT_RUNTIME_API, run.stderr  # the mock's final 500
    assert "Unhandled exception. Enirace.Lambda.RuntimeApiException: " in run.stderr
    assert "Container error" in run.stderr
    first_next = api.requests[0]
    assert (first_next.method, first_next.path) == ("GET", "/2018-06-01/runtime/invocation/next")
    assert first_next.headers["accept"] == "application/json"
    assert first_next.headers["user-agent"].startswith("enirace-dotnet/8.")
    [post] = api.posts()
    assert post.path == f"/2018-06-01/runtime/invocation/{api.served_ids[0]}/response"
    assert post.headers["content-type"] == "application/json"
    result = post.json()
    assert result["handler"] == "static_httpclient" and result["status"] == 200
    assert json.loads(result["body"]) == {"service": "ok"}


def test_handler_exception_posts_runtimesupport_error(toolchain: Toolchain, api: MockRuntimeAPI,
                                                      service: Service) -> None:
    api.add_event()
    api.add_event()
    run = run_loop(toolchain, "static_httpclient", env_for(api, service.url))

    assert run.returncode == EXIT_RUNTIME_API
    posts = api.posts()
    assert [p.path for p in posts] == [
        f"/2018-06-01/runtime/invocation/{rid}/error" for rid in api.served_ids]
    post = posts[0]
    assert post.headers["content-type"] == ERROR_CONTENT_TYPE
    assert post.headers["lambda-runtime-function-error-type"] == "HttpRequestException"
    doc = post.json()
    assert list(doc)[:3] == ["errorType", "errorMessage", "stackTrace"]
    assert doc["errorType"] == "HttpRequestException"
    assert "Connection refused" in doc["errorMessage"]
    assert doc["stackTrace"] and all(isinstance(f, str) and f.startswith("at ")
                                     for f in doc["stackTrace"])
    assert doc["cause"]["errorType"] == "SocketException"
    assert "HttpRequestException: Connection refused" in run.stderr


@pytest.mark.parametrize(("handler", "second"), [
    ("static_httpclient", "response"),  # a fresh attempt per invoke: recovers
    ("lazy_cached", "error"),  # the faulted Task is kept: stays broken
    ("static_init", "response"),  # the lookup succeeds (an IP literal); only connect failed
])
def test_recovery_after_the_service_appears(toolchain: Toolchain, api: MockRuntimeAPI,
                                            service: Service, handler: str, second: str) -> None:
    api.add_event()
    api.add_event(before=service.start)
    run_loop(toolchain, handler, env_for(api, service.url))

    kinds = [p.path.rsplit("/", 1)[1] for p in api.posts()]
    assert kinds == ["error", second]
    if second == "error":
        assert [p.json()["errorType"] for p in api.posts()] == ["HttpRequestException"] * 2


def test_failed_type_initializer_fails_every_invoke(toolchain: Toolchain,
                                                    api: MockRuntimeAPI) -> None:
    api.add_event()
    api.add_event()
    run_loop(toolchain, "static_init", env_for(api, "not a url"))

    docs = [p.json() for p in api.posts()]
    assert [p.headers["lambda-runtime-function-error-type"] for p in api.posts()] == [
        "TypeInitializationException"] * 2
    assert all(d["cause"]["errorType"] == "UriFormatException" for d in docs)


def test_ctor_failure_posts_init_error_and_exits(toolchain: Toolchain, api: MockRuntimeAPI,
                                                 service: Service) -> None:
    api.add_event()
    run = run_loop(toolchain, "ctor_throws", env_for(api, service.url))

    assert run.returncode == EXIT_INIT_ERROR
    [post] = api.requests  # no /next before init is done
    assert (post.method, post.path) == ("POST", "/2018-06-01/runtime/init/error")
    assert post.headers["content-type"] == ERROR_CONTENT_TYPE
    assert "lambda-runtime-function-error-type" not in post.headers  # as RuntimeSupport
    doc = post.json()
    assert doc["errorType"] == "TargetInvocationException"
    assert doc["cause"]["errorType"] == "HttpRequestException"
    assert "Connection refused" in doc["cause"]["errorMessage"]
    assert doc["cause"]["cause"]["errorType"] == "SocketException"
    assert "Connection refused" in run.stderr


def test_ctor_succeeds_once_the_service_is_up(toolchain: Toolchain, api: MockRuntimeAPI,
                                              service: Service) -> None:
    service.start()
    api.add_event()
    run_loop(toolchain, "ctor_throws", env_for(api, service.url))
    [post] = api.posts()
    assert post.path.endswith("/response") and post.json()["handler"] == "ctor_throws"


def test_unknown_handler_is_an_init_error(toolchain: Toolchain, api: MockRuntimeAPI) -> None:
    run = run_loop(toolchain, "no_such_handler", env_for(api, "http://127.0.0.1:9/"))
    assert run.returncode == EXIT_INIT_ERROR
    doc = api.requests[0].json()
    assert doc["errorType"] == "LambdaValidationException"
    assert "no_such_handler" in doc["errorMessage"] and "static_httpclient" in doc["errorMessage"]


def test_handler_by_type_name(toolchain: Toolchain, api: MockRuntimeAPI, service: Service) -> None:
    service.start()
    api.add_event()
    run_loop(toolchain, "Enirace.Handlers.StaticHttpClientHandler", env_for(api, service.url))
    assert api.posts()[0].json()["handler"] == "static_httpclient"


def test_without_runtime_api_address_exits_with_usage(toolchain: Toolchain) -> None:
    run = run_loop(toolchain, "static_httpclient", {})
    assert run.returncode == EXIT_USAGE
    assert "AWS_LAMBDA_RUNTIME_API" in run.stderr


def test_resilient_retries_until_the_service_is_up(toolchain: Toolchain, api: MockRuntimeAPI,
                                                   service: Service) -> None:
    def start_after_first_failure(line: str) -> None:
        if "resilient: attempt 1 failed" in line:
            service.start()

    api.add_event()
    run = run_loop(toolchain, "resilient", env_for(api, service.url), start_after_first_failure)

    [post] = api.posts()
    assert post.path.endswith("/response"), run.stderr
    result = post.json()
    assert result["handler"] == "resilient" and result["attempts"] >= 2
    assert "Connection refused" in run.stderr
