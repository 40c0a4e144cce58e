"""pytest plugin: ENI-race regression tests for your own Lambda handler.

Installed with enirace and enabled through the `pytest11` entry point. It gives

- fixtures `run_trial`, `enirace_result`, `enirace_lab`, `enirace_run`;
- the marker `@pytest.mark.enirace(scenario, *, set=(), axes=None, sweep=False, repeats=None,
  **overrides)`;
- assertions `assert_recovers`, `assert_healthy`, `assert_verdict`, `assert_expected`;
- failure reports and JUnit XML that carry the verdict, the timeline and the
  function's log.

Every test gets its own run (an id plus an flock, see harness/ownership.py), so its
namespaces and links carry a name no other test or xdist worker can hold, and each
lab leases its own /24 through an flock'd file. Reference: docs/pytest-plugin.md.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from harness import ownership
from harness import trial as trial_mod
from harness.errors import UserError
from harness.function import dotnet
from harness.lab import addressing, netns
from harness.lab.topology import Lab
from harness.plugin.assertions import (
    TrialAssertionError,
)
from harness.plugin.outcome import TrialOutcome
from harness.plugin.request import TrialRequest, as_request, expand_axes, sweep_block
from harness.privileges import PRIVILEGE_FIX, has_privileges

T = TypeVar("T")
OUTCOMES = pytest.StashKey[list[TrialOutcome]]()
SECTION_PREFIX = "enirace trial"
# The project's CI sets this: a test that cannot get root fails instead of skipping.
REQUIRE_ALL_ENV = "ENIRACE_REQUIRE_ALL"
MARKER_HELP = ("enirace(scenario, *, set=(), axes=None, sweep=False, repeats=None, **overrides): run the "
               "test once per scenario, axis point and repeat, and hand it the outcome as enirace_result; "
               "overrides use __ for dots, e.g. function__handler='app.handler'. See docs/pytest-plugin.md")


# -- options and marker --------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("enirace", "enirace ENI-race trials")
    group.addoption("--enirace-out", metavar="DIR", default=None,
                    help="keep trial folders under DIR/<test id> (default: the test's tmp_path)")
    group.addoption("--enirace-require-root", action="store_true", default=False,
                    help="fail enirace tests that cannot get root instead of skipping them (use in CI)")
    group.addoption("--enirace-log-lines", metavar="N", type=int, default=30,
                    help="lines of function.log shown in a failure report (default 30)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    if not hasattr(config, "workerinput"):  # JUnit XML is written by the controller only
        config.pluginmanager.register(JUnitSystemOut(config), "enirace-junit-system-out")


def requests_from_marker(mark: pytest.Mark, base_dir: Path) -> list[TrialRequest]:
    """The trials one `enirace` marker asks for. A problem (a missing scenario file,
    a malformed override) is carried in the request and reported when the test
    runs, so one bad marker does not break the collection of a whole suite."""
    kwargs = dict(mark.kwargs)
    if mark.args:
        if len(mark.args) > 1 or "scenario" in kwargs:
            return [TrialRequest("?", label="bad-marker",
                                 error="@pytest.mark.enirace takes one scenario (or a list as scenario=[...])")]
        kwargs["scenario"] = mark.args[0]
    sources = kwargs.pop("scenario", None)
    if sources is None:
        return [TrialRequest("?", label="bad-marker",
                             error="@pytest.mark.enirace needs scenario=... (a path, a built-in name or a dict)")]
    set_ = kwargs.pop("set", ())
    axes = kwargs.pop("axes", None) or {}
    sweep = kwargs.pop("sweep", False)
    repeats = kwargs.pop("repeats", None)
    out: list[TrialRequest] = []
    for source in sources if isinstance(sources, list | tuple) else [sources]:
        try:
            request = as_request(source, base_dir).with_overrides(set_, **kwargs)
            request = replace(request, label=request.name)
            grid, block_repeats = sweep_block(request.raw_document()) if sweep else ({}, 1)
            grid.update(axes)
            out += expand_axes(request, grid, repeats if repeats is not None else block_repeats)
        except UserError as exc:
            label = source.get("name", "scenario") if isinstance(source, dict) else Path(str(source)).stem
            out.append(TrialRequest(source, base_dir=base_dir, label=str(label), error=str(exc)))
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marks = list(metafunc.definition.iter_markers("enirace"))
    if not marks:
        return
    if "enirace_scenario" not in metafunc.fixturenames:
        # Without the fixture the trial would never run and the test would pass vacuously.
        pytest.fail(f"{metafunc.definition.nodeid} is marked enirace but takes neither enirace_result "
                    f"nor enirace_scenario; add enirace_result to its arguments", pytrace=False)
    base_dir = metafunc.definition.path.parent
    # iter_markers yields the closest marker first; keep the order they were written in.
    requests = [r for mark in reversed(marks) for r in requests_from_marker(mark, base_dir)]
    metafunc.parametrize("enirace_scenario", requests, ids=[r.label for r in requests])


# -- privileges ----------------------------------------------------------------------


def _require_privileges(config: pytest.Config) -> None:
    __tracebackhide__ = True
    if has_privileges():  # looked up at call time, so a test can patch it
        return
    reason = f"enirace needs root: {PRIVILEGE_FIX}"
    if config.getoption("enirace_require_root") or os.environ.get(REQUIRE_ALL_ENV) == "1":
        pytest.fail(f"root is required here (--enirace-require-root or {REQUIRE_ALL_ENV}=1) but {reason}",
                    pytrace=False)
    pytest.skip(reason)


# -- fixtures ------------------------------------------------------------------------


def _namespaces_of(run: ownership.Run) -> list[str]:
    return [n for n in netns.list_names() if ownership.run_of_netns(n) == run.run_id]


@pytest.fixture
def enirace_run(request: pytest.FixtureRequest) -> Iterator[ownership.Run]:
    """This test's run: an id plus an flock that proves the test is alive.

    Skips (or fails, with --enirace-require-root) without root. At teardown, any
    namespace of the run still present is removed and the test errors: a trial
    must never leave one behind.
    """
    _require_privileges(request.config)
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    run = ownership.Run.register(f"pytest {worker} {request.node.nodeid}")
    yield run
    leftovers = _namespaces_of(run)
    for name in leftovers:
        netns.remove_owned(run, name)
    run.close()
    if leftovers:
        pytest.fail(f"enirace: the test left namespaces behind (removed now): {', '.join(leftovers)}",
                    pytrace=False)


@pytest.fixture
def enirace_lab(enirace_run: ownership.Run) -> Iterator[Lab]:
    """A lab that is up for the whole test: vpc namespace with bridge, resolver and
    service, and a sandbox namespace with only `lo` (call .attach_eni() to add one).
    It leases its own /24 of the default pool (198.18.0.0/15)."""
    pool = addressing.parse_pool(addressing.DEFAULT_POOL)
    _or_fail(lambda: addressing.check_pool(pool))
    lease = _or_fail(lambda: addressing.acquire(pool, enirace_run))
    lab = Lab(enirace_run, lease.subnet)
    try:
        lab.up()
    except BaseException:
        lab.down()
        lease.release()
        raise
    yield lab
    problems = lab.down()
    lease.release()
    if problems:
        pytest.fail(f"enirace: lab teardown problems: {'; '.join(problems)}", pytrace=False)


def _or_fail(step: Callable[[], T]) -> T:
    """step(), with a UserError turned into a one-line test failure (no traceback)."""
    __tracebackhide__ = True
    try:
        return step()
    except UserError as exc:
        problem = str(exc)
    # Failing outside the except block keeps "During handling of ..." out of the report.
    pytest.fail(f"enirace: {problem}", pytrace=False)


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^\w.=+-]+", "_", nodeid).strip("_")[:150]


class TrialRunner:
    """The `run_trial` fixture: run_trial(scenario, *, set=(), **overrides) -> TrialOutcome.

    `scenario` is a path (relative to the test file or the working directory), a
    built-in name such as "late-eni-attach", a dict, or the enirace_scenario of a
    marked test. `set` takes "key=value" strings exactly like `enirace run --set`;
    keyword overrides use `__` for dots (function__handler="app.handler") and take
    Python values. `set` is applied first, then the keywords, each in order.
    """

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self.outcomes: list[TrialOutcome] = request.node.stash.setdefault(OUTCOMES, [])

    def __call__(self, scenario: Any, /, *, set: str | Iterable[str] = (), **overrides: Any) -> TrialOutcome:
        __tracebackhide__ = True
        request = self._request
        wanted = _or_fail(lambda: as_request(scenario, request.path.parent).with_overrides(set, **overrides))
        # A bad scenario is a test error, root or not: validate before asking for a run.
        resolved = _or_fail(wanted.scenario)
        run: ownership.Run = request.getfixturevalue("enirace_run")  # skips here without root
        out = self._out_dir()
        # UserError here: e.g. function.handler names no module in function.code.
        prepared = _or_fail(lambda: trial_mod.preflight(resolved))
        result = _or_fail(lambda: trial_mod.run_one_trial(prepared, run, out))
        outcome = TrialOutcome(result, wanted)
        self.outcomes.append(outcome)
        request.node.user_properties.extend(outcome.junit_properties())
        return outcome

    def _out_dir(self) -> Path:
        config = self._request.config
        root = config.getoption("enirace_out")
        if not root:
            return Path(self._request.getfixturevalue("tmp_path"))
        out = Path(config.invocation_params.dir, root) / _safe_name(self._request.node.nodeid)
        out.mkdir(parents=True, exist_ok=True)
        return out


@pytest.fixture
def run_trial(request: pytest.FixtureRequest) -> TrialRunner:
    """run_trial(scenario, *, set=(), **overrides) -> TrialOutcome; see TrialRunner."""
    return TrialRunner(request)


@pytest.fixture
def enirace_scenario(request: pytest.FixtureRequest) -> TrialRequest:
    """The TrialRequest of a test marked enirace (this default only explains its absence)."""
    pytest.fail(f"{request.node.name} uses enirace_result or enirace_scenario but has no "
                f"@pytest.mark.enirace(scenario=...)", pytrace=False)


@pytest.fixture
def enirace_result(enirace_scenario: TrialRequest, run_trial: TrialRunner) -> TrialOutcome:
    """The outcome of the trial the test's enirace marker describes (run during setup)."""
    return run_trial(enirace_scenario)


# -- reports ---------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    outcomes = item.stash.get(OUTCOMES, [])
    # Trials run in setup (enirace_result) or in the call; report them once, on
    # the call report, or on the setup report when the test never got that far.
    if not outcomes or not (call.when == "call" or (call.when == "setup" and report.failed)):
        return report
    explained = None
    if call.excinfo is not None and isinstance(call.excinfo.value, TrialAssertionError):
        explained = call.excinfo.value.outcome.trial_id  # its message already holds the timeline
    log_lines = item.config.getoption("enirace_log_lines")
    for outcome in outcomes:
        if report.failed:
            fresh = outcome.trial_id != explained
            text = outcome.report_text(timeline=fresh, errors=fresh, log_lines=log_lines)
        else:
            text = outcome.report_text()
        report.sections.append((f"{SECTION_PREFIX} {outcome.trial_id}", text))
    return report


class JUnitSystemOut:
    """Copies each test's enirace report sections into its JUnit <system-out>.

    pytest writes captured output to <system-out> only with junit_logging set, and
    never report sections; CI systems show <system-out>, so the verdict and the
    timeline go there whatever the user configured. This relies on pytest's
    LogXML node reporters; if that internal API moves, only <system-out> is lost
    (the properties are written through the public user_properties).
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.pending: dict[tuple[str, Any], list[str]] = {}

    @pytest.hookimpl(tryfirst=True)  # before LogXML finalizes the testcase on teardown
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        key = (report.nodeid, getattr(report, "node", None))  # xdist: one per worker
        texts = [content for title, content in report.sections if title.startswith(SECTION_PREFIX)]
        if texts and report.when in ("setup", "call"):
            self.pending[key] = texts
        if report.when != "teardown" or key not in self.pending:
            return
        texts = self.pending.pop(key)
        try:
            import xml.etree.ElementTree as ET

            from _pytest.junitxml import bin_xml_escape, xml_key
        except ImportError:
            return
        xml = self.config.stash.get(xml_key, None)
        if xml is None:
            return
        node = ET.Element("system-out")
        node.text = bin_xml_escape("\n\n".join(texts))
        xml.node_reporter(report).append(node)


# -- .NET --------------------------------------------------------------------------------


@functools.cache
def dotnet_unavailable() -> str | None:
    """Why this machine cannot run .NET functions, or None when it can.
    For `pytest.mark.skipif(dotnet_unavailable() is not None, reason=...)`."""
    if dotnet.locate_runtime() is None:
        return "no .NET 8 runtime: pip install 'enirace[dotnet]' or install .NET 8 (see `enirace doctor`)"
    if dotnet.locate_compiler() is None:
        return ("no C# compiler: apt-get install mono-mcs libmono-system-net-http4.0-cil, or install a "
                ".NET 8 SDK (see `enirace doctor`)")
    return None


# -- Node.js -----------------------------------------------------------------------------


@functools.cache
def nodejs_unavailable() -> str | None:
    """Why this machine cannot run Node.js functions, or None when it can. Installs
    AWS's aws-lambda-ric into its cache the first time (a minute or two), so a
    fresh machine runs the tests rather than skipping them."""
    from harness.errors import UserError
    from harness.function import nodejs

    node = nodejs.locate_node()
    if node is None:
        return f"no node on PATH: {nodejs.NODE_FIX} (see `enirace doctor`)"
    try:
        nodejs.ensure_ric(node)
    except UserError as exc:
        return str(exc)
    return None
