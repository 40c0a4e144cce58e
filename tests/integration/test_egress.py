"""While the environment is frozen nothing leaves the sandbox (harness/lab/egress.py):
what Lambda's paused microVM gives, kernel-sent packets included."""

from __future__ import annotations

import socket

import pytest

from harness.lab import netns
from harness.lab.egress import EgressGate
from harness.lab.services import SERVICE_PORT

pytestmark = [pytest.mark.root]


def _send(sock: socket.socket, lab) -> str:
    try:
        sock.sendto(b"x", (str(lab.subnet.service), SERVICE_PORT))
        return "sent"
    except PermissionError:
        return "dropped"


def test_held_egress_drops_what_leaves_the_sandbox_and_spares_loopback(lab):
    sock = netns.socket_in(lab.sandbox, socket.AF_INET, socket.SOCK_DGRAM)
    local = netns.socket_in(lab.sandbox, socket.AF_INET, socket.SOCK_DGRAM)
    lab.attach_eni()
    gate = EgressGate(lab.sandbox)
    try:
        assert _send(sock, lab) == "sent"
        assert gate.hold() and gate.problem is None
        assert _send(sock, lab) == "dropped"
        local.sendto(b"x", ("127.0.0.1", 9))  # the Runtime API's side of the sandbox stays open
        gate.release()
        assert _send(sock, lab) == "sent"
        assert gate.hold() and _send(sock, lab) == "dropped"
    finally:
        gate.release()
        gate.close()
        sock.close()
        local.close()
