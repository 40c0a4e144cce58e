"""The sqs source of a fleet run: moto's server up, the queue and its DLQ made,
the producer sending every message at the scenario's pace while Lambda's event
source mapping polls and invokes the fleet, then the drain, the DLQ read back,
and everything stopped (the server killed and forgotten) whatever happened."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.fleet import ledger
from harness.fleet import source as sources
from harness.fleet.esm import EventSourceMapping
from harness.fleet.invocation import Invoke
from harness.fleet.moto_server import MotoServer, sqs_client
from harness.fleet.sqs import Queues
from harness.history import schema
from harness.history.recorder import History
from harness.ownership import Run
from harness.scenario.model import Scenario

Progress = Callable[[int, int], None]


def run(scenario: Scenario, invoke: Invoke, ids: list[str], history: History, run: Run, folder: Path,
        progress: Progress | None, cancel: threading.Event) -> list[str]:
    """Send `ids` through the queue to the fleet; the ids that ended in the DLQ.
    moto's log goes to folder/moto.log."""
    cfg = scenario.fleet
    assert cfg is not None
    src = cfg.source
    server = MotoServer(run, folder)
    esm: EventSourceMapping | None = None
    try:
        endpoint = server.start()
        queues = Queues(sqs_client(endpoint), f"enirace-{run.run_id}", int(src.visibility_timeout // 1000),
                        src.max_receive_count).create()
        settled = _Settled(len(ids), progress)
        esm = EventSourceMapping(queues, endpoint, invoke, batch_size=src.batch_size, pollers=src.pollers,
                                 report_batch_item_failures=src.report_batch_item_failures,
                                 on_batch=settled.batch).start()
        sqs_to_id: dict[str, str] = {}
        for group in sources.paced(ids, src.rate, src.burst, cancel):
            for mid in group:
                history.record(schema.MESSAGE_SENT, id=mid)
            sent = queues.send(sources.payload(mid).decode() for mid in group)
            sqs_to_id.update(zip(sent, group, strict=True))
        report = esm.drain(cfg.drain_timeout / 1000)
        esm.stop()
        dlq = ledger.dlq_message_ids(queues.read_dlq())
        receives = ledger.receives_by_id(esm.stats.receives, sqs_to_id)
        history.record(schema.QUEUE_DRAIN, drained=report.drained, waited_s=report.waited_s,
                       left=report.left.visible + report.left.in_flight + report.left.delayed,
                       dlq=len(dlq), batches=esm.stats.batches, failed_batches=esm.stats.failed_batches,
                       deleted=esm.stats.deleted, redelivered=sum(n - 1 for n in receives.values() if n > 1),
                       errors=esm.stats.errors[:5])
        return dlq
    finally:
        if esm is not None:
            esm.stop()
        server.stop()


class _Settled:
    """Progress: messages deleted after success so far (the DLQ's show at the end)."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.progress = total, progress
        self.done = 0
        self._lock = threading.Lock()

    def batch(self, batch: list[dict[str, Any]], inv: Any, failed: set[str]) -> None:
        if self.progress is None:
            return
        with self._lock:
            self.done += len(batch) - len(failed)
            done = min(self.done, self.total)
        self.progress(done, self.total)
