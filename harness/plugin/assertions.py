"""Assertions on a trial outcome. A failure says what was wrong in one line, then
shows the verdict, the timeline, the classified errors and the trial folder, so a
red CI job explains itself without anyone opening the artifacts."""

from __future__ import annotations

from harness.checker import recovery
from harness.checker.recovery import RecoveryPoint
from harness.plugin.outcome import TrialOutcome
from harness.scenario.model import VERDICTS

# Verdicts that are never a finding about the handler: the test could not test it.
NOT_A_FINDING = {
    "fault_not_armed": "the fault never took effect, so this trial says nothing about the handler",
    "harness_error": "the harness itself failed, so this trial says nothing about the handler",
    "broken": "the function is misconfigured (a handler, module or bootstrap Lambda would not find), "
              "so the trial never ran it",
    "not_exercised": "the function never tried the network while it was impaired, so the fault never met it",
}


class TrialAssertionError(AssertionError):
    """An enirace assertion failed; `outcome` is the trial it judged."""

    def __init__(self, message: str, outcome: TrialOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


def _fail(outcome: TrialOutcome, problem: str) -> None:
    __tracebackhide__ = True
    # The first line is what `pytest -ra` and CI summaries show: say who and what.
    subject = f"{outcome.scenario.function.handler} under {outcome.scenario.name}"
    raise TrialAssertionError(f"{subject}: {problem}\n\n{outcome.report_text()}", outcome)


def _check_is_a_finding(outcome: TrialOutcome) -> None:
    __tracebackhide__ = True
    why = NOT_A_FINDING.get(outcome.verdict.verdict)
    if why:
        _fail(outcome, f"{outcome.verdict.verdict}: {why}")


def assert_verdict(outcome: TrialOutcome, *allowed: str) -> None:
    """The verdict is one of `allowed` (healthy, recovered, stuck, ...)."""
    __tracebackhide__ = True
    unknown = [v for v in allowed if v not in VERDICTS]
    if not allowed or unknown:
        raise ValueError(f"assert_verdict: give one or more of {', '.join(VERDICTS)}; got {allowed!r}")
    if outcome.verdict.verdict not in allowed:
        _fail(outcome, f"expected verdict {' or '.join(allowed)}, got {outcome.verdict.verdict}")


def assert_healthy(outcome: TrialOutcome) -> None:
    """Every invocation succeeded and no fault touched the function."""
    __tracebackhide__ = True
    _check_is_a_finding(outcome)
    if outcome.verdict.verdict != "healthy":
        _fail(outcome, f"expected a healthy trial, got {outcome.verdict.verdict}")


def assert_expected(outcome: TrialOutcome) -> None:
    """The verdict is one the scenario's own `expect:` block allows."""
    __tracebackhide__ = True
    expect = outcome.scenario.expect
    if expect is None:
        raise ValueError(f"assert_expected: scenario {outcome.scenario.name} has no expect: block")
    if outcome.verdict.verdict not in expect.verdict:
        _fail(outcome, f"scenario {outcome.scenario.name} expects {' or '.join(expect.verdict)}, "
                       f"got {outcome.verdict.verdict}")


def recovery_point(outcome: TrialOutcome) -> RecoveryPoint | None:
    """Where the handler came back, or None if the last invocation still fails."""
    # Counted from the verdict's fault_cleared_ms: the assertion checks what judge() said.
    return recovery.recovery_point(outcome.history, outcome.verdict.fault_cleared_ms)


def assert_recovers(outcome: TrialOutcome, within_invocations: int | None = None,
                    within_ms: float | None = None, allow_reinit: bool = True) -> None:
    """The handler survives the fault: the trial is healthy or recovered, and

    - within_invocations=N: it succeeds by the N-th invocation started after the
      network came back (an invocation in flight at that moment that then
      succeeds counts as 0, so N=1 means "the first call after the ENI works");
    - within_ms: the time from the fault clearing to the first successful
      invocation of the final run of successes (verdict.time_to_recovery_ms);
    - allow_reinit=False: it recovered without the runtime being restarted.
    """
    __tracebackhide__ = True
    if within_invocations is not None and within_invocations < 0:
        raise ValueError("assert_recovers: within_invocations must be 0 or more")
    _check_is_a_finding(outcome)
    v = outcome.verdict
    if v.verdict not in ("healthy", "recovered"):
        _fail(outcome, f"the handler did not recover: {v.verdict}")
    point = recovery_point(outcome)
    if point is None:  # judge() and this module disagree: say so rather than pass
        _fail(outcome, "the handler did not recover: the last invocation failed")
        return
    if within_invocations is not None and point.after_network > within_invocations:
        when = f" at {point.fault_cleared_ms:.0f} ms" if point.fault_cleared_ms is not None else ""
        _fail(outcome, f"recovered too late: first good invocation is {point.invocation}, number "
                       f"{point.after_network} after the network came back{when}; "
                       f"allowed within {within_invocations}")
    if within_ms is not None and v.time_to_recovery_ms is not None and v.time_to_recovery_ms > within_ms:
        _fail(outcome, f"recovered too late: {v.time_to_recovery_ms:.0f} ms after the fault cleared; "
                       f"allowed within {within_ms:g} ms")
    if not allow_reinit and v.reinit_needed:
        _fail(outcome, "recovered only through a re-init (the runtime was restarted)")
