"""What a SnapStart restore does to the lab's network (snapstart.new_address and
drop_flows), applied while the environment is still frozen.

Lambda restores a snapshot on another host, maybe days later: the environment
gets a new ENI with a new address, and every flow it had is gone. Here, in this
order: the ENI is swapped for one with a new address (the nemesis's swap_eni,
verified from the kernel), then the service shuts its keep-alive connections and
the NAT forgets every flow. The service's FIN goes to the old address, which no
longer exists, so the restored function learns nothing until it uses a pooled
connection: as on Lambda, the first use hangs or is reset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.emulator.restore import Plan
from harness.lab.topology import Lab
from harness.nemesis.eni import SwapEni
from harness.scenario.snap_config import SnapStartConfig


def network_changes(lab: Lab, config: SnapStartConfig) -> Callable[[], dict[str, Any]]:
    """The restore's changes for the emulator's Plan: a callable returning what it did."""

    def apply() -> dict[str, Any]:
        out: dict[str, Any] = {"new_address": config.new_address, "drop_flows": config.drop_flows}
        eni = lab.current_eni()
        if config.new_address and eni is not None:
            swap = SwapEni(lab, ip="new")
            state = swap.apply()
            verified, _ = swap.verify()
            out.update(address=state["to"]["address"], from_address=state["from"]["address"],
                       verified=verified)
        else:
            out["address"] = str(eni.address) if eni is not None else None
        if config.drop_flows:
            out["service_dropped"] = lab.service.drop_connections() if lab.service is not None else 0
            if lab.nat is not None:
                out["nat_forgot"] = len(lab.nat.forget(lab.nat.flows()))
        return out

    return apply


def plan_for(scenario: Any, lab: Lab) -> Plan | None:
    """The emulator's restore plan for a scenario (None: not a SnapStart function)."""
    config = scenario.snapstart
    if not scenario.function.snapstart or config is None:
        return None
    return Plan(mode=config.mode, restore_after_s=config.restore_after / 1000,
                restore_timeout_s=config.restore_timeout / 1000, changes=network_changes(lab, config))
