"""One module-level requests.Session, no timeout on any call.

Fine after a late attach (each call resolves again), but a pooled keep-alive
connection that dies silently (an ENI swap to a new IP) hangs the call until the
function timeout.
"""

import os

import requests

TARGET_URL = os.environ.get("TARGET_URL", "http://svc.internal:8080/")
SESSION = requests.Session()


def handler(event, context):
    got = SESSION.get(TARGET_URL).json()
    return {"handler": "naive_session", "got": got}
