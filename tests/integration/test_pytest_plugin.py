"""The pytest plugin, driven by pytester in a separate pytest process against
tests/examples: a pass, a readable failure, a skip without root, xdist."""

from __future__ import annotations

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import ownership
from harness.history import queries as history
from harness.lab import netns

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "tests" / "examples"
PYTHON_EXAMPLE = "test_my_python_handler.py"
# Patches the privilege check inside the inner pytest, as on a machine without root.
NO_ROOT_CONFTEST = """
import harness.plugin.fixtures

harness.plugin.fixtures.has_privileges = lambda: False
"""


@pytest.fixture
def examples(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytester's directory holding a copy of tests/examples, as a user's project would."""
    for item in EXAMPLES.iterdir():
        if item.name == "__pycache__":
            continue
        if item.is_dir():
            shutil.copytree(item, pytester.path / item.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(item, pytester.path / item.name)
    pytester.makeini("[pytest]\nmarkers =\n    dotnet: needs .NET 8\n")
    return pytester


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", *args, timeout=600)


def junit_testcases(xml_path: Path) -> dict[str, ET.Element]:
    return {tc.get("name"): tc for tc in ET.parse(xml_path).iter("testcase")}


def properties(testcase: ET.Element) -> list[tuple[str, str]]:
    return [(p.get("name"), p.get("value")) for p in testcase.iter("property")]


def runs_of(cases: dict[str, ET.Element]) -> set[str]:
    """The run ids of every trial the inner pytest ran (from each trial's history)."""
    folders = [v for tc in cases.values() for k, v in properties(tc) if k == "enirace_folder"]
    return {history.load(Path(f) / "history.jsonl")[0]["run"] for f in folders}


def assert_no_namespaces_of(runs: set[str]) -> None:
    left = [n for n in netns.list_names() if ownership.run_of_netns(n) in runs]
    assert not left, f"namespaces left behind: {left}"


# -- without root (no lab is built) ----------------------------------------------------


def test_without_root_every_example_skips_with_the_reason(examples, monkeypatch):
    monkeypatch.delenv("ENIRACE_REQUIRE_ALL", raising=False)
    examples.makeconftest(NO_ROOT_CONFTEST)
    result = run_inner(examples)
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) >= 6
    assert not {"passed", "failed", "errors", "error"} & outcomes.keys(), outcomes
    result.stdout.fnmatch_lines(["SKIPPED * test_my_python_handler.py:* enirace needs root: *"])


def test_require_root_turns_those_skips_into_failures(examples, monkeypatch):
    monkeypatch.delenv("ENIRACE_REQUIRE_ALL", raising=False)
    examples.makeconftest(NO_ROOT_CONFTEST)
    result = run_inner(examples, PYTHON_EXAMPLE, "--enirace-require-root")
    outcomes = result.parseoutcomes()
    assert "passed" not in outcomes
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) >= 5, outcomes
    result.stdout.fnmatch_lines(["*root is required here (--enirace-require-root*"])


def test_a_bad_scenario_fails_in_one_line_even_without_root(pytester, monkeypatch):
    monkeypatch.delenv("ENIRACE_REQUIRE_ALL", raising=False)
    pytester.makeconftest(NO_ROOT_CONFTEST)
    pytester.makepyfile(test_bad=textwrap.dedent("""
        import pytest

        def test_typo(run_trial):
            run_trial("late-eni-attach", function__handlr="app.handler")

        @pytest.mark.enirace("late-eni-atach")
        def test_no_such_scenario(enirace_result):
            pass
    """), test_forgot=textwrap.dedent("""
        import pytest

        @pytest.mark.enirace("late-eni-attach")
        def test_forgot_the_fixture():
            pass
    """))
    result = run_inner(pytester, "--continue-on-collection-errors")
    # Without a fixture to run it, the trial would never run: that is a collection error.
    result.assert_outcomes(failed=1, errors=2)
    result.stdout.fnmatch_lines([
        "*test_forgot_the_fixture is marked enirace but takes neither enirace_result nor enirace_scenario*",
        "*enirace: scenario 'late-eni-atach': no such file*built-in scenarios: *late-eni-attach*",
        "*enirace: late-eni-attach: function.handlr: unknown field*",
    ])
    assert "Traceback" not in result.stdout.str()


# -- with root: real trials -------------------------------------------------------------


@pytest.mark.root
def test_the_python_example_passes_and_reports_to_junit(examples):
    result = run_inner(examples, PYTHON_EXAMPLE, "--junitxml=junit.xml")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 5 and "failed" not in outcomes and "errors" not in outcomes, outcomes
    cases = junit_testcases(examples.path / "junit.xml")
    ran = [tc for tc in cases.values() if tc.find("skipped") is None]
    assert len(ran) >= 5
    for tc in ran:
        props = dict(properties(tc))
        assert props["enirace_verdict"] in ("healthy", "recovered"), props["enirace_reason"]
        assert "trial_start" in props["enirace_timeline"]
        out = tc.find("system-out")
        assert out is not None and "verdict: " in out.text and "trial folder: " in out.text
    late = cases["test_survives_a_late_eni[late-eni-attach]"]
    assert "attach_eni [init_start + 500ms]" in late.find("system-out").text
    assert_no_namespaces_of(runs_of(cases))


@pytest.mark.root
def test_a_stuck_handler_fails_with_timeline_errors_and_function_log(pytester):
    pytester.makepyfile(textwrap.dedent("""
        import pytest
        from harness.plugin import assert_recovers

        @pytest.mark.enirace("late-eni-attach", function__handler="naive_cached")
        def test_with_the_helper(enirace_result):
            assert_recovers(enirace_result, within_invocations=1)

        def test_with_a_plain_assert(run_trial):
            result = run_trial("late-eni-attach", function__handler="naive_cached")
            assert result.verdict.verdict == "recovered"
    """))
    result = run_inner(pytester, "--junitxml=junit.xml")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*_ test_with_the_helper*",
        "E * naive_cached under late-eni-attach: the handler did not recover: stuck",
        "E * FAULT * attach_eni [[]init_start + 500ms[]]*",
        "E * verdict: STUCK*",
        "E * classified errors (5 of 5 invocations failed*",
        "E * invoke 1-5 * [[]dns[]] *Temporary failure in name resolution*",
        "E * trial folder: *late-eni-attach-naive_cached-*",
        "*- enirace trial late-eni-attach-naive_cached-* -*",
        "function.log (last 30 lines):",
        "*could not be resolved at init*",
        "*_ test_with_a_plain_assert *",
        "*- enirace trial late-eni-attach-naive_cached-* -*",
        "* FAULT * attach_eni [[]init_start + 500ms[]]*",
        "verdict: STUCK*",
        "classified errors (5 of 5 invocations failed*",
        "trial folder: *",
        "function.log (last 30 lines):",
    ])
    cases = junit_testcases(pytester.path / "junit.xml")
    for tc in cases.values():
        assert dict(properties(tc))["enirace_error_classes"] == "dns"
        assert tc.find("failure") is not None and "verdict: STUCK" in tc.find("system-out").text
    assert_no_namespaces_of(runs_of(cases))


@pytest.mark.root
def test_the_python_example_under_xdist_with_two_workers(examples):
    result = run_inner(examples, PYTHON_EXAMPLE, "-n", "2", "--junitxml=junit.xml")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 5 and "failed" not in outcomes and "errors" not in outcomes, outcomes
    cases = junit_testcases(examples.path / "junit.xml")
    trials = [v for tc in cases.values() for k, v in properties(tc) if k == "enirace_trial"]
    assert len(trials) >= 5
    assert len(runs_of(cases)) == len(trials)  # one run per test, whichever worker ran it
    assert_no_namespaces_of(runs_of(cases))


ISOLATION_TEST = """
import json, os, time
import pytest
from harness.lab import netns

SHARED = {shared!r}

@pytest.mark.parametrize("n", [1, 2])
def test_holds_a_lab_while_the_other_worker_does(enirace_lab, n):
    lab = enirace_lab
    me = {{"worker": os.environ.get("PYTEST_XDIST_WORKER"), "run": lab.run.run_id, "vpc": lab.vpc,
          "sandbox": lab.sandbox, "bridge": lab.bridge, "subnet": str(lab.subnet.network)}}
    with open(os.path.join(SHARED, f"{{n}}.json"), "w") as fh:
        json.dump(me, fh)
    # Meet the other test while both labs are up (a safety net, not a timing assertion).
    deadline = time.monotonic() + 120
    while len(os.listdir(SHARED)) < 2:
        assert time.monotonic() < deadline, "the other worker never built its lab"
        time.sleep(0.05)
    other = json.load(open(os.path.join(SHARED, f"{{3 - n}}.json")))
    assert netns.exists(other["vpc"]) or os.path.exists(os.path.join(SHARED, "done"))
    with open(os.path.join(SHARED, f"{{n}}.seen"), "w") as fh:
        json.dump(other, fh)
    while not os.path.exists(os.path.join(SHARED, f"{{3 - n}}.seen")):
        assert time.monotonic() < deadline, "the other worker never saw this lab"
        time.sleep(0.05)
"""


@pytest.mark.root
def test_two_workers_hold_labs_at_once_with_their_own_names_and_subnets(pytester, tmp_path):
    shared = tmp_path / "meet"
    shared.mkdir()
    pytester.makepyfile(ISOLATION_TEST.format(shared=str(shared)))
    result = run_inner(pytester, "-n", "2")
    result.assert_outcomes(passed=2)
    labs = [json.loads((shared / f"{n}.json").read_text()) for n in (1, 2)]
    assert labs[0]["worker"] != labs[1]["worker"]
    for field in ("run", "vpc", "sandbox", "bridge", "subnet"):
        assert labs[0][field] != labs[1][field], field
    assert_no_namespaces_of({lab["run"] for lab in labs})
