"""Servers whose listening socket lives inside a lab namespace, run by threads of
the harness process. stop() also closes every open connection, so a keep-alive
client cannot keep a handler thread (and the namespace) alive after teardown."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import socketserver
import threading
from typing import Any

from harness.lab import netns


class _Tracked:
    """Mixin: remember open connections so stop() can cut them."""

    def _track_init(self) -> None:
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def process_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._conns_lock:
                self._conns.add(request)
        super().process_request(request, client_address)  # type: ignore[misc]

    def shutdown_request(self, request: Any) -> None:
        if isinstance(request, socket.socket):
            with self._conns_lock:
                self._conns.discard(request)
        super().shutdown_request(request)  # type: ignore[misc]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets its connection (a killed runtime, a swapped ENI) is
        # part of the experiment, not an error worth a traceback on the console.
        self.connection_errors = getattr(self, "connection_errors", 0) + 1

    def drop_connections(self) -> int:
        """Shut every open connection (SnapStart's restore: the peer has forgotten
        its flows); the handler threads then see the end and close. How many."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(conns)

    def start(self, name: str) -> None:
        # A wake-up pipe instead of serve_forever's poll interval: stop() returns at
        # once rather than after up to one poll period (50 ms per server, per trial).
        self._wake = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self.fileno(), selectors.EVENT_READ)  # type: ignore[attr-defined]
            sel.register(self._wake[0], selectors.EVENT_READ)
            while True:
                events = sel.select()
                if any(key.fd == self._wake[0] for key, _ in events):
                    return
                self._handle_request_noblock()  # type: ignore[attr-defined]
                self.service_actions()  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self._thread is not None:
            os.write(self._wake[1], b"x")
            self._thread.join(timeout=5)
            self._thread = None
            for fd in self._wake:
                os.close(fd)
        self.server_close()  # type: ignore[attr-defined]
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


class NamespacedTCPServer(_Tracked, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Long-polling /next clients pile up quickly during crash loops.
    request_queue_size = 64

    def __init__(self, ns: str | None, address: tuple[str, int], handler: type, **attrs: Any) -> None:
        self._track_init()
        for key, value in attrs.items():
            setattr(self, key, value)
        # socket() and bind() must happen inside the namespace; serving can
        # then run from any thread, because the socket keeps its namespace.
        # ns None: the caller's own namespace (the stand-alone enirace-rie).
        with netns.entered(ns) if ns is not None else contextlib.nullcontext():
            super().__init__(address, handler)


class NamespacedUDPServer(_Tracked, socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ns: str, address: tuple[str, int], handler: type, **attrs: Any) -> None:
        self._track_init()
        for key, value in attrs.items():
            setattr(self, key, value)
        with netns.entered(ns):
            super().__init__(address, handler)
