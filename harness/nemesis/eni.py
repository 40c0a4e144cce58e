"""ENI faults: attach, detach, swap, link down/up and flap.

All act on the lab's ENI (a veth pair: sandbox end + bridge end in the vpc).
Link faults act on the bridge end: the sandbox end keeps its address and routes
but loses carrier, so ARP fails: connects end in EHOSTUNREACH after ~3 s and
lookups in EAI_AGAIN after ~6 s (glibc's default resolver timeouts), rather than
the immediate ENETUNREACH and EAI_AGAIN of a missing interface.
"""

from __future__ import annotations

import time
from typing import Any

from harness.lab.topology import Eni, Lab
from harness.nemesis.fault import Fault, FaultNotApplicable, State, Step, eni_usable, link_named, settled
from harness.scenario.fault_params import FlapParams, SwapParams


def _eni_detail(eni: Eni) -> State:
    return {"ifname": eni.ifname, "address": str(eni.address), "index": eni.index}


def _present(lab: Lab) -> Eni:
    eni = lab.current_eni()
    if eni is None:
        raise FaultNotApplicable("the sandbox has no ENI")
    return eni


def _usable_with(lab: Lab, eni: Eni) -> tuple[bool, State]:
    """The sandbox end is up with its address and the default route, and the
    bridge end is up too (traffic flows both ways)."""
    def read() -> State:
        return {**lab.sandbox_state(), "bridge_end_up": lab.bridge_end_up(eni)}

    def check(state: State) -> bool:
        link = link_named(state, eni.ifname)
        return (eni_usable(state) and link is not None and str(eni.address) in link["addresses"]
                and state["bridge_end_up"])

    return settled(read, check)


def _gone(lab: Lab, eni: Eni) -> tuple[bool, State]:
    return settled(lab.sandbox_state, lambda state: link_named(state, eni.ifname) is None)


class AttachEni(Fault):
    """Create the ENI, address it, add the default route."""

    name = "attach_eni"

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(lab, **params)
        self.eni: Eni | None = None

    def prepare(self) -> None:
        self.eni = self.lab.plan_eni()

    def apply(self) -> State:
        self.eni = self.lab.plug_eni(self.eni or self.lab.plan_eni())
        return _eni_detail(self.eni)

    def verify(self) -> tuple[bool, State]:
        assert self.eni is not None
        return _usable_with(self.lab, self.eni)

    def revert(self) -> State:
        assert self.eni is not None
        self.lab.detach_eni(self.eni)
        return _eni_detail(self.eni)

    def verify_reverted(self) -> tuple[bool, State]:
        assert self.eni is not None
        return _gone(self.lab, self.eni)

    def effect(self) -> dict[str, bool]:
        return {"eni": False, "link": False}

    def revert_effect(self) -> dict[str, bool]:
        return {"eni": True}


class DetachEni(Fault):
    """Delete the ENI: the sandbox is left with `lo` only."""

    name = "detach_eni"

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(lab, **params)
        self.removed: Eni | None = None
        self.restored: Eni | None = None

    def apply(self) -> State:
        self.removed = self.lab.detach_eni(_present(self.lab))
        assert self.removed is not None
        return _eni_detail(self.removed)

    def verify(self) -> tuple[bool, State]:
        assert self.removed is not None
        removed = self.removed
        return settled(self.lab.sandbox_state,
                       lambda st: link_named(st, removed.ifname) is None and not eni_usable(st))

    def revert(self) -> State:
        self.restored = self.lab.attach_eni(same_address_as=self.removed)
        return _eni_detail(self.restored)

    def verify_reverted(self) -> tuple[bool, State]:
        assert self.restored is not None
        return _usable_with(self.lab, self.restored)

    def effect(self) -> dict[str, bool]:
        return {"eni": True}

    def revert_effect(self) -> dict[str, bool]:
        return {"eni": False, "link": False}


class SwapEni(Fault):
    """Detach the current ENI and attach a new one, with a new or the same IP.
    Connections pooled on a new-IP swap die silently (no RST)."""

    name = "swap_eni"
    transient = True
    p: SwapParams

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(lab, **params)
        self.old: Eni | None = None
        self.new: Eni | None = None

    def _swap(self, old: Eni, same_address_as: Eni | None) -> State:
        planned = self.lab.plan_eni(same_address_as)
        t0 = time.monotonic()
        self.lab.detach_eni(old)
        t1 = time.monotonic()
        new = self.lab.plug_eni(planned)
        gap_ms = (time.monotonic() - t1) * 1000
        return {"from": _eni_detail(old), "to": _eni_detail(new), "detach_ms": round((t1 - t0) * 1000, 3),
                "attach_ms": round(gap_ms, 3), "eni": new}

    def apply(self) -> State:
        self.old = _present(self.lab)
        out = self._swap(self.old, self.old if self.p.ip == "same" else None)
        self.new = out.pop("eni")
        return out

    def verify(self) -> tuple[bool, State]:
        assert self.old is not None and self.new is not None
        old, new = self.old, self.new
        same_ip = self.p.ip == "same"

        def check(state: State) -> bool:
            link = link_named(state, new.ifname)
            return (eni_usable(state) and link_named(state, old.ifname) is None and link is not None
                    and str(new.address) in link["addresses"]
                    and (new.address == old.address) == same_ip)

        return settled(self.lab.sandbox_state, check)

    def revert(self) -> State:
        """Swap back to an ENI with the original address."""
        assert self.old is not None and self.new is not None
        out = self._swap(self.new, self.old)
        self.new = out.pop("eni")
        return out

    def verify_reverted(self) -> tuple[bool, State]:
        assert self.new is not None
        return _usable_with(self.lab, self.new)

    def effect(self) -> dict[str, bool]:
        return {"eni": False, "link": False}

    def revert_effect(self) -> dict[str, bool]:
        return {"eni": False, "link": False}


class _LinkFault(Fault):
    """Sets the bridge end of the current ENI down (`down_on_apply`) or up."""

    down_on_apply: bool = True

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(lab, **params)
        self.eni: Eni | None = None

    def _set(self, down: bool) -> State:
        self.eni = self.eni or _present(self.lab)
        self.lab.set_peer_up(self.eni, not down)
        return {"ifname": self.eni.ifname, "index": self.eni.index, "peer": self.eni.peer,
                "carrier": not down}

    def _carrier_is(self, carrier: bool) -> tuple[bool, State]:
        assert self.eni is not None
        ifname = self.eni.ifname

        def check(state: State) -> bool:
            link = link_named(state, ifname)
            return link is not None and link["carrier"] == carrier and (not carrier or link["up"])

        return settled(self.lab.sandbox_state, check)

    def apply(self) -> State:
        return self._set(self.down_on_apply)

    def revert(self) -> State:
        return self._set(not self.down_on_apply)

    def verify(self) -> tuple[bool, State]:
        return self._carrier_is(not self.down_on_apply)

    def verify_reverted(self) -> tuple[bool, State]:
        return self._carrier_is(self.down_on_apply)

    def effect(self) -> dict[str, bool]:
        return {"link": self.down_on_apply}


class LinkDown(_LinkFault):
    name = "link_down"


class LinkUp(_LinkFault):
    name = "link_up"
    down_on_apply = False


class Flap(_LinkFault):
    """`count` cycles of link down for `down`, then up until the next period."""

    name = "flap"
    p: FlapParams

    def steps(self, for_ms: float | None) -> list[Step]:
        out = []
        for i in range(self.p.count):
            start = i * self.p.period
            out.append(Step(start, "apply", f"down {i + 1}/{self.p.count}"))
            out.append(Step(start + self.p.down_ms, "revert", f"up {i + 1}/{self.p.count}"))
        return out


FAULTS: tuple[type[Fault], ...] = (AttachEni, DetachEni, SwapEni, LinkDown, LinkUp, Flap)
