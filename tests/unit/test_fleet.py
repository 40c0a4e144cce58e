"""The fleet's configuration, its cold-start draws, its scaling decisions and its
account, without a lab: the engine's environments are stand-ins here (the real
ones are exercised in tests/integration/test_fleet.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.errors import ScenarioError
from harness.fleet import account as accounting
from harness.fleet.engine import Fleet
from harness.fleet.invocation import Invocation
from harness.history import schema
from harness.history.recorder import History
from harness.scenario import model as sc
from harness.scenario.fleet_config import ColdStart, draw_cold_start, parse_compare


def _load(fleet: dict) -> sc.Scenario:
    return sc.validate({"fleet": fleet}, "f.yaml")


@pytest.mark.parametrize("fleet, message", [
    ({"max_environments": 0}, "f.yaml: fleet.max_environments: Input should be greater than or equal to 1"),
    ({"max_environments": 101}, "fleet.max_environments: Input should be less than or equal to 100"),
    ({"idle_retire": "0ms"}, "fleet.idle_retire: must be longer than 0ms"),
    ({"idle_retire": 5}, "fleet.idle_retire: 5 has no unit"),
    ({"cold_start": {"eni_late": {"probability": 1.5}}}, "fleet.cold_start.eni_late.probability: Input should be"),
    ({"cold_start": {"eni_late": {"delay": "2s..1s"}}}, "fleet.cold_start.eni_late.delay: '2s..1s': the range ends"),
    ({"cold_start": {"eni_late": {"delay": "soon"}}}, "fleet.cold_start.eni_late.delay: 'soon' is not a duration"),
    ({"cold_start": {"dns_late": {}}}, "fleet.cold_start.dns_late: unknown field"),
    ({"source": "kafka"}, "fleet.source.type: 'kafka' is not allowed"),
    ({"source": {"batch_size": 0}}, "fleet.source.batch_size: Input should be greater than or equal to 1"),
    ({"source": {"visibility_timeout": "1500ms"}}, "fleet.source.visibility_timeout: is whole seconds"),
    ({"source": {"rate": 0}}, "fleet.source.rate: Input should be greater than 0"),
    ({"mitigation": "pray"}, "fleet.mitigation: 'pray' is not allowed"),
    ({"expect": {"pray": {"lost": 0}}}, "fleet.expect: 'pray' is not a mitigation"),
    ({"expect": {"queue": {"lost": -1}}}, "fleet.expect.queue.lost: Input should be greater than or equal to 0"),
])
def test_bad_fleet_keys_are_one_line_naming_the_field(fleet, message):
    with pytest.raises(ScenarioError) as err:
        _load(fleet)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_shipped_fleet_scenario_loads_and_round_trips():
    scenario = sc.load(Path(__file__).resolve().parents[2] / "scenarios" / "fleet-queue.yaml")
    assert scenario.fleet is not None and scenario.fleet.cold_start.eni_late.probability == 0.2
    again = sc.validate(__import__("yaml").safe_load(sc.dump(scenario)), "dumped")
    assert again.fleet == scenario.fleet


def test_queue_means_the_sqs_source():
    fleet = _load({"source": {"type": "invoke", "batch_size": 3}}).fleet
    assert fleet.for_mitigation("queue").source.type == "sqs"
    assert fleet.for_mitigation("queue").source.batch_size == 3
    assert fleet.for_mitigation("retry").source.type == "invoke"


def test_compare_names_known_mitigations_once():
    assert parse_compare("none, queue,none") == ["none", "queue"]
    with pytest.raises(ValueError, match="'later' is not a mitigation"):
        parse_compare("none,later")


def test_cold_start_draws_are_seeded_per_cold_start():
    cold = ColdStart.model_validate({"eni_late": {"probability": 0.2, "delay": "0ms..1500ms"}})
    draws = [draw_cold_start(cold, 42, n) for n in range(1, 2001)]
    assert draws == [draw_cold_start(cold, 42, n) for n in range(1, 2001)]
    assert draws != [draw_cold_start(cold, 43, n) for n in range(1, 2001)]
    late = [d for d in draws if d["eni_late"]]
    assert 0.17 < len(late) / len(draws) < 0.23
    assert all(0 <= d["delay_ms"] <= 1500 for d in late)
    assert not any(draw_cold_start(ColdStart(), 42, n)["eni_late"] for n in range(100))


def test_fleet_command_refuses_bad_input_in_one_line(tmp_path):
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: plain\n")
    out = CliRunner().invoke(main, ["fleet", str(plain)])
    assert out.exit_code == 2 and "has no fleet: block" in out.output
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("fleet: {messages: 3}\n")
    out = CliRunner().invoke(main, ["fleet", str(fleet), "--compare", "none,hope"])
    assert out.exit_code == 2 and "--compare: 'hope' is not a mitigation" in out.output
    # An empty list (a shell variable left unset) is a mistake, not "the scenario's default".
    out = CliRunner().invoke(main, ["fleet", str(fleet), "--compare", ""])
    assert out.exit_code == 2 and "--compare: name at least one mitigation" in out.output
    assert len(out.output.strip().splitlines()) == 1
    # A mitigation's mistake comes before the run's header line, alone.
    out = CliRunner().invoke(main, ["fleet", str(fleet), "--set", "function.runtime=command"])
    assert out.exit_code == 2 and "function.runtime: the fleet's mitigation samples are" in out.output
    assert len(out.output.strip().splitlines()) == 1, out.output


# -- scaling, with stand-in environments -----------------------------------------------------

class _Env:
    def __init__(self, name: str, gate: threading.Event) -> None:
        self.name, self.gate, self.draw = name, gate, {"eni_late": False}
        self.invocations = self.failures = 0
        self.last_used = time.monotonic()
        self.stopped = False

    def invoke(self, payload: bytes, cold: bool) -> Invocation:
        self.gate.wait(5)
        self.invocations += 1
        return Invocation(True, b"{}", None, self.name, cold, 1.0)

    def stop(self) -> list[str]:
        self.stopped = True
        return []


class _Fleet(Fleet):
    def __init__(self, max_envs: int, idle_retire: str = "30s") -> None:
        scenario = sc.validate({"fleet": {"max_environments": max_envs, "idle_retire": idle_retire}}, "t")
        super().__init__(scenario, None, None, Path("/nonexistent"), History())  # type: ignore[arg-type]
        self.gate = threading.Event()
        self.made: list[_Env] = []

    def _cold_start(self, n: int) -> _Env:  # type: ignore[override]
        env = _Env(f"env-{n}", self.gate)
        with self._cv:
            self._envs.append(env)  # type: ignore[arg-type]
            self.started.append(env)  # type: ignore[arg-type]
        self.made.append(env)
        return env


def _invoke_in_threads(fleet: Fleet, n: int) -> tuple[list[threading.Thread], list[Invocation]]:
    got: list[Invocation] = []
    threads = [threading.Thread(target=lambda: got.append(fleet.invoke(b"{}"))) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, got


def test_a_busy_fleet_cold_starts_up_to_its_limit_then_waits_for_a_free_one():
    fleet = _Fleet(max_envs=2)
    threads, got = _invoke_in_threads(fleet, 3)
    deadline = time.monotonic() + 5
    while len(fleet.made) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert len(fleet.made) == 2 and not got  # the third event waits: both are busy
    fleet.gate.set()
    for t in threads:
        t.join(5)
    assert len(got) == 3 and len(fleet.made) == 2
    assert sorted(i.cold for i in got) == [False, True, True]  # the third ran warm


def test_a_free_fleet_reuses_the_most_recently_used_environment():
    fleet = _Fleet(max_envs=4)
    fleet.gate.set()
    first = fleet.invoke(b"{}")
    assert first.cold
    again = [fleet.invoke(b"{}") for _ in range(3)]
    assert {i.environment for i in again} == {first.environment} and not any(i.cold for i in again)


def test_an_idle_environment_is_retired_and_the_next_event_cold_starts():
    fleet = _Fleet(max_envs=2, idle_retire="100ms")
    fleet.gate.set()
    fleet._retirer.start()
    try:
        first = fleet.invoke(b"{}")
        deadline = time.monotonic() + 5
        while not fleet.retired and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fleet.made[0].stopped and [e.name for e in fleet.retired] == [first.environment]
        retire = fleet.history.of_kind(schema.ENVIRONMENT_RETIRE)[0]
        assert retire["idle_ms"] >= 100 and retire["invocations"] == 1
        assert fleet.invoke(b"{}").cold
    finally:
        fleet.down()


# -- the account -----------------------------------------------------------------------------

def _e(kind: str, t: float, **f: object) -> dict:
    return {"kind": kind, "t_ms": t, **f}


def test_account_counts_every_message_once_in_one_class():
    events = [_e(schema.MESSAGE_SENT, float(i), id=f"m{i}") for i in range(5)]
    events += [_e(schema.SERVICE_REQUEST, 10.0, path="/record/m0"), _e(schema.SERVICE_REQUEST, 20.0, path="/record/m1"),
               _e(schema.SERVICE_REQUEST, 30.0, path="/record/m1"), _e(schema.SERVICE_REQUEST, 31.0, path="/record/m1"),
               _e(schema.SERVICE_REQUEST, 5.0, path="/")]
    events += [_e(schema.FLEET_INVOKE, 1.0, environment="env-1", cold=True, ok=False, error_type="Function.Error",
                  duration_ms=1.0, ids=["m3"], error_class="dns"),
               _e(schema.ENVIRONMENT_START, 0.5, environment="env-1", n=1, eni_late=True, init="ready", took_ms=1.0)]
    acct = accounting.account("queue", "sqs", events, dlq_ids=["m2"])
    assert (acct.sent, acct.delivered_once, acct.duplicated, acct.extra_deliveries, acct.in_dlq, acct.lost) == \
        (5, 1, 1, 2, 1, 2)
    assert acct.lost_ids == ["m3", "m4"] and acct.duplicated_ids == {"m1": 3}
    assert acct.latency_ms == {"p50": 10.0, "p95": 19.0, "p99": 19.0}
    assert acct.errors_by_class == {"dns": 1} and acct.met_race == 1 and acct.hurt == 1


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert [accounting.percentile(values, q) for q in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert accounting.percentile([], 50) is None


def test_each_mitigation_runs_its_sample_in_python_nodejs_or_dotnet_only():
    from harness.errors import UserError
    from harness.fleet.runner import scenario_for

    scenario = _load({"mitigation": "none"})
    assert scenario_for(scenario, "queue").function.handler == "fleet_batch"
    assert scenario_for(scenario, "queue").fleet.source.type == "sqs"
    node = scenario.model_copy(update={"function": scenario.function.model_copy(update={"runtime": "nodejs"})})
    assert scenario_for(node, "wait_for_network").function.handler == "fleet_wait"
    dotnet = sc.validate({"function": {"runtime": "dotnet", "handler": "resilient"}, "fleet": {}}, "f.yaml")
    assert scenario_for(dotnet, "retry").function.handler == "fleet_retry"
    command = sc.validate({"function": {"runtime": "command", "command": ["./bootstrap"]}, "fleet": {}}, "f.yaml")
    with pytest.raises(UserError, match="function.runtime: the fleet.s mitigation samples are python, nodejs, dotnet"):
        scenario_for(command, "none")
