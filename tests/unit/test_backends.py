"""A trial chooses its backend once and asks only that backend for its lab; one
preflight checks a scenario for run, sweep and plugin alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import backends, ownership, trial
from harness.backends.process import ProcessBackend
from harness.errors import UserError
from harness.ownership import Run
from harness.scenario import model as sc

REPO = Path(__file__).resolve().parents[2]
LATE_ENI = REPO / "scenarios" / "late-eni-attach.yaml"


class LabRefused(Exception):
    pass


class CountingBackend(ProcessBackend):
    """The process backend, counting what a trial asks of it; it builds no lab."""

    name = "counting"

    def __init__(self, calls: dict[str, int]) -> None:
        self.calls = calls

    def preflight(self, scenario):
        self.calls["preflight"] += 1

    def make_lab(self, scenario, run, subnet, notify):
        self.calls["make_lab"] += 1
        raise LabRefused("a unit test builds no lab")


@pytest.fixture
def calls(monkeypatch, tmp_path):
    monkeypatch.setattr(ownership, "STATE_DIR", tmp_path / "state")
    counts = {"chosen": 0, "preflight": 0, "make_lab": 0}

    def factory() -> CountingBackend:
        counts["chosen"] += 1
        return CountingBackend(counts)

    monkeypatch.setitem(backends.BACKENDS, "process", factory)
    return counts


def test_a_trial_of_a_bare_scenario_chooses_its_backend_once(calls, tmp_path):
    with Run.register("unit") as run:
        result = trial.run_one_trial(sc.load(LATE_ENI), run, tmp_path / "out")
    assert calls == {"chosen": 1, "preflight": 1, "make_lab": 1}
    assert result.verdict.verdict == "harness_error"
    assert "LabRefused" in result.verdict.reason


def test_a_prepared_trial_is_not_checked_again(calls, tmp_path):
    prepared = trial.preflight(sc.load(LATE_ENI))
    assert isinstance(prepared.backend, CountingBackend)
    assert prepared.launch.argv[-1] == "resilient.handler"
    with Run.register("unit") as run:
        trial.run_one_trial(prepared, run, tmp_path / "out")
        trial.run_one_trial(prepared, run, tmp_path / "out")
    assert calls == {"chosen": 1, "preflight": 1, "make_lab": 2}


def test_preflight_refuses_a_bad_handler_before_choosing_a_backend(calls):
    with pytest.raises(UserError, match="function.handler"):
        trial.preflight(sc.load(LATE_ENI, ["function.handler=no_such_module"]))
    assert calls["chosen"] == 0


def test_an_unregistered_backend_is_a_usage_error(monkeypatch):
    monkeypatch.delitem(backends.BACKENDS, "docker")
    scenario = sc.load(LATE_ENI, ["backend=docker"])
    with pytest.raises(UserError, match="^backend: unknown backend 'docker'; use one of process$"):
        backends.for_scenario(scenario)


def test_cleanup_removes_what_only_docker_records_through_its_backend():
    from harness import cleanup

    docker_kinds = set(backends.BACKENDS["docker"]().removers())
    assert docker_kinds == {"container", "network", "link"}
    assert docker_kinds <= set(cleanup.REMOVERS)


@pytest.mark.parametrize("handle", ["harness.function.handle:RuntimeProcess",
                                    "harness.backends.docker.containers:ContainerProcess"])
def test_every_runtime_handle_has_the_whole_protocol(handle):
    """The emulator calls the protocol's methods without asking whether they exist."""
    import importlib

    from harness.function.handle import RuntimeHandle

    module, _, name = handle.partition(":")
    cls = getattr(importlib.import_module(module), name)
    wanted = {m for m in vars(RuntimeHandle) if not m.startswith("_") and callable(getattr(RuntimeHandle, m))}
    assert wanted and {m for m in wanted if not callable(getattr(cls, m, None))} == set()
