"""Faults: network actions on a lab, each with apply, revert and verify.

`verify` reads the real state back from the kernel, so a fault that silently did
nothing is caught (the trial becomes fault_not_armed). `impairs` says whether the
network is impaired once the fault has been applied; the checker derives the
fault windows from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from harness.lab.topology import Eni, Lab


class Fault:
    name: ClassVar[str]
    impairs: ClassVar[bool]

    def __init__(self, lab: Lab, **params: Any) -> None:
        self.lab = lab
        self.params = params

    def apply(self) -> dict[str, Any]:
        raise NotImplementedError

    def revert(self) -> dict[str, Any]:
        raise NotImplementedError

    def verify(self) -> tuple[bool, dict[str, Any]]:
        """(took effect?, what the kernel says)."""
        raise NotImplementedError


# Carrier (operstate UP) follows a veth's admin state asynchronously; verify waits
# this long for the kernel to settle before calling a fault a no-op.
SETTLE_S = 0.5


def settled(read: Callable[[], dict[str, Any]], check: Callable[[dict[str, Any]], bool]
            ) -> tuple[bool, dict[str, Any]]:
    deadline = time.monotonic() + SETTLE_S
    while True:
        state = read()
        if check(state) or time.monotonic() > deadline:
            return check(state), state
        time.sleep(0.002)


def eni_usable(state: dict[str, Any]) -> bool:
    return any(link["up"] and link["addresses"] for link in state["links"]) and bool(state["default_via"])


class AttachEni(Fault):
    name = "attach_eni"
    impairs = False

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(lab, **params)
        self.eni: Eni | None = None

    def apply(self) -> dict[str, Any]:
        self.eni = self.lab.attach_eni()
        return {"ifname": self.eni.ifname, "address": str(self.eni.address)}

    def revert(self) -> dict[str, Any]:
        gone = self.lab.detach_eni(self.eni)
        return {"ifname": gone.ifname if gone else None}

    def verify(self) -> tuple[bool, dict[str, Any]]:
        eni = self.eni

        def check(state: dict[str, Any]) -> bool:
            return eni_usable(state) and (eni is None or any(
                link["ifname"] == eni.ifname and str(eni.address) in link["addresses"]
                for link in state["links"]))

        return settled(self.lab.sandbox_state, check)


class DetachEni(Fault):
    name = "detach_eni"
    impairs = True

    def __init__(self, lab: Lab, **params: Any) -> None:
        super().__init__(lab, **params)
        self.removed: Eni | None = None

    def apply(self) -> dict[str, Any]:
        self.removed = self.lab.detach_eni()
        return {"ifname": self.removed.ifname if self.removed else None}

    def revert(self) -> dict[str, Any]:
        eni = self.lab.attach_eni(same_address_as=self.removed)
        return {"ifname": eni.ifname, "address": str(eni.address)}

    def verify(self) -> tuple[bool, dict[str, Any]]:
        return settled(self.lab.sandbox_state,
                       lambda state: not state["links"] and state["default_via"] is None)


CATALOGUE: dict[str, type[Fault]] = {cls.name: cls for cls in (AttachEni, DetachEni)}


def make(name: str, lab: Lab, params: dict[str, Any]) -> Fault:
    return CATALOGUE[name](lab, **params)
