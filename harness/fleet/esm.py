"""Lambda's SQS event source mapping, played against moto's queue: pollers long-poll
ReceiveMessage, hand each batch to the fleet as Lambda's SQS event, delete what
succeeded, and leave what failed in flight, so it reappears after the visibility
timeout (a retry usually lands on another environment) until SQS redrives it to
the DLQ after max_receive_count receives.

Lambda's rules, as its documentation states them:
- the function returned an error (or timed out): the whole batch failed;
- with ReportBatchItemFailures, a response {"batchItemFailures": [{"itemIdentifier":
  <messageId>}, ...]} fails only the listed messages. An empty or null list, an
  empty or null response counts as complete success; a response that is not JSON,
  an itemIdentifier that is empty, null, not a string or not a messageId of the
  batch, or an entry without the key, fails the whole batch;
- without ReportBatchItemFailures the response is not read at all.

Deliberate differences: Lambda's pollers long-poll 20 s and scale in number with
the queue's backlog; here `pollers` threads long-poll `wait_time_s` (1 s, so a
stop is quick). A batch_size above 10 gathers several receives, as Lambda's
batching window does, but without waiting for the window to pass: it invokes
as soon as a receive comes back empty."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.fleet.invocation import Invocation, Invoke
from harness.fleet.moto_server import REGION, sqs_client
from harness.fleet.sqs import SEND_BATCH, Leftover, Queues

MAX_RECEIVE = 10  # ReceiveMessage returns at most 10 messages
SENDER_ID = "AIDAIENQZJOLO23YVJ4VO"  # the SenderId in AWS's sample SQS event


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One SQS message as a record of Lambda's SQS event (keys in Lambda's order)."""
    attrs = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {k: str(attrs[k]) for k in ("ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                                  "ApproximateFirstReceiveTimestamp") if k in attrs}
        | ({} if "SenderId" in attrs else {"SenderId": SENDER_ID}),
        "messageAttributes": {name: _lambda_attribute(v) for name, v in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    # SQS says StringValue/DataType; Lambda's event says stringValue/dataType.
    out: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType", "")}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = value["BinaryValue"]
    return out


def failed_ids(inv: Invocation, batch: list[str], report_batch_item_failures: bool) -> set[str]:
    """The messageIds of `batch` that failed, by Lambda's rules (module docstring)."""
    if not inv.ok:
        return set(batch)
    if not report_batch_item_failures:
        return set()
    try:
        doc = json.loads(inv.body) if inv.body.strip() else None
    except ValueError:
        return set(batch)
    if doc is None or doc == {}:
        return set()
    if not isinstance(doc, dict):
        return set(batch)
    failures = doc.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return set(batch)
    listed = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in batch:
            return set(batch)
        listed.add(ident)
    return listed


@dataclass
class Stats:
    """What the mapping did, counted as it went."""

    batches: int = 0
    failed_batches: int = 0  # invocations that failed the whole batch
    deleted: int = 0
    left_to_retry: int = 0  # receives whose message was left in flight to reappear
    receives: Counter[str] = field(default_factory=Counter)  # SQS message id -> times received
    errors: list[str] = field(default_factory=list)  # the mapping's own trouble with SQS


@dataclass(frozen=True)
class DrainReport:
    drained: bool
    waited_s: float
    left: Leftover
    in_batches: int  # batches still being invoked when it gave up

    def __str__(self) -> str:
        state = "drained" if self.drained else "NOT drained"
        return f"{state} after {self.waited_s:.1f}s: {self.left}, {self.in_batches} batches being invoked"


class EventSourceMapping:
    def __init__(self, queues: Queues, endpoint: str, invoke: Invoke, batch_size: int = 10, pollers: int = 2,
                 report_batch_item_failures: bool = False, wait_time_s: int = 1,
                 on_batch: Callable[[list[dict[str, Any]], Invocation | None, set[str]], None] | None = None) -> None:
        self.queues, self.endpoint, self.invoke = queues, endpoint, invoke
        self.batch_size, self.pollers = batch_size, pollers
        self.report_batch_item_failures = report_batch_item_failures
        self.wait_time_s = wait_time_s
        self.on_batch = on_batch
        self.stats = Stats()
        self._lock = threading.Lock()
        self._busy = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> EventSourceMapping:
        for k in range(self.pollers):
            t = threading.Thread(target=self._poll, args=(sqs_client(self.endpoint, 4),), name=f"esm-poller-{k}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _poll(self, client: Any) -> None:
        while not self._stop.is_set():
            try:
                batch = self._receive(client)
            except Exception as exc:  # moto busy or gone: note it, keep polling until stopped
                with self._lock:
                    self.stats.errors.append(f"ReceiveMessage: {type(exc).__name__}: {exc}")
                self._stop.wait(0.2)
                continue
            if batch:
                try:
                    self._deliver(client, batch)
                finally:
                    with self._lock:
                        self._busy -= 1

    def _receive(self, client: Any) -> list[dict[str, Any]]:
        """Up to batch_size messages: one long poll, then short ones while they come."""
        batch: list[dict[str, Any]] = []
        wait = self.wait_time_s
        while len(batch) < self.batch_size and not self._stop.is_set():
            try:
                got = client.receive_message(QueueUrl=self.queues.url, AttributeNames=["All"],
                                             MessageAttributeNames=["All"], WaitTimeSeconds=wait,
                                             MaxNumberOfMessages=min(MAX_RECEIVE, self.batch_size - len(batch)))
            except Exception:
                if batch:
                    return batch  # deliver what came; the trouble shows on the next long poll
                raise
            messages = got.get("Messages", [])
            if messages and not batch:
                with self._lock:
                    self._busy += 1  # before the queue shows them in flight and drain looks
            batch += messages
            if not messages or self.batch_size <= MAX_RECEIVE:
                break  # up to 10 come from one receive, as Lambda invokes without a batching window
            wait = 0
        return batch

    def _deliver(self, client: Any, batch: list[dict[str, Any]]) -> None:
        ids = [m["MessageId"] for m in batch]
        event = json.dumps({"Records": [lambda_record(m, self.queues.arn) for m in batch]}).encode()
        inv: Invocation | None
        try:
            inv = self.invoke(event)
            failed = failed_ids(inv, ids, self.report_batch_item_failures)
        except Exception as exc:  # the fleet could not invoke: Lambda retries, as for an error
            inv, failed = None, set(ids)
            with self._lock:
                self.stats.errors.append(f"invoke: {type(exc).__name__}: {exc}")
        done = [m for m in batch if m["MessageId"] not in failed]
        for k in range(0, len(done), SEND_BATCH):
            chunk = done[k:k + SEND_BATCH]
            reply = client.delete_message_batch(QueueUrl=self.queues.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)])
            if reply.get("Failed"):
                with self._lock:
                    self.stats.errors.append(f"DeleteMessageBatch: {reply['Failed']}")
        with self._lock:
            self.stats.batches += 1
            self.stats.failed_batches += 1 if failed == set(ids) and failed else 0
            self.stats.deleted += len(done)
            self.stats.left_to_retry += len(failed)
            self.stats.receives.update(ids)
        if self.on_batch is not None:
            self.on_batch(batch, inv, failed)

    def drain(self, timeout_s: float, settle_s: float = 0.2) -> DrainReport:
        """Wait until the queue holds nothing (waiting, in flight or delayed) and no
        batch is being invoked, seen twice `settle_s` apart; or until timeout_s."""
        began = time.monotonic()
        deadline = began + timeout_s
        quiet = 0
        while True:
            left = Leftover(0, 0, 0)
            with self._lock:
                busy = self._busy
            if not busy:
                left = self.queues.leftover()
            quiet = quiet + 1 if not busy and left.empty else 0
            if quiet >= 2 or time.monotonic() > deadline:
                waited = round(time.monotonic() - began, 3)
                if quiet < 2:
                    left = self.queues.leftover()
                return DrainReport(quiet >= 2, waited, left, busy)
            time.sleep(settle_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout_s)
        self._threads = []
