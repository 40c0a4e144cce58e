"""A SnapStart function that opens its keep-alive pool at init and has no hooks.

The init's requests.Session connects to the service once (a warm-up call, as
functions do to prime their clients before the snapshot) and keeps that pooled
connection. The snapshot carries the connection; the restore brings it back on
another network (a new address, a peer that forgot the flow), so the first
invocation after the restore sends its request on a dead connection: it hangs
until the read timeout (or is reset, behind a NAT that answers with RST).
"""

import os

import requests

TARGET_URL = os.environ.get("TARGET_URL", "http://svc.internal:8080/")
SESSION = requests.Session()
SESSION.get(TARGET_URL, timeout=(1.0, 2.0)).raise_for_status()  # warm the pool before the snapshot


def handler(event, context):
    got = SESSION.get(TARGET_URL, timeout=(1.0, 2.0)).json()
    return {"handler": "snapstart_pool", "got": got}
