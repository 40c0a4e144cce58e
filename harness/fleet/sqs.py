"""A queue and its dead-letter queue on moto's server, the producer that sends to
it, and reading back what is left in either (harness/fleet/esm.py polls it).

The redrive is SQS's own (moto's): once a message has been received
max_receive_count times, the next ReceiveMessage moves it to the DLQ instead of
returning it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SEND_BATCH = 10  # SendMessageBatch / DeleteMessageBatch take at most 10 entries


@dataclass(frozen=True)
class Leftover:
    visible: int
    in_flight: int
    delayed: int

    @property
    def empty(self) -> bool:
        return not (self.visible or self.in_flight or self.delayed)

    def __str__(self) -> str:
        return f"{self.visible} waiting, {self.in_flight} in flight, {self.delayed} delayed"


class Queues:
    """`name` and `name`-dlq, the first redriving to the second after
    `max_receive_count` receives."""

    def __init__(self, client: Any, name: str, visibility_timeout_s: int, max_receive_count: int) -> None:
        self.client = client
        self.name = name
        self.visibility_timeout_s = visibility_timeout_s
        self.max_receive_count = max_receive_count
        self.url = self.arn = self.dlq_url = self.dlq_arn = ""

    def create(self) -> Queues:
        self.dlq_url = self.client.create_queue(QueueName=f"{self.name}-dlq")["QueueUrl"]
        self.dlq_arn = self._arn(self.dlq_url)
        policy = json.dumps({"deadLetterTargetArn": self.dlq_arn, "maxReceiveCount": str(self.max_receive_count)})
        self.url = self.client.create_queue(QueueName=self.name, Attributes={
            "VisibilityTimeout": str(self.visibility_timeout_s), "RedrivePolicy": policy})["QueueUrl"]
        self.arn = self._arn(self.url)
        return self

    def _arn(self, url: str) -> str:
        attrs = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(attrs["QueueArn"])

    def redrive_policy(self) -> dict[str, Any]:
        attrs = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["RedrivePolicy"])["Attributes"]
        return dict(json.loads(attrs["RedrivePolicy"]))

    def send(self, bodies: Iterable[str]) -> list[str]:
        """Send each body (in batches of 10); the SQS message ids, in order."""
        pending = list(bodies)
        ids: list[str] = []
        for k in range(0, len(pending), SEND_BATCH):
            chunk = pending[k:k + SEND_BATCH]
            reply = self.client.send_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)])
            if reply.get("Failed"):
                raise RuntimeError(f"SendMessageBatch refused {reply['Failed']}")
            by_entry = {int(e["Id"]): e["MessageId"] for e in reply["Successful"]}
            ids += [by_entry[i] for i in range(len(chunk))]
        return ids

    def leftover(self, dlq: bool = False) -> Leftover:
        attrs = self.client.get_queue_attributes(QueueUrl=self.dlq_url if dlq else self.url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return Leftover(int(attrs.get("ApproximateNumberOfMessages", 0)),
                        int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                        int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)))

    def read_dlq(self) -> list[dict[str, Any]]:
        """Every message in the DLQ, with its body and the receives it had. Reading
        takes them in flight for an hour (SQS has no peek); they stay in the DLQ."""
        seen: dict[str, dict[str, Any]] = {}
        while True:
            got = self.client.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                              VisibilityTimeout=3600, AttributeNames=["All"]).get("Messages", [])
            if not got:
                return list(seen.values())
            for m in got:
                # Our own read counts as a receive, on top of those in the source queue.
                receives = int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")) - 1
                seen[m["MessageId"]] = {"message_id": m["MessageId"], "body": m["Body"], "receives": receives}
