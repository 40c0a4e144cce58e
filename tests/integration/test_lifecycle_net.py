"""The lifecycle network on a real lab: the NAT (conntrack + SNAT) that forgets
idle flows, reap_idle and reset_flows read back through conntrack, the service's
keep-alive timeout (FIN or RST), the resolver's TTL and a dns move_to. Clients
are plain sockets inside the sandbox; what the kernel did is read back on its own
(the service's record, conntrack, a raw capture of the sandbox's link)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dnslib import QTYPE, DNSRecord

from harness.lab import addressing, netns
from harness.lab.services import SERVICE_NAME, SERVICE_PORT
from harness.lab.topology import Lab
from harness.nemesis import catalogue
from harness.nemesis import fault as faults
from harness.scenario.model import LabConfig
from tests.integration.conftest import host_snapshot

pytestmark = [pytest.mark.root]
GET = f"GET /x HTTP/1.1\r\nHost: {SERVICE_NAME}\r\n\r\n".encode()


@pytest.fixture
def make_lab(enirace_run) -> Iterator[Callable[..., Lab]]:
    """make_lab(**lab_config) -> a lab that is up, with an ENI; all torn down after."""
    made: list[tuple[Lab, Any]] = []

    def _make(**config: Any) -> Lab:
        pool = addressing.parse_pool(addressing.DEFAULT_POOL)
        lease = addressing.acquire(pool, enirace_run)
        events: list[dict[str, Any]] = []
        lab = Lab(enirace_run, lease.subnet, config=LabConfig.model_validate(config),
                  notify=lambda kind, **f: events.append({"kind": kind, **f}))
        lab.events = events  # type: ignore[attr-defined]
        made.append((lab, lease))
        lab.up()
        eni = lab.attach_eni()
        ok, state = faults.settled(lambda: {**lab.sandbox_state(), "bridge": lab.bridge_end_up(eni)},
                                   lambda st: faults.eni_usable(st) and st["bridge"])
        assert ok, state
        return lab

    yield _make
    for lab, lease in made:
        problems = lab.down()
        lease.release()
        assert not problems


def connect(lab: Lab, address: Any = None, timeout: float = 2.0) -> socket.socket:
    sock = netns.socket_in(lab.sandbox, socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect((str(address or lab.subnet.service), SERVICE_PORT))
    return sock


def request(sock: socket.socket) -> bytes:
    """One GET on a kept-alive connection: the whole response (Content-Length)."""
    sock.sendall(GET)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed by the service")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(4096)
    return body


def next_request_fails(sock: socket.socket) -> str:
    """What a request on an old connection meets: reset, timeout or closed."""
    try:
        request(sock)
    except ConnectionResetError:
        return "reset"
    except TimeoutError:
        return "timeout"
    except (ConnectionError, BrokenPipeError):
        return "closed"
    return "answered"


def recorded(lab: Lab, kind: str, at_least: int = 1) -> list[dict[str, Any]]:
    """The lab's events of `kind`, once there are `at_least` (the service records
    a request just after answering it)."""
    deadline = time.monotonic() + 2
    while True:
        found = [e for e in lab.events if e["kind"] == kind]  # type: ignore[attr-defined]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def served(lab: Lab) -> list[dict[str, Any]]:
    return recorded(lab, "service_request")


def test_nat_service_sees_the_nat_address_and_the_host_is_untouched(make_lab):
    before = host_snapshot()
    lab = make_lab(nat={"idle_timeout": "350s"})
    with connect(lab) as sock:
        request(sock)
    assert served(lab)[-1]["client"] == str(lab.subnet.nat)
    nat_events = [e for e in lab.events if e["kind"] == "nat"]
    assert nat_events and nat_events[0]["idle_timeout_s"] == 350
    # The timeouts are the lab's: the host's conntrack keeps its own.
    out = netns.exec_prefix(lab.vpc)
    import subprocess
    vpc = subprocess.run([*out, "sysctl", "-n", "net.netfilter.nf_conntrack_tcp_timeout_established"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert vpc == "350"
    assert host_snapshot() == before


def test_without_nat_the_service_sees_the_eni(make_lab):
    lab = make_lab()
    with connect(lab) as sock:
        request(sock)
    assert served(lab)[-1]["client"] == str(lab.subnet.eni(0))


@pytest.mark.parametrize("on_expired, expected", [("rst", "reset"), ("drop", "timeout")])
def test_a_flow_idle_past_the_timeout_is_forgotten(make_lab, on_expired, expected):
    lab = make_lab(nat={"idle_timeout": "1s", "on_expired": on_expired})
    sock = connect(lab, timeout=1.0)
    with sock:
        request(sock)
        time.sleep(0.3)
        request(sock)  # idle less than the timeout: still known
        time.sleep(2.2)
        assert next_request_fails(sock) == expected


def test_reap_idle_forgets_idle_flows_only(make_lab):
    lab = make_lab(nat={"idle_timeout": "350s"})
    idle, busy = connect(lab), connect(lab)
    with idle, busy:
        request(idle)
        request(busy)
        time.sleep(2.2)
        request(busy)
        assert {f.state for f in lab.nat.flows()} == {"ESTABLISHED"}
        fault = catalogue.make("reap_idle", lab, {"min_idle": "2s"})
        fault.prepare()
        detail = fault.apply()
        ok, state = fault.verify()
        assert ok, state
        reaped = [f["client"] for f in detail["reaped"]]
        assert reaped == [f"{idle.getsockname()[0]}:{idle.getsockname()[1]}"]
        assert next_request_fails(idle) == "reset"
        request(busy)
        left = {f.client for f in lab.nat.flows()}
        assert reaped[0] not in left  # the RST'd packet made no new flow (tcp_loose=0)


def test_reap_idle_forks_no_copy_of_the_harness(make_lab, monkeypatch):
    """pyroute2's Conntrack(netns=...) forked a child per socket, which inherited the
    CLI's SIGTERM handler: a copy of the harness went on running the trial."""
    import os

    lab = make_lab(nat={})
    with connect(lab) as sock:
        request(sock)

        def no_fork() -> int:
            raise AssertionError("the NAT forked a process")

        monkeypatch.setattr(os, "fork", no_fork)
        fault = catalogue.make("reap_idle", lab, {})
        fault.apply()
        ok, state = fault.verify()
        assert ok, state


def test_reap_idle_with_nothing_idle_is_not_verified(make_lab):
    lab = make_lab(nat={})
    with connect(lab) as sock:
        request(sock)
        fault = catalogue.make("reap_idle", lab, {"min_idle": "60s"})
        fault.apply()
        ok, state = fault.verify()
        assert not ok and state["reaped"] == 0


def test_reset_flows_resets_every_established_flow(make_lab):
    lab = make_lab(nat={})
    a, b = connect(lab), connect(lab)
    with a, b:
        request(a)
        request(b)
        fault = catalogue.make("reset_flows", lab, {})
        fault.apply()
        ok, state = fault.verify()
        assert ok, state
        assert state["reset"] == 2
        for sock in (a, b):
            # The RST came before any request: the socket knows it already.
            with pytest.raises(ConnectionResetError):
                sock.sendall(GET)
                sock.recv(10)


def test_nat_faults_need_a_nat(make_lab):
    lab = make_lab()
    with pytest.raises(faults.FaultNotApplicable, match="lab.nat"):
        catalogue.make("reap_idle", lab, {}).prepare()


@pytest.mark.parametrize("close", ["fin", "rst"])
def test_keepalive_timeout_closes_idle_connections(make_lab, close):
    lab = make_lab(service={"keepalive_timeout": "300ms", "close": close})
    with connect(lab) as sock:
        request(sock)
        time.sleep(0.1)
        request(sock)  # within the timeout: the same connection serves again
        time.sleep(0.6)
        if close == "fin":
            assert sock.recv(10) == b""  # an orderly FIN
        else:
            with pytest.raises(ConnectionResetError):
                sock.recv(10)
    closes = recorded(lab, "service_close")
    assert [c["how"] for c in closes] == [close]


def test_without_keepalive_timeout_connections_stay_open(make_lab):
    lab = make_lab()
    with connect(lab) as sock:
        request(sock)
        time.sleep(0.5)
        request(sock)


def dig(lab: Lab, name: str = SERVICE_NAME) -> DNSRecord:
    sock = netns.socket_in(lab.sandbox, socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(1)
        sock.sendto(DNSRecord.question(name).pack(), (str(lab.subnet.resolver), 53))
        return DNSRecord.parse(sock.recv(4096))


def test_dns_ttl_is_in_the_answers(make_lab):
    lab = make_lab(dns={"ttl": "30s"})
    answers = [rr for rr in dig(lab).rr if rr.rtype == QTYPE.A]
    assert [rr.ttl for rr in answers] == [30]


@pytest.mark.parametrize("nat", [False, True])
@pytest.mark.parametrize("old, refusal", [("rst", "reset"), ("drop", "timeout")])
def test_dns_move_to(make_lab, nat, old, refusal):
    lab = make_lab(**({"nat": {}} if nat else {}))
    pooled = connect(lab, timeout=0.5)
    with pooled:
        request(pooled)
        fault = catalogue.make("dns", lab, {"move_to": ".11", "old": old})
        fault.prepare()
        fault.apply()
        ok, state = fault.verify()
        assert ok, state
        new = lab.subnet.host(11)
        assert [str(rr.rdata) for rr in dig(lab).rr] == [str(new)]
        with connect(lab, new) as fresh:
            request(fresh)
        assert recorded(lab, "service_request", 2)[-1]["server"] == f"{new}:{SERVICE_PORT}"
        assert next_request_fails(pooled) == refusal
        if old == "rst":
            with pytest.raises(ConnectionRefusedError):
                connect(lab, timeout=0.5)
        fault.revert()
        ok, state = fault.verify_reverted()
        assert ok, state
        assert [str(rr.rdata) for rr in dig(lab).rr] == [str(lab.subnet.service)]
