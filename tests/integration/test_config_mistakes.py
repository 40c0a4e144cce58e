"""A misconfigured function (a handler, module or bootstrap that is not there, a
syntax error) is the user's mistake, not a network finding: `enirace run` stops
with one line naming it and exits 2, on every runtime. What can be seen without
running the user's code is refused before any lab; what only the runtime sees
ends the trial at its first report (verdict broken)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import LATE_ENI

pytestmark = [pytest.mark.root]
QUIET = ("lab.eni=present", "schedule=[]", "workload.invocations=4", "workload.interval=50ms",
         "workload.init=lazy")


def enirace_run(tmp_path: Path, *sets: str) -> tuple[int, list[str], Path]:
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "harness.cli.main", "run", str(LATE_ENI), "--out", str(out), "--no-capture"]
    for s in (*QUIET, *sets):
        argv += ["--set", s]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return proc.returncode, lines, out


def one_line(tmp_path: Path, *sets: str) -> str:
    code, lines, out = enirace_run(tmp_path, *sets)
    assert code == 2 and len(lines) == 1, (code, lines)
    assert "Traceback" not in lines[0]
    if "misconfigured" not in lines[0]:
        assert not out.exists()  # refused before any trial folder (or lab) was made
    return lines[0]


def broken_trial(tmp_path: Path, *sets: str) -> tuple[str, list[dict]]:
    """The one line of a trial the runtime found misconfigured, and the trial's history."""
    line = one_line(tmp_path, *sets)
    assert "misconfigured" in line and "not a network finding" in line, line
    folders = list((tmp_path / "out").iterdir())
    assert len(folders) == 1
    assert json.loads((folders[0] / "verdict.json").read_text())["verdict"] == "broken"
    events = [json.loads(x) for x in (folders[0] / "history.jsonl").read_text().splitlines()]
    return line, events


def starts(events: list[dict]) -> int:
    return sum(1 for e in events if e["kind"] == "invoke_start")


# -- refused before any lab ---------------------------------------------------------------------------

def test_python_handler_that_is_not_in_the_module(tmp_path):
    line = one_line(tmp_path, "function.handler=naive_cached.nope")
    assert "naive_cached" in line and "'nope'" in line and "Runtime.HandlerNotFound" in line
    assert "it defines: handler" in line


def test_python_syntax_error_names_file_and_line(tmp_path):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text("import os\n\ndef handler(event, context):\n    return (\n")
    line = one_line(tmp_path, f"function.code={code}", "function.handler=app.handler")
    assert f"{code / 'app.py'}:4" in line and "SyntaxError" in line and "Runtime.UserCodeSyntaxError" in line


def test_python_missing_module_lists_the_folders_real_handlers(tmp_path):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text("def handler(event, context):\n    return 1\n\ndef _private():\n    pass\n")
    line = one_line(tmp_path, f"function.code={code}", "function.handler=main.handler")
    assert "no module 'main'" in line and line.endswith("use one of: app.handler")


def test_command_bootstrap_that_is_not_executable(tmp_path):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "bootstrap").write_text("#!/bin/sh\nexit 0\n")
    line = one_line(tmp_path, "function.runtime=command", "function.command=[./bootstrap]",
                    f"function.code={code}")
    assert "not an executable file" in line and "chmod +x" in line
    (code / "bootstrap").write_text("#!/no/such/sh\nexit 0\n")
    (code / "bootstrap").chmod(0o755)
    line = one_line(tmp_path, "function.runtime=command", "function.command=[./bootstrap]",
                    f"function.code={code}")
    assert "/no/such/sh" in line and "#!" in line


# -- found by the runtime: the trial stops at the first report ---------------------------------------

def test_python_missing_dependency_is_broken_after_one_start(tmp_path):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text("import enirace_not_installed\n\ndef handler(event, context):\n    return 1\n")
    line, events = broken_trial(tmp_path, f"function.code={code}", "function.handler=app.handler")
    assert "Runtime.ImportModuleError" in line and "No module named 'enirace_not_installed'" in line
    assert starts(events) == 1  # not four runtime starts that all fail the same way


@pytest.mark.nodejs
def test_nodejs_handler_that_is_not_exported(tmp_path):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "index.js").write_text("exports.other = async () => 1;\n")
    line, events = broken_trial(tmp_path, "function.runtime=nodejs", f"function.code={code}",
                                "function.handler=index.handler")
    assert "Runtime.HandlerNotFound" in line
    assert starts(events) == 1


@pytest.mark.dotnet
def test_dotnet_handler_that_the_sources_do_not_declare(tmp_path):
    from harness.function import dotnet

    code = tmp_path / "cs"
    shutil.copytree(dotnet.SAMPLE_HANDLERS, code)
    line, events = broken_trial(tmp_path, "function.runtime=dotnet", f"function.code={code}",
                                "function.handler=NoSuchHandler")
    assert "LambdaValidationException" in line and "NoSuchHandler" in line
    assert starts(events) == 1
