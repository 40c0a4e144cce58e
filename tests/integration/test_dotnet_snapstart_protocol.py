"""SnapStart in both C# loops (the sample loop with its own SnapshotRestore, and
the host of published functions with their Amazon.Lambda.Core's), against a
Runtime API mock, point by point with Amazon.Lambda.RuntimeSupport: with
AWS_LAMBDA_INITIALIZATION_TYPE=snap-start the before-snapshot hooks run (last
registered first, each awaited), then GET /runtime/restore/next, then the
after-restore hooks (in registration order), then /next; a failing
before-snapshot hook is an init error typed Runtime.BeforeSnapshotError, a failing
after-restore hook goes to /runtime/restore/error typed Runtime.AfterRestoreError,
and the runtime then exits 0 without polling /next; an init error under SnapStart
exits 1."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.function import dotnet, dotnet_code
from tests.dotnet_functions import publish
from tests.integration.test_dotnet_toolchain import (  # noqa: F401  (fixtures)
    SIGABRT,
    MockRuntimeAPI,
    Toolchain,
    api,
    toolchain,
)

pytestmark = pytest.mark.dotnet

PROBES = Path(__file__).parents[1] / "dotnet_functions" / "loop"
ERROR_TYPE = "lambda-runtime-function-error-type"
ERROR_CONTENT = "application/vnd.aws.lambda.error+json"
HOST_HANDLER = "SnapHooks::SnapHooks.Function::FunctionHandler"
ALL_HOOKS = "before2,before1,after1,after2"


@dataclass
class Ran:
    returncode: int
    output: str  # stdout + stderr: the loop logs to stderr, the host to stdout, as RuntimeSupport


@pytest.fixture(scope="module")
def probes(toolchain, tmp_path_factory) -> Toolchain:  # noqa: F811
    return Toolchain(toolchain.runtime, dotnet.build(PROBES, tmp_path_factory.mktemp("snap-probe-cache")))


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("snap-published")
    return {"hooks": publish(root / "SnapHooks", "SnapHooks", serializer=False),
            "old_core": publish(root / "OldCore", "MyFunction", old_core=True)}


def _run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Ran:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", **env}
    try:
        proc = subprocess.run(argv, env=full, cwd=cwd, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the runtime did not exit: {e.stdout!r} {e.stderr!r}")
    return Ran(proc.returncode, proc.stdout + proc.stderr)


class Runtime:
    """Runs the probe on one of the two loops, snap-start set unless told otherwise."""

    def __init__(self, kind: str, probes: Toolchain, folder: Path, api: MockRuntimeAPI, marks: Path):  # noqa: F811
        self.kind, self.probes, self.folder, self.api, self.marks = kind, probes, folder, api, marks

    def run(self, snapstart: bool = True, **env: str) -> Ran:
        base = {"AWS_LAMBDA_RUNTIME_API": self.api.endpoint, "SNAP_MARKS": str(self.marks),
                **self.probes.runtime.env(), **env}
        if snapstart:
            base["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
        if self.kind == "loop":
            return _run(self.probes.build.argv("snapstart_probe", self.probes.runtime), base)
        argv, _ = dotnet_code.argv(self.probes.runtime, self.folder, HOST_HANDLER)
        return _run(argv, {**base, "LAMBDA_TASK_ROOT": str(self.folder)}, cwd=self.folder)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path.removeprefix('/2018-06-01')}" for r in self.api.requests]


@pytest.fixture(params=["loop", "host"])
def runtime(request, probes, published, api, tmp_path) -> Runtime:  # noqa: F811
    return Runtime(request.param, probes, published["hooks"], api, tmp_path)


def _marks_at_restore(runtime: Runtime) -> list[list[str]]:
    seen: list[list[str]] = []
    runtime.api.on_restore = lambda: seen.append(sorted(p.name for p in runtime.marks.iterdir()))
    return seen


def test_hooks_run_around_the_snapshot_in_runtimesupports_order(runtime):
    seen = _marks_at_restore(runtime)
    runtime.api.add_event()
    ran = runtime.run()
    assert ran.returncode == SIGABRT, ran.output  # the mock's 500 on the second /next
    # The slow before-snapshot hook was awaited; no after-restore hook ran before the restore.
    assert seen == [["before1", "before2"]]
    assert runtime.paths()[:3] == ["GET /runtime/restore/next", "GET /runtime/invocation/next",
                                   f"POST /runtime/invocation/{runtime.api.served_ids[0]}/response"]
    assert runtime.api.requests[0].headers["accept"] == "application/json"
    assert runtime.api.posts()[0].body.decode() == ALL_HOOKS


def test_without_snapstart_there_is_no_snapshot_and_no_hook_runs(runtime):
    runtime.api.add_event()
    ran = runtime.run(snapstart=False)
    assert ran.returncode == SIGABRT, ran.output
    assert "GET /runtime/restore/next" not in runtime.paths()
    assert runtime.api.posts()[0].body == b""
    assert not list(runtime.marks.iterdir())


def test_a_failing_before_snapshot_hook_is_an_init_error_and_the_runtime_stops(runtime):
    runtime.api.add_event()
    ran = runtime.run(SNAP_FAIL="before")
    assert ran.returncode == 0, ran.output  # RuntimeSupport's RunAsync returns
    assert runtime.paths() == ["POST /runtime/init/error"]  # no snapshot, no /next
    [post] = runtime.api.posts()
    assert post.headers[ERROR_TYPE] == "Runtime.BeforeSnapshotError"
    assert post.headers["content-type"] == ERROR_CONTENT
    body = post.json()
    assert (body["errorType"], body["errorMessage"]) == ("InvalidOperationException", "before1 hook failed")
    assert "\tfail\tFailed to invoke before snapshot hooks: System.InvalidOperationException: before1 hook failed" \
        in ran.output
    assert sorted(p.name for p in runtime.marks.iterdir()) == ["before1", "before2"]


def test_a_failing_after_restore_hook_goes_to_restore_error_and_the_runtime_stops(runtime):
    runtime.api.add_event()
    ran = runtime.run(SNAP_FAIL="after")
    assert ran.returncode == 0, ran.output
    assert runtime.paths() == ["GET /runtime/restore/next", "POST /runtime/restore/error"]
    [post] = runtime.api.posts()
    assert post.headers[ERROR_TYPE] == "Runtime.AfterRestoreError"
    assert post.headers["content-type"] == ERROR_CONTENT
    body = post.json()
    assert (body["errorType"], body["errorMessage"]) == ("InvalidOperationException", "after1 hook failed")
    assert body["stackTrace"]
    assert "\tfail\tFailed to invoke after restore callables: System.InvalidOperationException: after1 hook failed" \
        in ran.output
    assert "after2" not in {p.name for p in runtime.marks.iterdir()}  # the queue stops at the failure


def test_an_init_error_under_snapstart_exits_1_instead_of_aborting(probes, api, tmp_path):  # noqa: F811
    env = {"AWS_LAMBDA_RUNTIME_API": api.endpoint, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
           **probes.runtime.env()}
    ran = _run(probes.build.argv("snapstart_ctor_throws", probes.runtime), env)
    assert ran.returncode == 1, ran.output
    [post] = api.posts()
    assert post.path.endswith("/runtime/init/error") and ERROR_TYPE not in post.headers
    assert post.json()["errorType"] == "TargetInvocationException"


def test_an_amazon_lambda_core_without_snapshotrestore_is_logged_and_init_goes_on(probes, published, api):  # noqa: F811
    folder = published["old_core"]
    api.add_event(payload=b'"x"')
    argv, _ = dotnet_code.argv(probes.runtime, folder, "MyFunction::MyFunction.Function::FunctionHandler")
    env = {"AWS_LAMBDA_RUNTIME_API": api.endpoint, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
           "LAMBDA_TASK_ROOT": str(folder), "TARGET_URL": "http://127.0.0.1:9/", **probes.runtime.env()}
    ran = _run(argv, env, cwd=folder)
    assert ran.returncode == SIGABRT, ran.output
    assert ("\tfail\tFailed to retrieve snapshot hooks from Amazon.Lambda.Core.SnapshotRestore, this can be "
            "fixed by updating the version of Amazon.Lambda.Core: System.TypeLoadException: ") in ran.output
    paths = [f"{r.method} {r.path.removeprefix('/2018-06-01')}" for r in api.requests]
    assert paths[:2] == ["GET /runtime/restore/next", "GET /runtime/invocation/next"]
