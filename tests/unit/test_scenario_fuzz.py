"""Fuzzed scenario files: every one either validates or gets a one-line error that
names the file and a field, exit code 2, no traceback."""

from __future__ import annotations

import json
import string

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli.main import main
from harness.errors import ScenarioError
from harness.scenario import model as sc
from harness.scenario.limits import payload_size

FIELDS = {
    "function": ["runtime", "handler", "code", "command", "name", "timeout", "memory_mb", "env", "handlr"],
    "lab": ["pool", "eni", "pools"],
    "workload": ["invocations", "interval", "init", "init_timeout", "payload", "count"],
    "expect": ["verdict", "verdicts"],
}
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(string.printable, max_size=30),
    st.sampled_from(["500ms", "-5ms", "99999h", "1e9s", "2s", "eager", "lazy", "absent", "present",
                     "python", "dotnet", "198.18.0.0/15", "10.0.0.0/8", "0.0.0.0/0", "127.0.0.0/8",
                     "init_start + 500ms", "invoke_start#0 + 1s", "runtime_ready + -1ms",
                     "nosuch_event + 1s", "init_start + 1.5.5s", "healthy", "stuck", "resilient"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(string.ascii_lowercase, max_size=8), inner, max_size=3),
                      max_leaves=8)


@st.composite
def section(draw, name):
    keys = draw(st.lists(st.sampled_from(FIELDS[name]), max_size=4, unique=True))
    return {k: draw(values) for k in keys}


schedule_entry = st.fixed_dictionaries(
    {"at": st.one_of(values, st.sampled_from(["init_start + 500ms", "trial_start", "bogus + 1s",
                                               "invoke_end#2 + 3600001ms"])),
     "do": st.one_of(values, st.sampled_from(["attach_eni", "detach_eni", "explode"]))},
    optional={"with": values, "when": values})

documents = st.fixed_dictionaries({}, optional={
    "function": st.one_of(section("function"), values),
    "lab": st.one_of(section("lab"), values),
    "workload": st.one_of(section("workload"), values),
    "expect": st.one_of(section("expect"), values),
    "schedule": st.one_of(st.lists(schedule_entry, max_size=3), values),
    "seed": values,
    "surprise": values,
})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_validate_never_raises_anything_but_a_one_line_scenario_error(doc):
    try:
        sc.validate(doc, "fuzz.yaml")
    except ScenarioError as exc:
        message = str(exc)
        assert "\n" not in message
        assert message.startswith("fuzz.yaml: ")
        field = message[len("fuzz.yaml: "):].split(":", 1)[0]
        assert field  # names the field (or "(top level)")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(documents)
def test_cli_answers_bad_files_with_exit_2_and_no_traceback(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("fuzz") / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        sc.validate(dict(doc), str(path))
    except ScenarioError:
        result = CliRunner().invoke(main, ["run", str(path), "--out", str(path.parent / "out")])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert len([line for line in result.output.splitlines() if line.strip()]) == 1
        assert not (path.parent / "out").exists()  # nothing left behind


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_payload_is_measured_as_exactly_the_bytes_a_trial_sends(value):
    sent = value.encode() if isinstance(value, str) else json.dumps(value).encode()
    assert payload_size(value) == len(sent)
