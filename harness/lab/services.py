"""The vpc's resolver (dnslib, at VPC+2) and service (HTTP/1.1 keep-alive)."""

from __future__ import annotations

import json
import select
import socket
import socketserver
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from ipaddress import IPv4Address
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from harness.history import schema
from harness.lab import netns
from harness.lab.netserver import NamespacedTCPServer, NamespacedUDPServer
from harness.scenario.lab_config import DNS_TTL_S

SERVICE_NAME = "svc.internal"
SERVICE_PORT = 8080
# A handler's side effect in a fleet: GET /record/<message id>, counted per id.
RECORD_PREFIX = "/record/"
# The name dns faults verify with: answered like any lab name, never recorded.
PROBE_NAME = "probe.enirace.internal"
RESOLVER_MODES = ("answer", "servfail", "nxdomain", "drop", "slow")
Notify = Callable[..., None]


class Resolver:
    """Answers the lab's names and refuses everything else (it never recurses, so
    no query ever leaves the lab). `mode` is the hook DNS faults switch:
    answer, servfail, nxdomain (for every name), drop (never answer) or slow
    (answer after `delay_s`)."""

    def __init__(self, ns: str, address: IPv4Address, names: dict[str, IPv4Address],
                 notify: Notify | None = None, ttl: int = DNS_TTL_S) -> None:
        self.ns = ns
        self.address = address
        self.ttl = ttl
        self.names = {k.rstrip(".").lower(): v for k, v in names.items()}
        self.names[PROBE_NAME] = address
        self.mode = "answer"
        self.delay_s = 0.0
        self.notify = notify
        self.queries = 0
        self._lock = threading.Lock()
        self._server = NamespacedUDPServer(ns, (str(address), 53), _DNSHandler, resolver=self)

    def start(self) -> None:
        self._server.start("resolver")

    def stop(self) -> None:
        self._server.stop()

    def set_mode(self, mode: str, delay_s: float = 0.0) -> None:
        if mode not in RESOLVER_MODES:
            raise ValueError(f"resolver mode {mode!r}; use one of {', '.join(RESOLVER_MODES)}")
        with self._lock:
            self.mode, self.delay_s = mode, delay_s

    def set_name(self, name: str, address: IPv4Address) -> None:
        with self._lock:
            self.names[name] = address

    def lookup(self, name: str, timeout_s: float = 0.5) -> tuple[str, list[str]]:
        """Ask the resolver for `name` as a client would: (rcode, A answers)."""
        reply = self._ask(name, timeout_s)
        if reply is None:
            return "NO_ANSWER", []
        return str(RCODE[reply.header.rcode]), [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]

    def probe(self, timeout_s: float) -> str:
        """Ask the resolver for PROBE_NAME from inside the vpc namespace: its rcode
        (NOERROR, SERVFAIL, ...), or "NO_ANSWER" if nothing came within timeout_s."""
        reply = self._ask(PROBE_NAME, timeout_s)
        return "NO_ANSWER" if reply is None else str(RCODE[reply.header.rcode])

    def _ask(self, name: str, timeout_s: float) -> DNSRecord | None:
        sock = netns.socket_in(self.ns, socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.settimeout(timeout_s)
            query = DNSRecord.question(name)
            sock.sendto(query.pack(), (str(self.address), 53))
            deadline = time.monotonic() + timeout_s
            while True:
                sock.settimeout(max(0.0001, deadline - time.monotonic()))
                try:
                    data = sock.recv(4096)
                except TimeoutError:
                    return None
                reply = DNSRecord.parse(data)
                if reply.header.id == query.header.id:
                    return reply
        finally:
            sock.close()

    def answer(self, packet: bytes) -> bytes | None:
        try:
            request = DNSRecord.parse(packet)
        except Exception:
            return None  # not DNS: drop, as a real resolver would
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        probe = qname == PROBE_NAME
        with self._lock:
            self.queries += 0 if probe else 1
            mode, delay_s = self.mode, self.delay_s
            address = self.names.get(qname)
        if mode == "drop":
            if self.notify and not probe:
                self.notify(schema.RESOLVER_QUERY, name=qname, qtype=qtype, rcode="DROPPED")
            return None
        if mode == "slow":
            time.sleep(delay_s)  # each query has its own handler thread
        reply = request.reply()
        if mode in ("servfail", "nxdomain"):
            reply.header.rcode = RCODE.SERVFAIL if mode == "servfail" else RCODE.NXDOMAIN
            rcode = mode.upper()
        elif address is not None:
            if request.q.qtype == QTYPE.A:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(str(address)), ttl=self.ttl))
            elif request.q.qtype == QTYPE.AAAA:
                pass  # NODATA: the name exists, it just has no IPv6 address
            rcode = "NOERROR"
        else:
            reply.header.rcode = RCODE.REFUSED
            rcode = "REFUSED"
        if self.notify and not probe:
            self.notify(schema.RESOLVER_QUERY, name=qname, qtype=qtype, rcode=rcode)
        return reply.pack()


class _DNSHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.resolver.answer(data)  # type: ignore[attr-defined]
        if reply is not None:
            sock.sendto(reply, self.client_address)


class Service:
    """The internal HTTP service the handlers call (the on-prem system). With
    `keepalive_s` it closes a keep-alive connection idle that long, with a FIN
    (close fin) or a RST (close rst: SO_LINGER 0), as servers with a keep-alive
    timeout do (nginx 75 s, Node 5 s, an ALB 60 s). It can listen at more than
    one address (a dns move_to brings up the new one)."""

    def __init__(self, ns: str, address: IPv4Address, port: int = SERVICE_PORT,
                 notify: Notify | None = None, keepalive_s: float | None = None,
                 close: str = "fin") -> None:
        self.ns, self.port = ns, port
        self.notify = notify
        self.keepalive_s = keepalive_s
        self.close = close
        self.requests = 0
        # message id -> how many /record/<id> requests it answered (the fleet's account)
        self.received: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._servers = {str(address): self._listener(address)}

    def _listener(self, address: IPv4Address) -> NamespacedTCPServer:
        return NamespacedTCPServer(self.ns, (str(address), self.port), _ServiceHandler, service=self)

    @property
    def addresses(self) -> list[str]:
        return list(self._servers)

    def start(self) -> None:
        for server in self._servers.values():
            server.start("service")

    def stop(self) -> None:
        for server in list(self._servers.values()):
            server.stop()

    def listen_also(self, address: IPv4Address) -> None:
        server = self._listener(address)
        server.start("service")
        self._servers[str(address)] = server

    def stop_listening(self, address: IPv4Address) -> None:
        self._servers.pop(str(address)).stop()

    def drop_connections(self) -> int:
        """Close every keep-alive connection at once: how many there were."""
        return sum(server.drop_connections() for server in list(self._servers.values()))

    def count(self, path: str = "") -> int:
        with self._lock:
            self.requests += 1
            if path.startswith(RECORD_PREFIX) and len(path) > len(RECORD_PREFIX):
                self.received[path[len(RECORD_PREFIX):].split("?", 1)[0]] += 1
            return self.requests


class _ServiceHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: pooled connections matter for swaps
    # Headers and body go out as separate writes; without this, Nagle plus the
    # client's delayed ACK adds ~40 ms to every reply.
    disable_nagle_algorithm = True

    def handle(self) -> None:
        service: Service = self.server.service  # type: ignore[attr-defined]
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            if service.keepalive_s is not None and not self._request_within(service.keepalive_s):
                self._close_idle(service, service.keepalive_s)
                return
            self.handle_one_request()

    def _request_within(self, timeout_s: float) -> bool:
        # The clients here never pipeline, so nothing waits in rfile's buffer:
        # the socket alone says whether a next request has begun.
        readable, _, _ = select.select([self.connection], [], [], timeout_s)
        return bool(readable)

    def _close_idle(self, service: Service, idle_s: float) -> None:
        server = self.connection.getsockname()
        if service.close == "rst":
            # Linger 0: close() sends a RST and drops the connection at once.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Closed here, not by socketserver: its shutdown(SHUT_WR) would send a FIN first.
            self.rfile.close()
            self.connection.close()
        if service.notify:
            service.notify(schema.SERVICE_CLOSE, client=self.client_address[0], port=self.client_address[1],
                           server=f"{server[0]}:{server[1]}", how=service.close,
                           idle_ms=round(idle_s * 1000, 3))

    def do_GET(self) -> None:
        service: Service = self.server.service  # type: ignore[attr-defined]
        n = service.count(self.path)
        body = json.dumps({"service": SERVICE_NAME, "request": n, "path": self.path,
                           "client": self.client_address[0]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if service.notify:
            server = self.connection.getsockname()
            service.notify(schema.SERVICE_REQUEST, client=self.client_address[0], path=self.path,
                           port=self.client_address[1], server=f"{server[0]}:{server[1]}")

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass
