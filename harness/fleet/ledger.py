"""Every message sent, accounted for against the service's own record and the
DLQ's contents: delivered once, delivered more than once (with how many extra
deliveries), in the DLQ, or lost (neither delivered nor in the DLQ).

A message can be both delivered and in the DLQ (its side effect happened, but
the invocations that carried it kept failing afterwards, e.g. it timed out
after recording): it counts as delivered, and in `delivered_and_dlq` too."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Ledger:
    sent: int
    delivered_once: int
    duplicated: int  # messages delivered more than once
    extra_deliveries: int  # the deliveries beyond each message's first, summed
    in_dlq: int  # in the DLQ and never delivered
    delivered_and_dlq: int
    lost: int
    unknown: int  # ids the service recorded that were never sent
    lost_ids: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)  # id -> times delivered
    receives: dict[str, int] = field(default_factory=dict)  # id -> times SQS handed it to a poller

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def account(sent_ids: Iterable[str], received: Mapping[str, int], dlq_ids: Iterable[str] = (),
            receives: Mapping[str, int] | None = None) -> Ledger:
    """`received`: the service's count per message id (Service.received);
    `dlq_ids`: the message ids in the DLQ (dlq_message_ids); `receives`: SQS's
    receive count per message id, where the source was a queue."""
    sent = list(dict.fromkeys(sent_ids))
    known = set(sent)
    dlq = set(dlq_ids) & known
    counts = Counter({mid: n for mid, n in received.items() if n > 0})
    dups = {m: counts[m] for m in sent if counts[m] > 1}
    lost = [m for m in sent if not counts[m] and m not in dlq]
    return Ledger(
        sent=len(sent), delivered_once=sum(1 for m in sent if counts[m] == 1), duplicated=len(dups),
        extra_deliveries=sum(n - 1 for n in dups.values()),
        in_dlq=sum(1 for m in dlq if not counts[m]), delivered_and_dlq=sum(1 for m in dlq if counts[m]),
        lost=len(lost), unknown=sum(1 for m in counts if m not in known), lost_ids=lost, duplicates=dups,
        receives=dict(receives or {}))


def body_id(body: str) -> str | None:
    """The producer's message id in an SQS body ({"id": ..., "sent_ms": ...})."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return str(doc["id"]) if isinstance(doc, dict) and "id" in doc else None


def dlq_message_ids(dlq_messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """The producer's ids of what Queues.read_dlq() returned."""
    return [mid for m in dlq_messages if (mid := body_id(str(m["body"]))) is not None]


def receives_by_id(sqs_receives: Mapping[str, int], sqs_to_id: Mapping[str, str]) -> dict[str, int]:
    """SQS's message ids -> the producer's ids, for the mapping's receive counts."""
    out: Counter[str] = Counter()
    for sqs_id, n in sqs_receives.items():
        if sqs_id in sqs_to_id:
            out[sqs_to_id[sqs_id]] += n
    return dict(out)
