"""Fleet sample, mitigation `queue`: an SQS batch handler that reports partial
failures (ReportBatchItemFailures): each record's call is tried once; a record
that failed goes back to the queue and is retried later, usually on another
environment, and dead-lettered after max_receive_count. A synchronous event
fails as the naive sample does."""

import sys

import requests
from _fleet_events import messages, record_url

SESSION = requests.Session()


def handler(event, context):
    failures = []
    for message_id, mid in messages(event):
        try:
            SESSION.get(record_url(mid), timeout=(1.0, 2.0)).raise_for_status()
        except requests.RequestException as exc:
            if message_id is None:
                raise
            print(f"fleet_batch: {mid} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
