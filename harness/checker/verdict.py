"""The checker: a verdict as a pure function of the history, composed of checks.

healthy          no fault touched the function and every invocation succeeded
recovered        the function ran under a fault and the final invocations succeed;
                 shown as `absorbed` (ABSORBED) when nothing failed at all
stuck            the last invocation still fails after the fault cleared
broken           a configuration mistake (a handler, module or bootstrap that is not
                 there, a syntax error): never a finding; `enirace run` exits 2
not_exercised    the fault came and went but the function never tried the network
                 meanwhile (absorbed by not being there); tests nothing
fault_not_armed  a fault did not take effect (verify failed, or it never fired)
harness_error    the harness itself failed; says nothing about the handler

Each check reads the whole history and returns its part: the gates a verdict
that ends judging (the harness failed, a fault was not armed), handler_verdict
the verdict about the handler, the evidence what the packets add to it. The
error classes, the fault windows and the recovery point are in their own
modules, so the plugin, the reports and `enirace judge` use the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.checker import windows as win
from harness.checker.config import misconfiguration
from harness.checker.evidence import explain
from harness.checker.exercise import unexercised
from harness.checker.recovery import Failure, failures, invocation_ends, recovery_point
from harness.history import schema
from harness.history.recorder import Event

# The one word people read for a recovered trial in which no invocation (and no
# init) failed: run, judge, demo, sweep and the report print it. The stored
# value stays "recovered" (verdict.json and expect: are API).
ABSORBED = "absorbed"
ABSORBED_MEANS = "the fault hit, no invocation failed"

# Verdicts that say nothing about the handler, so packets have nothing to explain.
NOT_ABOUT_THE_HANDLER = ("harness_error", "broken", "fault_not_armed", "not_exercised")


@dataclass
class Verdict:
    verdict: str
    reason: str
    invocations: int = 0
    failed_invocations: int = 0
    init_errors: int = 0
    reinit_needed: bool = False
    time_to_recovery_ms: float | None = None
    fault_cleared_ms: float | None = None
    exposed: bool = False
    failures: list[Failure] = field(default_factory=list)
    # What the packet capture shows below the error text (harness/checker/evidence.py).
    evidence: list[str] = field(default_factory=list)

    @property
    def error_classes(self) -> list[str]:
        return sorted({f.error_class for f in self.failures})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["error_classes"] = self.error_classes
        return out


def shown(verdict: Verdict | dict[str, Any]) -> str:
    """The verdict as people read it: ABSORBED for a recovered verdict with nothing
    failed, else the stored value."""
    v = verdict.to_dict() if isinstance(verdict, Verdict) else verdict
    if v.get("verdict") == "recovered" and not (v.get("failed_invocations") or v.get("init_errors")
                                                or v.get("failures")):
        return ABSORBED
    return str(v.get("verdict"))


def harness_failed(events: list[Event]) -> Verdict | None:
    """harness_error when the harness recorded that it failed."""
    for e in events:
        if e["kind"] == schema.HARNESS_ERROR:
            return Verdict("harness_error", e.get("error", "the harness failed"))
    return None


def fault_not_armed(events: list[Event]) -> Verdict | None:
    """fault_not_armed for the first fault (or initial state) that did not take effect."""
    for e in events:
        if e["kind"] == schema.INITIAL_STATE and not e.get("verified", True):
            return Verdict("fault_not_armed", f"initial state eni: {e.get('eni')} did not hold: {e.get('state')}")
        if e["kind"] == schema.FAULT and not e.get("verified"):
            why = e.get("error") or f"kernel state after it: {e.get('state')}"
            step = f" ({e['step']})" if e.get("step", "apply") != "apply" else ""
            return Verdict("fault_not_armed",
                           f"fault {e['fault']}{step} at {e.get('trigger')} did not take effect ({why})")
        if e["kind"] == schema.RESTORE and not e.get("verified"):
            return Verdict("fault_not_armed", f"the SnapStart restore's changes did not take: {e.get('changes')}")
        if e["kind"] == schema.FAULT_SKIPPED:
            return Verdict("fault_not_armed", f"fault {e['fault']} at {e.get('trigger')} never fired: {e.get('why')}")
        if e["kind"] in (schema.FREEZE, schema.THAW) and not e.get("verified") and _freeze_triggered(events):
            return Verdict("fault_not_armed", f"the {e['kind']} of runtime {e.get('generation')} did not take "
                                              f"({e.get('method')}: {e.get('state')}), and the schedule fires on it")
    return None


def _freeze_triggered(events: list[Event]) -> bool:
    """Does a schedule entry fire at a freeze or a thaw?"""
    return any(str(entry.get("trigger", "")).split("#")[0].split("+")[0].strip() in (schema.FREEZE, schema.THAW)
               for e in events if e["kind"] == schema.SCHEDULE for entry in e.get("entries", ()))


def broken(events: list[Event]) -> Verdict | None:
    """broken when the runtime reported a configuration mistake (harness/checker/config.py)."""
    why = misconfiguration(events)
    return None if why is None else Verdict("broken", why)


GATES: tuple[Callable[[list[Event]], Verdict | None], ...] = (harness_failed, broken, fault_not_armed)


def judge(events: list[Event]) -> Verdict:
    for gate in GATES:
        stop = gate(events)
        if stop is not None:
            return stop
    verdict = handler_verdict(events)
    verdict = not_exercised(events, verdict) or verdict
    if verdict.verdict not in NOT_ABOUT_THE_HANDLER:
        verdict.evidence = explain(events)
    return verdict


def not_exercised(events: list[Event], verdict: Verdict) -> Verdict | None:
    """not_exercised for an absorbed trial whose function never tried the network
    while it was impaired (harness/checker/exercise.py)."""
    if verdict.verdict != "recovered" or verdict.failed_invocations or verdict.init_errors:
        return None
    why = unexercised(events)
    if why is None:
        return None
    out = Verdict("not_exercised", f"the fault never met the function: {why}", **{
        k: getattr(verdict, k) for k in ("invocations", "fault_cleared_ms", "exposed", "failures")})
    return out


def healthy_after(events: list[Event]) -> int | None:
    """expect.healthy_after, as the trial recorded it (trial_start)."""
    return next((e.get("healthy_after") for e in events if e["kind"] == schema.TRIAL_START), None)


def _relapse(events: list[Event], ends: list[Event], cleared: float | None, n: int) -> str | None:
    """Why the last n invocations after the fault cleared are not all good, or None."""
    starts = {e["n"]: e["t_ms"] for e in events if e["kind"] == schema.INVOKE_START}
    after = [e for e in ends if cleared is None or starts.get(e["n"], float(e["t_ms"])) >= cleared]
    bad = [e for e in after[-n:] if e["status"] != "ok"]
    if bad:
        return f"invocation {bad[-1]['n']} failed after it had recovered (healthy_after: {n})"
    if len(after) < n:
        return f"only {len(after)} invocation(s) started after the fault cleared; healthy_after: {n} needs {n}"
    return None


def handler_verdict(events: list[Event]) -> Verdict:
    """stuck, recovered or healthy, from the invocations and the fault windows."""
    ends = invocation_ends(events)
    if not ends:
        return Verdict("harness_error", "no invocation completed")
    failed = failures(events)
    windows = win.impaired_windows(events)
    cleared = win.cleared_at(windows)
    starts = [e["t_ms"] for e in events if e["kind"] in (schema.INIT_START, schema.INVOKE_START)]
    exposed = win.touches(windows, min(starts) if starts else 0.0, ends[-1]["t_ms"])
    failed_n = sum(1 for e in ends if e["status"] != "ok")
    base: dict[str, Any] = dict(invocations=len(ends), failed_invocations=failed_n,
                                init_errors=sum(1 for e in events if e["kind"] == schema.INIT_ERROR),
                                fault_cleared_ms=cleared, exposed=exposed, failures=failed)
    point = recovery_point(events, cleared)
    fault, cleared_when = _the_fault(events)
    n_after = healthy_after(events)
    relapse = _relapse(events, ends, cleared, n_after) if n_after and point is not None else None
    if relapse is not None:
        return Verdict("stuck", relapse, **base)
    if point is None:
        last = ends[-1]
        where = (f"{fault} is still active at the end" if win.still_impaired(windows)
                 else f"{last['t_ms'] - cleared:.0f} ms after {cleared_when}" if cleared is not None
                 else "with no fault active")
        reason = (f"invocation {last['n']} still fails {where}: "
                  f"{failed[-1].error_class}: {_short(failed[-1].text)}")
        return Verdict("stuck", reason, **base)
    if not failed and not exposed:
        return Verdict("healthy", f"all {len(ends)} invocations succeeded and no fault touched the function",
                       **base)
    ttr = point.time_to_recovery_ms
    if failed:
        how = "through a re-init" if point.reinit else "in the same runtime"
        inits = f" and {base['init_errors']} init(s) failed" if base["init_errors"] else ""
        reason = (f"{failed_n} of {len(ends)} invocations failed{inits}; "
                  f"recovered {how} from invocation {point.invocation}")
    else:
        reason = f"ran under {fault} and all {len(ends)} invocations succeeded"
    if ttr is not None:
        reason += f", {ttr:.0f} ms after {cleared_when}"
    return Verdict("recovered", reason, reinit_needed=point.reinit, time_to_recovery_ms=ttr, **base)


def _the_fault(events: list[Event]) -> tuple[str, str]:
    """What changed the network, and when it was over, for the reason: a SnapStart
    restore with no fault fired is "the restore"."""
    fired = any(e["kind"] == schema.FAULT and e.get("verified") for e in events)
    restored = any(e["kind"] == schema.RESTORE and e.get("verified") for e in events)
    return ("the restore", "the restore") if restored and not fired else ("the fault", "the fault cleared")


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
