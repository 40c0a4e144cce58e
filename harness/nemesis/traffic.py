"""Traffic faults: blackhole and netem (delay, jitter, loss).

Both act in the vpc namespace, on the bridge that every ENI's far end is a port
of, so the sandbox sees nothing but silence or slowness: its packets have
already left it when they are dropped or held (a drop inside the sandbox would
hand the sender an EPERM, which no real network does). Because they act on the
bridge, they survive an ENI swap.

Rules go in with `ip netns exec <vpc> iptables-restore --noflush` (one fork,
~5-10 ms: these faults are not on the sub-millisecond path the ENI faults are).
netem is done in userspace through an NFQUEUE (nfqueue.py) because kernels
without sch_netem, like this project's CI VM, cannot delay packets themselves.
"""

from __future__ import annotations

import subprocess
from typing import Any

from harness.lab import netns
from harness.lab.topology import Lab
from harness.nemesis.fault import Fault, State, settled
from harness.nemesis.nfqueue import DelayQueue
from harness.scenario.fault_params import NetemParams

QUEUE_NUM = 0  # queues are per namespace; the vpc has at most one netem at a time


def iptables(lab: Lab, table: str, *rules: str) -> None:
    """Add (-A ...) or delete (-D ...) rules in one table of the vpc namespace."""
    text = f"*{table}\n" + "".join(f"{r}\n" for r in rules) + "COMMIT\n"
    done = subprocess.run(["ip", "netns", "exec", lab.vpc, "iptables-restore", "--noflush"],
                          input=text, capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"iptables-restore in {lab.vpc}: {done.stderr.strip() or done.returncode}")


def rules(lab: Lab, table: str) -> list[str]:
    """The vpc namespace's rules in `table`, as iptables-save prints them."""
    out = subprocess.run(["ip", "netns", "exec", lab.vpc, "iptables-save", "-t", table],
                         capture_output=True, text=True, timeout=10).stdout
    return [line for line in out.splitlines() if line.startswith("-A ")]


class Blackhole(Fault):
    """Drop every IPv4 packet between the sandbox and the vpc, silently (ARP still
    answers, so the neighbour stays reachable: a true black hole, not a dead link)."""

    name = "blackhole"

    def _rules(self) -> list[str]:
        br = self.lab.bridge
        return [f"PREROUTING -i {br} -j DROP", f"OUTPUT -o {br} -j DROP"]

    def apply(self) -> State:
        iptables(self.lab, "raw", *(f"-A {r}" for r in self._rules()))
        return {"bridge": self.lab.bridge, "rules": self._rules()}

    def revert(self) -> State:
        iptables(self.lab, "raw", *(f"-D {r}" for r in self._rules()))
        return {"bridge": self.lab.bridge}

    def _present(self) -> tuple[bool, State]:
        found = rules(self.lab, "raw")
        return all(f"-A {r}" in found for r in self._rules()), {"raw": found}

    def verify(self) -> tuple[bool, State]:
        return self._present()

    def verify_reverted(self) -> tuple[bool, State]:
        ok, state = self._present()
        return not any(f"-A {r}" in state["raw"] for r in self._rules()), state

    def effect(self) -> dict[str, bool]:
        return {"blackhole": True}


class Netem(Fault):
    """Hold each packet from the sandbox for delay ± jitter (uniform), drop `loss`%."""

    name = "netem"
    p: NetemParams

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(lab, **params)
        self.queue: DelayQueue | None = None

    def _rule(self) -> str:
        return f"PREROUTING -i {self.lab.bridge} -j NFQUEUE --queue-num {QUEUE_NUM} --queue-bypass"

    def apply(self) -> State:
        self.queue = DelayQueue(self.lab.vpc, QUEUE_NUM, self.p.delay, self.p.jitter, self.p.loss / 100,
                                seed=self.seed)
        self.queue.start()
        self.lab.on_down(self.queue.stop)
        try:
            iptables(self.lab, "mangle", f"-A {self._rule()}")
        except BaseException:
            self.queue.stop()
            raise
        return {"delay_ms": self.p.delay, "jitter_ms": self.p.jitter, "loss_pct": self.p.loss}

    def revert(self) -> State:
        # Rule first, so nothing new is queued; stop() then releases what is held.
        iptables(self.lab, "mangle", f"-D {self._rule()}")
        out: State = {}
        if self.queue is not None:
            self.queue.stop()
            out = {"delayed": self.queue.delayed, "dropped": self.queue.dropped}
        return out

    def _state(self) -> State:
        with netns.entered(self.lab.vpc):
            # /proc/thread-self/net is this thread's namespace: the vpc's queues.
            with open("/proc/thread-self/net/netfilter/nfnetlink_queue") as fh:
                queues = [line.split() for line in fh]
        bound = any(q and q[0] == str(QUEUE_NUM) for q in queues)
        return {"mangle": rules(self.lab, "mangle"), "queue_bound": bound}

    def verify(self) -> tuple[bool, State]:
        return settled(self._state, lambda st: st["queue_bound"] and f"-A {self._rule()}" in st["mangle"])

    def verify_reverted(self) -> tuple[bool, State]:
        return settled(self._state, lambda st: f"-A {self._rule()}" not in st["mangle"])

    def effect(self) -> dict[str, bool]:
        return {"netem": bool(self.p.delay or self.p.jitter or self.p.loss)}


FAULTS: tuple[type[Fault], ...] = (Blackhole, Netem)
