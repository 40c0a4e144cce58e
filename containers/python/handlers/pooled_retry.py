"""naive_session's pooled keep-alive connection, made to survive losing it.

A pooled connection can die while the function is frozen: the NAT forgets the
idle flow (its next packet gets a RST) or the server closes the idle keep-alive
(FIN). The first use after the thaw then fails with "Connection reset by peer"
or "Connection aborted / RemoteDisconnected". This handler keeps the pool (it is
fast) and retries once, on a fresh connection, when the failure is one of
those: urllib3's Retry on the session's adapter, for the idempotent GET.
"""

import os

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

TARGET_URL = os.environ.get("TARGET_URL", "http://svc.internal:8080/")
SESSION = requests.Session()
# connect=0: a network that is not there is not this handler's concern; read=1
# covers a request sent on a connection that died (reset, or closed by the server).
SESSION.mount("http://", HTTPAdapter(max_retries=Retry(total=1, connect=0, read=1, status=0,
                                                      backoff_factor=0)))


def handler(event, context):
    got = SESSION.get(TARGET_URL, timeout=(1.0, 2.0)).json()
    return {"handler": "pooled_retry", "got": got}
