"""Resolver faults: the lab resolver's mode, and the sandbox's /etc/resolv.conf.

`dns` switches what the resolver does for every name (servfail, nxdomain, drop,
slow, or answer again) and verifies it by asking it a probe name from the vpc
namespace. With `move_to` the service fails over: it listens at the new address
too, the resolver answers the new address, and the old one refuses (a RST, by an
iptables REJECT in the service's namespace) or ignores (DROP) every packet;
verified by a lookup and by connecting to both addresses.

`resolv_conf` rewrites the sandbox's resolv.conf in place or by rename
and verifies it through /proc/<pid>/root of the runtime processes, i.e. in their
own mount namespace, so what is checked is what the function's libc reads.
"""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv4Address
from typing import Any

from harness.lab import netns
from harness.lab.nat import iptables_restore
from harness.lab.sandbox_etc import has_nameserver
from harness.lab.services import SERVICE_NAME, SERVICE_PORT, Resolver
from harness.lab.topology import Lab
from harness.nemesis.fault import Fault, FaultNotApplicable, State
from harness.scenario.fault_params import DnsParams, ResolvConfParams

# The resolver answers a probe in well under a millisecond; waiting this long
# for nothing tells drop (and slow) from answer.
PROBE_WAIT_S = 0.03
EXPECTED_RCODE = {"answer": "NOERROR", "servfail": "SERVFAIL", "nxdomain": "NXDOMAIN",
                  "drop": "NO_ANSWER", "slow": "NO_ANSWER"}


# Addresses a moved service may not take: the gateway, resolver, ENIs and NAT.
RESERVED_HOSTS = {0, 1, 2, 250, 255, *range(100, 200)}


def move_target(lab: Lab, move_to: str) -> IPv4Address:
    net = lab.subnet.network
    address = lab.subnet.host(int(move_to[1:])) if move_to.startswith(".") else IPv4Address(move_to)
    host = int(address) - int(net.network_address)
    if address not in net or host in RESERVED_HOSTS or address == lab.subnet.service:
        raise FaultNotApplicable(f"dns move_to: {move_to} is not a free host of the lab's {net} "
                                 "(use .3-.99 or .200-.249, not the service's .10)")
    return address


def connect_result(ns: str, address: IPv4Address, timeout_s: float) -> str:
    """Connect to the service's port at `address` from namespace `ns`: open,
    refused (a RST) or silent."""
    sock = netns.socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect((str(address), SERVICE_PORT))
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except (TimeoutError, OSError) as exc:
        return "refused" if getattr(exc, "errno", None) == errno.ECONNREFUSED else "silent"
    finally:
        sock.close()


class ServiceMove:
    """The service's failover from its address to `new` (and back)."""

    def __init__(self, lab: Lab, new: IPv4Address, old_gets: str) -> None:
        self.lab, self.new, self.old = lab, new, lab.subnet.service
        target = "REJECT --reject-with tcp-reset" if old_gets == "rst" else "DROP"
        self.rule = f"INPUT -d {self.old}/32 -p tcp -m tcp --dport {SERVICE_PORT} -j {target}"

    def apply(self) -> None:
        lab = self.lab
        assert lab.service is not None and lab.resolver is not None
        if lab.nat is not None:
            lab.nat.serve_at(self.new)
        else:
            with netns.rtnl(lab.vpc) as v:
                v.addr("add", index=v.link_lookup(ifname=lab.bridge)[0], address=str(self.new),
                       prefixlen=lab.subnet.prefixlen)
        lab.service.listen_also(self.new)
        lab.resolver.set_name(SERVICE_NAME, self.new)
        iptables_restore(lab.service_ns, f"*filter\n-A {self.rule}\nCOMMIT\n")

    def revert(self) -> None:
        lab = self.lab
        assert lab.service is not None and lab.resolver is not None
        iptables_restore(lab.service_ns, f"*filter\n-D {self.rule}\nCOMMIT\n")
        lab.resolver.set_name(SERVICE_NAME, self.old)
        lab.service.stop_listening(self.new)
        if lab.nat is not None:
            lab.nat.stop_serving_at(self.new)
        else:
            with netns.rtnl(lab.vpc) as v:
                v.addr("del", index=v.link_lookup(ifname=lab.bridge)[0], address=str(self.new),
                       prefixlen=lab.subnet.prefixlen)

    def seen(self, moved: bool) -> tuple[bool, State]:
        assert self.lab.resolver is not None
        rcode, answers = self.lab.resolver.lookup(SERVICE_NAME)
        # From the vpc: with a NAT that is one hop, like the sandbox's path.
        old = connect_result(self.lab.vpc, self.old, PROBE_WAIT_S)
        new = connect_result(self.lab.vpc, self.new, PROBE_WAIT_S) if moved else "not listening"
        want = str(self.new if moved else self.old)
        ok = answers == [want] and (old != "open" if moved else old == "open") and new in ("open", "not listening")
        return ok, {"lookup": rcode, "answers": answers, "old": f"{self.old} {old}", "new": f"{self.new} {new}"}


class Dns(Fault):
    name = "dns"
    p: DnsParams

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(lab, **params)
        self.before = "answer"
        self.move: ServiceMove | None = None
        if self.p.move_to is not None:
            self.transient = True  # type: ignore[misc]  # a failover, not a lasting outage

    def prepare(self) -> None:
        if self.p.move_to is not None:
            self.move = ServiceMove(self.lab, move_target(self.lab, self.p.move_to), self.p.old)

    @property
    def resolver(self) -> Resolver:
        assert self.lab.resolver is not None, "lab is not up"
        return self.lab.resolver

    def _probe(self, mode: str) -> tuple[bool, State]:
        wait = PROBE_WAIT_S
        if mode == "slow":
            wait = min(PROBE_WAIT_S, self.p.delay / 2000)
        got = self.resolver.probe(wait)
        return got == EXPECTED_RCODE[mode], {"mode": self.resolver.mode, "probe": got}

    def apply(self) -> State:
        mode = self.p.resolver_mode
        self.before = self.resolver.mode
        out: State = {"mode": mode, **({"delay_ms": self.p.delay} if mode == "slow" else {})}
        if self.p.move_to is not None:
            if self.move is None:
                self.prepare()
            assert self.move is not None
            self.move.apply()
            out.update({"from": str(self.move.old), "to": str(self.move.new), "old": self.p.old})
        self.resolver.set_mode(mode, self.p.delay / 1000)
        return out

    def revert(self) -> State:
        self.resolver.set_mode(self.before)
        if self.move is not None:
            self.move.revert()
            return {"mode": self.before, "back_to": str(self.move.old)}
        return {"mode": self.before}

    def _both(self, mode: str, moved: bool) -> tuple[bool, State]:
        ok, state = self._probe(mode)
        if self.move is not None:
            moved_ok, moved_state = self.move.seen(moved)
            ok, state = ok and moved_ok, {**state, "move": moved_state}
        return ok, state

    def verify(self) -> tuple[bool, State]:
        return self._both(self.p.resolver_mode, True)

    def verify_reverted(self) -> tuple[bool, State]:
        return self._both(self.before, False)

    def effect(self) -> dict[str, bool]:
        return {"dns": self.p.resolver_mode != "answer"}

    def revert_effect(self) -> dict[str, bool]:
        return {"dns": self.before != "answer"}


class ResolvConf(Fault):
    name = "resolv_conf"
    p: ResolvConfParams

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(lab, **params)
        self.before: State = {}
        self.after: State = {}

    def _text(self) -> str | None:
        return {"filled": self.lab.resolv_conf_text(), "empty": "", "absent": None}[self.p.content]

    def apply(self) -> State:
        self.before = self.lab.etc.read()
        self.after = self.lab.write_resolv_conf(self._text(), self.p.how)
        return {"content": self.p.content, "how": self.p.how, "inode_before": self.before["inode"],
                "inode_after": self.after["inode"]}

    def revert(self) -> State:
        content = self.before.get("content")
        self.after = self.lab.write_resolv_conf(content if isinstance(content, str) else None,
                                                self.p.how)
        return {"restored": "absent" if content is None else ("filled" if has_nameserver(content) else "empty")}

    def _seen(self, want: State, inode_rule: str) -> tuple[bool, State]:
        """The file as the runtime processes see it (or the lab's copy when none
        runs): same content as written, and an inode that proves how it was written."""
        pids = netns.pids_in(self.lab.sandbox)
        # Only processes started with the sandbox's /etc overlay read this file;
        # anything else in the namespace (a test's probe) reads the host's.
        ours = [pid for pid in pids if self.lab.etc.overlaid(pid)]
        views = [self.lab.etc.seen_by(pid) for pid in ours] or [self.lab.etc.read()]
        ok = all(v["content"] == want["content"] for v in views)
        if ok and inode_rule == "same" and self.before.get("exists") and want["content"] is not None:
            ok = all(v["inode"] == self.before["inode"] for v in views)
        elif ok and inode_rule == "new" and self.before.get("exists") and want["content"] is not None:
            ok = all(v["inode"] != self.before["inode"] for v in views)
        return ok, {"views": views, "how": self.p.how, "other_processes": len(pids) - len(ours)}

    def verify(self) -> tuple[bool, State]:
        return self._seen(self.after, "same" if self.p.how == "in_place" else "new")

    def verify_reverted(self) -> tuple[bool, State]:
        return self._seen(self.after, "any")

    def effect(self) -> dict[str, bool]:
        return {"resolv_conf": self.p.content != "filled"}

    def revert_effect(self) -> dict[str, bool]:
        return {"resolv_conf": not has_nameserver(self.before.get("content"))}


FAULTS: tuple[type[Fault], ...] = (Dns, ResolvConf)
