"""workload.gaps and workload.starts: when each invocation starts, how many
there are, what is refused (one line naming the field), and the round trip
through a trial's scenario.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario import model as sc

REPO = Path(__file__).resolve().parents[2]
LATE_ENI = REPO / "scenarios" / "late-eni-attach.yaml"


def _workload(tmp_path, text: str, *sets: str) -> sc.Workload:
    path = tmp_path / "w.yaml"
    path.write_text(f"name: w\nworkload: {text}\n")
    return sc.load(path, list(sets)).workload


def test_gaps_are_start_to_start_and_set_the_count(tmp_path):
    w = _workload(tmp_path, "{gaps: [200ms, 30s, 200ms]}")
    assert w.gaps == [200, 30_000, 200] and w.invocations == 4
    assert w.start_offsets_ms() == [0, 200, 30_200, 30_400]


def test_starts_are_times_from_the_first_invocation(tmp_path):
    w = _workload(tmp_path, "{starts: [0ms, 1s, 1.5s]}")
    assert w.invocations == 3 and w.start_offsets_ms() == [0, 1000, 1500]
    # Only the differences count: the first invocation is the origin.
    assert _workload(tmp_path, "{starts: [500ms, 2s]}").start_offsets_ms() == [0, 1500]
    assert _workload(tmp_path, "{starts: [1s, 1s]}").start_offsets_ms() == [0, 0]


def test_without_either_interval_and_invocations_say_it(tmp_path):
    w = _workload(tmp_path, "{invocations: 3, interval: 1s}")
    assert w.gaps is None and w.starts is None and w.start_offsets_ms() == [0, 1000, 2000]


def test_gaps_override_a_scenarios_invocations_from_the_command_line():
    s = sc.load(LATE_ENI, ["workload.gaps=[200ms, 1.2s]"])
    assert s.workload.invocations == 3 and s.workload.start_offsets_ms() == [0, 200, 1400]
    s = sc.load(LATE_ENI, ["workload.starts=[0ms, 5s]", "workload.invocations=50"])
    assert s.workload.invocations == 2  # the list says how many, whatever the order of --set


@pytest.mark.parametrize("text,words", [
    ("{gaps: [200ms], starts: [0ms, 1s]}", "give one of them"),
    ("{starts: [1s, 500ms]}", "must not go backwards"),
    ("{gaps: []}", "at least 1 item"),
    ("{gaps: [200ms, -1s]}", "is negative"),
    ("{gaps: [200]}", "no unit"),
    ("{gaps: 200ms}", "list"),
    ("{starts: [0ms, 2h]}", "over the limit"),
])
def test_bad_gaps_and_starts_are_one_line_naming_the_field(tmp_path, text, words):
    with pytest.raises(ScenarioError) as info:
        _workload(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message and "workload" in message and words in message, message


@pytest.mark.parametrize("sets", [
    ["workload.gaps=[200ms, 30s, 1.5s]"],
    ["workload.starts=[0ms, 250us, 1m]"],
    ["workload.freeze=false", "workload.gaps=[1s]"],
    [],
])
def test_the_trials_scenario_yaml_round_trips(tmp_path, sets):
    s = sc.load(LATE_ENI, sets)
    path = tmp_path / "scenario.yaml"  # what the trial writes into its folder (trial.py)
    path.write_text(sc.dump(s))
    again = sc.load(path)
    assert again == s
    assert again.workload.start_offsets_ms() == s.workload.start_offsets_ms()
    text = path.read_text()
    for key in ("gaps", "starts"):
        assert (f"  {key}:" in text) == (getattr(s.workload, key) is not None)
