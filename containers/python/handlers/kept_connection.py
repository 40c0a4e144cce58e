"""One module-level http.client connection, reused by every invocation.

http.client is what a handler uses to avoid packaging requests. Unlike urllib3's
pool it never looks at the socket before reusing it, so when the server closed the
idle keep-alive (a FIN received while the function was frozen) the next request
goes out on the closed connection and fails with "Remote end closed connection
without response" or "Connection reset by peer". It reconnects on the call after.
"""

import http.client
import json
import os
from urllib.parse import urlsplit

TARGET = urlsplit(os.environ.get("TARGET_URL", "http://svc.internal:8080/"))
CONN = http.client.HTTPConnection(TARGET.hostname, TARGET.port or 80, timeout=2.0)


def handler(event, context):
    try:
        CONN.request("GET", TARGET.path or "/")
        resp = CONN.getresponse()
        got = json.loads(resp.read())
    except (OSError, http.client.HTTPException):
        CONN.close()  # the next call connects again; this one fails as users see it
        raise
    return {"handler": "kept_connection", "got": got}
