"""The nemesis's bookkeeping with a stand-in fault (no lab, no root): the drawn
offset, the planned times of apply and `for:` revert, flap steps, cancellation."""

from __future__ import annotations

import time

import pytest

from harness.history.recorder import History
from harness.nemesis import catalogue
from harness.nemesis import fault as faults
from harness.nemesis import firing as nemesis_mod
from harness.scenario import model as sc


class StandIn(faults.Fault):
    name = "dns"
    calls: list[str] = []

    def apply(self):
        self.calls.append("apply")
        return {"did": "apply"}

    def revert(self):
        self.calls.append("revert")
        return {"did": "revert"}

    def verify(self):
        return True, {}

    def verify_reverted(self):
        return True, {}

    def effect(self):
        return {"dns": True}


class FlapStandIn(StandIn):
    name = "flap"

    def steps(self, for_ms):
        return faults_eni_flap_steps(self)


def faults_eni_flap_steps(fault):
    from harness.nemesis.eni import Flap

    return Flap.steps(fault, None)  # type: ignore[arg-type]


@pytest.fixture
def stand_in(monkeypatch):
    StandIn.calls = []

    def make(name, lab, params):
        return (FlapStandIn if name == "flap" else StandIn)(lab, **params)

    monkeypatch.setattr(catalogue, "make", make)


def test_the_catalogue_has_one_class_per_fault_name():
    assert sorted(catalogue.FAULTS) == sorted(sc.FAULTS)
    assert all(cls.name == name for name, cls in catalogue.FAULTS.items())


# The events a trigger waits for, with the fields the (strict) history requires.
INIT_START = {"generation": 1, "phase": "init", "pid": None, "command": "stand-in"}


def entries(*docs):
    return sc.validate({"schedule": list(docs)}, "s").schedule


def wait_for(history, kind, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while len(history.of_kind(kind)) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    return history.of_kind(kind)


def test_apply_then_revert_after_for_with_drawn_offset(stand_in):
    history = History()
    schedule = entries({"at": "invoke_start#2 + 10ms..30ms", "do": "dns", "with": {"mode": "drop"}, "for": "20ms"})
    nem = nemesis_mod.Nemesis(None, history, schedule, seed=42)  # type: ignore[arg-type]
    nem.start()
    [drawn] = history.of_kind("schedule")[0]["entries"]
    assert drawn["offset_ms"] == schedule[0].at.draw_offset_ms(42, 0) and drawn["drawn"]
    history.record("invoke_start", n=1, request_id="r1")
    first = history.record("invoke_start", n=2, request_id="r2")  # the trigger is the second occurrence
    apply, revert = wait_for(history, "fault", 2)
    nem.stop()
    assert StandIn.calls == ["apply", "revert"]
    assert apply["planned_ms"] == pytest.approx(first["t_ms"] + drawn["offset_ms"], abs=0.002)
    assert revert["planned_ms"] == pytest.approx(apply["planned_ms"] + 20, abs=0.002)
    assert (apply["step"], apply["aspects"], apply["impairs"]) == ("apply", {"dns": True}, True)
    assert (revert["step"], revert["aspects"], revert["impairs"]) == ("revert", {"dns": False}, False)
    assert apply["seed"] == 42 and apply["offset_ms"] == drawn["offset_ms"]
    assert all(e["verified"] for e in (apply, revert))


def test_flap_runs_down_up_cycles(stand_in):
    history = History()
    schedule = entries({"at": "init_start", "do": "flap", "with": {"period": "20ms", "count": 2, "down": "5ms"}})
    nem = nemesis_mod.Nemesis(None, history, schedule)  # type: ignore[arg-type]
    nem.start()
    start = history.record("init_start", **INIT_START)
    steps = wait_for(history, "fault", 4)
    nem.stop()
    assert [e["step"] for e in steps] == ["down 1/2", "up 1/2", "down 2/2", "up 2/2"]
    assert [round(e["planned_ms"] - start["t_ms"], 3) for e in steps] == [0, 5, 20, 25]
    assert StandIn.calls == ["apply", "revert", "apply", "revert"]


def test_stop_cancels_a_pending_revert_and_reports_unfired_entries(stand_in):
    history = History()
    schedule = entries({"at": "init_start", "do": "dns", "with": {"mode": "drop"}, "for": "10s"},
                       {"at": "invoke_start#9", "do": "dns", "with": {"mode": "drop"}})
    nem = nemesis_mod.Nemesis(None, history, schedule)  # type: ignore[arg-type]
    nem.start()
    history.record("init_start", **INIT_START)
    wait_for(history, "fault", 1)
    never = nem.stop()
    assert [e.at.occurrence for e in never] == [9]
    [cancelled] = history.of_kind("fault_step_cancelled")
    assert cancelled["step"] == "revert"
    assert StandIn.calls == ["apply"]


def test_the_trials_garbage_is_freed_after_the_schedule(stand_in):
    """The collector is off while faults can fire, and everything the trial left
    is collectable afterwards: gc.freeze() here once kept every trial's cyclic
    garbage for the life of a sweep worker (~0.35 MB per trial)."""
    import gc
    import weakref

    class Node:
        pass

    def garbage_cycle():
        a, b = Node(), Node()
        a.other, b.other = b, a
        return weakref.ref(a)

    assert gc.isenabled()
    gone = garbage_cycle()  # unreachable already, waiting for a collection
    frozen = gc.get_freeze_count()
    schedule = entries({"at": "invoke_start + 50ms", "do": "dns", "with": {"mode": "drop"}})
    nem = nemesis_mod.Nemesis(None, History(), schedule, seed=1)  # type: ignore[arg-type]
    try:
        nem.start()
        assert not gc.isenabled()  # no collection pause can delay a firing
        assert gc.get_freeze_count() == frozen
    finally:
        nem.stop()
    assert gc.isenabled()
    gc.collect()
    assert gone() is None
