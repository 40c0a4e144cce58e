"""Sweep axes and grid expansion: values, trigger parts, controls, ids, seeds, shards (no root)."""

from pathlib import Path

import pytest
import yaml

from harness.errors import ScenarioError, UserError
from harness.scenario import model as sc
from harness.scenario.overrides import assign
from harness.sweep import grid
from harness.sweep.axes import expand_range, parse_axis_option, split_list
from harness.sweep.define import build_spec

REPO = Path(__file__).resolve().parents[2]
LATE_ENI = REPO / "scenarios" / "late-eni-attach.yaml"


def test_duration_range_includes_stop():
    assert expand_range("0ms..2000ms/100ms") == [f"{n}ms" for n in range(0, 1000, 100)] + [
        "1s", "1100ms", "1200ms", "1300ms", "1400ms", "1500ms", "1600ms", "1700ms", "1800ms", "1900ms", "2s"]
    assert expand_range("0..1s/250ms") == ["0ms", "250ms", "500ms", "750ms", "1s"]
    assert expand_range("1..4") == ["1", "2", "3", "4"]
    assert expand_range("naive_cached") is None


@pytest.mark.parametrize("bad", ["500ms..100ms/10ms", "0ms..1s/0ms", "0ms..1s", "0..100000000/1"])
def test_bad_ranges_name_the_problem(bad):
    with pytest.raises((ValueError, ScenarioError)):
        parse_axis_option(f"schedule[0].at.offset={bad}")


def test_comma_lists_respect_brackets():
    assert split_list("a, b ,c") == ["a", "b", "c"]
    assert split_list("{x: 1, y: 2},[1, 2]") == ["{x: 1, y: 2}", "[1, 2]"]


def test_linked_axis_sets_keys_together():
    axis = parse_axis_option("function.runtime+function.handler=python+resilient,dotnet+static_init")
    assert axis.keys == ("function.runtime", "function.handler")
    assert axis.points == (("python", "resilient"), ("dotnet", "static_init"))
    with pytest.raises(ScenarioError, match="parts"):
        parse_axis_option("function.runtime+function.handler=python")


def test_trigger_parts_map_onto_the_trigger_string():
    doc = sc.load_document(LATE_ENI)
    assign(doc, "schedule[0].at.offset", "1250ms")
    assert sc.validate(doc, "x").schedule[0].at.offset_ms == 1250
    assign(doc, "schedule[0].at.event", "runtime_ready")
    assign(doc, "schedule[0].at.occurrence", "2")
    trigger = sc.validate(doc, "x").schedule[0].at
    assert (trigger.event, trigger.occurrence, trigger.offset_ms) == ("runtime_ready", 2, 1250)
    with pytest.raises(ScenarioError, match="schedule\\[3\\]"):
        assign(doc, "schedule[3].at.offset", "1ms")
    with pytest.raises(ScenarioError):
        assign(doc, "schedule[0].at.event", "no_such_event")


def spec(**kw):
    axes = kw.pop("axes", ["function.handler=naive_cached,resilient", "schedule[0].at.offset=0ms..500ms/250ms"])
    return build_spec([LATE_ENI], axes, use_blocks=False, **kw)


def test_grid_cells_repeats_and_shared_controls():
    s = spec(repeats=3)
    trials = list(grid.trials(s))
    experiments = [t for t in trials if t.kind == grid.EXPERIMENT]
    controls = [t for t in trials if t.kind == grid.CONTROL]
    assert len(experiments) == 2 * 3 * 3
    # The offset only shapes the fault, so each handler has one control group of `repeats` trials.
    assert len(controls) == 2 * 3
    assert {c.params["function.handler"] for c in controls} == {"naive_cached", "resilient"}
    assert len({t.trial_id for t in trials}) == len(trials)
    assert len({t.seed for t in trials}) == len(trials)


def test_control_trials_have_no_fault_and_the_eni_present():
    s = spec()
    control = next(t for t in grid.trials(s) if t.kind == grid.CONTROL)
    scenario = grid.trial_scenario(s, control.to_task())
    assert scenario.schedule == [] and scenario.lab.eni == "present"
    assert scenario.function.handler == control.params["function.handler"]
    experiment = next(t for t in grid.trials(s) if t.kind == grid.EXPERIMENT)
    exp = grid.trial_scenario(s, experiment.to_task())
    assert exp.lab.eni == "absent" and exp.schedule[0].at.offset_ms == 0
    assert exp.seed == experiment.seed


def test_ids_and_seeds_are_deterministic_and_depend_on_the_sweep_seed():
    a = [(t.trial_id, t.seed) for t in grid.trials(spec())]
    assert a == [(t.trial_id, t.seed) for t in grid.trials(spec())]
    assert spec().fingerprint() == spec().fingerprint()
    b = [(t.trial_id, t.seed) for t in grid.trials(spec(seed=7))]
    assert [i for i, _ in a] == [i for i, _ in b]
    assert [s for _, s in a] != [s for _, s in b]


def test_scenario_sweep_block_and_cli_axes(tmp_path):
    path = tmp_path / "s.yaml"
    doc = sc.load_document(LATE_ENI)
    doc.pop("sweep", None)
    path.write_text(yaml.safe_dump(doc) + "sweep:\n  axes:\n    function.handler: [naive_cached, resilient]\n"
                    "    schedule[0].at.offset: 0ms..300ms/100ms\n  repeats: 2\n  controls: 1\n  seed: 5\n")
    s = build_spec([path])
    assert (s.repeats, s.controls, s.seed) == (2, 1, 5)
    assert [a.name for a in s.plans[0].axes] == ["function.handler", "schedule[0].at.offset"]
    assert grid.count(s) == 2 * 4 * 2 + 2
    # An --axis on the same key replaces the block's axis; --repeats beats the block.
    s2 = build_spec([path], ["function.handler=naive_crash"], repeats=1)
    assert s2.plans[0].axes[-1].labels == ["naive_crash"] and s2.repeats == 1
    # The block is not part of a trial's scenario.
    task = next(grid.trials(s2)).to_task()
    assert "sweep" not in grid.trial_doc(s2, task)
    assert "sweep" not in sc.dump(grid.trial_scenario(s2, task))
    # A scenario with a block dumps it and loads back the same.
    again = tmp_path / "again.yaml"
    again.write_text(sc.dump(sc.load(path, ["sweep.jitter=5ms"])))
    assert sc.load(again) == sc.load(path, ["sweep.jitter=5ms"])


def test_invalid_axis_values_fail_before_any_trial(tmp_path):
    with pytest.raises(ScenarioError, match="workload.invocations"):
        spec(axes=["workload.invocations=1,many"])


def test_shards_partition_the_grid():
    s = spec(repeats=3)
    everything = [t.trial_id for t in grid.trials(s)]
    slices = [[t.trial_id for t in grid.shard_trials(s, (i, 4))] for i in range(1, 5)]
    assert sorted(sum(slices, [])) == sorted(everything)
    assert max(map(len, slices)) - min(map(len, slices)) <= 1
    assert slices[1] == [t.trial_id for t in grid.shard_trials(s, grid.parse_shard("2/4"))]
    for bad in ("0/4", "5/4", "x", "1/0"):
        with pytest.raises(UserError):
            grid.parse_shard(bad)


def test_jitter_moves_offsets_within_bounds_deterministically():
    s = spec(jitter="40ms")
    for t in grid.trials(s):
        if t.kind != grid.EXPERIMENT:
            continue
        nominal = sc.parse_duration_ms(t.params["schedule[0].at.offset"])
        got = grid.trial_scenario(s, t.to_task()).schedule[0].at.offset_ms
        assert max(0.0, nominal - 40) <= got <= nominal + 40
        assert got == grid.trial_scenario(s, t.to_task()).schedule[0].at.offset_ms
