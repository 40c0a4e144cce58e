"""Fleet sample, mitigation `wait_for_network`: the init waits until the service's
name resolves (bounded by Lambda's 10 s init limit, less a margin), then behaves
as the naive sample. It costs the cold start's latency: every event waiting on
that environment waits for the ENI too."""

import os
import socket
import sys
import time
from urllib.parse import urlsplit

import requests
from _fleet_events import TARGET_URL, messages, record_url

INIT_LIMIT_S = float(os.environ.get("FLEET_WAIT_LIMIT_S", "9.0"))


def _wait_for_network():
    url = urlsplit(TARGET_URL)
    deadline, waited = time.monotonic() + INIT_LIMIT_S, 0
    while True:
        try:
            socket.getaddrinfo(url.hostname, url.port or 80, proto=socket.IPPROTO_TCP)
            break
        except socket.gaierror:
            if time.monotonic() >= deadline:
                print("fleet_wait: the network never came; init goes on", file=sys.stderr, flush=True)
                break
            waited += 1
            time.sleep(0.02)
    if waited:
        print(f"fleet_wait: waited {waited} times for {url.hostname}", file=sys.stderr, flush=True)


_wait_for_network()
SESSION = requests.Session()


def handler(event, context):
    done = []
    for _, mid in messages(event):
        SESSION.get(record_url(mid)).raise_for_status()
        done.append(mid)
    return {"handler": "fleet_wait", "recorded": done}
