"""Markers: `root`, `docker`, `dotnet`, `nodejs` and `criu` tests skip with a reason on a machine that
lacks what they need, except under ENIRACE_REQUIRE_ALL=1 (set by CI), where a
missing prerequisite is a failure: CI must run them, not skip them.

The history is strict in tests: an event harness/history/schema.py does not
describe is refused, here and in every process the tests start (sweep workers,
`enirace run`, enirace-rie), which inherit the environment."""

from __future__ import annotations

import os

import pytest

from harness.history.recorder import STRICT_ENV
from harness.privileges import has_privileges

REQUIRE_ALL = os.environ.get("ENIRACE_REQUIRE_ALL") == "1"
os.environ[STRICT_ENV] = "1"


def _missing(marker: str) -> str | None:
    if marker == "root" and not has_privileges():
        return "needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN) for network namespaces"
    if marker == "docker":
        from harness.backends.docker import engine as docker_engine

        ok, found = docker_engine.reachable()
        if not ok:
            return found
    if marker == "dotnet":
        from harness.function import dotnet as dotnet

        if dotnet.locate_runtime() is None:
            return f"no .NET 8 runtime; {dotnet.runtime_fix_hint()}"
        if dotnet.locate_compiler() is None:
            return f"no C# compiler; {dotnet.compiler_fix_hint()}"
    if marker == "nodejs":
        return _nodejs_missing()
    if marker == "criu":
        from harness.function import checkpoint

        return checkpoint.unusable()
    return None


def _nodejs_missing() -> str | None:
    # The plugin's check installs the client (once, cached): a fresh machine runs them.
    from harness.plugin import nodejs_unavailable

    return nodejs_unavailable()


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("root", "docker", "dotnet", "nodejs", "criu"):
        if item.get_closest_marker(marker) is None:
            continue
        reason = _missing(marker)
        if reason is None:
            continue
        if REQUIRE_ALL:
            pytest.fail(f"ENIRACE_REQUIRE_ALL=1 but this `{marker}` test cannot run: {reason}")
        pytest.skip(reason)
