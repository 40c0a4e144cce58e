"""Fleet sample, mitigation `retry`: each message's call is retried inside the
handler (as the `resilient` sample does): short connect and read timeouts from
the remaining time, backoff, a fresh session after a network failure. It costs
latency while the ENI is late, and a call retried after a lost answer is
recorded twice (the service saw the first)."""

import sys
import time

import requests
from _fleet_events import messages, record_url

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0
SAFETY_MARGIN_MS = 300

_session = None


def _get(url, context):
    global _session
    attempt, delay = 0, 0.05
    while True:
        attempt += 1
        remaining_s = (context.get_remaining_time_in_millis() - SAFETY_MARGIN_MS) / 1000
        try:
            _session = _session or requests.Session()
            resp = _session.get(url, timeout=(CONNECT_TIMEOUT_S, max(0.1, min(READ_TIMEOUT_S, remaining_s))))
            resp.raise_for_status()
            return attempt
        except (requests.ConnectionError, requests.Timeout) as exc:
            _session = None  # never reuse a pool that failed, never remember the failure
            print(f"fleet_retry: attempt {attempt} failed: {type(exc).__name__}", file=sys.stderr, flush=True)
            remaining_s = (context.get_remaining_time_in_millis() - SAFETY_MARGIN_MS) / 1000
            if remaining_s <= delay:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def handler(event, context):
    attempts = [_get(record_url(mid), context) for _, mid in messages(event)]
    return {"handler": "fleet_retry", "attempts": attempts}
