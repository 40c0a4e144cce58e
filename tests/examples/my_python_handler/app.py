"""An "orders" Lambda handler, written the way that survives a late or swapped ENI.

- Nothing touches the network at import time: a failure there would be cached
  for the life of the execution environment, or crash the init.
- Every call has a connect and a read timeout, so a connection pooled over an
  ENI that has since been swapped fails fast instead of hanging.
- A network error drops the pooled session and is retried with backoff, within
  the time the invocation has left.
"""

import json
import os
import time

import requests

ORDERS_API_URL = os.environ.get("ORDERS_API_URL", "http://orders.internal/")
CONNECT_TIMEOUT_S = 0.5
READ_TIMEOUT_S = 1.0
MARGIN_MS = 250  # leave time to report an error before Lambda's own deadline

_session = None


def _session_for_call():
    global _session
    if _session is None:
        _session = requests.Session()
    return _session


def _forget_session():
    global _session
    if _session is not None:
        _session.close()
        _session = None


def handler(event, context):
    backoff_s = 0.05
    attempt = 0
    while True:
        attempt += 1
        try:
            reply = _session_for_call().get(ORDERS_API_URL, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
            reply.raise_for_status()
            return {"orders": reply.json(), "attempts": attempt}
        except (requests.ConnectionError, requests.Timeout) as exc:
            _forget_session()
            left_s = (context.get_remaining_time_in_millis() - MARGIN_MS) / 1000
            print(json.dumps({"level": "warn", "attempt": attempt, "error": repr(exc)}), flush=True)
            if left_s <= backoff_s + CONNECT_TIMEOUT_S:
                raise
            time.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 0.4)
