"""`enirace judge TRIAL_DIR` on stored histories: the same verdict from the file
as from the events, run's output and exit codes, one line for a folder that is
not a trial folder (no root needed: nothing runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.checker.classify import error_text
from harness.checker.verdict import judge
from harness.cli.main import main
from harness.scenario import model as sc

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "late-eni-attach.yaml"
DNS = ("RuntimeError", "svc.internal could not be resolved (gaierror: [Errno -3] Temporary failure in name resolution)")


def _invoke(n, t, ok=True):
    end = {"kind": "invoke_end", "n": n, "t_ms": t + 5, "status": "ok" if ok else "error", "reinit": False}
    if not ok:
        end.update(error_type=DNS[0], error_message=DNS[1])
    return [{"kind": "invoke_start", "n": n, "t_ms": t}, end]


def _history(*outcomes: bool, attach_at: float = 500.0) -> list[dict]:
    events = [{"kind": "trial_start", "t_ms": 0.5, "trial": "stored-1"},
              {"kind": "initial_state", "t_ms": 1.0, "eni": "absent", "impairs": True, "verified": True,
               "aspects": {"eni": True}},
              {"kind": "init_start", "t_ms": 10.0, "generation": 1, "phase": "init"},
              {"kind": "runtime_ready", "t_ms": 200.0, "generation": 1},
              {"kind": "fault", "t_ms": attach_at, "fault": "attach_eni", "trigger": "init_start + 490ms",
               "verified": True, "impairs": False, "aspects": {"eni": False}}]
    for i, ok in enumerate(outcomes, 1):
        events += _invoke(i, 100.0 + 200 * i, ok)
    return events


def _folder(tmp_path: Path, events: list[dict], sets: tuple[str, ...] = (), verdict: dict | None = None,
            name: str = "stored-1") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "scenario.yaml").write_text(sc.dump(sc.load(SCENARIO, sets)))
    # As the recorder writes it: one JSON object a line, a blank line tolerated.
    (folder / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + "\n")
    if verdict is not None:
        (folder / "verdict.json").write_text(json.dumps(verdict, indent=2))
    return folder


def _judge(*args: str):
    return CliRunner().invoke(main, ["judge", *map(str, args)])


def test_a_stored_history_judges_as_the_events_do(tmp_path):
    events = _history(False, False, True, True)
    expected = judge(events)
    folder = _folder(tmp_path, events, verdict=expected.to_dict())
    result = _judge(folder, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["verdict"] == expected.to_dict()
    assert doc["verdict"]["verdict"] == "recovered" and doc["verdict"]["failed_invocations"] == 2
    assert doc["trial"] == "stored-1" and doc["folder"] == str(folder)
    assert doc["expected"] is True and doc["expect"] == ["healthy", "recovered"]
    assert doc["matches_verdict_json"] is True


def test_text_output_is_runs_timeline_and_verdict_line(tmp_path):
    folder = _folder(tmp_path, _history(False, True))
    result = _judge(folder)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "late-eni-attach · python handler resilient · trial stored-1"
    said = " ".join(result.output.split())  # rich wraps to the terminal's width
    assert "invoke 1 error 0.0 ms [dns] RuntimeError: svc.internal could not be resolved" in said
    assert ("verdict: RECOVERED 1 of 2 invocations failed; recovered in the same runtime from invocation 2, "
            "5 ms after the fault cleared trial folder: ") in said
    assert "".join(said.split()).endswith(f"trialfolder:{folder}")  # a long path may be folded anywhere


def test_a_verdict_the_scenario_does_not_expect_exits_1(tmp_path):
    folder = _folder(tmp_path, _history(False, False, False))
    result = _judge(folder)
    assert result.exit_code == 1, result.output
    assert "verdict: STUCK  invocation 3 still fails" in result.output
    assert "expected healthy or recovered, got stuck" in result.output


def test_no_expect_block_exits_0_even_when_stuck(tmp_path):
    folder = _folder(tmp_path, _history(False, False), sets=("expect=null",))
    assert _judge(folder).exit_code == 0


def test_a_harness_error_exits_2_as_run_does(tmp_path):
    events = _history(True) + [{"kind": "harness_error", "t_ms": 900.0, "error": "OSError: boom"}]
    result = _judge(_folder(tmp_path, events), "--json")
    assert result.exit_code == 2
    assert json.loads(result.output)["verdict"]["reason"] == "OSError: boom"


def test_a_verdict_json_that_differs_is_noted(tmp_path):
    recorded = {"verdict": "stuck", "reason": "an older checker said so"}
    folder = _folder(tmp_path, _history(False, True), verdict=recorded)
    result = _judge(folder)
    assert result.exit_code == 0
    assert "note: verdict.json says stuck: an older checker said so" in " ".join(result.output.split())
    assert json.loads(_judge(folder, "--json").output)["matches_verdict_json"] is False


@pytest.mark.parametrize("missing", ["history.jsonl", "scenario.yaml"])
def test_a_folder_without_a_trial_file_is_one_line_exit_2(tmp_path, missing):
    folder = _folder(tmp_path, _history(True))
    (folder / missing).unlink()
    result = _judge(folder)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert str(folder) in lines[0] and f"no {missing}" in lines[0]


def test_no_such_folder_is_one_line_exit_2(tmp_path):
    result = _judge(tmp_path / "nope")
    assert result.exit_code == 2
    assert "no such trial folder" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("line,says", [
    ('{"t_ms": 1.0, "kind": "trial_st', "history.jsonl:3: not JSON"),
    ('[1, 2]', "history.jsonl:3: not a history event"),
    ('{"kind": "invoke_end", "t_ms": 5.0, "status": "ok"}', "an event the checker cannot read (missing field 'n')"),
])
def test_a_broken_history_is_one_line_exit_2(tmp_path, line, says):
    folder = _folder(tmp_path, [{"kind": "trial_start", "t_ms": 0.5}])
    with (folder / "history.jsonl").open("a") as fh:
        fh.write(line + "\n")
    result = _judge(folder)
    assert result.exit_code == 2
    assert says in " ".join(result.output.split()) and "Traceback" not in result.output


def test_the_trial_id_falls_back_to_the_folder_name(tmp_path):
    events = [e for e in _history(True) if e["kind"] != "trial_start"]
    doc = json.loads(_judge(_folder(tmp_path, events, name="my-trial"), "--json").output)
    assert doc["trial"] == "my-trial"


def test_one_error_text_for_every_reader():
    assert error_text({"error_type": "Timeout", "error_message": "Task timed out"}) == "Timeout: Task timed out"
    assert error_text({"error_type": "Runtime.ExitError", "error_message": ""}) == "Runtime.ExitError"
    assert error_text({"error_message": "no type"}) == "no type"
    assert error_text({"error_type": None, "error_message": None}) == ""
