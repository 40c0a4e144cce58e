"""The NAT between the ENIs and the service (`lab.nat`), done by the kernel.

With a NAT the service leaves the vpc bridge for a namespace of its own (`svc`),
one routed hop away over a veth pair. The vpc namespace routes the service's
address (a /32) into that veth and answers ARP for it on the bridge (proxy ARP),
so the sandbox's view does not change: the service is still on its /24, at the
same address. On the way out the vpc SNATs to the NAT's address (.250), so the
service sees every client as the NAT, as behind a NAT gateway.

Forgetting idle flows is conntrack's own timeout: the vpc's (per-namespace) TCP
timeouts are set to `idle_timeout`, `nf_conntrack_tcp_loose=0` keeps a packet of
a forgotten flow from being picked up as a new flow (it is INVALID instead), and
`nf_conntrack_tcp_be_liberal=1` keeps packets of a known flow that fall out of
conntrack's window tracking from being INVALID too. An INVALID TCP packet towards
the service is answered with a RST (`on_expired: rst`, as a NAT gateway does) or
dropped (`drop`). Conntrack entries are read and deleted over ctnetlink; ctnetlink
(harness/lab/ctnetlink.py) gives a flow's remaining timeout in whole seconds, so idle times are to the second.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from harness.lab import netns
from harness.lab.ctnetlink import Conntrack, Entry

# The kernel's defaults (seconds) of every TCP conntrack timeout; the NAT caps each
# at idle_timeout, so a flow idle that long is forgotten whatever its state.
TCP_TIMEOUTS_S = {"syn_sent": 120, "syn_recv": 60, "established": 432000, "fin_wait": 120,
                  "close_wait": 60, "last_ack": 30, "time_wait": 120, "close": 10,
                  "max_retrans": 300, "unacknowledged": 300}
# Conntrack's TCP state names (pyroute2) -> the timeout that runs in that state.
STATE_TIMEOUT = {"SYN_SENT": "syn_sent", "SYN_SENT2": "syn_sent", "SYN_RECV": "syn_recv",
                 "ESTABLISHED": "established", "FIN_WAIT": "fin_wait", "CLOSE_WAIT": "close_wait",
                 "LAST_ACK": "last_ack", "TIME_WAIT": "time_wait", "CLOSE": "close"}


def run_in(ns: str, *argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(["ip", "netns", "exec", ns, *argv], input=stdin, capture_output=True,
                          text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} in {ns}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def iptables_restore(ns: str, text: str) -> None:
    run_in(ns, "iptables-restore", "--noflush", stdin=text)


@dataclass(frozen=True)
class Flow:
    """One conntrack entry of a connection to the service."""

    client: str  # address:port as the sandbox sent it
    service: str  # address:port it went to
    nat_port: int  # the port the service saw (SNAT may change it)
    state: str
    idle_s: int  # at least this idle (conntrack reports whole seconds)
    entry: Entry  # for delete

    def as_dict(self) -> dict[str, Any]:
        return {"client": self.client, "service": self.service, "nat_port": self.nat_port,
                "state": self.state, "idle_s": self.idle_s}


class Nat:
    def __init__(self, vpc: str, svc: str, link: str, address: IPv4Address, idle_timeout_s: int,
                 on_expired: str) -> None:
        self.vpc, self.svc, self.link = vpc, svc, link
        self.address = address
        self.idle_timeout_s = idle_timeout_s
        self.on_expired = on_expired
        self.timeouts = {k: min(v, idle_timeout_s) for k, v in TCP_TIMEOUTS_S.items()}
        self.routed: list[IPv4Address] = []

    # -- building -----------------------------------------------------------------

    def build(self, bridge: str, service: IPv4Address) -> None:
        """The veth hop vpc <-> svc, routes, sysctls and rules (svc exists, empty)."""
        with netns.rtnl(self.vpc) as v:
            v.link("add", ifname=self.link, kind="veth", peer=self.link + "p")
            peer = v.link_lookup(ifname=self.link + "p")[0]
            v.link("set", index=peer, net_ns_fd=str(netns.path(self.svc)))
            idx = v.link_lookup(ifname=self.link)[0]
            v.addr("add", index=idx, address=str(self.address), prefixlen=32)
            v.link("set", index=idx, state="up")
        with netns.rtnl(self.svc) as s:
            s.link("set", index=s.link_lookup(ifname="lo")[0], state="up")
            idx = s.link_lookup(ifname=self.link + "p")[0]
            s.link("set", index=idx, state="up")
            # Replies go back to the NAT's address only: the service cannot reach
            # the sandbox except through the NAT.
            s.route("add", dst=f"{self.address}/32", oif=idx, scope=253)
        self.serve_at(service)
        sysctls = [f"net.netfilter.nf_conntrack_tcp_timeout_{k}={v}" for k, v in self.timeouts.items()]
        # proxy_delay 0: the kernel otherwise answers a proxied ARP request up to 0.8 s late.
        run_in(self.vpc, "sysctl", "-qw", "net.ipv4.ip_forward=1", f"net.ipv4.conf.{bridge}.proxy_arp=1",
               f"net.ipv4.neigh.{bridge}.proxy_delay=0",
               "net.netfilter.nf_conntrack_tcp_loose=0", "net.netfilter.nf_conntrack_tcp_be_liberal=1",
               *sysctls)
        iptables_restore(self.vpc, self.rules_text())

    def rules_text(self) -> str:
        expired = "REJECT --reject-with tcp-reset" if self.on_expired == "rst" else "DROP"
        out = [f"-A FORWARD -o {self.link} -p tcp -m conntrack --ctstate INVALID -j {expired}"]
        if self.on_expired == "drop":
            # The service's own late packets for a forgotten flow meet silence too.
            out.append(f"-A INPUT -i {self.link} -p tcp -m conntrack --ctstate INVALID -j DROP")
        return ("*nat\n" f"-A POSTROUTING -o {self.link} -j SNAT --to-source {self.address}\nCOMMIT\n"
                "*filter\n" + "".join(r + "\n" for r in out) + "COMMIT\n")

    def serve_at(self, address: IPv4Address) -> None:
        """Route `address` to the service's side (it answers there once a listener is up)."""
        with netns.rtnl(self.svc) as s:
            idx = s.link_lookup(ifname=self.link + "p")[0]
            s.addr("add", index=idx, address=str(address), prefixlen=32)
        with netns.rtnl(self.vpc) as v:
            v.route("add", dst=f"{address}/32", oif=v.link_lookup(ifname=self.link)[0], scope=253)
        self.routed.append(address)

    def stop_serving_at(self, address: IPv4Address) -> None:
        with netns.rtnl(self.vpc) as v:
            v.route("del", dst=f"{address}/32", oif=v.link_lookup(ifname=self.link)[0], scope=253)
        with netns.rtnl(self.svc) as s:
            idx = s.link_lookup(ifname=self.link + "p")[0]
            s.addr("del", index=idx, address=str(address), prefixlen=32)
        self.routed.remove(address)

    def describe(self) -> dict[str, Any]:
        return {"address": str(self.address), "idle_timeout_s": self.idle_timeout_s,
                "on_expired": self.on_expired, "namespace": self.vpc, "service_namespace": self.svc}

    # -- reading and changing conntrack -------------------------------------------

    def flows(self) -> list[Flow]:
        """The TCP flows to the service's addresses that conntrack remembers now."""
        routed = {str(a) for a in self.routed}
        out = []
        with Conntrack(self.vpc) as ct:
            entries = ct.dump()
        for e in entries:
            o = e.orig
            if o.dst not in routed:
                continue
            full = self.timeouts.get(STATE_TIMEOUT.get(e.state, ""), self.idle_timeout_s)
            # The remaining timeout is rounded down, so full - remaining - 1 < idle: a lower bound.
            idle = max(0, full - e.timeout_s - 1)
            out.append(Flow(f"{o.src}:{o.sport}", f"{o.dst}:{o.dport}", e.reply.dport, e.state, idle, e))
        return out

    def still_there(self, flows: list[Flow]) -> list[Flow]:
        """These flows as conntrack has them now (those it still remembers)."""
        out = []
        with Conntrack(self.vpc) as ct:
            for flow in flows:
                now = ct.get(flow.entry)
                if now is not None:
                    out.append(Flow(flow.client, flow.service, flow.nat_port, now.state, flow.idle_s, now))
        return out

    def forget(self, flows: list[Flow]) -> list[Flow]:
        """Delete these flows from conntrack; returns those it still had."""
        gone = []
        with Conntrack(self.vpc) as ct:
            for flow in flows:
                try:
                    ct.delete(flow.entry)
                    gone.append(flow)
                except OSError:  # ENOENT: it expired or closed meanwhile
                    pass
        return gone

    def reset_established(self, port: int) -> str:
        """RST both ends of every established connection to the service now. The
        service's namespace knows each flow's sequence numbers, so its kernel
        aborts the sockets (sock_destroy, `ss -K`) and sends the RSTs, which pass
        the NAT back to the sandbox like any reply; conntrack sees them and closes
        the flows."""
        return run_in(self.svc, "ss", "-K", "-tn", "state", "established", f"( sport = :{port} )")
