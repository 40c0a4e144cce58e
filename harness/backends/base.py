"""What a backend is: how one trial's lab is built and how its function's runtimes
are started and driven. A trial chooses its backend once (backends.for_scenario)
and asks it for everything that differs between backends; nothing else in the
harness needs to know which one it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from harness.emulator.protocol import InvokeOutcome
    from harness.function.spec import LaunchSpec, OutputSink
    from harness.history.recorder import History
    from harness.lab.addressing import Subnet
    from harness.lab.topology import Lab
    from harness.ownership import Run
    from harness.scenario.model import Scenario

# History.record-like: the lab's resolver and service report through it.
Notify = Callable[..., Any]
# cleanup's remover of one kind of recorded object:
# (ident, run id, proof, dry_run) -> (outcome, why). Raises when removal fails.
Remover = Callable[[str, str, dict[str, Any], bool], tuple[str, str]]


@dataclass
class Check:
    """One row of `enirace doctor`: what was looked for, what was found, the fix."""

    name: str
    ok: bool
    found: str
    fix: str = ""
    required: bool = True


class RuntimeAPILike(Protocol):
    """The runtime API a trial drives: the harness's emulator, or (docker.rie:
    image) an image's own RIE."""

    def start(self) -> None:
        """Listen, and start the runtime (its init begins)."""
        ...

    def init(self) -> str:
        """Wait for the runtime's init to end (workload.init: eager); its outcome."""
        ...

    def invoke(self, payload: bytes) -> tuple[int, InvokeOutcome]:
        """One invocation; (its number, its outcome)."""
        ...

    def stop(self) -> None:
        """Kill the runtime and stop listening; safe to call more than once."""
        ...


class Backend(Protocol):
    name: str

    def preflight(self, scenario: Scenario) -> None:
        """Raise a one-line UserError for what cannot work (no engine, no image),
        before anything of the trial is built. Cached: safe to call per trial."""
        ...

    def make_lab(self, scenario: Scenario, run: Run, subnet: Subnet, notify: Notify) -> Lab:
        """The trial's lab, not yet up."""
        ...

    def make_runtime_api(self, scenario: Scenario, lab: Lab, history: History, launch: LaunchSpec,
                         output: OutputSink, emulator_log: Callable[[str], None]) -> RuntimeAPILike:
        """The runtime API of a lab that is up, not yet started."""
        ...

    def doctor_checks(self) -> list[Check]:
        """`enirace doctor`'s rows for what only this backend needs."""
        ...

    def removers(self) -> dict[str, Remover]:
        """cleanup's removers for the kinds of objects only this backend records."""
        ...
