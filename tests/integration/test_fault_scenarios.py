"""One trial per fault scenario with the Python samples, asserting the verdicts
observed on this machine (docs/faults.md explains each), the packet evidence, and
that the host namespace is unchanged afterwards."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from harness.scenario import model as sc
from harness.trial import TrialResult, run_one_trial
from tests.integration.conftest import REPO, host_snapshot

pytestmark = [pytest.mark.root, pytest.mark.slow]
SCENARIOS = REPO / "scenarios"


@pytest.fixture
def fault_trial(run, tmp_path):
    def _trial(name: str, handler: str, *overrides: str, capture: bool = True) -> TrialResult:
        scenario = sc.load(SCENARIOS / f"{name}.yaml", [f"function.handler={handler}", *overrides])
        return run_one_trial(scenario, run, tmp_path, capture=capture)

    return _trial


def faults_of(result: TrialResult) -> list[dict]:
    return [e for e in result.events if e["kind"] == "fault"]


def test_dns_late_servfail_hurts_per_call_lookups_only_while_it_lasts(fault_trial):
    result = fault_trial("dns-late", "naive_session")
    v = result.verdict
    assert v.verdict == "recovered" and v.failed_invocations >= 1 and not v.reinit_needed
    assert [(e["step"], e["verified"]) for e in faults_of(result)] == [("apply", True), ("revert", True)]
    assert any("answered SERVFAIL" in line for line in v.evidence)


def test_dns_late_is_remembered_by_a_handler_that_caches_its_failure(fault_trial):
    v = fault_trial("dns-late", "naive_cached").verdict
    assert v.verdict == "stuck" and v.error_classes == ["dns"]
    assert any("nothing tried the network" in line for line in v.evidence)


def test_resolv_conf_filled_by_rename_reaches_the_running_runtime(fault_trial):
    result = fault_trial("resolv-conf-late", "naive_session")
    v = result.verdict
    # Recovered in the same runtime: glibc saw the renamed file without a restart.
    assert v.verdict == "recovered" and v.failed_invocations >= 1 and not v.reinit_needed
    [fill] = faults_of(result)
    assert fill["verified"] and fill["detail"]["inode_before"] != fill["detail"]["inode_after"]
    assert any("went to 127.0.0.1:53" in line for line in v.evidence)


def test_blackhole_during_init_times_out_the_first_call(fault_trial):
    v = fault_trial("blackhole-during-init", "naive_session").verdict
    # glibc waits 5 s for a lost DNS answer, longer than the 3 s function timeout:
    # invocation 1 times out, the runtime is restarted, the next call works.
    assert v.verdict == "recovered" and v.reinit_needed and v.failures[0].error_class == "timeout"
    assert any("got no answer" in line for line in v.evidence)


def test_flap_during_init_fires_every_cycle(fault_trial):
    result = fault_trial("flap-during-init", "naive_session")
    steps = faults_of(result)
    assert [e["step"] for e in steps] == ["down 1/3", "up 1/3", "down 2/3", "up 2/3", "down 3/3", "up 3/3"]
    assert all(e["verified"] for e in steps)
    assert result.verdict.verdict == "recovered"


def test_swap_to_the_same_ip_is_transparent(fault_trial):
    result = fault_trial("swap-same-ip", "naive_session")
    v = result.verdict
    assert v.verdict == "recovered" and v.failed_invocations == 0 and v.exposed
    [swap] = faults_of(result)
    assert swap["detail"]["from"]["address"] == swap["detail"]["to"]["address"]


def test_eni_swap_to_a_new_ip_strands_the_pooled_connection(fault_trial):
    v = fault_trial("eni-swap", "naive_session").verdict
    # The request on the pooled connection cannot leave (its source address is
    # gone) and hangs to the function timeout; the re-init starts clean.
    assert v.verdict == "recovered" and v.failed_invocations == 1 and v.reinit_needed
    assert v.failures[0].error_class == "timeout"
    assert any("pooled before the ENI swap" in line for line in v.evidence)


def test_eni_swap_is_absorbed_by_the_resilient_handler(fault_trial):
    v = fault_trial("eni-swap", "resilient").verdict
    assert v.verdict == "recovered" and v.failed_invocations == 0


def test_slow_network_delays_without_failing(fault_trial):
    # Without loss the outcome does not depend on which packets are dropped.
    result = fault_trial("slow-network", "naive_session", "schedule[0].with.loss=0")
    v = result.verdict
    assert v.verdict == "recovered" and v.failed_invocations == 0 and v.exposed
    [netem] = faults_of(result)
    assert netem["verified"] and netem["detail"]["delay_ms"] == 300


def test_capture_is_a_pcap_tshark_reads(fault_trial):
    result = fault_trial("dns-late", "naive_session")
    pcap = result.folder / "capture.pcap"
    [summary] = [e for e in result.events if e["kind"] == "capture"]
    assert pcap.stat().st_size > 24 and summary["packets"] > 0
    kinds = {e["kind"] for e in result.events}
    assert {"dns_query", "dns_answer", "tcp_syn"} <= kinds
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", "dns.flags.rcode == 2"], capture_output=True,
                         text=True, check=True).stdout
    assert "svc.internal" in out  # the SERVFAIL answers, as Wireshark decodes them


def test_no_capture_means_no_pcap_and_no_evidence(fault_trial):
    result = fault_trial("dns-late", "naive_cached", capture=False)
    assert not (result.folder / "capture.pcap").exists() and result.verdict.evidence == []


def test_host_namespace_unchanged_after_fault_trials(fault_trial):
    before = host_snapshot()
    fault_trial("blackhole-during-init", "resilient", "schedule[0].for=500ms")
    fault_trial("slow-network", "resilient", "schedule[0].with.loss=0", "workload.invocations=2")
    fault_trial("flap-during-init", "resilient", "workload.invocations=2")
    fault_trial("resolv-conf-late", "resilient", "workload.invocations=2")
    assert host_snapshot() == before
