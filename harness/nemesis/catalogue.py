"""Every fault by its scenario name (`do:`): the classes of eni.py, traffic.py,
dns.py and nat.py, checked against the names the scenario model accepts."""

from __future__ import annotations

from typing import Any

from harness.lab.topology import Lab
from harness.nemesis import dns, eni, nat, traffic
from harness.nemesis.fault import Fault
from harness.scenario import fault_params

FAULTS: dict[str, type[Fault]] = {cls.name: cls for module in (eni, traffic, dns, nat) for cls in module.FAULTS}
if set(FAULTS) != set(fault_params.FAULT_NAMES):  # a new fault named in one place only
    raise RuntimeError(f"fault names and implementations differ: {sorted(set(FAULTS) ^ set(fault_params.FAULT_NAMES))}")


def make(name: str, lab: Lab, params: dict[str, Any]) -> Fault:
    """The fault `name` on `lab`; its `with:` parameters are validated on the way."""
    return FAULTS[name](lab, **params)
