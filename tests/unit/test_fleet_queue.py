"""The queue side's pure parts: Lambda's rules for a batch's failures, the event's
record shape, the ledger's classes, the service's /record/<id> count."""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter

import pytest

from harness.fleet import ledger
from harness.fleet.esm import failed_ids, lambda_record
from harness.fleet.invocation import Invocation
from harness.lab.services import Service

BATCH = ["a", "b", "c"]


def _inv(body: object, ok: bool = True) -> Invocation:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Invocation(ok=ok, body=raw, error_type=None if ok else "Function.Error", environment="env-1",
                      cold=False, duration_ms=1.0)


def test_an_error_fails_the_whole_batch_whatever_it_says():
    assert failed_ids(_inv({"batchItemFailures": []}, ok=False), BATCH, True) == set(BATCH)
    assert failed_ids(_inv(b"", ok=False), BATCH, False) == set(BATCH)


def test_without_report_batch_item_failures_the_response_is_not_read():
    assert failed_ids(_inv({"batchItemFailures": [{"itemIdentifier": "a"}]}), BATCH, False) == set()


def test_listed_items_fail_alone():
    body = {"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]}
    assert failed_ids(_inv(body), BATCH, True) == {"b", "c"}


def test_empty_or_null_answers_are_complete_success():
    for body in ({"batchItemFailures": []}, {"batchItemFailures": None}, {}, None, b"", b"null"):
        assert failed_ids(_inv(body), BATCH, True) == set(), body


def test_invalid_answers_fail_the_whole_batch():
    for body in (b"not json", {"batchItemFailures": [{"itemIdentifier": ""}]},
                 {"batchItemFailures": [{"itemIdentifier": None}]}, {"batchItemFailures": [{"itemId": "a"}]},
                 {"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"batchItemFailures": "a"}, ["a"]):
        assert failed_ids(_inv(body), BATCH, True) == set(BATCH), body


def test_record_has_lambdas_keys():
    message = {"MessageId": "m-1", "ReceiptHandle": "rh", "Body": '{"id": "m00001"}', "MD5OfBody": "x",
               "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1", "SenderId": "S",
                              "ApproximateFirstReceiveTimestamp": "2"},
               "MessageAttributes": {"k": {"StringValue": "v", "DataType": "String"}}}
    record = lambda_record(message, "arn:aws:sqs:us-east-1:123456789012:q")
    assert list(record) == ["messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                            "eventSource", "eventSourceARN", "awsRegion"]
    assert record["attributes"] == {"ApproximateReceiveCount": "2", "SentTimestamp": "1", "SenderId": "S",
                                    "ApproximateFirstReceiveTimestamp": "2"}
    assert record["messageAttributes"] == {"k": {"stringValue": "v", "stringListValues": [],
                                                 "binaryListValues": [], "dataType": "String"}}
    assert record["eventSource"] == "aws:sqs" and record["awsRegion"] == "us-east-1"


def test_ledger_classes_every_message():
    got = ledger.account(["a", "b", "c", "d", "e"], {"a": 1, "b": 3, "c": 0, "x": 1}, dlq_ids=["c", "e", "zz"])
    assert (got.sent, got.delivered_once, got.duplicated, got.extra_deliveries) == (5, 1, 1, 2)
    assert (got.in_dlq, got.delivered_and_dlq, got.lost, got.unknown) == (2, 0, 1, 1)
    assert got.lost_ids == ["d"] and got.duplicates == {"b": 3}


def test_ledger_counts_a_delivered_message_that_also_ended_in_the_dlq_as_delivered():
    got = ledger.account(["a"], {"a": 2}, dlq_ids=["a"])
    assert (got.duplicated, got.in_dlq, got.delivered_and_dlq, got.lost) == (1, 0, 1, 0)


def test_dlq_ids_come_from_the_bodies():
    msgs = [{"body": json.dumps({"id": "m1", "sent_ms": 1})}, {"body": "garbage"}]
    assert ledger.dlq_message_ids(msgs) == ["m1"]
    assert ledger.receives_by_id({"s1": 2, "s2": 1, "s9": 4}, {"s1": "m1", "s2": "m2"}) == {"m1": 2, "m2": 1}


def test_service_counts_record_requests_per_id():
    service = Service.__new__(Service)  # the counter alone: no listener, no namespace
    service.requests = 0
    service.received = Counter()
    service._lock = threading.Lock()
    for path in ("/record/m1", "/record/m1", "/record/m2?x=1", "/record/", "/other"):
        service.count(path)
    assert service.received == {"m1": 2, "m2": 1} and service.requests == 5


def test_a_missing_moto_is_one_line_with_the_fix(monkeypatch, tmp_path):
    from harness import ownership
    from harness.cli.doctor import check_moto
    from harness.errors import UserError
    from harness.fleet.moto_server import MotoServer
    from harness.ownership import Run

    monkeypatch.setattr(ownership, "STATE_DIR", tmp_path)
    assert check_moto().ok
    monkeypatch.setitem(sys.modules, "flask", None)  # import flask now fails, as where it is not installed
    row = check_moto()
    assert not row.ok and "flask is not installed" in row.found and "moto[server]" in row.fix
    with Run.register("pytest") as run:
        with pytest.raises(UserError) as err:
            MotoServer(run, tmp_path).start()
        assert not run.owned()  # refused before anything was recorded
    assert "\n" not in str(err.value) and "pip install 'moto[server]'" in str(err.value)


def _dead_run_with(state_dir, proof: dict) -> str:
    """A manifest of a run nobody holds (its process is gone) listing one process."""
    from harness import ownership

    run_id = "dead01"
    (state_dir / "runs").mkdir(parents=True, exist_ok=True)
    ownership.append(run_id, {"op": "add", "kind": "process", "id": "moto-server:x"})
    ownership.append(run_id, {"op": "proof", "kind": "process", "id": "moto-server:x", "proof": proof})
    return run_id


def _sleeper(env: dict | None = None):
    import os
    import subprocess

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            env={**os.environ, **(env or {})})


def test_cleanup_never_kills_a_pid_that_lacks_the_runs_label(monkeypatch, tmp_path):
    """A reused pid (same pid and start time recorded, no label): kept, alive."""
    from harness import cleanup, ownership

    monkeypatch.setattr(ownership, "STATE_DIR", tmp_path)
    other = _sleeper()
    try:
        start = ownership.process_start(other.pid)
        _dead_run_with(tmp_path, {"label": "dead01:0123", "pid": other.pid, "start": start})
        report = cleanup.cleanup()
        assert other.poll() is None and any("owner label" in k for k in report.kept_unproven), report
    finally:
        other.kill()
        other.wait()


def test_cleanup_finds_a_server_by_its_label_when_the_run_died_before_its_pid(monkeypatch, tmp_path):
    from harness import cleanup, ownership

    monkeypatch.setattr(ownership, "STATE_DIR", tmp_path)
    ours = _sleeper({ownership.OWNER_ENV: "dead01:0123"})
    bystander = _sleeper({ownership.OWNER_ENV: "dead01:9999"})  # another token: not the one recorded
    try:
        _dead_run_with(tmp_path, {"label": "dead01:0123"})
        report = cleanup.cleanup()
        assert "process moto-server:x" in report.removed, report
        assert ours.wait(5) == -9 and bystander.poll() is None
        assert not ownership.read_manifest("dead01")
    finally:
        for p in (ours, bystander):
            p.kill()
            p.wait()
