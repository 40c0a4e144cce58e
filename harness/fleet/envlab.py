"""One lab for a whole fleet: the vpc namespace (bridge, resolver, service) is
built once, and each execution environment gets a sandbox namespace of its own
on it, with its own ENI from the subnet's ENI slots.

FleetLab is an ordinary Lab (its own sandbox stays empty) that also hands out
ENI slots and ifindexes fleet-wide; EnvLab is a Lab that adopts the fleet's vpc
instead of building one, so the faults, the emulator and the process backend
work on an environment exactly as on a single trial's lab."""

from __future__ import annotations

import os
import threading
from typing import Any

from harness.lab import netns
from harness.lab.rtnetlink import PinnedRtnl
from harness.lab.topology import ENI_INDEX_BASE, ENI_SLOTS, Eni, Lab
from harness.ownership import PREFIX


class FleetLab(Lab):
    """The shared vpc. Also the one place ENI slots and ifindexes are chosen, so
    environments never collide on an address or on a bridge end's ifindex."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.vpc_lock = threading.Lock()  # the vpc's pinned netlink socket is not thread-safe
        self._slots_held: set[int] = set()
        self._fleet_next_slot = 0
        self._fleet_enis = 0

    def take_slot(self) -> tuple[int, int]:
        """(a free ENI slot, a fleet-wide ENI number); the slot is held until give_slot."""
        with self.vpc_lock:
            slot = next((c % ENI_SLOTS for c in range(self._fleet_next_slot, self._fleet_next_slot + ENI_SLOTS)
                         if c % ENI_SLOTS not in self._slots_held), None)
            if slot is None:
                raise RuntimeError(f"all {ENI_SLOTS} ENI addresses of the subnet are in use")
            self._slots_held.add(slot)
            self._fleet_next_slot = slot + 1
            self._fleet_enis += 1
            return slot, self._fleet_enis

    def give_slot(self, slot: int) -> None:
        with self.vpc_lock:
            self._slots_held.discard(slot)


class EnvLab(Lab):
    """One environment's sandbox on the fleet's vpc. up() makes only the sandbox;
    down() removes only it (its ENI's veth pair goes with it), never the vpc's
    resolver or service."""

    def __init__(self, fleet: FleetLab, notify: Any = None) -> None:
        self.fleet = fleet
        super().__init__(fleet.run, fleet.subnet, notify=notify, config=fleet.config)

    def __post_init__(self) -> None:
        super().__post_init__()
        fleet = self.fleet
        self.vpc, self.bridge, self.svc, self.nat = fleet.vpc, fleet.bridge, fleet.svc, fleet.nat
        self._slots: list[int] = []

    def up(self) -> None:
        self.own_netns(self.sandbox)
        with netns.rtnl(self.sandbox) as s:
            s.link("set", index=s.link_lookup(ifname="lo")[0], state="up")
        self.nl_vpc = self.fleet.nl_vpc
        self._bridge_index = self.fleet._bridge_index
        self.nl_sbx = PinnedRtnl.open_in(self.sandbox)
        self._sandbox_fd = os.open(netns.path(self.sandbox), os.O_RDONLY | os.O_CLOEXEC)
        self.etc.create()
        self.write_resolv_conf(self.resolv_conf_text())
        self.resolver, self.service = self.fleet.resolver, self.fleet.service

    def plan_eni(self, same_address_as: Eni | None = None) -> Eni:
        slot, n = (same_address_as.slot, self.fleet.take_slot()[1]) if same_address_as else self.fleet.take_slot()
        self._slots.append(slot)
        # Fleet-wide numbers: the bridge ends of every environment share the vpc.
        ifname = f"{PREFIX}{self.run.run_id}f{n % 100_000}"
        return Eni(ifname=ifname, peer=ifname + "p", address=self.subnet.eni(slot), slot=slot,
                   index=ENI_INDEX_BASE + 2 * n, peer_index=ENI_INDEX_BASE + 2 * n + 1)

    def plug_eni(self, eni: Eni) -> Eni:
        with self.fleet.vpc_lock:
            return super().plug_eni(eni)

    def down(self) -> list[str]:
        # The vpc's socket, resolver and service are the fleet's: not ours to stop.
        self.nl_vpc, self.resolver, self.service = None, None, None
        problems = super().down()
        for slot in self._slots:
            self.fleet.give_slot(slot)
        self._slots.clear()
        return problems
