"""The pytest plugin's public API: `from harness.plugin import assert_recovers, ...`.

pytest loads the hooks and fixtures from harness.plugin.fixtures (the `pytest11`
entry point `enirace`); tests import the assertions and helpers from here.
Reference: docs/pytest-plugin.md.
"""

from harness.plugin.assertions import (
    TrialAssertionError,
    assert_expected,
    assert_healthy,
    assert_recovers,
    assert_verdict,
    recovery_point,
)
from harness.plugin.fixtures import TrialRunner, dotnet_unavailable, nodejs_unavailable
from harness.plugin.outcome import TrialOutcome
from harness.plugin.request import TrialRequest, builtin_scenario

__all__ = [
    "TrialAssertionError", "TrialOutcome", "TrialRequest", "TrialRunner", "assert_expected",
    "assert_healthy", "assert_recovers", "assert_verdict", "builtin_scenario", "dotnet_unavailable",
    "nodejs_unavailable", "recovery_point",
]
