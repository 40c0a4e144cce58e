"""Test-only handler: its init sleeps past the scenario's attach, so the late ENI
is there before it ever tries the network. Every invocation succeeds, which
reads "absorbed" unless the checker asks whether the fault met the function."""

import os
import time
import urllib.request

time.sleep(float(os.environ.get("SLOW_INIT_S", "1.0")))
TARGET_URL = os.environ.get("TARGET_URL", "http://svc.internal:8080/")


def handler(event, context):
    with urllib.request.urlopen(TARGET_URL, timeout=2) as reply:
        return {"handler": "slow_init", "status": reply.status}
