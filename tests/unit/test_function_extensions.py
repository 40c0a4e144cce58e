"""function.extensions: the paths checked before any lab (one line naming the
field and the fix), the launch specs built like the runtime's, docker refused;
and the Extensions API's idle test that the release and the freeze share."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness import trial
from harness.emulator.extensions import Extensions
from harness.errors import UserError
from harness.function import extensions as fn_extensions
from harness.function.launch import launch_spec
from harness.scenario import model as sc

REPO = Path(__file__).resolve().parents[2]
LATE_ENI = REPO / "scenarios" / "late-eni-attach.yaml"
GATE = REPO / "tests" / "conformance" / "extensions" / "gate.py"


def _scenario(*sets: str) -> sc.Scenario:
    return sc.load(LATE_ENI, list(sets))


def test_default_is_none_and_the_key_round_trips():
    assert _scenario().function.extensions == []
    s = _scenario(f"function.extensions=[{GATE}]")
    assert s.function.extensions == [str(GATE)]
    assert sc.validate(sc.limits.load_yaml(sc.dump(s)), "x").function.extensions == [str(GATE)]


def test_specs_are_built_like_the_runtimes(tmp_path, monkeypatch):
    monkeypatch.chdir(GATE.parent)
    fn = _scenario("function.extensions=[gate.py]").function
    runtime = launch_spec(fn)
    [spec] = fn_extensions.specs(fn, runtime)
    assert spec.argv == [str(GATE)]  # relative to the current directory, made absolute
    assert spec.env == runtime.env and spec.cwd == runtime.cwd
    assert spec.env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"


@pytest.mark.parametrize(("make", "what"), [
    (lambda d: d / "missing", "does not exist"),
    (lambda d: d, "is not an executable file"),
    (lambda d: _write(d / "plain", "#!/bin/sh\n", 0o644), "is not an executable file"),
])
def test_a_bad_path_is_one_line_naming_the_field(tmp_path, make, what):
    path = make(tmp_path)
    with pytest.raises(UserError) as err:
        trial.preflight(_scenario(f"function.extensions=[{GATE}, {path}]"))
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"function.extensions[1]: '{path}' {what}") and "chmod +x" in text


def test_a_missing_interpreter_names_the_shebang(tmp_path):
    path = _write(tmp_path / "ext", "#!/nonexistent/python\n", 0o755)
    with pytest.raises(UserError, match=r"^function.extensions\[0\]: .* interpreter /nonexistent/python.*#! line$"):
        trial.preflight(_scenario(f"function.extensions=[{path}]"))


def test_a_nul_in_a_path_is_a_scenario_error():
    with pytest.raises(sc.ScenarioError, match=r"function.extensions\[0\]|function.extensions: contains a NUL"):
        _scenario('function.extensions=["a\\0b"]')


def test_docker_refuses_extensions_before_touching_the_engine():
    refused = "^function.extensions: not supported with backend docker; use backend: process"
    with pytest.raises(UserError, match=refused):
        trial.preflight(_scenario(f"function.extensions=[{GATE}]", "backend=docker"))


def test_an_extension_with_an_event_queued_is_busy_at_once():
    """The INVOKE event makes an extension busy when it is queued, not when its
    thread wakes from event/next's wait: else a runtime quick to reply and poll
    /next again had the invoke released and the environment frozen meanwhile."""
    exts = Extensions()
    exts.register({"Lambda-Extension-Name": "a"}, b'{"events": ["INVOKE"]}',
                  {"functionName": "f", "functionVersion": "$LATEST", "handler": "h"})
    [ext] = exts.by_id.values()
    ext.waiting = True  # blocked in event/next
    assert exts.all_waiting()
    exts.dispatch_invoke("r", 0, "arn")
    assert not exts.all_waiting()


def _write(path: Path, text: str, mode: int) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    assert bool(path.stat().st_mode & stat.S_IXUSR) == bool(mode & 0o100)
    return path
