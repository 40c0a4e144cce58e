"""The Extensions API (/2020-01-01/extension) against the RIE's rapi handlers, and a
real extension process (extensions/gate.py) that holds the invoke until it polls
event/next again. The trial's emulator launches it from `extensions=`; enirace-rie
launches /opt/extensions/* (a tmpfs /opt in a private mount namespace here)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.conformance.conftest import API, SLEEPER, wait_for

EXT = "/2020-01-01/extension"
GATE = Path(__file__).parent / "extensions" / "gate.py"
ID = "Lambda-Extension-Identifier"


def forbidden(error_type: str, message: str) -> tuple[int, bytes]:
    return 403, json.dumps({"errorMessage": message, "errorType": error_type}, separators=(",", ":")
                           ).encode() + b"\n"


def test_register_next_and_the_error_endpoints(target):
    target.start(SLEEPER, timeout_s=10)
    pending = target.invoke(b"{}")
    target.wait_init()
    r = target.call("POST", f"{EXT}/register", b'{"events": ["INVOKE", "SHUTDOWN"]}',
                    {"Lambda-Extension-Name": "probe"})
    assert r.status == 200 and "Server" not in r.headers
    assert json.loads(r.body) == {"functionName": "test_function", "functionVersion": "$LATEST",
                                  "handler": r.body and json.loads(r.body)["handler"]}
    assert r.body.endswith(b"}\n") and r.headers["Content-Type"] == "application/json"
    ext = r.headers[ID]
    uuid.UUID(ext)
    assert (r := target.call("POST", f"{EXT}/register", b"{}", {"Lambda-Extension-Name": "probe"})
            ).status == 403 and json.loads(r.body)["errorType"] == "Extension.InvalidExtensionState"
    assert (r := target.call("POST", f"{EXT}/register", b'{"events": ["BOGUS"]}',
                             {"Lambda-Extension-Name": "other"})).status == 403
    assert json.loads(r.body)["errorType"] == "Extension.InvalidEventType"
    # event/next without, with a malformed and with an unknown id.
    assert (target.call("GET", f"{EXT}/event/next").status,
            json.loads(target.call("GET", f"{EXT}/event/next").body)["errorType"]) == (
        403, "Extension.MissingExtensionIdentifier")
    unknown = str(uuid.uuid4())
    r = target.call("GET", f"{EXT}/event/next", headers={ID: unknown})
    assert (r.status, r.body) == forbidden("Extension.UnknownExtensionIdentifier", f"Unknown extension {unknown}")
    # init/error and exit/error: the error type header is checked before the id is looked up.
    r = target.call("POST", f"{EXT}/init/error", b"{}", {ID: unknown})
    assert (r.status, r.body) == forbidden("Extension.MissingHeader", "Lambda-Extension-Function-Error-Type not found")
    r = target.call("POST", f"{EXT}/exit/error", b"{}", {ID: unknown, "Lambda-Extension-Function-Error-Type": "X"})
    assert (r.status, r.body) == forbidden("Extension.UnknownExtensionIdentifier",
                                           "Unknown Lambda-Extension-Identifier")
    # The runtime's /next completes the init only once the extension waits on its next too.
    rt = target.rt()
    ext_conn = target.rt()
    ext_conn.request("GET", f"{EXT}/event/next", headers={ID: ext})
    event, rid = target.next_event(rt)
    invoke_event = ext_conn.getresponse()
    doc = json.loads(invoke_event.read())
    assert invoke_event.status == 200 and invoke_event.headers["Lambda-Extension-Event-Identifier"]
    assert set(doc) == {"eventType", "deadlineMs", "requestId", "invokedFunctionArn"}
    assert (doc["eventType"], doc["requestId"]) == ("INVOKE", rid)
    assert doc["invokedFunctionArn"] == "arn:aws:lambda:us-east-1:012345678912:function:test_function"
    # Registration is closed once the init is over.
    r = target.call("POST", f"{EXT}/register", b"{}", {"Lambda-Extension-Name": "late"})
    assert (r.status, r.body) == forbidden("Extension.RegistrationClosed", "Extension registration closed already")
    r = target.call("POST", f"{EXT}/exit/error", b"{}", {ID: ext, "Lambda-Extension-Function-Error-Type": "Ext.Fail"})
    assert (r.status, r.body) == (202, b'{"status":"OK"}\n')
    # An extension in ExitError no longer holds the invoke back.
    r = target.call("POST", f"{API}/runtime/invocation/{rid}/response", b'"r"', conn=rt)
    assert r.status == 202, r.body
    target.poll_next_in_background()
    assert pending.result().body == b'"r"'


def start_with_gate(target) -> None:
    if target.kind == "sandbox":
        target.start(SLEEPER, extensions=[GATE])
        return
    # enirace-rie lists /opt/extensions as the RIE does; give it one without touching the host's /opt.
    script = f'mount -t tmpfs enirace-ext /opt && mkdir /opt/extensions && cp {GATE} /opt/extensions/ && exec "$@"'
    target.start(SLEEPER, prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"])


def events(target) -> list[dict]:
    if not target.events.exists():
        return []
    return [json.loads(line) for line in target.events.read_text().splitlines()]


@pytest.mark.root
def test_a_real_extension_holds_the_invoke_until_it_polls_next_again(target):
    start_with_gate(target)
    pending = target.invoke(b"{}")
    target.wait_init()
    _, rid = target.next_event()
    wait_for(lambda: any(e.get("eventType") == "INVOKE" for e in events(target)), what="the INVOKE event")
    assert events(target)[0]["registered"]["functionName"] == "test_function"
    assert [e["requestId"] for e in events(target) if e.get("eventType") == "INVOKE"] == [rid]
    assert target.call("POST", f"{API}/runtime/invocation/{rid}/response", b'"r"').status == 202
    target.poll_next_in_background()
    time.sleep(0.5)  # the runtime waits on /next; only the extension is busy
    assert not pending.done(), "the invoke was answered while the extension was still busy"
    Path(str(target.events) + ".open").touch()
    assert pending.result().body == b'"r"'
    target.stop()
    wait_for(lambda: any(e.get("eventType") == "SHUTDOWN" for e in events(target)), what="the SHUTDOWN event")
    shutdown = [e for e in events(target) if e.get("eventType") == "SHUTDOWN"][0]
    assert set(shutdown) == {"eventType", "deadlineMs", "shutdownReason"}
    assert shutdown["shutdownReason"] == "spindown"
