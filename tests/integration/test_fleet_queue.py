"""The sqs source for real: moto's server as a process the run owns, boto3 against
it, Lambda's event source mapping polling it and invoking a stand-in for the
fleet (a Python function; the real fleet is tests/integration/test_fleet.py)
whose side effect is a real request to a lab's service, and every message
accounted for against that service's own record."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from harness import cleanup, ownership
from harness.errors import UserError
from harness.fleet import ledger
from harness.fleet.esm import EventSourceMapping
from harness.fleet.invocation import Invocation
from harness.fleet.moto_server import MotoServer, sqs_client
from harness.fleet.sqs import Queues
from harness.lab import netns
from harness.lab.services import SERVICE_PORT
from harness.ownership import Run
from tests.integration.conftest import REPO


@pytest.fixture
def moto(run: Run, tmp_path: Path):
    server = MotoServer(run, tmp_path)
    server.start()
    yield server
    server.stop()


def _ids(n: int) -> list[str]:
    return [f"m{i:05d}" for i in range(n)]


def _bodies(ids: list[str]) -> list[str]:
    return [json.dumps({"id": mid, "sent_ms": int(time.time() * 1000)}) for mid in ids]


class Handler:
    """A stand-in for the fleet: records each message at the lab's service, as the
    samples do, and fails as told: `record_then_fail` record on their first
    delivery and then fail the batch (so their retry records again: a duplicate);
    `fail_first` fail before recording on their first delivery; `poison` always fail."""

    def __init__(self, lab=None, record_then_fail=(), fail_first=(), poison=(), report=False) -> None:
        self.lab, self.report = lab, report
        self.record_then_fail, self.fail_first, self.poison = set(record_then_fail), set(fail_first), set(poison)
        self.seen: Counter[str] = Counter()
        self.batch_sizes: list[int] = []
        self.environments = 0
        self._lock = threading.Lock()

    def record(self, mid: str) -> None:
        if self.lab is None:
            return
        sock = netns.socket_in(self.lab.vpc, socket.AF_INET, socket.SOCK_STREAM)
        with sock:
            sock.settimeout(5)
            sock.connect((str(self.lab.subnet.service), SERVICE_PORT))
            sock.sendall(f"GET /record/{mid} HTTP/1.1\r\nHost: svc.internal\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:100]

    def __call__(self, event: bytes) -> Invocation:
        records = json.loads(event)["Records"]
        with self._lock:
            self.environments += 1
            self.batch_sizes.append(len(records))
            env = f"env-{self.environments}"
        failed: list[str] = []
        for r in records:
            mid = json.loads(r["body"])["id"]
            with self._lock:
                self.seen[mid] += 1
                first = self.seen[mid] == 1
            if mid in self.poison or (first and mid in self.fail_first):
                failed.append(r["messageId"])
                continue
            self.record(mid)
            if first and mid in self.record_then_fail:
                failed.append(r["messageId"])
        if failed and not self.report:
            return Invocation(False, b'{"errorType":"Function.Error"}', "Function.Error", env, False, 1.0)
        body = json.dumps({"batchItemFailures": [{"itemIdentifier": m} for m in failed]}).encode()
        return Invocation(True, body, None, env, False, 1.0)


def _through(moto: MotoServer, handler: Handler, ids: list[str], *, batch_size=5, pollers=3, visibility_s=1,
             max_receive_count=3, report=False, drain_s=30.0):
    queues = Queues(sqs_client(moto.endpoint), "q", visibility_s, max_receive_count).create()
    esm = EventSourceMapping(queues, moto.endpoint, handler, batch_size=batch_size, pollers=pollers,
                             report_batch_item_failures=report).start()
    sent = queues.send(_bodies(ids))
    try:
        drained = esm.drain(drain_s)
    finally:
        esm.stop()
    dlq = ledger.dlq_message_ids(queues.read_dlq())
    return drained, dlq, esm.stats, dict(zip(sent, ids, strict=True))


def test_queue_and_dlq_with_a_redrive_policy(moto: MotoServer):
    queues = Queues(sqs_client(moto.endpoint), "orders", 2, 4).create()
    assert queues.arn == "arn:aws:sqs:us-east-1:123456789012:orders"
    assert queues.redrive_policy() == {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:orders-dlq",
                                       "maxReceiveCount": 4}
    assert queues.leftover().empty and queues.leftover(dlq=True).empty


@pytest.mark.root
def test_failures_retried_lose_nothing_and_duplicates_are_exact(moto: MotoServer, lab):
    ids = _ids(60)
    handler = Handler(lab, record_then_fail=ids[:7], fail_first=ids[10:15])
    drained, dlq, stats, _ = _through(moto, handler, ids)
    assert drained.drained, str(drained)
    got = ledger.account(ids, lab.service.received, dlq)
    assert (got.lost, got.in_dlq, got.unknown) == (0, 0, 0), got
    # A whole batch fails with its bad message: its other messages were recorded
    # already (they come again), so count the duplicates from what the handler saw.
    expected = {m: n for m, n in Counter(
        m for m, k in handler.seen.items() for _ in range(k - (1 if m in ids[10:15] else 0))).items() if n > 1}
    assert got.duplicates == expected and got.duplicated >= 7
    assert all(lab.service.received[m] == 1 for m in ids[10:15])
    assert stats.deleted == len(ids) and stats.failed_batches >= 1


@pytest.mark.root
def test_report_batch_item_failures_deletes_all_but_the_listed(moto: MotoServer, lab):
    ids = _ids(40)
    handler = Handler(lab, fail_first=ids[::4], report=True)
    drained, dlq, stats, sqs_to_id = _through(moto, handler, ids, batch_size=10, report=True)
    assert drained.drained, str(drained)
    got = ledger.account(ids, lab.service.received, dlq)
    # Only the listed ones came back: everything recorded exactly once.
    assert (got.delivered_once, got.duplicated, got.lost) == (40, 0, 0), got
    receives = ledger.receives_by_id(stats.receives, sqs_to_id)
    assert {m for m, n in receives.items() if n == 2} == set(ids[::4])
    assert all(receives[m] == 1 for m in ids if m not in ids[::4])


def test_a_poison_message_ends_in_the_dlq_after_max_receive_count(moto: MotoServer):
    ids = _ids(12)
    handler = Handler(None, poison=[ids[3]], report=True)
    drained, dlq, stats, sqs_to_id = _through(moto, handler, ids, max_receive_count=2, report=True)
    assert drained.drained, str(drained)
    assert dlq == [ids[3]]
    assert handler.seen[ids[3]] == 2  # received max_receive_count times, then redriven
    assert ledger.receives_by_id(stats.receives, sqs_to_id)[ids[3]] == 2


def test_batches_hold_at_most_batch_size_and_above_10_gather_receives(moto: MotoServer):
    small, large = Handler(None), Handler(None)
    _through(moto, small, _ids(30), batch_size=4, pollers=2)
    assert max(small.batch_sizes) <= 4 and sum(small.batch_sizes) == 30
    queues = Queues(sqs_client(moto.endpoint), "big", 30, 3).create()
    queues.send(_bodies(_ids(60)))  # all waiting before the mapping starts: full batches
    esm = EventSourceMapping(queues, moto.endpoint, large, batch_size=25, pollers=1).start()
    try:
        assert esm.drain(30).drained
    finally:
        esm.stop()
    assert large.batch_sizes[:2] == [25, 25] and sum(large.batch_sizes) == 60


def test_a_port_already_taken_is_one_line(run: Run, tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError) as err:
            MotoServer(run, tmp_path, port=port).start()
    assert str(err.value).count("\n") == 0 and f"port {port}" in str(err.value) and "port 0" in str(err.value)
    assert not run.owned()  # stopped and forgotten


def test_drain_reports_what_is_left_when_it_gives_up(moto: MotoServer):
    handler = Handler(None, poison=["m00000"])
    drained, _, _, _ = _through(moto, handler, _ids(1), visibility_s=30, drain_s=1.5)
    assert not drained.drained and drained.left.in_flight == 1
    assert "NOT drained" in str(drained) and "1 in flight" in str(drained)


OWNER = """
import sys, time
from pathlib import Path
from harness.ownership import Run
from harness.fleet.moto_server import MotoServer
run = Run.register("moto-kill-test")
server = MotoServer(run, Path(sys.argv[1]))
server.start()
print(run.run_id, server.proc.pid, server.port, flush=True)
time.sleep(600)
"""


@pytest.mark.root
def test_kill_9_then_cleanup_kills_the_server_and_spares_a_hand_started_one(tmp_path: Path):
    bystander = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                             text=True)
    try:
        run_id, pid, port = owner.stdout.readline().split()
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        assert ownership.process_alive(int(pid)), "the server died with its run: nothing to test"
        report = cleanup.cleanup()
        assert any(item.startswith("process moto-server:") for item in report.removed), report
        assert not ownership.process_alive(int(pid))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", int(port)))  # its port is free again
        assert bystander.poll() is None, "cleanup killed a moto server no run owned"
        assert not ownership.read_manifest(run_id)
    finally:
        bystander.kill()
        bystander.wait()
        owner.kill()
