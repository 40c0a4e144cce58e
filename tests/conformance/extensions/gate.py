#!/usr/bin/env python3
"""A real extension: registers for INVOKE and SHUTDOWN, and after each INVOKE event
waits for a gate file (`<events>.open`) before it asks for its next event, so a
test decides when the extension is done with the invocation. Every event it gets
is appended to the file named by GATE_EVENTS (default: /tmp/gate-events).
With GATE_DELAY_MS set it waits that long instead of for the gate file: busy for
a fixed time after each invocation, so a trial (no test at hand) can run it."""

import json
import os
import time
import urllib.request

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
LOG = os.environ.get("GATE_EVENTS", "/tmp/gate-events")
DELAY_MS = os.environ.get("GATE_DELAY_MS")
BASE = f"http://{API}/2020-01-01/extension"

req = urllib.request.Request(f"{BASE}/register", data=json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
                             method="POST", headers={"Lambda-Extension-Name": os.path.basename(__file__)})
with urllib.request.urlopen(req) as resp:
    ident = resp.headers["Lambda-Extension-Identifier"]
    registered = json.loads(resp.read())
with open(LOG, "a") as f:
    f.write(json.dumps({"registered": registered}) + "\n")
while True:
    nxt = urllib.request.Request(f"{BASE}/event/next", headers={"Lambda-Extension-Identifier": ident})
    with urllib.request.urlopen(nxt) as resp:
        event = json.loads(resp.read())
    with open(LOG, "a") as f:
        f.write(json.dumps(event) + "\n")
    if event["eventType"] == "SHUTDOWN":
        break
    if DELAY_MS:
        time.sleep(int(DELAY_MS) / 1000)
        continue
    while not os.path.exists(LOG + ".open"):
        time.sleep(0.01)
    os.unlink(LOG + ".open")
