"""The function is contained as Lambda contains it: an unprivileged user, a
private /tmp, a read-only task root, a cgroup that enforces memory_mb and that
teardown kills as a whole. Real trials, real processes, real cgroups."""

from __future__ import annotations

import json
import pwd
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.checker.classify import classify
from harness.function import cgroup as cgroups
from harness.function import contain as contain
from harness.scenario import model as sc
from harness.trial import run_one_trial

pytestmark = [pytest.mark.root]

LOOP = """
    import json, os, urllib.request
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    def serve(handle):
        while True:
            with urllib.request.urlopen(f"http://{api}/2018-06-01/runtime/invocation/next") as r:
                event, rid = r.read(), r.headers["Lambda-Runtime-Aws-Request-Id"]
            body = json.dumps(handle(event)).encode()
            req = urllib.request.Request(f"http://{api}/2018-06-01/runtime/invocation/{rid}/response",
                                         data=body, method="POST")
            urllib.request.urlopen(req).read()
"""

# What the handler reports about the place it runs in.
PROBE = """
    import errno, subprocess
    def probe(event):
        token = event.decode().strip('"')
        with open(f"/tmp/enirace-probe-{token}", "w") as fh:
            fh.write("x")
        try:
            open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "written"), "w").close()
            task_root = "writable"
        except OSError as exc:
            task_root = errno.errorcode[exc.errno]
        nsenter = subprocess.run(["nsenter", f"--net=/proc/{os.getppid()}/ns/net", "true"],
                                 capture_output=True).returncode
        return {"uid": os.getuid(), "task_root": task_root, "tmpdir": os.environ.get("TMPDIR"),
                "cgroup": open("/proc/self/cgroup").read(), "nsenter": nsenter}
    serve(probe)
"""


def trial_with(run, tmp_path: Path, body: str, payload: object = "", **function):
    code = tmp_path / "fn"
    code.mkdir(exist_ok=True)
    (code / "bootstrap.py").write_text(textwrap.dedent(LOOP) + textwrap.dedent(body))
    doc = {"name": "contained",
           "function": {"runtime": "command", "command": [sys.executable, "bootstrap.py"], "code": str(code),
                        "handler": "bootstrap", "timeout": "3s", **function},
           "lab": {"eni": "present"},
           "workload": {"invocations": 2, "interval": "50ms", "payload": payload}}
    return run_one_trial(sc.validate(doc, "test"), run, tmp_path / "out")


def responses(result) -> list[dict]:
    return [json.loads(e["body"]) for e in result.events if e["kind"] == "invoke_end" and e["status"] == "ok"]


def test_unprivileged_user_private_tmp_read_only_task_root(run, tmp_path):
    token = secrets.token_hex(6)
    result = trial_with(run, tmp_path, PROBE, payload=token)
    assert result.verdict.verdict == "healthy", result.verdict.reason
    seen = responses(result)[0]
    assert seen["uid"] != 0
    assert pwd.getpwuid(seen["uid"]).pw_name == contain.DEFAULT_USER
    assert seen["task_root"] == "EROFS"  # the bind mount, not just a permission
    assert seen["nsenter"] != 0  # an unprivileged user cannot leave its namespace
    assert seen["tmpdir"] == "/tmp"
    assert f"enirace/{run.run_id}-" in seen["cgroup"]
    assert not Path(f"/tmp/enirace-probe-{token}").exists()  # the handler's /tmp was its own
    assert not (tmp_path / "fn" / "written").exists()


def test_root_user_warns_and_keeps_tmp_and_cgroup(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(contain, "_warned", False)
    token = secrets.token_hex(6)
    result = trial_with(run, tmp_path, PROBE, payload=token, user="root")
    assert result.verdict.verdict == "healthy", result.verdict.reason
    seen = responses(result)[0]
    assert seen["uid"] == 0 and seen["nsenter"] == 0
    assert seen["task_root"] == "EROFS"
    assert f"enirace/{run.run_id}-" in seen["cgroup"]
    assert not Path(f"/tmp/enirace-probe-{token}").exists()
    err = capsys.readouterr().err
    assert err.count("warning: function.user: root") == 1 and len(err.strip().splitlines()) == 1


def _processes_with(arg: str) -> list[int]:
    found = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and arg.encode() in (p / "cmdline").read_bytes().split(b"\0"):
                found.append(int(p.name))
        except OSError:
            pass
    return found


def test_a_child_that_left_the_namespace_and_session_does_not_survive(run, tmp_path):
    # As root, a child can enter the harness's (the host's) network namespace
    # and start its own session: neither the sandbox nor killpg reach it.
    mark = f"{600 + secrets.randbelow(300)}.{secrets.randbelow(10**6)}"
    body = f"""
        import subprocess
        escaped = subprocess.Popen(["nsenter", f"--net=/proc/{{os.getppid()}}/ns/net",
                                    "setsid", "sleep", "{mark}"])
        serve(lambda event: {{"escaped": escaped.pid}})
    """
    result = trial_with(run, tmp_path, body, user="root")
    assert result.verdict.verdict == "healthy", result.verdict.reason
    assert responses(result)[0]["escaped"] > 0
    deadline = time.monotonic() + 1
    while _processes_with(mark) and time.monotonic() < deadline:
        time.sleep(0.01)  # a killed process may still be being reaped by init
    assert not _processes_with(mark)
    assert not [o for o in run.owned() if o.kind == "cgroup"]


def test_memory_mb_is_enforced_and_reported_as_lambda_does(run, tmp_path):
    body = """
        def hog(event):
            blob = b"x" * (400 * 1024 * 1024)  # written, so every page is charged
            return {"len": len(blob)}
        serve(hog)
    """
    result = trial_with(run, tmp_path, body, memory_mb=128)
    v = result.verdict
    assert v.verdict == "stuck", v.reason
    ends = [e for e in result.events if e["kind"] == "invoke_end"]
    assert [e["status"] for e in ends] == ["crash", "crash"]
    assert {e["error_type"] for e in ends} == {"Runtime.OutOfMemory"}
    assert all(e["error_message"] == "Runtime exited with error: signal: killed" for e in ends)
    assert json.loads(ends[0]["body"]) == {
        "errorType": "Runtime.OutOfMemory",
        "errorMessage": f"RequestId: {ends[0]['request_id']} Error: Runtime exited with error: signal: killed"}
    assert {f.error_class for f in v.failures} == {"oom"}
    exits = [e for e in result.events if e["kind"] == "runtime_exit" and e["during"] == "running"]
    assert exits and all(e["oom"] for e in exits)
    assert "out of memory" in exits[0]["reason"]


def test_under_the_limit_is_not_an_oom(run, tmp_path):
    body = """
        def fits(event):
            blob = b"x" * (40 * 1024 * 1024)
            return {"len": len(blob)}
        serve(fits)
    """
    result = trial_with(run, tmp_path, body, memory_mb=128)
    assert result.verdict.verdict == "healthy", result.verdict.reason


def test_oom_is_its_own_error_class():
    assert classify("Runtime.OutOfMemory: Runtime exited with error: signal: killed") == "oom"
    assert classify("Runtime.ExitError: Runtime exited with error: signal: killed") == "other"


def test_cgroup_v2_kill_reaches_a_new_session(run):
    """cgroup.kill on the v2 hierarchy (the unified one on a hybrid machine):
    a process tree whose leaf started its own session dies as one."""
    layout = cgroups.detect()
    if layout is None or layout.version == 2:
        v2 = layout
    else:
        unified = Path("/sys/fs/cgroup/unified")
        if not (unified / "cgroup.procs").exists():
            pytest.skip("no v2 hierarchy mounted beside v1")
        v2 = cgroups.Layout(2, None, unified)
    assert v2 is not None
    group = cgroups.create(v2, run, f"{run.run_id}-test-v2", None)
    mark = f"{700 + secrets.randbelow(200)}.{secrets.randbelow(10**6)}"
    proc = subprocess.Popen(group.join_prefix() + ["sh", "-c", f"setsid sleep {mark} & wait"])
    try:
        deadline = time.monotonic() + 2
        while len(group.pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(group.pids()) >= 2
        assert group.kill_all()
        proc.wait(timeout=2)
        assert not group.remove(run)
        assert not [d for d in group.dirs if d.exists()]
        assert not [o for o in run.owned() if o.kind == "cgroup"]
        time.sleep(0.05)
        assert not _processes_with(mark)
    finally:
        proc.kill()
        group.remove(run)


def test_task_root_below_a_closed_directory_is_reached(run, tmp_path):
    """/tmp/pytest-of-root is 0700, like /root: the runtime user still gets to
    its code (the carried task root) and to an interpreter under a closed home."""
    result = trial_with(run, tmp_path, "serve(lambda event: {'cwd': os.getcwd()})")
    assert result.verdict.verdict == "healthy", result.verdict.reason
    assert responses(result)[0]["cwd"] == str(tmp_path / "fn")


def _runtime_leftovers() -> set[str]:
    return {p.name for pattern in ("clr-debug-pipe-*", "dotnet-diagnostic-*") for p in Path("/tmp").glob(pattern)}


@pytest.mark.dotnet
def test_dotnet_leaves_nothing_in_the_hosts_tmp(trial):
    # CoreCLR makes two debugger pipes and a diagnostics socket in $TMPDIR per
    # process and never removes them; they now land in the runtime's own tmpfs.
    result = trial(sc_path(), "function.runtime=dotnet", "function.handler=static_httpclient")
    assert result.verdict.verdict == "recovered", result.verdict.reason
    pids = [e["pid"] for e in result.events if e["kind"] == "init_start"]
    assert pids
    # The names carry the runtime's pid (no pid namespace: the one the harness saw).
    assert not [name for name in _runtime_leftovers() for pid in pids if f"-{pid}-" in name]


def sc_path() -> Path:
    from tests.integration.conftest import LATE_ENI

    return LATE_ENI
