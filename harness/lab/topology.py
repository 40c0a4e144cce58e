"""The lab as objects: a vpc namespace (bridge, resolver, service) and a sandbox
namespace (lo only) that ENIs are attached to and detached from.

No object is ever created in the host namespace: an ENI's veth pair is created by
a netlink socket that lives in the vpc namespace, with its sandbox end born
directly in the sandbox. Fault operations go through sockets opened inside each
namespace when the lab is built (rtnetlink.PinnedRtnl), so firing one costs a few
netlink round trips and no namespace switch; reading state back uses pyroute2.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from harness.history import schema
from harness.lab import netns
from harness.lab.addressing import Subnet
from harness.lab.nat import Nat
from harness.lab.rtnetlink import PinnedRtnl
from harness.lab.sandbox_etc import SandboxEtc
from harness.lab.services import DNS_TTL_S, SERVICE_NAME, Resolver, Service
from harness.ownership import Run


@dataclass
class Eni:
    ifname: str  # the end inside the sandbox
    peer: str  # the end on the vpc bridge
    address: IPv4Address
    slot: int
    index: int = 0  # ifindex of the sandbox end, chosen by the lab
    peer_index: int = 0  # ifindex of the bridge end in the vpc namespace


# ENI ifindexes are chosen by the lab (both ends, at creation), far above what a
# fresh or container namespace uses, so a firing never has to look one up. The two
# ends must differ: the kernel treats a link whose peer has its own ifindex as
# "not stacked" and then reports its operstate only after a ~1 s linkwatch delay.
ENI_INDEX_BASE = 1000
ENI_SLOTS = 100  # ENI addresses are .100 to .199 of the subnet
# How long detach waits for the kernel to unlist a deleted ENI.
UNLIST_TIMEOUT_S = 2.0


@dataclass
class Lab:
    run: Run
    subnet: Subnet
    notify: Any = None  # History.record-like callable for resolver/service events
    index: int = field(default=0)
    enis: dict[str, Eni] = field(default_factory=dict)
    config: Any = None  # the scenario's LabConfig (nat, service, dns); None: the defaults

    def __post_init__(self) -> None:
        if not self.index:
            self.index = self.run.next_lab_index()
        self.vpc = self.run.netns_name(self.index, "vpc")
        self.sandbox = self.run.netns_name(self.index, "sbx")
        self.bridge = self.run.link_name(self.index, "br")
        self.svc = self.run.netns_name(self.index, "svc")
        self.nat: Nat | None = None
        nat = getattr(self.config, "nat", None)
        if nat is not None:
            self.nat = Nat(self.vpc, self.svc, self.run.link_name(self.index, "nt"), self.subnet.nat,
                           nat.idle_timeout_s, nat.on_expired)
        self._lock = threading.Lock()
        self._next_slot = 0
        self._enis_made = 0
        self.resolver: Resolver | None = None
        self.service: Service | None = None
        self.etc = SandboxEtc(self.sandbox, self.run)
        self.nl_vpc: PinnedRtnl | None = None
        self.nl_sbx: PinnedRtnl | None = None
        self._reapers: list[threading.Thread] = []
        self._sandbox_fd = -1
        self._bridge_index = 0
        self._on_down: list[Callable[[], None]] = []
        self._netns_made: list[str] = []
        self.reap_errors: list[str] = []

    # -- building -------------------------------------------------------------

    def create_sandbox(self) -> None:
        """The sandbox namespace: a fresh one here; a subclass may adopt one that
        exists already (own_netns with a pid)."""
        self.own_netns(self.sandbox)

    def own_netns(self, name: str, pid: int = 0) -> None:
        """Create (or, with `pid`, attach) a namespace of this lab: recorded in the run's
        manifest and proven by its inode. Links inside it go with it and need no record.
        down() removes only the namespaces made here: a name that was taken already
        (FileExistsError) is someone else's."""
        netns.create_owned(self.run, name, pid)
        self._netns_made.append(name)

    def up(self) -> None:
        self.own_netns(self.vpc)
        self.create_sandbox()
        with netns.rtnl(self.sandbox) as s:
            s.link("set", index=s.link_lookup(ifname="lo")[0], state="up")
        with netns.rtnl(self.vpc) as v:
            v.link("set", index=v.link_lookup(ifname="lo")[0], state="up")
            v.link("add", ifname=self.bridge, kind="bridge")
            br = v.link_lookup(ifname=self.bridge)[0]
            plen = self.subnet.prefixlen
            on_bridge = [self.subnet.gateway, self.subnet.resolver]
            if self.nat is None:  # with a NAT the service is one hop further (lab/nat.py)
                on_bridge.append(self.subnet.service)
            for addr in on_bridge:
                v.addr("add", index=br, address=str(addr), prefixlen=plen)
            v.link("set", index=br, state="up")
            self._bridge_index = br
            # A bridge has carrier only while a port has: without this always-up
            # port, the first ENI's arrival would switch the bridge's carrier on,
            # and the kernel reports a bridge's carrier (and starts its qdisc) only
            # after a linkwatch delay of up to 1 s, during which the vpc's replies
            # to the sandbox are dropped. The anchor's other end stays in the vpc.
            anchor = self.run.link_name(self.index, "an")
            v.link("add", ifname=anchor, kind="veth", peer=anchor + "p")
            v.link("set", index=v.link_lookup(ifname=anchor)[0], master=br, state="up")
            v.link("set", index=v.link_lookup(ifname=anchor + "p")[0], state="up")
            # A bridge with no MAC of its own takes the lowest of its ports': an ENI
            # joining with a lower one (a swap, a fleet's next environment) would move
            # the gateway's, resolver's and service's MAC under every neighbour entry
            # that points at it, and connections hang until ARP finds out. Setting the
            # address, even to the one it has, makes the kernel keep it.
            v.link("set", index=br, address=v.get_links(br)[0].get("IFLA_ADDRESS"))
        if self.nat is not None:
            self.own_netns(self.svc)
            self.nat.build(self.bridge, self.subnet.service)
        self.open_and_serve()

    def open_and_serve(self) -> None:
        """Once both namespaces exist, however they were made: the build-time netlink
        sockets faults fire through, the sandbox's /etc, the resolver and the service."""
        self.nl_vpc = PinnedRtnl.open_in(self.vpc)
        self.nl_sbx = PinnedRtnl.open_in(self.sandbox)
        self._sandbox_fd = os.open(netns.path(self.sandbox), os.O_RDONLY | os.O_CLOEXEC)
        self.etc.create()
        self.write_resolv_conf(self.resolv_conf_text())
        dns, svc = getattr(self.config, "dns", None), getattr(self.config, "service", None)
        self.resolver = Resolver(self.vpc, self.subnet.resolver,
                                 {SERVICE_NAME: self.subnet.service}, notify=self.notify,
                                 ttl=dns.ttl if dns is not None else DNS_TTL_S)
        keepalive = svc.keepalive_timeout if svc is not None else None
        self.service = Service(self.service_ns, self.subnet.service, notify=self.notify,
                               keepalive_s=None if keepalive is None else keepalive / 1000,
                               close=svc.close if svc is not None else "fin")
        self.resolver.start()
        self.service.start()
        if self.nat is not None and self.notify is not None:
            self.notify(schema.NAT, **self.nat.describe())

    @property
    def service_ns(self) -> str:
        """Where the service listens: the vpc, or behind the NAT its own namespace."""
        return self.svc if self.nat is not None else self.vpc

    def resolv_conf_text(self) -> str:
        return f"nameserver {self.subnet.resolver}\n"

    def write_resolv_conf(self, text: str | None, how: str = "rename") -> dict[str, object]:
        """The sandbox's /etc/resolv.conf (None: absent); see sandbox_etc."""
        return self.etc.write(text, "in_place" if how == "in_place" else "rename")

    def on_down(self, stop: Callable[[], None]) -> None:
        """Have down() call `stop` first (a fault's helper thread, for instance)."""
        self._on_down.append(stop)

    def down(self) -> list[str]:
        """Tear everything down; returns what could not be removed (best effort)."""
        problems: list[str] = []
        for stop in reversed(self._on_down):
            try:
                stop()
            except Exception as exc:
                problems.append(f"stop {stop}: {exc}")
        for svc in (self.resolver, self.service):
            if svc is not None:
                try:
                    svc.stop()
                except Exception as exc:  # keep tearing down the rest
                    problems.append(f"stop {type(svc).__name__}: {exc}")
        for reaper in self._reapers:
            reaper.join(timeout=5)
        for nl in (self.nl_vpc, self.nl_sbx):
            if nl is not None:
                nl.close()
        if self._sandbox_fd >= 0:
            os.close(self._sandbox_fd)
            self._sandbox_fd = -1
        for ns in reversed(self._netns_made):
            try:
                netns.remove_owned(self.run, ns)
            except Exception as exc:
                problems.append(f"remove {ns}: {exc}")
        self.etc.remove()
        return problems + self.reap_errors

    # -- ENI operations -------------------------------------------------------

    def plan_eni(self, same_address_as: Eni | None = None) -> Eni:
        """Choose the next ENI's names, address and ifindexes (nothing is created)."""
        with self._lock:
            if same_address_as:
                slot = same_address_as.slot
            else:
                # A new address: the next slot not held by an attached ENI, wrapping
                # within the subnet's ENI range (.100-.199) on long runs.
                used = {e.slot for e in self.enis.values()}
                slot = next(c % ENI_SLOTS for c in range(self._next_slot, self._next_slot + ENI_SLOTS + 1)
                            if c % ENI_SLOTS not in used)
                self._next_slot = slot + 1
            self._enis_made += 1
            n = self._enis_made
        ifname = self.run.link_name(self.index, f"e{n}")
        return Eni(ifname=ifname, peer=ifname + "p", address=self.subnet.eni(slot), slot=slot,
                   index=ENI_INDEX_BASE + 2 * n, peer_index=ENI_INDEX_BASE + 2 * n + 1)

    def plug_eni(self, eni: Eni) -> Eni:
        """Create, address and route a planned ENI: it becomes usable in the sandbox.
        Four netlink requests on sockets opened at build time (~1-2 ms)."""
        assert self.nl_vpc is not None and self.nl_sbx is not None, "lab is not up"
        self.nl_vpc.veth_create(eni.peer, eni.peer_index, self._bridge_index,
                                eni.ifname, eni.index, self._sandbox_fd)
        self.nl_sbx.link_set(eni.index, up=True)
        self.nl_sbx.addr_add(eni.index, eni.address, self.subnet.prefixlen)
        self.nl_sbx.default_route(self.subnet.gateway, eni.index)
        self.enis[eni.ifname] = eni
        return eni

    def attach_eni(self, same_address_as: Eni | None = None) -> Eni:
        return self.plug_eni(self.plan_eni(same_address_as))

    def current_eni(self) -> Eni | None:
        return list(self.enis.values())[-1] if self.enis else None

    def detach_eni(self, eni: Eni | None = None) -> Eni | None:
        """Delete the ENI (both veth ends go); returns the one removed, once the
        kernel has unlisted it. The delete call itself returns only after the
        kernel's rcu_barrier (~20 ms), long after the link vanished from the
        sandbox, so it runs on a reaper thread with a socket of its own."""
        eni = eni or self.current_eni()
        if eni is None:
            return None
        self.enis.pop(eni.ifname, None)
        reaper = threading.Thread(target=self._delete, args=(eni,), name=f"reap-{eni.ifname}",
                                  daemon=True)
        reaper.start()
        self._reapers.append(reaper)
        assert self.nl_sbx is not None
        deadline = time.monotonic() + UNLIST_TIMEOUT_S
        while self.nl_sbx.link_index(eni.ifname) is not None and time.monotonic() < deadline:
            time.sleep(0.0001)
        return eni

    def _delete(self, eni: Eni) -> None:
        # A socket per delete: deletes must not queue behind each other's
        # rcu_barrier, which under load (other labs tearing down) takes 10s of ms.
        nl = PinnedRtnl.open_in(self.sandbox)
        try:
            nl.link_del(eni.index)
        except OSError as exc:
            if exc.errno != errno.ENODEV:
                self.reap_errors.append(f"delete {eni.ifname}: {exc}")
        finally:
            nl.close()

    def set_peer_up(self, eni: Eni, up: bool) -> None:
        """The bridge end of the ENI: down, the sandbox end loses carrier (ARP fails)."""
        assert self.nl_vpc is not None
        self.nl_vpc.link_set(eni.peer_index, up=up)

    # -- reading the kernel back ----------------------------------------------

    def bridge_end_up(self, eni: Eni) -> bool:
        """Is the vpc end of `eni` operationally up? Its queue starts only when the
        kernel's linkwatch worker handles its carrier (after the sandbox end came
        up); until then replies towards the sandbox are dropped."""
        with netns.rtnl(self.vpc) as v:
            links = v.get_links(eni.peer_index)
        return bool(links) and links[0].get("IFLA_OPERSTATE") == "UP"

    def sandbox_state(self) -> dict[str, Any]:
        """What the sandbox really has: non-lo links (admin state, carrier, addresses,
        root qdisc), the default route."""
        links = {}
        default = None
        with netns.rtnl(self.sandbox) as s:
            for link in s.get_links():
                name = link.get("IFLA_IFNAME")
                if name == "lo":
                    continue
                links[link["index"]] = {"ifname": name, "up": link.get("IFLA_OPERSTATE") == "UP",
                                        "admin_up": bool(link["flags"] & 1),
                                        "carrier": bool(link.get("IFLA_CARRIER")),
                                        "addresses": [], "qdisc": None}
            for addr in s.get_addr(family=2):
                if addr["index"] in links:
                    links[addr["index"]]["addresses"].append(addr.get("IFA_ADDRESS"))
            for route in s.get_routes(family=2, table=254):
                if route["dst_len"] == 0:
                    default = route.get("RTA_GATEWAY")
            for qdisc in s.get_qdiscs():
                if qdisc["index"] in links and qdisc["parent"] == 0xFFFFFFFF:
                    links[qdisc["index"]]["qdisc"] = qdisc.get("TCA_KIND")
        return {"links": sorted(links.values(), key=lambda x: x["ifname"]), "default_via": default}
