"""The producer's side: message ids, their payloads, the pace they are sent at,
and the synchronous invoke source (clients calling the fleet as API Gateway
would, each waiting for its answer). Every invocation of the fleet, whoever made
it, is recorded as a fleet_invoke event by `recorded`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.checker.classify import classify
from harness.fleet.invocation import Invocation, Invoke
from harness.history import schema
from harness.history.recorder import History
from harness.nemesis.firing import sleep_until

MAX_CLIENTS = 256  # synchronous clients waiting at once (the rest wait to be sent)


def message_ids(count: int) -> list[str]:
    """The same ids under every mitigation: the comparison sends the same traffic."""
    return [f"m{i:05d}" for i in range(count)]


def payload(mid: str) -> bytes:
    return json.dumps({"id": mid, "sent_ms": int(time.time() * 1000)}).encode()


def ids_in(event: bytes) -> list[str]:
    """The message ids an event carries (a synchronous one, or an SQS batch)."""
    try:
        doc = json.loads(event)
        if isinstance(doc, dict) and "Records" in doc:
            return [str(json.loads(r["body"])["id"]) for r in doc["Records"]]
        return [str(doc["id"])]
    except (ValueError, KeyError, TypeError):
        return []


def error_class(inv: Invocation) -> str | None:
    """The checker's class of a failed invocation, from its error body."""
    if inv.ok:
        return None
    text = inv.body.decode("utf-8", "replace")
    return classify(f"{inv.error_type or ''}: {text}")


def item_failures(inv: Invocation) -> int:
    """How many records an SQS batch handler's answer lists in batchItemFailures."""
    if not inv.ok or b"batchItemFailures" not in inv.body:
        return 0
    try:
        failures = json.loads(inv.body).get("batchItemFailures")
    except (ValueError, AttributeError):
        return 0
    return len(failures) if isinstance(failures, list) else 0


def recorded(invoke: Invoke, history: History) -> Invoke:
    """`invoke`, recording each call's outcome in the fleet's history."""
    def call(event: bytes) -> Invocation:
        inv = invoke(event)
        failures = item_failures(inv)
        history.record(schema.FLEET_INVOKE, environment=inv.environment, cold=inv.cold, ok=inv.ok,
                       error_type=inv.error_type, duration_ms=inv.duration_ms, ids=ids_in(event),
                       error_class=error_class(inv), **({"item_failures": failures} if failures else {}))
        return inv
    return call


def paced(ids: list[str], rate: float, burst: int, cancel: threading.Event) -> Iterator[list[str]]:
    """`ids` in groups of `burst`, a group every burst/rate seconds."""
    start = time.monotonic_ns()
    for k in range(0, len(ids), burst):
        if not sleep_until(start + int(k / rate * 1e9), cancel):
            return
        yield ids[k:k + burst]


def send_invokes(invoke: Invoke, ids: list[str], rate: float, burst: int, history: History,
                 done: Callable[[int], None] | None = None,
                 cancel: threading.Event | None = None) -> list[dict[str, Any]]:
    """Each message as one synchronous invoke, at the pace; what each client got."""
    cancel = cancel or threading.Event()
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def client(mid: str) -> None:
        history.record(schema.MESSAGE_SENT, id=mid)
        try:
            inv = invoke(payload(mid))
            result = {"id": mid, "ok": inv.ok, "error_type": inv.error_type, "error_class": error_class(inv),
                      "environment": inv.environment, "cold": inv.cold}
        except Exception as exc:  # the fleet could not run it: the client's error too
            result = {"id": mid, "ok": False, "error_type": "Harness.Error", "error_class": "other",
                      "environment": None, "cold": False, "error": f"{type(exc).__name__}: {exc}"}
        with lock:
            results.append(result)
            if done is not None:
                done(len(results))

    with ThreadPoolExecutor(max_workers=min(MAX_CLIENTS, max(1, len(ids))), thread_name_prefix="client") as pool:
        for group in paced(ids, rate, burst, cancel):
            for mid in group:
                pool.submit(client, mid)
    return results
