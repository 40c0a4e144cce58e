"""NAT faults (they need `lab.nat`): forget idle flows now, or reset every flow now.

`reap_idle` deletes from conntrack every flow to the service idle at least
`min_idle` (to the second: ctnetlink reports whole seconds, and a flow is only
forgotten when it is surely that idle). Nothing is sent: the flow's next packet
meets the NAT's `on_expired` (a RST, or silence), exactly as after a real idle
timeout, so a reap during a freeze models 350 s of idleness in no time.
`reset_flows` resets both ends of every established flow at once (see Nat.reset_established).
Both verify by reading conntrack back.
"""

from __future__ import annotations

import math
import time
from typing import Any

from harness.lab.nat import Flow, Nat
from harness.lab.services import SERVICE_PORT
from harness.lab.topology import Lab
from harness.nemesis.fault import Fault, FaultNotApplicable, State
from harness.scenario.fault_params import ReapIdleParams

# How long verify waits for the RSTs of reset_flows to pass the NAT.
RESET_SETTLE_S = 0.5


def _nat(lab: Lab, fault: str) -> Nat:
    if lab.nat is None:
        raise FaultNotApplicable(f"{fault} acts on the lab's NAT; add lab.nat: {{idle_timeout: 350s}}")
    return lab.nat


def _flows(flows: list[Flow]) -> list[dict[str, Any]]:
    return [f.as_dict() for f in flows]


class ReapIdle(Fault):
    name = "reap_idle"
    transient = True  # nothing stays impaired: only the reaped flows are gone
    p: ReapIdleParams

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(lab, **params)
        self.reaped: list[Flow] = []

    def prepare(self) -> None:
        _nat(self.lab, self.name)

    def apply(self) -> State:
        nat = _nat(self.lab, self.name)
        min_s = math.ceil(self.p.min_idle / 1000)
        flows = nat.flows()
        self.reaped = nat.forget([f for f in flows if f.idle_s >= min_s])
        return {"min_idle_s": min_s, "reaped": _flows(self.reaped),
                "kept": _flows([f for f in flows if f not in self.reaped])}

    def verify(self) -> tuple[bool, State]:
        """Every reaped flow is gone from conntrack, and there was one to reap (a
        reap that found nothing idle did not model anything)."""
        left = _nat(self.lab, self.name).still_there(self.reaped)
        return bool(self.reaped) and not left, {"reaped": len(self.reaped), "still_there": _flows(left)}

    def revert(self) -> State:
        return {}  # a forgotten flow stays forgotten

    def verify_reverted(self) -> tuple[bool, State]:
        return True, {}

    def effect(self) -> dict[str, bool]:
        return {"nat": False}


class ResetFlows(Fault):
    name = "reset_flows"
    transient = True

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(lab, **params)
        self.reset: list[Flow] = []

    def prepare(self) -> None:
        _nat(self.lab, self.name)

    def apply(self) -> State:
        nat = _nat(self.lab, self.name)
        self.reset = [f for f in nat.flows() if f.state == "ESTABLISHED"]
        nat.reset_established(SERVICE_PORT)
        return {"reset": _flows(self.reset)}

    def verify(self) -> tuple[bool, State]:
        """conntrack saw the RSTs: none of the flows is established any more."""
        nat = _nat(self.lab, self.name)
        deadline = time.monotonic() + RESET_SETTLE_S
        while True:
            now = nat.still_there(self.reset)
            still = [f for f in now if f.state == "ESTABLISHED"]
            if not still or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        after = [{"client": f.client, "state": f.state} for f in now]
        return bool(self.reset) and not still, {"reset": len(self.reset), "states_after": after,
                                                "still_established": _flows(still)}

    def revert(self) -> State:
        return {}

    def verify_reverted(self) -> tuple[bool, State]:
        return True, {}

    def effect(self) -> dict[str, bool]:
        return {"nat": False}


FAULTS: tuple[type[Fault], ...] = (ReapIdle, ResetFlows)
