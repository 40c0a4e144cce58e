from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario import model as sc
from harness.scenario import overrides

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
    overrides.apply(doc, "function.handler=naive_cached")
    overrides.apply(doc, "schedule[0].at=init_start + 1s")
    overrides.apply(doc, "workload.invocations=7")
    s = sc.validate(doc, "x.yaml")
    assert s.function.handler == "naive_cached"
    assert s.schedule[0].at.offset_ms == 1000
    assert s.workload.invocations == 7


def test_set_sweep_axes_and_plugin_keywords_speak_one_override_language():
    from harness.plugin.request import TrialRequest
    from harness.sweep.axes import make_axis

    late_eni = REPO / "scenarios" / "late-eni-attach.yaml"
    by_set = sc.load(late_eni, ["schedule[0].at.offset=1250ms", "function.env={A: '1'}"])
    axis = make_axis("schedule[0].at.offset", "1250ms")
    doc = sc.load_document(late_eni)
    overrides.assign(doc, axis.keys[0], axis.points[0][0], where="--axis")
    overrides.apply(doc, "function.env={A: '1'}")
    by_plugin = TrialRequest(late_eni).with_overrides(set="schedule[0].at.offset=1250ms",
                                                      function__env={"A": "1"}).scenario()
    # The plugin leaves the scenario's sweep: block out of a trial; the rest is the same.
    same = [s.model_dump(exclude={"sweep"}) for s in (by_set, sc.validate(doc, "x"), by_plugin)]
    assert same[0] == same[1] == same[2]
    assert str(by_set.schedule[0].at) == "init_start + 1250ms" and by_set.function.env == {"A": "1"}


@pytest.mark.parametrize("assignment", ["function.handler", "schedule[3].at=x", "a..b=1"])
def test_bad_overrides(assignment):
    with pytest.raises(ScenarioError, match="--set"):
        overrides.apply({"schedule": []}, assignment)


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
    ("schedule: [{at: 'init_start + -5ms', do: attach_eni}]\n", "schedule[0].at", "is negative"),
    ("schedule: [{at: 'bogus + 5ms', do: attach_eni}]\n", "schedule[0].at", "unknown event"),
    ("schedule: [{at: 'init_start', do: explode}]\n", "schedule[0].do", "'explode'"),
    ("lab: {pool: 10.0.0.0/33}\n", "lab.pool", "not a network"),
    ("lab: {pool: 10.0.0.0/25}\n", "lab.pool", "smaller than a /24"),
    ("expect: {verdict: fine}\n", "expect.verdict[0]", "'fine'"),
    ("- just\n- a list\n", "(top level)", "mapping"),
    ("workload: 3\n", "workload: expected a mapping of fields, got 3", "`workload: {key: value}`"),
    ("function: {snapstart: true}\nsnapstart: on\n", "snapstart: expected a mapping", "got True"),
    ("fleet: [1, 2]\n", "fleet: expected a mapping", "`fleet: {key: value}`"),
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
