"""Configuration mistakes told from network failures (harness/checker/config.py), and
the Python handler checks that need no import (harness/function/python_code.py)."""

from __future__ import annotations

import pytest

from harness.checker.config import is_config_error
from harness.checker.verdict import judge
from harness.errors import UserError
from harness.function import python_code


@pytest.mark.parametrize(("etype", "message", "config"), [
    ("Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'", True),
    ("Runtime.UserCodeSyntaxError", "Syntax error in module 'app': invalid syntax (app.py, line 3)", True),
    ("Runtime.ImportModuleError", "Unable to import module 'app': No module named 'boto4'", True),
    ("Runtime.ImportModuleError", "Unable to import module 'timeout_app': cannot import name 'x' from 'y'", True),
    ("LambdaValidationException", "Unable to find handler 'X'. Known handlers: pooled_idle_timeout", True),
    # naive_crash: the module-level request fails during the import
    ("ConnectionError", "HTTPConnectionPool(host='svc.internal', port=8080): Max retries exceeded", False),
    # an ImportError user code raised, not a module that is not there
    ("Runtime.ImportModuleError", "Unable to import module 'app': the config service timed out", False),
    ("Runtime.ImportModuleError", "Unable to import module 'app': No module named 'x' (Connection refused)", False),
    ("Runtime.ExitError", "RequestId: x Error: Runtime exited with error: exit status 1", False),
])
def test_config_error_types(etype, message, config):
    assert is_config_error(etype, message) is config


def _events(error_type: str, message: str) -> list[dict]:
    return [{"t_ms": 0.0, "kind": "trial_start"},
            {"t_ms": 1.0, "kind": "init_start", "generation": 1, "phase": "invoke"},
            {"t_ms": 2.0, "kind": "invoke_start", "n": 1, "request_id": "r"},
            {"t_ms": 3.0, "kind": "init_error", "generation": 1, "source": "init/error",
             "error_type": error_type, "error_message": message},
            {"t_ms": 4.0, "kind": "invoke_end", "n": 1, "request_id": "r", "status": "init_error",
             "error_type": error_type, "error_message": message}]


def test_a_config_mistake_is_broken_and_a_network_init_failure_is_not():
    v = judge(_events("Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'"))
    assert v.verdict == "broken" and v.reason == "Runtime.HandlerNotFound: Handler 'nope' missing on module 'app'"
    assert judge(_events("ConnectionError", "Temporary failure in name resolution")).verdict == "stuck"


def test_handler_names_the_ast_binds(tmp_path):
    (tmp_path / "app.py").write_text(
        "try:\n    import ujson as json\nexcept ImportError:\n    import json\n"
        "if True:\n    def handler(event, context):\n        return json.dumps(event)\n"
        "main = handler\n")
    for name in ("handler", "main", "json"):
        python_code.check_handler(tmp_path / "app.py", "app", name)
    with pytest.raises(UserError, match=r"has no 'nope' \(Lambda reports Runtime.HandlerNotFound\)"):
        python_code.check_handler(tmp_path / "app.py", "app", "nope")


def test_a_name_bound_at_run_time_is_left_to_the_runtime(tmp_path):
    (tmp_path / "dyn.py").write_text("globals()['handler'] = lambda e, c: 1\n")
    (tmp_path / "star.py").write_text("from os.path import *\n")
    python_code.check_handler(tmp_path / "dyn.py", "dyn", "handler")
    python_code.check_handler(tmp_path / "star.py", "star", "join")


def test_candidates_are_top_level_public_functions(tmp_path):
    (tmp_path / "a.py").write_text("def handler(e, c):\n    pass\n\ndef _x():\n    pass\n")
    (tmp_path / "b.py").write_text("def main(e, c):\n    pass\n")
    (tmp_path / "broken.py").write_text("def (\n")
    assert python_code.candidates(tmp_path) == ["a.handler", "b.main"]


def _bootstrap_exit(line: str, code: int) -> list[dict]:
    message = f"Runtime exited with error: exit status {code}"
    return [{"t_ms": 0.0, "kind": "trial_start"},
            {"t_ms": 1.0, "kind": "init_start", "generation": 1, "phase": "invoke"},
            {"t_ms": 2.0, "kind": "invoke_start", "n": 1, "request_id": "r"},
            {"t_ms": 2.5, "kind": "log", "source": "stderr", "line": line},
            {"t_ms": 3.0, "kind": "init_error", "generation": 1, "source": "exit",
             "error_type": "Runtime.ExitError", "error_message": message},
            {"t_ms": 4.0, "kind": "invoke_end", "n": 1, "request_id": "r", "status": "init_error",
             "error_type": "Runtime.ExitError", "error_message": f"RequestId: r Error: {message}"}]


def test_the_dotnet_images_bootstrap_refusing_the_image_is_broken():
    line = "Error: No Lambda Handler function was specified."
    v = judge(_bootstrap_exit(line, 103))
    assert v.verdict == "broken" and v.reason.startswith(line) and "exit status 103" in v.reason
    # Another exit code, or an exit with no such line, is the function's own failure.
    assert judge(_bootstrap_exit(line, 1)).verdict != "broken"
    assert judge(_bootstrap_exit("Error: connect ECONNREFUSED", 103)).verdict != "broken"
