"""Both C# loops (enirace's sample loop and the host of published functions)
against a Runtime API mock, point by point with Amazon.Lambda.RuntimeSupport:
the trace id set and cleared per invoke, Client-Context, Cognito identity and
tenant id handed to the handler, the error type as UTF-8, the X-Ray cause
header on /error, and the abort after a Runtime API failure."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.function import dotnet, dotnet_code
from tests.dotnet_functions import publish
from tests.integration.test_dotnet_toolchain import (  # noqa: F401  (fixtures)
    SIGABRT,
    MockRuntimeAPI,
    Toolchain,
    api,
    run_loop,
    toolchain,
)

pytestmark = pytest.mark.dotnet

PROBES = Path(__file__).parents[1] / "dotnet_functions" / "loop"
XRAY = "lambda-runtime-function-xray-error-cause"


@pytest.fixture(scope="module")
def probes(toolchain, tmp_path_factory) -> Toolchain:  # noqa: F811
    return Toolchain(toolchain.runtime, dotnet.build(PROBES, tmp_path_factory.mktemp("probe-cache")))


def utf8(header: str) -> str:
    """http.server decodes header bytes as Latin-1; the runtime sent UTF-8."""
    return header.encode("latin-1").decode("utf-8")


def env(api: MockRuntimeAPI) -> dict[str, str]:  # noqa: F811
    return {"AWS_LAMBDA_RUNTIME_API": api.endpoint}


def test_trace_id_client_context_cognito_and_tenant_reach_the_handler(probes, api):  # noqa: F811
    client_context = json.dumps({"client": {"app_title": "t"}, "custom": {"k": "v"}, "env": {}})
    api.add_event(headers={"lambda-runtime-client-context": client_context,
                           "lambda-runtime-cognito-identity": json.dumps(
                               {"cognitoIdentityId": "us-east-1:abc", "cognitoIdentityPoolId": "us-east-1:pool"}),
                           "lambda-runtime-aws-tenant-id": "tenant-7"})
    api.add_event(headers={"lambda-runtime-trace-id": None})  # no trace id: the previous one is cleared
    run = run_loop(probes, "context", env(api))
    assert run.returncode == SIGABRT, run.stderr
    first, second = [p.body.decode() for p in api.posts()]
    assert first == f"Root=1-5e1b4151-test|{client_context}|us-east-1:abc|us-east-1:pool|tenant-7"
    assert second == "<null>|<null>|<null>|<null>|<null>"


def test_error_type_is_utf8_and_the_xray_cause_is_runtimesupports(probes, api):  # noqa: F811
    api.add_event()
    run_loop(probes, "unicode_throw", env(api))
    [post] = api.posts()
    assert utf8(post.headers["lambda-runtime-function-error-type"]) == "ÄrgerException"
    assert post.json()["errorType"] == "ÄrgerException"
    cause = utf8(post.headers[XRAY])
    # RuntimeSupport's layout: two spaces per level, parts joined by ",", one line
    # (the value's leading spaces are HTTP whitespace, not sent).
    cwd = json.dumps(os.getcwd())
    assert cause.startswith('{  "working_directory": ' + cwd + ',  "exceptions": [     {    "type": "ÄrgerException",')
    assert "\n" not in cause and cause.endswith('  "paths":     [    ]  }')
    doc = json.loads(cause)
    assert doc["working_directory"] == os.getcwd() and doc["paths"] == []  # mcs writes no portable pdb
    [exc] = doc["exceptions"]
    assert exc["message"] == 'größer "als"\nerwartet'
    assert exc["stack"] and all(set(f) == {"label"} for f in exc["stack"])
    assert exc["stack"][0]["label"] == "UnicodeThrow.HandleAsync"


def test_the_host_sends_the_same_headers_and_aborts_after_a_runtime_api_failure(toolchain, api, tmp_path):  # noqa: F811
    folder = publish(tmp_path / "Throwing", "Throwing")
    argv, _ = dotnet_code.argv(toolchain.runtime, folder, "Throwing::Throwing.Function::FunctionHandler")
    api.add_event(payload=b'"x"')
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "LAMBDA_TASK_ROOT": str(folder),
                **toolchain.runtime.env(), **env(api)}
    proc = subprocess.run(argv, env=full_env, cwd=folder, capture_output=True, text=True, timeout=90)
    assert proc.returncode == SIGABRT, proc.stderr  # the mock's 500 on the second /next
    assert "Unhandled exception. Enirace.Lambda.RuntimeApiException: " in proc.stderr
    [post] = api.posts()
    assert utf8(post.headers["lambda-runtime-function-error-type"]) == "ÄrgerException"
    doc = json.loads(utf8(post.headers[XRAY]))
    assert doc["working_directory"] == str(folder)
    assert doc["exceptions"][0]["type"] == "ÄrgerException"
    assert doc["exceptions"][0]["message"] == "größer als erwartet"


def test_client_context_as_lambda_hands_it_over(probes, api):  # noqa: F811
    raw = base64.b64encode(b'{"custom":{"a":"b"}}').decode()
    api.add_event(headers={"lambda-runtime-client-context": raw})
    run_loop(probes, "context", env(api))
    [post] = api.posts()
    assert post.body.decode().split("|")[1] == raw  # handed over as received, not decoded
