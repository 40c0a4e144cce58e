"""Node.js handlers on AWS's aws-lambda-ric (the npm package, native addon and all)
behind the emulator, under late-eni-attach and eni-swap."""

from __future__ import annotations

import subprocess

import pytest

from harness.function import nodejs
from harness.history import schema
from tests.integration.conftest import LATE_ENI

pytestmark = [pytest.mark.root, pytest.mark.nodejs]

ENI_SWAP = LATE_ENI.parent / "eni-swap.yaml"
# For handlers whose init does not touch the network the attach is anchored on the
# runtime's first /next: under load node can take longer than 500 ms to load, and an
# attach at init_start + 500ms would then meet no call at all (not_exercised).
AFTER_INIT = "schedule[0].at=runtime_ready + 200ms"


@pytest.fixture(scope="module", autouse=True)
def warm_node():
    """Install the client once (minutes on a fresh machine) and load node and the
    client once outside any trial: the first trial of a cold page cache would
    otherwise spend its 500 ms before the attach reading node from disk, and meet
    no fault at all (not_exercised)."""
    found = nodejs.locate_node()
    if found is None:
        return  # tests/conftest.py fails or skips nodejs-marked tests for want of node
    package = nodejs.ensure_ric(found)
    subprocess.run([str(found.path), "-e", f"require({str(package / 'node_modules' / 'aws-lambda-ric')!r})"],
                   capture_output=True, timeout=120)


def node(trial, handler, *extra, path=LATE_ENI):
    return trial(path, "function.runtime=nodejs", f"function.handler={handler}", *extra)


def test_cached_lookup_is_stuck_on_getaddrinfo_eai_again(trial):
    result = node(trial, "cached_lookup", AFTER_INIT)
    v = result.verdict
    assert v.verdict == "stuck", v.reason
    assert v.failed_invocations == v.invocations
    assert all(f.error_class == "dns" for f in v.failures)
    # The promise made at module load keeps its first rejection, after the ENI too.
    assert all("getaddrinfo EAI_AGAIN" in f.text for f in v.failures), [f.text for f in v.failures]


def test_init_throws_recovers_through_a_reinit(trial):
    result = node(trial, "init_throws")
    v = result.verdict
    assert v.verdict == "recovered", v.reason
    assert v.reinit_needed and v.init_errors >= 1
    errors = [e for e in result.events if e["kind"] == schema.INIT_ERROR]
    assert errors[0]["source"] == "init/error"
    assert "EAI_AGAIN" in errors[0]["error_message"]


def test_resilient_absorbs_a_late_eni(trial):
    result = node(trial, "resilient", AFTER_INIT)
    v = result.verdict
    assert v.verdict == "recovered", v.reason
    assert v.failed_invocations == 0
    # It did meet the fault: its first invocation retried until the ENI came.
    logs = [e["line"] for e in result.events if e["kind"] == schema.LOG]
    assert any("resilient: attempt 1 failed" in line for line in logs), logs[-20:]


def test_keepalive_agent_recovers_after_a_late_eni_in_the_same_runtime(trial):
    v = node(trial, "keepalive_agent", AFTER_INIT).verdict
    assert v.verdict == "recovered", v.reason
    assert v.failures and v.failures[0].error_class == "dns"
    assert not v.reinit_needed


def test_keepalive_agent_under_eni_swap_waits_on_the_dead_pooled_socket(trial):
    result = node(trial, "keepalive_agent", path=ENI_SWAP)
    ends = [e for e in result.events if e["kind"] == schema.INVOKE_END]
    # Invocation 2 is written to the socket pooled by invocation 1, whose source
    # address left with ENI A: nothing answers and nothing errors, so the call
    # runs into the function timeout; the reset runtime's fresh socket works.
    assert ends[0]["status"] == "ok"
    assert ends[1]["status"] == "timeout", ends[1]
    assert ends[2]["reinit"] and ends[2]["status"] == "ok"
    assert result.verdict.verdict == "recovered" and result.verdict.reinit_needed


def test_keepalive_agent_meets_the_nat_that_forgot_its_flow_while_frozen(trial):
    """The agent's socket sends TCP keep-alive probes every second; a frozen Lambda
    sends none (the whole microVM is paused), so the NAT ages the flow and answers
    invocation 3 with a RST. Without the held egress the probes kept the flow busy
    and the reap found nothing to forget."""
    result = node(trial, "keepalive_agent", path=LATE_ENI.parent / "nat-idle-reap.yaml")
    reap = next(e for e in result.events if e["kind"] == schema.FAULT and e["fault"] == "reap_idle")
    assert reap["verified"] and reap["detail"]["reaped"], reap
    ends = [e for e in result.events if e["kind"] == schema.INVOKE_END]
    assert ends[2]["status"] != "ok" and "ECONNRESET" in ends[2]["error_message"], ends[2]
    assert result.verdict.verdict == "recovered", result.verdict.reason


def test_commonjs_callback_and_esm_async_handlers_with_lambdas_environment(trial, tmp_path):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "index.js").write_text(
        "exports.handler = (event, context, callback) => callback(null, {\n"
        "  root: process.env.LAMBDA_TASK_ROOT, handler: process.env._HANDLER,\n"
        "  exec: process.env.AWS_EXECUTION_ENV, cwd: process.cwd(), uid: process.getuid(),\n"
        "  left: context.getRemainingTimeInMillis() > 0 });\n")
    (code / "app.mjs").write_text("export const main = async () => ({ esm: true });\n")
    sets = ("lab.eni=present", "schedule=[]", "workload.invocations=1")
    cjs = node(trial, "index.handler", f"function.code={code}", *sets)
    assert cjs.verdict.verdict == "healthy", cjs.verdict.reason
    import json

    body = json.loads([e for e in cjs.events if e["kind"] == schema.INVOKE_END][0]["body"])
    assert body["root"] == str(code) == body["cwd"]
    assert body["handler"] == "index.handler"
    assert body["exec"].startswith("AWS_Lambda_nodejs")
    assert body["uid"] != 0 and body["left"] is True
    esm = node(trial, "app.main", f"function.code={code}", *sets)
    assert esm.verdict.verdict == "healthy", esm.verdict.reason
