"""Calls the service at import time, with no try: a late ENI fails the init.

awslambdaric reports the import failure on /init/error and exits, so the platform
starts the runtime again; this handler recovers at the cost of a re-init.
"""

import os

import requests

TARGET_URL = os.environ.get("TARGET_URL", "http://svc.internal:8080/")

# Module-level code runs during init, before the first /next.
WARMUP = requests.get(TARGET_URL).json()


def handler(event, context):
    got = requests.get(TARGET_URL).json()
    return {"handler": "naive_crash", "warmup": WARMUP, "got": got}
