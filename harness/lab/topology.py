"""The lab as objects: a vpc namespace (bridge, resolver, service) and a sandbox
namespace (lo only) that ENIs are attached to and detached from.

No object is ever created in the host namespace: the veth pair of an ENI is born
inside the vpc namespace and one end is moved into the sandbox.
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from harness.lab import netns
from harness.lab.addressing import Subnet
from harness.lab.services import SERVICE_NAME, Resolver, Service
from harness.ownership import Run


@dataclass
class Eni:
    ifname: str  # the end inside the sandbox
    peer: str  # the end on the vpc bridge
    address: IPv4Address
    slot: int


@dataclass
class Lab:
    run: Run
    subnet: Subnet
    notify: Any = None  # History.record-like callable for resolver/service events
    index: int = field(default=0)
    enis: dict[str, Eni] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = self.run.next_lab_index()
        self.vpc = self.run.netns_name(self.index, "vpc")
        self.sandbox = self.run.netns_name(self.index, "sbx")
        self.bridge = self.run.link_name(self.index, "br")
        self._lock = threading.Lock()
        self._next_slot = 0
        self._enis_made = 0
        self.resolver: Resolver | None = None
        self.service: Service | None = None

    # -- building -------------------------------------------------------------

    def up(self) -> None:
        netns.create(self.vpc)
        netns.create(self.sandbox)
        with netns.rtnl(self.sandbox) as s:
            s.link("set", index=s.link_lookup(ifname="lo")[0], state="up")
        with netns.rtnl(self.vpc) as v:
            v.link("set", index=v.link_lookup(ifname="lo")[0], state="up")
            v.link("add", ifname=self.bridge, kind="bridge")
            br = v.link_lookup(ifname=self.bridge)[0]
            plen = self.subnet.prefixlen
            for addr in (self.subnet.gateway, self.subnet.resolver, self.subnet.service):
                v.addr("add", index=br, address=str(addr), prefixlen=plen)
            v.link("set", index=br, state="up")
        self.write_resolv_conf(f"nameserver {self.subnet.resolver}\n")
        self.resolver = Resolver(self.vpc, self.subnet.resolver,
                                 {SERVICE_NAME: self.subnet.service}, notify=self.notify)
        self.service = Service(self.vpc, self.subnet.service, notify=self.notify)
        self.resolver.start()
        self.service.start()

    def write_resolv_conf(self, text: str) -> None:
        """The sandbox's /etc/resolv.conf, applied by `ip netns exec`."""
        d = netns.etc_dir(self.sandbox)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / ".resolv.conf.tmp"
        tmp.write_text(text)
        os.replace(tmp, d / "resolv.conf")

    def down(self) -> list[str]:
        """Tear everything down; returns what could not be removed (best effort)."""
        problems: list[str] = []
        for svc in (self.resolver, self.service):
            if svc is not None:
                try:
                    svc.stop()
                except Exception as exc:  # keep tearing down the rest
                    problems.append(f"stop {type(svc).__name__}: {exc}")
        for ns in (self.sandbox, self.vpc):
            try:
                netns.remove(ns)
            except Exception as exc:
                problems.append(f"remove {ns}: {exc}")
        return problems

    # -- ENI operations -------------------------------------------------------

    def attach_eni(self, same_address_as: Eni | None = None) -> Eni:
        """Move in, address, default route: the ENI becomes usable in the sandbox."""
        with self._lock:
            slot = same_address_as.slot if same_address_as else self._next_slot
            self._next_slot = max(self._next_slot, slot + 1)
            self._enis_made += 1
            ifname = self.run.link_name(self.index, f"e{self._enis_made}")
        eni = Eni(ifname=ifname, peer=ifname + "p", address=self.subnet.eni(slot), slot=slot)
        with netns.rtnl(self.vpc) as v:
            # Both ends are born here, never in the host namespace.
            v.link("add", ifname=eni.ifname, kind="veth", peer=eni.peer)
            peer_idx = v.link_lookup(ifname=eni.peer)[0]
            v.link("set", index=peer_idx, master=v.link_lookup(ifname=self.bridge)[0], state="up")
            sbx_fd = os.open(netns.path(self.sandbox), os.O_RDONLY | os.O_CLOEXEC)
            try:
                v.link("set", index=v.link_lookup(ifname=eni.ifname)[0], net_ns_fd=sbx_fd)
            finally:
                os.close(sbx_fd)
        with netns.rtnl(self.sandbox) as s:
            idx = s.link_lookup(ifname=eni.ifname)[0]
            s.addr("add", index=idx, address=str(eni.address), prefixlen=self.subnet.prefixlen)
            s.link("set", index=idx, state="up")
            s.route("add", dst="0.0.0.0/0", gateway=str(self.subnet.gateway), oif=idx)
        self.enis[eni.ifname] = eni
        return eni

    def detach_eni(self, eni: Eni | None = None) -> Eni | None:
        """Delete the ENI (both veth ends go); returns the one removed."""
        if eni is None:
            if not self.enis:
                return None
            eni = list(self.enis.values())[-1]
        with netns.rtnl(self.sandbox) as s:
            found = s.link_lookup(ifname=eni.ifname)
            if found:
                try:
                    s.link("del", index=found[0])
                except NetlinkError as exc:
                    if exc.code != errno.ENODEV:
                        raise
        self.enis.pop(eni.ifname, None)
        return eni

    # -- reading the kernel back ----------------------------------------------

    def sandbox_state(self) -> dict[str, Any]:
        """What the sandbox really has: non-lo links, their addresses, the default route."""
        links = {}
        default = None
        with netns.rtnl(self.sandbox) as s:
            for link in s.get_links():
                name = link.get("IFLA_IFNAME")
                if name == "lo":
                    continue
                links[link["index"]] = {"ifname": name, "up": link.get("IFLA_OPERSTATE") == "UP",
                                        "addresses": []}
            for addr in s.get_addr(family=2):
                if addr["index"] in links:
                    links[addr["index"]]["addresses"].append(addr.get("IFA_ADDRESS"))
            for route in s.get_routes(family=2, table=254):
                if route["dst_len"] == 0:
                    default = route.get("RTA_GATEWAY")
        return {"links": sorted(links.values(), key=lambda x: x["ifname"]), "default_via": default}
