"""What failed and where the handler came back: the failed invocations (and failed
inits of the init phase), the recovery point and the time to recovery."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from harness.checker.classify import classify_event, error_text, failure_phase
from harness.history import schema
from harness.history.recorder import Event


@dataclass
class Failure:
    phase: str  # init | invoke
    error_class: str
    text: str
    t_ms: float
    invocation: int | None = None


def invocation_ends(events: list[Event]) -> list[Event]:
    """The invoke_end events, in invocation order."""
    return sorted((e for e in events if e["kind"] == schema.INVOKE_END), key=lambda e: e["n"])


def failed_events(events: list[Event]) -> Iterator[Event]:
    """The failed invoke_ends and the init_errors of the init phase, in the order
    given (an init that fails inside an invoke already shows up as that
    invocation's failure)."""
    init_phase = {e.get("generation") for e in events
                  if e["kind"] == schema.INIT_START and e.get("phase") == "init"}
    for e in events:
        if e["kind"] == schema.INIT_ERROR and e.get("generation") in init_phase:
            yield e
        elif e["kind"] == schema.INVOKE_END and e.get("status") != "ok":
            yield e


def failures(events: list[Event]) -> list[Failure]:
    """Every failure of the trial, in time order, classified."""
    out = []
    for e in failed_events(sorted(events, key=lambda e: e["t_ms"])):
        n = e.get("n") if e["kind"] == schema.INVOKE_END else None
        out.append(Failure(failure_phase(e), classify_event(e), error_text(e), e["t_ms"], n))
    return out


@dataclass(frozen=True)
class RecoveryPoint:
    invocation: int  # the first invocation of the final run of successes
    after_network: int  # its place among invocations started after the fault cleared (0: in flight)
    fault_cleared_ms: float | None
    t_ms: float = 0.0  # when that invocation ended
    reinit: bool = False  # a re-init came before it or with it

    @property
    def time_to_recovery_ms(self) -> float | None:
        """From the fault clearing to the end of the first lasting success."""
        if self.fault_cleared_ms is None:
            return None
        return round(max(0.0, self.t_ms - self.fault_cleared_ms), 3)


def recovery_point(events: list[Event], fault_cleared_ms: float | None) -> RecoveryPoint | None:
    """Where the handler came back, or None if the last invocation still fails
    (or none completed)."""
    ends = invocation_ends(events)
    if not ends or ends[-1]["status"] != "ok":
        return None
    first_good = len(ends) - 1
    while first_good > 0 and ends[first_good - 1]["status"] == "ok":
        first_good -= 1
    if fault_cleared_ms is None:
        # No fault ever cleared: count from the first invocation.
        place = first_good + 1
    else:
        starts = {e["n"]: e["t_ms"] for e in events if e["kind"] == schema.INVOKE_START}
        place = sum(1 for e in ends[: first_good + 1] if starts.get(e["n"], float(e["t_ms"])) >= fault_cleared_ms)
    reinit = any(e.get("reinit") for e in ends[: first_good + 1])
    good = ends[first_good]
    return RecoveryPoint(good["n"], place, fault_cleared_ms, float(good["t_ms"]), reinit)
