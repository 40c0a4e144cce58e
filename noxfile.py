"""nox sessions behind ./setup.sh: demo, tests, bench, lint, typecheck."""

from __future__ import annotations

import os

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]


def _install(session: nox.Session, extras: str = "") -> None:
    session.install("-e", f".[{extras}]" if extras else ".")


@nox.session
def demo(session: nox.Session) -> None:
    """late-eni-attach for every sample handler, with a verdict table."""
    _install(session, "dotnet,docker")
    session.run("enirace", "demo", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: unit tests, then the root/netns integration tests."""
    _install(session, "test,dotnet")
    env = {}
    if os.environ.get("CI"):
        # In CI a test that would skip for lack of root is a failure instead.
        env["ENIRACE_REQUIRE_ALL"] = "1"
    session.run("pytest", "-q", "-p", "no:cacheprovider", *session.posargs, env=env)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks that print numbers (speed targets live here, not in tests)."""
    _install(session, "test")
    for script in sorted(os.listdir("benchmarks")):
        if script.endswith(".py") and not script.startswith("_"):
            session.run("python", f"benchmarks/{script}", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "harness", "tests", "benchmarks")


@nox.session
def typecheck(session: nox.Session) -> None:
    _install(session, "dev")
    session.run("mypy", "harness")


@nox.session
def soak(session: nox.Session) -> None:
    """300+ trials of mixed faults, both runtimes, 2 workers; then checks for leaks.
    (The test suite runs the same soak with one repeat, 84 trials.)"""
    _install(session, "test,dotnet")
    session.run("pytest", "-q", "-p", "no:cacheprovider", "tests/integration/test_soak.py",
                env={"ENIRACE_SOAK_TRIALS": "300"})
