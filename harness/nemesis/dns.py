"""Resolver faults: the lab resolver's mode, and the sandbox's /etc/resolv.conf.

`dns` switches what the resolver does for every name (servfail, nxdomain, drop,
slow, or answer again) and verifies it by asking it a probe name from the vpc
namespace. `resolv_conf` rewrites the sandbox's resolv.conf in place or by rename
and verifies it through /proc/<pid>/root of the runtime processes, i.e. in their
own mount namespace, so what is checked is what the function's libc reads.
"""

from __future__ import annotations

from typing import Any

from harness.lab import netns
from harness.lab.sandbox_etc import has_nameserver
from harness.lab.services import Resolver
from harness.lab.topology import Lab
from harness.nemesis.fault import Fault, State
from harness.scenario.fault_params import DnsParams, ResolvConfParams

# The resolver answers a probe in well under a millisecond; waiting this long
# for nothing tells drop (and slow) from answer.
PROBE_WAIT_S = 0.03
EXPECTED_RCODE = {"answer": "NOERROR", "servfail": "SERVFAIL", "nxdomain": "NXDOMAIN",
                  "drop": "NO_ANSWER", "slow": "NO_ANSWER"}


class Dns(Fault):
    name = "dns"
    p: DnsParams

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(lab, **params)
        self.before = "answer"

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
        self.before = self.resolver.mode
        self.resolver.set_mode(self.p.mode, self.p.delay / 1000)
        return {"mode": self.p.mode, **({"delay_ms": self.p.delay} if self.p.mode == "slow" else {})}

    def revert(self) -> State:
        self.resolver.set_mode(self.before)
        return {"mode": self.before}

    def verify(self) -> tuple[bool, State]:
        return self._probe(self.p.mode)

    def verify_reverted(self) -> tuple[bool, State]:
        return self._probe(self.before)

    def effect(self) -> dict[str, bool]:
        return {"dns": self.p.mode != "answer"}

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
