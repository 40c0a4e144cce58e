"""The sandbox's link to the vpc: nothing leaves it while the environment is frozen
(harness/lab/egress.py), and the bridge's MAC stays put as ENIs come and go."""

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


def test_an_eni_joining_the_bridge_never_moves_the_gateways_mac(lab):
    """A bridge takes its lowest port's MAC unless it has one of its own; a second
    ENI (a swap's) with a lower one would move the MAC the sandbox's neighbour
    entries hold for the gateway, resolver and service."""
    with netns.rtnl(lab.vpc) as v:
        before = v.get_links(lab._bridge_index)[0].get("IFLA_ADDRESS")
    eni = lab.attach_eni()
    with netns.rtnl(lab.vpc) as v:  # the lowest MAC a port can have
        v.link("set", index=eni.peer_index, address="02:00:00:00:00:01")
        after = v.get_links(lab._bridge_index)[0].get("IFLA_ADDRESS")
    assert after == before
