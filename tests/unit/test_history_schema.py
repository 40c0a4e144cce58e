"""The history schema: the strict recorder refuses what the schema does not
describe; the lenient one records it and warns once; every producer's kind and
every list of kinds elsewhere comes from the schema; the README lists them all."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from harness.checker.verdict import judge
from harness.history import queries, schema
from harness.history.recorder import STRICT_ENV, History
from harness.history.schema import HistorySchemaError
from harness.report import timeline
from harness.scenario import triggers

REPO = Path(__file__).resolve().parents[2]


def test_the_project_tests_run_strict():
    assert History().strict


def test_strict_refuses_an_unknown_kind_and_says_so_in_the_history(tmp_path):
    history = History(tmp_path / "history.jsonl", strict=True)
    with pytest.raises(HistorySchemaError, match="unknown event kind 'invoke_begin'"):
        history.record("invoke_begin", n=1, request_id="r")
    history.close()
    [event] = queries.load(tmp_path / "history.jsonl")
    assert event["kind"] == schema.HARNESS_ERROR and "invoke_begin" in event["error"]
    assert judge(history.events).verdict == "harness_error"


def test_strict_refuses_a_missing_required_field():
    history = History(strict=True)
    with pytest.raises(HistorySchemaError, match="invoke_start event without request_id"):
        history.record(schema.INVOKE_START, n=1)
    assert not queries.of_kind(history.events, schema.INVOKE_START)


def test_strict_refuses_an_undeclared_field_and_accepts_optional_ones():
    history = History(strict=True)
    with pytest.raises(HistorySchemaError, match="undeclared field.*colour"):
        history.record(schema.RUNTIME_READY, generation=1, colour="red")
    history.record(schema.RUNTIME_READY, generation=1, log_lag_ms=0.5)
    history.record(schema.CAPTURE, error="OSError: boom")  # every capture field is optional
    assert [e["kind"] for e in history.events] == [schema.HARNESS_ERROR, schema.RUNTIME_READY, schema.CAPTURE]


def test_lenient_records_an_unknown_kind_and_warns_once():
    history = History(strict=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history.record("made_up_kind_once", x=1)
        history.record("made_up_kind_once", x=2)
    assert [e["x"] for e in history.events] == [1, 2]
    assert len([w for w in caught if "made_up_kind_once" in str(w.message)]) == 1


def test_strictness_comes_from_the_environment_of_a_child_process():
    script = ("from harness.history.recorder import History\n"
              "h = History()\n"
              "try:\n    h.record('no_such_kind')\nexcept ValueError as e:\n    print('refused', e)\n")
    for value, expect in (("1", "refused"), ("0", "")):
        env = {"PATH": "/usr/bin:/bin", STRICT_ENV: value}
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", script], cwd=REPO, env=env,
                             capture_output=True, text=True, check=True).stdout
        assert out.startswith(expect) and (expect or not out)


def _bare_kinds() -> set[str]:
    """Kinds passed as string literals to a history-recording call, where they are."""
    found = set()
    for path in (REPO / "harness").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
                continue
            receiver = ast.unparse(node.func.value)
            if node.func.attr not in ("record", "notify") or receiver.endswith("run"):
                continue  # run.record(...) is the ownership manifest, not the history
            if isinstance(node.args[0], ast.Constant):
                found.add(f"{path.relative_to(REPO)}:{node.lineno} {node.args[0].value!r}")
    return found


def test_producers_record_kinds_by_their_schema_names():
    assert _bare_kinds() == set()


def test_the_lists_of_kinds_come_from_the_schema():
    assert triggers.LIFECYCLE_EVENTS == schema.LIFECYCLE
    assert timeline.PACKETS == set(schema.PACKET)
    assert set(schema.LIFECYCLE) | set(schema.PACKET) | set(schema.FAULTS) <= set(schema.KINDS)
    with pytest.raises(ValueError, match="use one of trial_start, sandbox_ready, init_start"):
        triggers.parse_trigger("invoke_begin + 1ms")


def test_every_kind_has_a_meaning_and_distinct_fields():
    for spec in schema.KINDS.values():
        assert spec.doc and spec.name == spec.name.lower()
        assert not set(spec.fields) & set(spec.optional), spec.name
        assert not {"t_ms", "kind"} & set(spec.fields + spec.optional), spec.name


def test_the_readme_lists_every_kind_as_the_schema_defines_it():
    readme = (REPO / "README.md").read_text()
    assert schema.markdown_table() in readme


def test_a_trial_start_carries_the_schema_version(tmp_path):
    history = History(tmp_path / "h.jsonl", strict=True)
    history.record(schema.TRIAL_START, trial="t", run="r", subnet="198.18.0.0/24", pid=1, seed=0,
                   schema=schema.SCHEMA_VERSION)
    history.close()
    line = json.loads((tmp_path / "h.jsonl").read_text())
    assert line["schema"] == schema.SCHEMA_VERSION == 1
