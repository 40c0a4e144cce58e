"""How the pytest plugin turns a scenario and overrides into one trial's document.
Pure: no root, no lab."""

from pathlib import Path

import pytest
import yaml

from harness.errors import ScenarioError
from harness.plugin.request import (
    TrialRequest,
    as_request,
    builtin_scenario,
    expand_axes,
    keyword_key,
    sweep_block,
    yaml_value,
)

LATE_ENI = builtin_scenario("late-eni-attach")


@pytest.mark.parametrize("name,key", [
    ("function__handler", "function.handler"),
    ("schedule__0__at", "schedule[0].at"),
    ("workload__invocations", "workload.invocations"),
    ("seed", "seed"),
])
def test_keyword_names_use_double_underscores_for_dots(name, key):
    assert keyword_key(name) == key


@pytest.mark.parametrize("value", [
    "app.handler", "init_start + 500ms", "yes", "", "a: b", "line one\nline two", 3, 2.5, True, None,
    [], {"ORDERS_API_URL": "http://svc.internal:8080/x"}, ["a", {"b": [1, 2]}],
])
def test_python_values_survive_the_trip_through_yaml(value):
    import yaml

    assert yaml.safe_load(yaml_value(value)) == value


def test_a_built_in_name_finds_the_shipped_scenario():
    assert as_request("late-eni-attach").path() == LATE_ENI


def test_keyword_overrides_reach_the_scenario():
    req = as_request("late-eni-attach").with_overrides(
        set=["workload.invocations=2"], function__handler="naive_cached", function__env={"A": "1"},
        schedule__0__at="runtime_ready + 50ms")
    scenario = req.scenario()
    assert scenario.function.handler == "naive_cached"
    assert scenario.function.env == {"A": "1"}
    assert scenario.workload.invocations == 2
    assert str(scenario.schedule[0].at) == "runtime_ready + 50ms"


def test_keywords_apply_after_set_strings():
    req = as_request("late-eni-attach").with_overrides(set="function.handler=naive_crash",
                                                       function__handler="resilient")
    assert req.scenario().function.handler == "resilient"


def test_a_dict_is_a_scenario_and_is_not_modified():
    doc = {"name": "inline", "lab": {"eni": "present"}}
    req = as_request(doc).with_overrides(lab__eni="absent")
    assert req.scenario().lab.eni == "absent"
    assert doc == {"name": "inline", "lab": {"eni": "present"}}
    assert req.name == "inline"


def test_relative_code_is_found_next_to_the_test_file(tmp_path):
    (tmp_path / "my_handler").mkdir()
    req = as_request("late-eni-attach", base_dir=tmp_path).with_overrides(function__code="my_handler")
    assert req.scenario().function.code == str(tmp_path / "my_handler")


def test_a_scenario_file_next_to_the_test_wins(tmp_path):
    (tmp_path / "mine.yaml").write_text("name: mine\nworkload: {invocations: 1}\n")
    assert as_request("mine.yaml", base_dir=tmp_path).scenario().name == "mine"


def test_a_missing_scenario_names_where_it_looked_and_the_built_ins(tmp_path):
    with pytest.raises(ScenarioError) as err:
        as_request("no-such-scenario", base_dir=tmp_path).scenario()
    assert str(tmp_path / "no-such-scenario") in str(err.value)
    assert "late-eni-attach" in str(err.value)


def test_a_misspelt_field_is_a_one_line_error():
    with pytest.raises(ScenarioError, match=r"function\.handlr: unknown field"):
        as_request("late-eni-attach").with_overrides(function__handlr="x").scenario()


def test_a_request_with_a_collection_error_raises_it_when_resolved():
    req = TrialRequest("late-eni-attach", error="bad marker")
    with pytest.raises(ScenarioError, match="bad marker"):
        req.document()


def test_axes_make_one_request_per_point_with_readable_labels():
    req = TrialRequest(LATE_ENI, label="late-eni-attach")
    out = expand_axes(req, {"function.handler": ["naive_cached", "resilient"],
                            "schedule[0].at": ["init_start + 0ms", "runtime_ready + 50ms"]})
    assert [r.label for r in out] == [
        "late-eni-attach-function.handler=naive_cached-schedule.0.at=init_start+0ms",
        "late-eni-attach-function.handler=naive_cached-schedule.0.at=runtime_ready+50ms",
        "late-eni-attach-function.handler=resilient-schedule.0.at=init_start+0ms",
        "late-eni-attach-function.handler=resilient-schedule.0.at=runtime_ready+50ms",
    ]
    assert out[3].scenario().function.handler == "resilient"
    assert str(out[3].scenario().schedule[0].at) == "runtime_ready + 50ms"


def test_axes_understand_sweep_ranges_and_trigger_parts():
    out = expand_axes(TrialRequest(LATE_ENI, label="l"), {"schedule[0].at.offset": "0ms..1000ms/500ms"})
    assert [str(r.scenario().schedule[0].at) for r in out] == [
        "init_start + 0ms", "init_start + 500ms", "init_start + 1s"]


def test_repeats_multiply_the_points():
    out = expand_axes(TrialRequest(LATE_ENI, label="l"), {"workload.invocations": [1, 2]}, repeats=2)
    assert [r.label for r in out] == ["l-workload.invocations=1-r1", "l-workload.invocations=1-r2",
                                      "l-workload.invocations=2-r1", "l-workload.invocations=2-r2"]


@pytest.mark.parametrize("axes", [{"function.handler": []}, {"function.handler": "  "}])
def test_an_empty_axis_is_an_error(axes):
    with pytest.raises(ScenarioError):
        expand_axes(TrialRequest(LATE_ENI), axes)


def test_the_sweep_block_gives_axes_and_repeats_and_is_left_out_of_the_trial(tmp_path):
    path = tmp_path / "swept.yaml"
    doc = yaml.safe_load(Path(LATE_ENI).read_text())
    doc.pop("sweep", None)  # a second sweep: key would be a duplicate key, refused
    path.write_text(yaml.safe_dump(doc) + "sweep:\n  axes:\n    function.handler: [a, b]\n  repeats: 3\n")
    req = as_request(path)
    assert sweep_block(req.raw_document()) == ({"function.handler": ["a", "b"]}, 3)
    assert "sweep" not in req.document()
