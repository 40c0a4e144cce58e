"""Schedule entries: triggers with fixed and random offsets, `for:`, fault
parameters, and the one-line errors for bad input."""

from __future__ import annotations

import pytest

from harness.errors import ScenarioError
from harness.scenario import fault_params as fault_params
from harness.scenario import model as sc


def test_random_offset_range_parses_and_prints_back():
    t = sc.parse_trigger("init_start + 200ms..800ms")
    assert (t.event, t.offset_ms, t.offset_max_ms, t.is_random) == ("init_start", 200, 800, True)
    assert str(t) == "init_start + 200ms..800ms"
    assert sc.parse_trigger(str(t)) == t


def test_drawn_offset_is_in_range_and_repeats_with_the_seed():
    t = sc.parse_trigger("invoke_start#2 + 1s..2s")
    draws = [t.draw_offset_ms(seed, 0) for seed in range(200)]
    assert all(1000 <= d <= 2000 for d in draws)
    assert len(set(draws)) > 150  # it really is drawn
    assert [t.draw_offset_ms(seed, 0) for seed in range(200)] == draws
    # Each entry draws on its own: adding an entry does not move the others.
    assert t.draw_offset_ms(7, 0) != t.draw_offset_ms(7, 1)


def test_fixed_offset_ignores_the_seed():
    t = sc.parse_trigger("invoke_end#1 + 50ms")
    assert {t.draw_offset_ms(seed, 3) for seed in range(20)} == {50.0}


@pytest.mark.parametrize("text, words", [
    ("init_start - 5ms", "negative offset"),
    ("init_start + 800ms..200ms", "ends before it starts"),
    ("init_start + 5parsecs", "not a duration"),
    ("init_start + 200..800ms", "not a duration"),
    ("warp_drive + 1s", "unknown event"),
])
def test_bad_triggers_say_why(text, words):
    with pytest.raises(ValueError, match=words):
        sc.parse_trigger(text)


def _entry(**fields):
    return sc.validate({"schedule": [fields]}, "s.yaml").schedule[0]


def test_for_is_a_duration_and_dumps_back():
    entry = _entry(at="init_start", do="dns", **{"with": {"mode": "drop"}, "for": "1.5s"})
    assert entry.for_ == 1500
    dumped = sc.dump(sc.validate({"schedule": [{"at": "init_start", "do": "blackhole", "for": "2s"}]}, "s"))
    assert "for: 2s" in dumped
    assert "for:" not in sc.dump(sc.validate({"schedule": [{"at": "init_start", "do": "blackhole"}]}, "s"))


@pytest.mark.parametrize("entry, words", [
    ({"at": "init_start", "do": "explode"}, "schedule[0].do: unknown fault 'explode'"),
    ({"at": "init_start", "do": "dns", "with": {"mode": "loud"}}, "with: mode:"),
    ({"at": "init_start", "do": "dns", "with": {"mod": "drop"}}, "dns has no parameter 'mod'"),
    ({"at": "init_start", "do": "dns"},
     "with: mode: required (servfail, nxdomain, drop, slow or answer), or give move_to"),
    ({"at": "init_start", "do": "flap", "for": "1s"}, "flap ends by itself"),
    ({"at": "init_start", "do": "flap", "with": {"period": "100ms", "down": "200ms"}}, "shorter than the period"),
    ({"at": "init_start", "do": "netem", "with": {"delay": "10ms", "jitter": "20ms"}}, "jitter must not exceed"),
    ({"at": "init_start", "do": "netem", "with": {"loss": "150%"}}, "loss"),
    ({"at": "init_start", "do": "blackhole", "for": "soon"}, "schedule[0].for: 'soon' is not a duration"),
    ({"at": "init_start - 1s", "do": "blackhole"}, "negative offset"),
])
def test_bad_entries_give_one_line_errors(entry, words):
    with pytest.raises(ScenarioError) as err:
        sc.validate({"schedule": [entry]}, "s.yaml")
    message = str(err.value)
    assert words in message
    assert "\n" not in message and message.startswith("s.yaml: schedule[0]")


def test_every_fault_has_parameters_and_defaults():
    assert set(sc.FAULTS) == set(fault_params.PARAMS)
    assert fault_params.parse("netem", {"loss": "2.5%"}).loss == 2.5
    assert fault_params.parse("flap", {"period": "400ms"}).down_ms == 200
    assert fault_params.parse("resolv_conf", {}).how == "in_place"
    assert fault_params.parse("swap_eni", {}).ip == "new"


def test_lab_resolv_conf_initial_state():
    s = sc.validate({"lab": {"resolv_conf": "empty"}}, "s")
    assert s.lab.resolv_conf == "empty"
    with pytest.raises(ScenarioError, match="lab.resolv_conf"):
        sc.validate({"lab": {"resolv_conf": "full"}}, "s")


def test_shipped_scenarios_load():
    from pathlib import Path

    names = ["dns-late", "resolv-conf-late", "blackhole-during-init", "flap-during-init",
             "swap-same-ip", "slow-network", "eni-swap"]
    root = Path(__file__).resolve().parents[2] / "scenarios"
    for name in names:
        s = sc.load(root / f"{name}.yaml")
        assert s.description and s.schedule, name
