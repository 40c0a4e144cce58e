"""Faults: network actions on a lab, each with apply, revert and verify.

`verify` reads the real state back from the kernel or the resolver, so a fault
that silently did nothing is caught (the trial becomes fault_not_armed).

Each fault says what it does to the network as *aspects*: `eni` (no usable
interface), `link` (no carrier), `blackhole`, `dns`, `resolv_conf`, `netem`, each
True while impaired. The checker replays the aspects of the initial state and of
every verified firing; the network is impaired while any aspect is. That keeps
the fault windows right when faults overlap or a `for:` reverts one of them.
`impairs` is whether the fault's apply leaves an aspect impaired (for netem and
resolv_conf that depends on the parameters, so it is an instance property).

The faults themselves are in eni.py, traffic.py and dns.py; catalogue.py names them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.lab.topology import Lab
from harness.scenario import fault_params as fault_params

State = dict[str, Any]


@dataclass(frozen=True)
class Step:
    """One timed action of a firing: `apply` or `revert`, `at_ms` after the firing."""

    at_ms: float
    action: str  # apply | revert
    label: str


class Fault:
    name: ClassVar[str]
    # The fault changes the network only for the duration of its apply call (a swap):
    # the checker counts that short blip as a window of its own.
    transient: ClassVar[bool] = False

    def __init__(self, lab: Lab, **params: Any) -> None:
        self.lab = lab
        self.params = params
        self.p = fault_params.parse(self.name, params)
        self.seed = 0  # set by the nemesis from the trial seed: random choices repeat with it

    # -- what subclasses implement ---------------------------------------------------

    def prepare(self) -> None:
        """Called when the schedule is armed, well before the firing: do here
        whatever costs time and changes nothing the sandbox can see."""

    def apply(self) -> State:
        raise NotImplementedError

    def revert(self) -> State:
        raise NotImplementedError

    def verify(self) -> tuple[bool, State]:
        """(did apply take effect?, what the kernel or resolver says)."""
        raise NotImplementedError

    def verify_reverted(self) -> tuple[bool, State]:
        raise NotImplementedError

    def effect(self) -> dict[str, bool]:
        """Aspects after apply (True: impaired)."""
        raise NotImplementedError

    def revert_effect(self) -> dict[str, bool]:
        """Aspects after revert; by default each aspect of apply, flipped."""
        return {aspect: not impaired for aspect, impaired in self.effect().items()}

    # -- shared ------------------------------------------------------------------------

    @property
    def impairs(self) -> bool:
        return any(self.effect().values())

    def steps(self, for_ms: float | None) -> list[Step]:
        """The firing's timed actions: apply, and with `for:` a revert after it."""
        out = [Step(0.0, "apply", "apply")]
        if for_ms is not None:
            out.append(Step(for_ms, "revert", "revert"))
        return out


class FaultNotApplicable(RuntimeError):
    """The lab is not in a state the fault can act on (e.g. no ENI to detach)."""


# Carrier (operstate UP) follows a veth's admin state asynchronously; verify waits
# this long for the kernel to settle before calling a fault a no-op.
SETTLE_S = 0.5


def settled(read: Callable[[], State], check: Callable[[State], bool]) -> tuple[bool, State]:
    deadline = time.monotonic() + SETTLE_S
    while True:
        state = read()
        if check(state) or time.monotonic() > deadline:
            return check(state), state
        time.sleep(0.002)


def eni_usable(state: State) -> bool:
    return any(link["up"] and link["addresses"] for link in state["links"]) and bool(state["default_via"])


def link_named(state: State, ifname: str) -> dict[str, Any] | None:
    return next((link for link in state["links"] if link["ifname"] == ifname), None)
