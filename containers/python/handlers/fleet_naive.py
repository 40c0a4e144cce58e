"""Fleet sample, no mitigation: one requests.Session made at module load, one
call per message, no timeout, no retry. A cold start that meets a late ENI fails
its first invocations (the name does not resolve yet); a batch fails whole."""

import requests
from _fleet_events import messages, record_url

SESSION = requests.Session()


def handler(event, context):
    done = []
    for _, mid in messages(event):
        SESSION.get(record_url(mid)).raise_for_status()
        done.append(mid)
    return {"handler": "fleet_naive", "recorded": done}
