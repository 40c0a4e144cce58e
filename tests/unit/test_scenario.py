from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario import model as sc

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text,ms", [("500ms", 500), ("2s", 2000), ("1.5 s", 1500),
                                     ("250us", 0.25), ("1m", 60000)])
def test_durations(text, ms):
    assert sc.parse_duration_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("bad", [500, "500", "-5ms", "5 parsecs", "2h", "61m", True, None])
def test_bad_durations_are_rejected(bad):
    with pytest.raises(ValueError):
        sc.parse_duration_ms(bad)


def test_trigger_forms():
    t = sc.parse_trigger("invoke_start#2 + 150ms")
    assert (t.event, t.occurrence, t.offset_ms) == ("invoke_start", 2, 150)
    assert sc.parse_trigger("trial_start") == sc.Trigger(event="trial_start")
    assert str(sc.parse_trigger("init_start+1s")) == "init_start + 1s"


def test_unknown_event_names_the_choices():
    with pytest.raises(ValueError, match="unknown event 'init_strat'.*init_start"):
        sc.parse_trigger("init_strat + 1s")


def test_shipped_scenario_loads():
    s = sc.load(REPO / "scenarios" / "late-eni-attach.yaml")
    assert s.lab.eni == "absent"
    assert s.schedule[0].do == "attach_eni"
    assert s.schedule[0].at == sc.Trigger(event="init_start", offset_ms=500)
    assert (s.workload.invocations, s.workload.interval, s.workload.init) == (5, 200, "eager")


def test_overrides_reach_nested_fields_and_list_items():
    doc = {"schedule": [{"at": "init_start + 500ms", "do": "attach_eni"}]}
    sc.apply_override(doc, "function.handler=naive_cached")
    sc.apply_override(doc, "schedule[0].at=init_start + 1s")
    sc.apply_override(doc, "workload.invocations=7")
    s = sc.validate(doc, "x.yaml")
    assert s.function.handler == "naive_cached"
    assert s.schedule[0].at.offset_ms == 1000
    assert s.workload.invocations == 7


@pytest.mark.parametrize("assignment", ["function.handler", "schedule[3].at=x", "a..b=1"])
def test_bad_overrides(assignment):
    with pytest.raises(ScenarioError, match="--set"):
        sc.apply_override({"schedule": []}, assignment)


def _error_for(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        sc.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


@pytest.mark.parametrize("text,field,words", [
    ("functoin: {}\n", "functoin", "unknown field"),
    ("function: {runtime: ruby}\n", "function.runtime", "'ruby'"),
    ("function: {timeout: 3}\n", "function.timeout", "no unit"),
    ("workload: {invocations: -1}\n", "workload.invocations", "greater than or equal"),
    ("schedule: [{at: 'init_start + -5ms', do: attach_eni}]\n", "schedule[0].at", "not a duration"),
    ("schedule: [{at: 'bogus + 5ms', do: attach_eni}]\n", "schedule[0].at", "unknown event"),
    ("schedule: [{at: 'init_start', do: explode}]\n", "schedule[0].do", "'explode'"),
    ("lab: {pool: 10.0.0.0/33}\n", "lab.pool", "not a network"),
    ("lab: {pool: 10.0.0.0/25}\n", "lab.pool", "smaller than a /24"),
    ("expect: {verdict: fine}\n", "expect.verdict[0]", "'fine'"),
    ("- just\n- a list\n", "(top level)", "mapping"),
    ("function: {handler: [unclosed\n", "invalid YAML", "line"),
])
def test_validation_errors_are_one_line_naming_the_field(tmp_path, text, field, words):
    message = _error_for(tmp_path, text)
    assert field in message
    assert words in message


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario file"):
        sc.load(tmp_path / "nope.yaml")


def test_dump_round_trips(tmp_path):
    s = sc.load(REPO / "scenarios" / "late-eni-attach.yaml", ["function.handler=naive_crash"])
    path = tmp_path / "again.yaml"
    path.write_text(sc.dump(s))
    assert sc.load(path) == s
