"""The checker: a verdict as a pure function of the history.

healthy          no fault touched the function and every invocation succeeded
recovered        the function ran under a fault and the final invocations succeed
stuck            the last invocation still fails after the fault cleared
fault_not_armed  a fault did not take effect (verify failed, or it never fired)
harness_error    the harness itself failed; says nothing about the handler
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.history.recorder import Event

# Order matters: a requests ConnectionError caused by a failed lookup is a dns failure.
_CLASSES: list[tuple[str, re.Pattern[str]]] = [
    # Killed for exceeding function.memory_mb (the emulator's Runtime.OutOfMemory),
    # or the runtime's own out-of-memory error.
    ("oom", re.compile(r"Runtime\.OutOfMemory|\bMemoryError\b|OutOfMemoryException", re.I)),
    ("dns", re.compile(
        r"Temporary failure in name resolution|Resource temporarily unavailable|EAI_AGAIN"
        r"|Name or service not known|No address associated with hostname|NameResolutionError"
        r"|Failed to resolve|getaddrinfo|gaierror|could not be resolved|HostNotFound|TryAgain"
        r"|No such host is known", re.I)),
    ("timeout", re.compile(
        r"Task timed out|timed out|Timeout|TaskCanceledException|deadline exceeded", re.I)),
    ("connect", re.compile(
        r"Connection refused|Network is unreachable|No route to host|NewConnectionError"
        r"|ConnectionError|Connection reset|ECONNREFUSED|ENETUNREACH|EHOSTUNREACH"
        r"|NetworkUnreachable|HostUnreachable|ConnectionRefused|RemoteDisconnected", re.I)),
]


# The operating system's own words, preferred over library wrappers in headlines.
_OS_PHRASES = ("Temporary failure in name resolution", "Resource temporarily unavailable",
               "Name or service not known", "Network is unreachable", "No route to host",
               "Connection refused", "Connection reset")


def headline(text: str, limit: int = 90) -> str:
    """'ErrorType: <the phrase that classified it>' — what a table has room for."""
    etype = text.split(":", 1)[0] if ":" in text[:60] else ""
    for phrase in _OS_PHRASES:
        if etype and phrase.lower() in text.lower():
            return f"{etype}: {phrase}"
    for _, pattern in _CLASSES:
        m = pattern.search(text or "")
        if m and etype:
            return f"{etype}: {m.group(0)}"
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def classify(text: str, phase: str = "invoke") -> str:
    """oom | dns | timeout | connect | init_error | other, from an error's text."""
    for name, pattern in _CLASSES:
        if pattern.search(text or ""):
            return name
    return "init_error" if phase == "init" else "other"


@dataclass
class Failure:
    phase: str  # init | invoke
    error_class: str
    text: str
    t_ms: float
    invocation: int | None = None


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


def _network_changes(events: list[Event]) -> list[Event]:
    return sorted((e for e in events if (e["kind"] == "fault" and e.get("verified"))
                   or e["kind"] == "initial_state"), key=lambda e: e["t_ms"])


def _apply_change(state: dict[str, bool], event: Event) -> None:
    """A change sets the aspects it names (eni, link, dns, ...; see lab/faults.py).
    An event without aspects (older histories) sets the whole network at once."""
    aspects = event.get("aspects")
    if aspects is None:
        state.clear()
        state["network"] = bool(event.get("impairs"))
    else:
        state.update(aspects)


def aspects_at(events: list[Event], t_ms: float) -> dict[str, bool]:
    """Which aspects of the network were impaired at `t_ms`."""
    state: dict[str, bool] = {}
    for e in _network_changes(events):
        if e["t_ms"] > t_ms:
            break
        _apply_change(state, e)
    return {k: v for k, v in state.items() if v}


def impaired_windows(events: list[Event]) -> list[tuple[float, float | None]]:
    """Intervals during which the network was impaired (None: still at the end):
    while any aspect is impaired, plus the blip of a transient fault (a swap)."""
    windows: list[tuple[float, float | None]] = []
    opened: float | None = None
    state: dict[str, bool] = {}
    for e in _network_changes(events):
        _apply_change(state, e)
        if any(state.values()) and opened is None:
            opened = e["t_ms"]
        elif not any(state.values()) and opened is not None:
            windows.append((opened, e["t_ms"]))
            opened = None
        if e.get("blip_ms"):
            windows.append((float(e["blip_ms"][0]), float(e["blip_ms"][1])))
    if opened is not None:
        windows.append((opened, None))
    return _merged(windows)


def _merged(windows: list[tuple[float, float | None]]) -> list[tuple[float, float | None]]:
    out: list[tuple[float, float | None]] = []
    for start, end in sorted(windows, key=lambda w: w[0]):
        if out and (out[-1][1] is None or start <= out[-1][1]):
            last_end = out[-1][1]
            out[-1] = (out[-1][0], None if last_end is None or end is None else max(last_end, end))
        else:
            out.append((start, end))
    return out


def _failures(events: list[Event]) -> list[Failure]:
    """Failed invocations, plus init failures of the init phase (those inside an
    invoke already show up as that invocation's failure)."""
    init_phase = {e.get("generation") for e in events
                  if e["kind"] == "init_start" and e.get("phase") == "init"}
    out = []
    for e in sorted(events, key=lambda e: e["t_ms"]):
        if e["kind"] == "init_error" and e.get("generation") in init_phase:
            text = f"{e.get('error_type', '')}: {e.get('error_message', '')}".strip(": ")
            out.append(Failure("init", classify(text, "init"), text, e["t_ms"]))
        elif e["kind"] == "invoke_end" and e.get("status") != "ok":
            text = f"{e.get('error_type', '')}: {e.get('error_message', '')}".strip(": ")
            phase = "init" if e.get("status") == "init_error" else "invoke"
            out.append(Failure(phase, classify(text, phase), text, e["t_ms"], e.get("n")))
    return out


def judge(events: list[Event]) -> Verdict:
    verdict = _judge(events)
    if verdict.verdict not in ("harness_error", "fault_not_armed"):
        from harness.checker.evidence import explain

        verdict.evidence = explain(events)
    return verdict


def _judge(events: list[Event]) -> Verdict:
    for e in events:
        if e["kind"] == "harness_error":
            return Verdict("harness_error", e.get("error", "the harness failed"))
    for e in events:
        if e["kind"] == "initial_state" and not e.get("verified", True):
            return Verdict("fault_not_armed", f"initial state eni: {e.get('eni')} did not hold: {e.get('state')}")
        if e["kind"] == "fault" and not e.get("verified"):
            why = e.get("error") or f"kernel state after it: {e.get('state')}"
            step = f" ({e['step']})" if e.get("step", "apply") != "apply" else ""
            return Verdict("fault_not_armed",
                           f"fault {e['fault']}{step} at {e.get('trigger')} did not take effect ({why})")
        if e["kind"] == "fault_skipped":
            return Verdict("fault_not_armed", f"fault {e['fault']} at {e.get('trigger')} never fired: {e.get('why')}")

    ends = sorted((e for e in events if e["kind"] == "invoke_end"), key=lambda e: e["n"])
    if not ends:
        return Verdict("harness_error", "no invocation completed")
    failures = _failures(events)
    windows = impaired_windows(events)
    cleared = max((w[1] for w in windows if w[1] is not None), default=None)
    still_impaired = any(w[1] is None for w in windows)
    starts = [e["t_ms"] for e in events if e["kind"] in ("init_start", "invoke_start")]
    active_from = min(starts) if starts else 0.0
    active_to = ends[-1]["t_ms"]
    exposed = any(w[0] <= active_to and (w[1] is None or w[1] >= active_from) for w in windows)

    failed = [e for e in ends if e["status"] != "ok"]
    base: dict[str, Any] = dict(invocations=len(ends), failed_invocations=len(failed),
                init_errors=sum(1 for e in events if e["kind"] == "init_error"),
                fault_cleared_ms=cleared, exposed=exposed, failures=failures)

    last = ends[-1]
    if last["status"] != "ok":
        last_fail = failures[-1]
        where = ("the fault is still active at the end" if still_impaired
                 else f"{last['t_ms'] - cleared:.0f} ms after the fault cleared" if cleared is not None
                 else "with no fault active")
        reason = (f"invocation {last['n']} still fails {where}: "
                  f"{last_fail.error_class}: {_short(last_fail.text)}")
        return Verdict("stuck", reason, **base)

    # The recovery point: the first invocation of the final run of successes.
    streak = len(ends)
    while streak > 0 and ends[streak - 1]["status"] == "ok":
        streak -= 1
    first_good = ends[streak]
    reinit = any(e.get("reinit") for e in ends[: streak + 1])
    if not failures and not exposed:
        return Verdict("healthy", f"all {len(ends)} invocations succeeded and no fault touched the function",
                       **base)
    ttr = None if cleared is None else round(max(0.0, first_good["t_ms"] - cleared), 3)
    if failures:
        how = "through a re-init" if reinit else "in the same runtime"
        inits = f" and {base['init_errors']} init(s) failed" if base["init_errors"] else ""
        reason = (f"{len(failed)} of {len(ends)} invocations failed{inits}; "
                  f"recovered {how} from invocation {first_good['n']}")
    else:
        reason = f"ran under the fault and all {len(ends)} invocations succeeded (absorbed)"
    if ttr is not None:
        reason += f", {ttr:.0f} ms after the fault cleared"
    return Verdict("recovered", reason, reinit_needed=reinit, time_to_recovery_ms=ttr, **base)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
