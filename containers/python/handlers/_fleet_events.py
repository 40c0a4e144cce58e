"""What the fleet samples share: the message ids an event carries, whether it came
from a synchronous invoke ({"id", "sent_ms"}) or from SQS (Records, each body
that JSON), and the side effect the account is checked against."""

import json
import os

TARGET_URL = os.environ.get("TARGET_URL", "http://svc.internal:8080/")


def messages(event):
    """[(SQS messageId or None, message id)] of the event, in order."""
    if isinstance(event, dict) and "Records" in event:
        return [(r["messageId"], json.loads(r["body"])["id"]) for r in event["Records"]]
    return [(None, event["id"])]


def record_url(message_id):
    return f"{TARGET_URL.rstrip('/')}/record/{message_id}"
