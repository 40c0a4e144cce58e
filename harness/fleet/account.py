"""The account of a fleet run, from the fleet's history and the service's own
record: every message sent is delivered once, delivered more than once, in the
DLQ, or lost (neither delivered nor in the DLQ); end-to-end latency (sent to
first recorded by the service), cold starts, environments that met the race,
invocation errors by class."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.fleet import ledger
from harness.history import schema

RECORD_PREFIX = "/record/"


@dataclass
class Account:
    mitigation: str
    source: str
    sent: int
    delivered_once: int
    duplicated: int  # messages delivered more than once
    extra_deliveries: int  # deliveries beyond the first, summed
    in_dlq: int  # in the DLQ and never delivered
    lost: int
    invocations: int
    failed_invocations: int
    client_errors: int  # invoke source: answers that were errors (the clients' error rate)
    errors_by_class: dict[str, int]
    latency_ms: dict[str, float | None]
    cold_starts: int
    met_race: int
    hurt: int  # environments that met the race and failed an invocation (or a batch's records)
    peak_environments: int
    delivered_and_dlq: int = 0  # delivered, and in the DLQ all the same (counted as delivered)
    redelivered: int = 0  # sqs: receives beyond each message's first (the queue's retries)
    lost_ids: list[str] = field(default_factory=list)
    duplicated_ids: dict[str, int] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        """invoke: the clients' error rate; sqs: the failed share of invocations."""
        if self.source == "invoke":
            return self.client_errors / self.sent if self.sent else 0.0
        return self.failed_invocations / self.invocations if self.invocations else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error_rate": round(self.error_rate, 4)}


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n*q/100)
    return round(ordered[int(rank) - 1], 3)


def recorded_ids(events: Iterable[Mapping[str, Any]]) -> dict[str, list[float]]:
    """The service's requests for /record/<id>, in order: id -> when each came."""
    out: dict[str, list[float]] = {}
    for e in events:
        if e["kind"] == schema.SERVICE_REQUEST and str(e.get("path", "")).startswith(RECORD_PREFIX):
            out.setdefault(e["path"][len(RECORD_PREFIX):], []).append(e["t_ms"])
    return out


def account(mitigation: str, source: str, events: list[Mapping[str, Any]], dlq_ids: Iterable[str] = (),
            received: Mapping[str, int] | None = None) -> Account:
    """The counts are the ledger's (harness/fleet/ledger.py) over `received`, the
    service's own count per id (Service.received), or without it the requests
    the history saw."""
    sent: dict[str, float] = {}
    for e in events:
        if e["kind"] == schema.MESSAGE_SENT:
            sent.setdefault(e["id"], e["t_ms"])
    got = recorded_ids(events)
    counts = received if received is not None else {mid: len(ts) for mid, ts in got.items()}
    led = ledger.account(sent, counts, dlq_ids)
    latencies = [got[m][0] - sent[m] for m in sent if got.get(m)]
    invokes = [e for e in events if e["kind"] == schema.FLEET_INVOKE]
    failed = [e for e in invokes if not e["ok"]]
    client_errors = sum(len(e.get("ids") or [1]) for e in failed) if source == "invoke" else 0
    starts = [e for e in events if e["kind"] == schema.ENVIRONMENT_START]
    late = {e["environment"] for e in starts if e["eni_late"]}
    # Hurt: a late environment that failed an invocation, or records of a batch.
    hurt = {e["environment"] for e in invokes if e["environment"] in late and (not e["ok"] or e.get("item_failures"))}
    return Account(
        mitigation=mitigation, source=source, sent=led.sent, delivered_once=led.delivered_once,
        duplicated=led.duplicated, extra_deliveries=led.extra_deliveries, in_dlq=led.in_dlq,
        delivered_and_dlq=led.delivered_and_dlq, lost=led.lost,
        invocations=len(invokes), failed_invocations=len(failed), client_errors=client_errors,
        errors_by_class=dict(Counter(e.get("error_class") or "other" for e in failed).most_common()),
        latency_ms={"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                    "p99": percentile(latencies, 99)},
        cold_starts=len(starts), met_race=len(late), hurt=len(hurt),
        peak_environments=_peak(events), redelivered=_redelivered(events), lost_ids=led.lost_ids[:50],
        duplicated_ids=dict(list(led.duplicates.items())[:50]))


def _redelivered(events: list[Mapping[str, Any]]) -> int:
    """sqs: receives beyond each message's first, as the queue's drain counted them."""
    return sum(int(e.get("redelivered") or 0) for e in events if e["kind"] == "queue_drain")


def _peak(events: list[Mapping[str, Any]]) -> int:
    alive = peak = 0
    for e in events:
        if e["kind"] == schema.ENVIRONMENT_START:
            alive += 1
            peak = max(peak, alive)
        elif e["kind"] == schema.ENVIRONMENT_RETIRE:
            alive -= 1
    return peak
