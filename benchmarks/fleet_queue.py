"""What the sqs source itself costs, with no function behind it: moto's server
started (and proven, and stopped), MESSAGES sent through the queue, polled by
Lambda's event source mapping and handed to an invoke that returns at once, then
deleted. Prints the server's start time, send and delivery rates, and the
harness's CPU; the fleet's own figures are benchmarks/fleet_scale.py's.

Run: python benchmarks/fleet_queue.py [MESSAGES [POLLERS [BATCH_SIZE]]]"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from harness.fleet.esm import EventSourceMapping
from harness.fleet.invocation import Invocation
from harness.fleet.moto_server import MotoServer, sqs_client
from harness.fleet.sqs import Queues
from harness.ownership import Run

MESSAGES = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
POLLERS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
BATCH_SIZE = int(sys.argv[3]) if len(sys.argv) > 3 else 10


def noop(event: bytes) -> Invocation:
    return Invocation(True, b"{}", None, "env-1", False, 0.0)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    with Run.register("bench-fleet-queue") as run:
        began = time.monotonic()
        server = MotoServer(run, Path(tempfile.mkdtemp(prefix="enirace-bench-")))
        server.start()
        up_s = time.monotonic() - began
        try:
            queues = Queues(sqs_client(server.endpoint), "bench", 30, 3).create()
            esm = EventSourceMapping(queues, server.endpoint, noop, batch_size=BATCH_SIZE, pollers=POLLERS).start()
            cpu0, t0 = cpu_s(), time.monotonic()
            queues.send(json.dumps({"id": f"m{i:05d}", "sent_ms": 0}) for i in range(MESSAGES))
            sent_s = time.monotonic() - t0
            report = esm.drain(300)
            esm.stop()
            took_s = time.monotonic() - t0
            cpu = cpu_s() - cpu0
        finally:
            server.stop()
    print(f"moto server up (started, answering SQS): {up_s:.2f} s")
    print(f"{MESSAGES} messages sent in {sent_s:.2f} s ({MESSAGES / sent_s:.0f}/s, batches of 10)")
    print(f"delivered and deleted {esm.stats.deleted} in {took_s:.2f} s ({esm.stats.deleted / took_s:.0f}/s), "
          f"{esm.stats.batches} batches, pollers={POLLERS} batch_size={BATCH_SIZE}; {report}")
    print(f"harness CPU {cpu:.2f} s ({cpu / MESSAGES * 1000:.2f} ms a message; moto's own CPU not counted)")


if __name__ == "__main__":
    main()
