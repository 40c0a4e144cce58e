"""Resolves the service once at import and caches the failure.

The init succeeds either way, so nothing ever re-runs it: once the lookup failed,
every invocation for the life of the environment fails, even after the ENI is up.
The Python analogue of a .NET static field or Lazy<T> that keeps its first fault.
"""

import os
import socket
from urllib.parse import urlsplit

import requests

TARGET_URL = os.environ.get("TARGET_URL", "http://svc.internal:8080/")
_url = urlsplit(TARGET_URL)

try:
    SERVICE_IP = socket.gethostbyname(_url.hostname)
    INIT_ERROR = None
except OSError as exc:
    SERVICE_IP = None
    INIT_ERROR = f"{type(exc).__name__}: {exc}"


def handler(event, context):
    if SERVICE_IP is None:
        raise RuntimeError(f"{_url.hostname} could not be resolved at init ({INIT_ERROR})")
    url = f"http://{SERVICE_IP}:{_url.port or 80}{_url.path or '/'}"
    got = requests.get(url, headers={"Host": _url.netloc}, timeout=(1, 2)).json()
    return {"handler": "naive_cached", "service_ip": SERVICE_IP, "got": got}
