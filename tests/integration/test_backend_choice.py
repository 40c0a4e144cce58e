"""A real trial goes through the one Backend it chose: lab and runtime API both
come from it, and nothing asks for a backend again."""

from __future__ import annotations

import pytest

from harness import backends, trial
from harness.backends.process import ProcessBackend
from harness.scenario import model as sc
from tests.integration.conftest import LATE_ENI

pytestmark = [pytest.mark.root]


class Counting(ProcessBackend):
    def __init__(self, calls: dict[str, int]) -> None:
        self.calls = calls

    def preflight(self, scenario):
        self.calls["preflight"] += 1
        return super().preflight(scenario)

    def make_lab(self, scenario, run, subnet, notify):
        self.calls["make_lab"] += 1
        return super().make_lab(scenario, run, subnet, notify)

    def make_runtime_api(self, *args):
        self.calls["make_runtime_api"] += 1
        return super().make_runtime_api(*args)


def test_a_real_trial_chooses_its_backend_once(monkeypatch, run, tmp_path):
    calls = {"chosen": 0, "preflight": 0, "make_lab": 0, "make_runtime_api": 0}

    def factory() -> Counting:
        calls["chosen"] += 1
        return Counting(calls)

    monkeypatch.setitem(backends.BACKENDS, "process", factory)
    result = trial.run_one_trial(sc.load(LATE_ENI, ["function.handler=resilient"]), run, tmp_path)
    assert result.verdict.verdict == "recovered", result.verdict.reason
    assert calls == {"chosen": 1, "preflight": 1, "make_lab": 1, "make_runtime_api": 1}
    assert any(e["kind"] == "containment" for e in result.events)  # the process backend's own event
