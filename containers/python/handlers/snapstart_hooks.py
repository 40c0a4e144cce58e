"""snapstart_pool with SnapStart's runtime hooks (snapshot_restore_py, which
awslambdaric runs): the pool is closed before the snapshot and opened again after
the restore, so no connection of the init outlives the network it was made on.
"""

import os

import requests
from snapshot_restore_py import register_after_restore, register_before_snapshot

TARGET_URL = os.environ.get("TARGET_URL", "http://svc.internal:8080/")
SESSION = requests.Session()
SESSION.get(TARGET_URL, timeout=(1.0, 2.0)).raise_for_status()  # warm the pool before the snapshot


@register_before_snapshot
def close_pool():
    SESSION.close()
    print("before snapshot: pooled connections closed")


@register_after_restore
def reopen_pool():
    global SESSION
    SESSION = requests.Session()
    print("after restore: new session")


def handler(event, context):
    got = SESSION.get(TARGET_URL, timeout=(1.0, 2.0)).json()
    return {"handler": "snapstart_hooks", "got": got}
