"""Fleets for real: environments in namespaces, real runtimes, the service's own
record of what the handlers did, and kill -9 of a fleet cleaned up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from harness import cleanup, ownership
from harness.fleet.account import recorded_ids
from harness.fleet.runner import FleetResult, run_mitigation
from harness.lab import netns
from harness.ownership import Run
from harness.scenario import model as sc
from tests.integration.conftest import REPO, runs_of_session

pytestmark = [pytest.mark.root]

# Seed 3 draws a late ENI for cold starts 1 and 2 of 4 (fleet_config.draw_cold_start),
# attached 1 s or more after init_start: after any Python init, even a slow one.
SMALL = {
    "name": "fleet-small", "seed": 3,
    "function": {"runtime": "python", "timeout": "3s"},
    "fleet": {"max_environments": 4, "messages": 24, "idle_retire": "30s",
              "cold_start": {"eni_late": {"probability": 0.5, "delay": "1000ms..1500ms"}},
              "source": {"type": "invoke", "rate": 8, "burst": 4}},
}


def _scenario(source: dict[str, object] | None = None, **fleet: object) -> sc.Scenario:
    doc = json.loads(json.dumps(SMALL))
    doc["fleet"].update(fleet)
    doc["fleet"]["source"].update(source or {})
    return sc.validate(doc, "test")


def _check_against_the_service(result: FleetResult) -> None:
    """Every count of the account, from the service's own record (its Counter of
    /record/<id>), which must also agree request by request with the history."""
    acct, got = result.account, result.received
    events = [json.loads(line) for line in (result.folder / "history.jsonl").read_text().splitlines()]
    assert got == {mid: len(ts) for mid, ts in recorded_ids(events).items()}
    sent = {f"m{i:05d}" for i in range(acct.sent)}
    assert set(got) <= sent, "the service recorded a message nobody sent"
    assert acct.delivered_once == sum(1 for m in sent if got.get(m) == 1)
    assert acct.duplicated == sum(1 for m in sent if got.get(m, 0) > 1)
    assert acct.extra_deliveries == sum(n - 1 for n in got.values() if n > 1)
    assert acct.lost == sum(1 for m in sent if not got.get(m)) - acct.in_dlq
    assert acct.delivered_once + acct.duplicated + acct.lost + acct.in_dlq == acct.sent


def test_without_mitigation_late_cold_starts_lose_messages_with_classified_errors(run: Run, tmp_path: Path):
    result = run_mitigation(_scenario(), "none", run, tmp_path)
    acct = result.account
    assert not result.problems
    assert acct.sent == 24 and acct.cold_starts == 4 and acct.met_race == 2
    assert acct.lost > 0 and acct.hurt >= 1
    assert acct.errors_by_class.get("dns", 0) > 0, acct.errors_by_class
    _check_against_the_service(result)
    # The naive sample calls once per message: a client that got ok was recorded once,
    # one that got an error was not recorded at all.
    events = [json.loads(line) for line in (result.folder / "history.jsonl").read_text().splitlines()]
    invokes = [e for e in events if e["kind"] == "fleet_invoke"]
    assert len(invokes) == 24
    for e in invokes:
        assert result.received.get(e["ids"][0], 0) == (1 if e["ok"] else 0), e
    # The late ENIs were attached, verified, in their environment's own history.
    faults = [json.loads(line) for env in ("env-1", "env-2")
              for line in (result.folder / env / "history.jsonl").read_text().splitlines()
              if '"kind": "fault"' in line]
    assert len(faults) == 2 and all(f["verified"] and f["fault"] == "attach_eni" for f in faults)
    told = sorted(e["environment"] for e in events if e["kind"] == "environment_eni" and e["verified"])
    assert told == ["env-1", "env-2"]


def test_retries_in_the_handler_lose_nothing_under_the_same_draws(run: Run, tmp_path: Path):
    result = run_mitigation(_scenario(), "retry", run, tmp_path)
    acct = result.account
    assert acct.met_race == 2 and acct.hurt == 0
    assert acct.lost == 0 and acct.failed_invocations == 0
    _check_against_the_service(result)


def test_a_queue_with_redrive_loses_nothing_under_the_same_draws(run: Run, tmp_path: Path):
    """The sqs source: the late cold starts' records fail, are reported in
    batchItemFailures, reappear after the visibility timeout and are recorded
    once; nothing lost, nothing duplicated, nothing in the DLQ."""
    scenario = _scenario({"visibility_timeout": "1s", "batch_size": 3, "pollers": 4, "max_receive_count": 5})
    result = run_mitigation(scenario, "queue", run, tmp_path)
    acct = result.account
    assert acct.source == "sqs" and not result.problems
    assert acct.lost == 0 and acct.in_dlq == 0 and acct.duplicated == 0 and acct.delivered_once == 24
    assert acct.met_race >= 1 and acct.redelivered > 0  # the race hit, and the queue retried
    _check_against_the_service(result)
    events = [json.loads(line) for line in (result.folder / "history.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "queue_drain" and e["drained"] for e in events)


def test_a_batch_handler_without_report_batch_item_failures_loses_its_failed_records(run: Run, tmp_path: Path):
    """The same handler with the mapping not told to read batchItemFailures: its
    invocation succeeds, so Lambda deletes the whole batch, failed records too."""
    scenario = _scenario({"visibility_timeout": "1s", "batch_size": 3, "pollers": 4,
                          "report_batch_item_failures": False})
    result = run_mitigation(scenario, "queue", run, tmp_path)
    acct = result.account
    assert acct.lost > 0 and acct.in_dlq == 0 and acct.failed_invocations == 0
    _check_against_the_service(result)


def test_a_visibility_timeout_shorter_than_a_cold_start_duplicates_exactly_its_batches(run: Run, tmp_path: Path):
    """Waiting for the network behind a queue whose visibility timeout (1 s) is
    shorter than the late cold starts' init (1 s or more): their first batches
    (and any batch waiting that long for a free environment) reappear and run
    elsewhere while they wait, then they record them too. Every invocation records
    its whole batch, so each message was recorded once per invocation that carried
    it: the duplicates, exactly."""
    scenario = _scenario({"type": "sqs", "visibility_timeout": "1s", "batch_size": 3, "pollers": 4})
    result = run_mitigation(scenario, "wait_for_network", run, tmp_path)
    acct = result.account
    assert acct.lost == 0 and acct.duplicated > 0 and acct.extra_deliveries >= acct.duplicated
    _check_against_the_service(result)
    events = [json.loads(line) for line in (result.folder / "history.jsonl").read_text().splitlines()]
    invokes = [e for e in events if e["kind"] == "fleet_invoke"]
    assert all(e["ok"] for e in invokes)
    carried = Counter(mid for e in invokes for mid in e["ids"])
    assert result.received == dict(carried)


def test_idle_environments_are_frozen_then_retired(run: Run, tmp_path: Path):
    scenario = _scenario({"rate": 2, "burst": 4}, messages=8, idle_retire="300ms", cold_start={})
    result = run_mitigation(scenario, "none", run, tmp_path)
    events = [json.loads(line) for line in (result.folder / "history.jsonl").read_text().splitlines()]
    retired = [e for e in events if e["kind"] == "environment_retire"]
    # Two bursts 2 s apart: the first burst's environments retire before the second,
    # which cold-starts new ones.
    assert retired and all(e["idle_ms"] >= 300 for e in retired)
    starts = [e for e in events if e["kind"] == "environment_start"]
    assert any(e["t_ms"] > retired[0]["t_ms"] for e in starts), "no cold start after the retirement"
    assert result.account.lost == 0
    env1 = (result.folder / "env-1" / "history.jsonl").read_text()
    assert '"kind": "freeze"' in env1 and '"verified": true' in env1



def _motos_of(runs: set[str]) -> list[int]:
    """Live processes labelled as owned by one of `runs` (the moto server)."""
    found = []
    for entry in Path("/proc").iterdir():
        label = ownership.process_label_of(int(entry.name)) if entry.name.isdigit() else None
        if label and label.split(":", 1)[0] in runs and ownership.process_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def test_kill_9_of_a_fleet_is_cleaned_up(tmp_path: Path):
    """Killed in the middle of its queue run: its lab, every environment's sandbox
    and runtime, and its moto server go with the next cleanup."""
    path = tmp_path / "fleet.yaml"
    doc = json.loads(json.dumps(SMALL))
    doc["fleet"]["messages"] = 400  # 50 s at 8 a second: still running when killed
    path.write_text(json.dumps(doc))
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli.main", "fleet", str(path), "--compare", "queue",
                             "--out", str(tmp_path / "out")], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, runs, mine, motos = time.monotonic() + 60, set(), [], []
        while time.monotonic() < deadline:
            runs |= runs_of_session(proc.pid)
            mine = [n for n in netns.list_names() if ownership.run_of_netns(n) in runs]
            motos = _motos_of(runs)
            if len(mine) >= 4 and motos:  # the fleet's lab, environments' sandboxes, moto
                break
            time.sleep(0.05)
        else:
            pytest.fail("the fleet never built its environments and its queue")
        runtimes = {pid for name in mine for pid in netns.pids_in(name)}
        os.killpg(proc.pid, signal.SIGKILL)  # moto has a session of its own: it survives this
        proc.wait()
        assert _motos_of(runs) == motos
        time.sleep(0.2)  # the kernel drops the dead run's lock as it reaps it
        report = cleanup.cleanup()
        assert not [n for n in mine if netns.exists(n)], report
        assert not [r for r in runs if ownership.manifest_path(r).exists()], report
        alive = [p for p in runtimes | set(motos) if ownership.process_alive(p)]
        assert not alive, f"processes left running: {alive}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_waiting_for_the_network_in_init_loses_nothing_and_costs_the_cold_start(run: Run, tmp_path: Path):
    result = run_mitigation(_scenario(), "wait_for_network", run, tmp_path)
    acct = result.account
    assert acct.met_race == 2 and acct.lost == 0 and acct.failed_invocations == 0
    _check_against_the_service(result)
    events = [json.loads(line) for line in (result.folder / "history.jsonl").read_text().splitlines()]
    starts = {e["environment"]: e for e in events if e["kind"] == "environment_start"}
    # A late cold start's init lasted until its ENI came (1 s or more after init_start).
    for env in ("env-1", "env-2"):
        assert starts[env]["eni_late"] and starts[env]["init"] == "ready"
        assert starts[env]["took_ms"] >= starts[env]["delay_ms"]
    assert all(e["took_ms"] < 1000 for e in starts.values() if not e["eni_late"])


def test_an_environment_joining_the_vpc_never_changes_the_gateway_mac(run: Run):
    """A bridge takes its lowest port's MAC unless it has one of its own: a cold
    start whose ENI had a lower MAC moved the service's MAC under the running
    environments, and their requests hung (the fleet's first runs lost messages to
    3 s timeouts that way)."""
    from harness.fleet.envlab import EnvLab, FleetLab
    from harness.lab import addressing

    lease = addressing.acquire(sc.LabConfig().pool, run)
    fleet = FleetLab(run, lease.subnet)
    envs = []
    try:
        fleet.up()
        with netns.rtnl(fleet.vpc) as v:
            before = v.get_links(fleet._bridge_index)[0].get("IFLA_ADDRESS")
        env = EnvLab(fleet)
        envs.append(env)
        env.up()
        eni = env.attach_eni()
        with netns.rtnl(fleet.vpc) as v:  # the lowest MAC a port can have
            v.link("set", index=eni.peer_index, address="02:00:00:00:00:01")
            after = v.get_links(fleet._bridge_index)[0].get("IFLA_ADDRESS")
        assert after == before
    finally:
        for env in envs:
            env.down()
        fleet.down()
        lease.release()


def test_a_queue_left_undrained_is_a_harness_error_not_a_finding(tmp_path: Path):
    path = tmp_path / "fleet.yaml"
    doc = json.loads(json.dumps(SMALL))
    doc["fleet"].update({"messages": 8, "drain_timeout": "1ms"})
    path.write_text(json.dumps(doc))
    done = subprocess.run([sys.executable, "-m", "harness.cli.main", "fleet", str(path), "--compare", "queue",
                           "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "harness error queue: the queue was not drained within fleet.drain_timeout" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_sigterm_of_a_fleet_tears_it_down_and_says_so(tmp_path: Path):
    path = tmp_path / "fleet.yaml"
    doc = json.loads(json.dumps(SMALL))
    doc["fleet"]["messages"] = 400
    path.write_text(json.dumps(doc))
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli.main", "fleet", str(path), "--out",
                             str(tmp_path / "out")], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline, runs = time.monotonic() + 60, set()
        while time.monotonic() < deadline:
            runs |= runs_of_session(proc.pid)
            if len([n for n in netns.list_names() if ownership.run_of_netns(n) in runs]) >= 3:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "interrupted: every environment and lab was torn down" in out and "Traceback" not in out
    assert not [n for n in netns.list_names() if ownership.run_of_netns(n) in runs]
