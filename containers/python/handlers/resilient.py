"""What survives a late or swapped ENI: nothing network-related at import, short
connect/read timeouts, retries with backoff within the invocation's remaining
time, a fresh session after any network failure, and no cached failure."""

import os
import sys
import time

import requests

TARGET_URL = os.environ.get("TARGET_URL", "http://svc.internal:8080/")
CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0
SAFETY_MARGIN_MS = 300

_session = None


def _get_session():
    global _session
    if _session is None:
        _session = requests.Session()
    return _session


def _drop_session():
    global _session
    if _session is not None:
        _session.close()
    _session = None


def handler(event, context):
    attempt, delay, errors = 0, 0.05, []
    while True:
        attempt += 1
        remaining_s = (context.get_remaining_time_in_millis() - SAFETY_MARGIN_MS) / 1000
        read_timeout = max(0.1, min(READ_TIMEOUT_S, remaining_s))
        try:
            resp = _get_session().get(TARGET_URL, timeout=(CONNECT_TIMEOUT_S, read_timeout))
            resp.raise_for_status()
            return {"handler": "resilient", "attempts": attempt, "errors": errors, "got": resp.json()}
        except (requests.ConnectionError, requests.Timeout) as exc:
            # A stale pooled connection or a resolver that is not there yet:
            # start from a clean pool next time, never remember the failure.
            _drop_session()
            errors.append(f"attempt {attempt}: {type(exc).__name__}")
            print(f"resilient: attempt {attempt} failed: {exc}", file=sys.stderr, flush=True)
            remaining_s = (context.get_remaining_time_in_millis() - SAFETY_MARGIN_MS) / 1000
            if remaining_s <= delay:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
