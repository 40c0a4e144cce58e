"""Hostile scenario input: every one is refused with a one-line error before
anything expands it (harness/scenario/limits.py), through the loader and through `enirace run`."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario import limits as limits
from harness.scenario import model as sc
from harness.scenario import overrides

REPO = Path(__file__).resolve().parents[2]
LATE_ENI = REPO / "scenarios" / "late-eni-attach.yaml"


def alias_bomb(under: str = "workload:\n  payload:\n    ") -> str:
    """A billion laughs: 9**9 strings from ~400 bytes."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    indent = "\n" + " " * (len(under) - len(under.rstrip(" ")))
    return under + indent.join(lines) + "\n"


HOSTILE_FILES = {
    "alias bomb in the payload": (alias_bomb(), "line 7: aliases expand to more than 100000"),
    "alias bomb in a choice field": (alias_bomb("bomb:\n  ") + "function: {runtime: *i}\n", "aliases expand"),
    "self-referencing alias": ("workload: {payload: &p [1, *p]}\n", "*p refers to the value that contains it"),
    "100,000-deep list": ("workload:\n  payload: " + "[" * 100_000 + "]" * 100_000 + "\n", "nesting depth"),
    "900-deep payload": ("workload:\n  payload: " + "[" * 900 + "]" * 900 + "\n", "nested deeper than 64"),
    "many values": ("workload:\n  payload: [" + "1, " * 30_000 + "]\n", "more than 20000 values"),
    "duplicate top-level key": ("workload: {invocations: 1}\nworkload: {interval: 5ms}\n",
                                "line 2: duplicate key 'workload'"),
    "duplicate nested key": ("function:\n  handler: resilient\n  handler: naive_cached\n",
                             "line 3: duplicate key 'handler'"),
    "NUL in name": ('name: "a\\0b"\n', "name: 'a\\x00b' is not a name"),
    "300-character name": ("name: " + "x" * 300 + "\n", "is not a name"),
    "name with ..": ("name: ../../x\n", "name: '../../x' is not a name"),
    "absolute name": ("name: /tmp/x\n", "name: '/tmp/x' is not a name"),
    "hidden name": ("name: .x\n", "name: '.x' is not a name"),
    "multicast pool": ("lab: {pool: 224.0.0.0/24}\n", "lab.pool: 224.0.0.0/24 overlaps 224.0.0.0/4 (multicast)"),
    "unspecified pool": ("lab: {pool: 0.0.0.0/8}\n", "unspecified"),
    "loopback pool": ("lab: {pool: 127.0.0.0/16}\n", "loopback"),
    "link-local pool": ("lab: {pool: 169.254.0.0/16}\n", "link-local"),
    "reserved pool": ("lab: {pool: 240.0.0.0/24}\n", "reserved"),
    "public pool": ("lab: {pool: 8.8.8.0/24}\n", "8.8.8.0/24 is not a private range"),
    "zero init_timeout": ("workload: {init_timeout: 0ms}\n", "workload.init_timeout: must be longer than 0ms"),
    "zero for": ("schedule: [{at: init_start, do: detach_eni, for: 0ms}]\n", "for: must be longer than 0ms"),
    # A trigger regex backtracks quadratically: 200,000 spaces used to hang it.
    "long trigger": ("schedule: [{at: 'init_start + 1" + " " * 200_000 + "x', do: attach_eni}]\n",
                     "schedule[0].at: 'init_start + 1 "),
    "long handler": ("function: {handler: " + "h" * 5000 + "}\n", "is not a handler name"),
    "5000-digit seed": ("seed: " + "1" * 5000 + "\n", "a number longer than 4300 digits"),
    "impossible date": ("workload: {payload: {when: 2024-13-45}}\n", "month must be in 1..12; quote the value"),
    "date in the payload": ("workload: {payload: {when: 2024-01-01}}\n", "payload.when is a date, not a JSON value"),
}


def _write(tmp_path: Path, text: str, name: str = "hostile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", HOSTILE_FILES)
def test_hostile_files_get_a_short_one_line_error(tmp_path, case):
    text, words = HOSTILE_FILES[case]
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        sc.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert words in message
    assert len(message) < 300  # no value is reproduced at length


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:  # 50 MB, sparse: unreadable in a second if it were parsed
        f.truncate(50 * 1024 * 1024)
    with pytest.raises(ScenarioError, match=r"larger than 1048576 bytes"):
        sc.load(path)


def test_a_file_whose_size_stat_does_not_tell_is_read_only_up_to_the_limit():
    with pytest.raises(ScenarioError, match=r"/dev/zero: larger than 1048576 bytes"):
        sc.load("/dev/zero")


def test_aliases_and_merges_within_the_limits_still_work(tmp_path):
    path = _write(tmp_path, "schedule:\n  - &e {at: init_start + 500ms, do: attach_eni}\n  - {<<: *e, do: detach_eni}\n"
                  "workload: {payload: {a: &p [1, 2, 3], b: *p}}\n")
    s = sc.load(path)
    assert [e.do for e in s.schedule] == ["attach_eni", "detach_eni"]
    assert s.schedule[1].at == s.schedule[0].at
    assert s.workload.payload == {"a": [1, 2, 3], "b": [1, 2, 3]}


def test_the_default_name_is_the_file_name_made_a_slug(tmp_path):
    assert sc.load(_write(tmp_path, "{}\n", "my late scenario.yaml")).name == "my-late-scenario"
    assert sc.load(_write(tmp_path, "{}\n", ".hidden.yaml")).name == "hidden"


@pytest.mark.parametrize("assignment,words", [
    ("workload.payload=&a [*a]", "*a refers to the value that contains it"),
    ("workload.payload={a: 1, a: 2}", "duplicate key 'a'"),
    ("workload.payload=" + "[" * 1000 + "]" * 1000, "nested deeper than 64"),
])
def test_set_values_go_through_the_same_loader(assignment, words):
    with pytest.raises(ScenarioError) as info:
        overrides.apply({}, assignment)
    message = str(info.value)
    assert message.startswith("--set ") and words in message
    assert "\n" not in message and len(message) < 200


def test_a_long_sweep_value_is_no_range_and_cannot_hang_the_range_regex():
    from harness.sweep.axes import make_axis

    value = "0..1" + " " * 5000 + "x"  # the range regex took over 3 minutes on this
    assert make_axis("function.handler", [value]).points == ((value,),)


def _bomb() -> list:
    x: list = ["lol"] * 9
    for _ in range(9):
        x = [x] * 9
    return x


def _cycle() -> list:
    c: list = []
    c.append(c)
    return c


@pytest.mark.parametrize("doc,words", [
    # What a pytest-plugin dict can hold: Python objects, shared or cyclic, not YAML.
    ({"workload": {"payload": _bomb()}}, "workload.payload: more than 6291456 bytes"),
    ({"workload": {"payload": _cycle()}}, "workload.payload: nested deeper than 64 levels"),
    ({"workload": {"payload": {"t": datetime.datetime(2024, 1, 1)}}}, "payload.t is a datetime"),
    ({"function": {"runtime": _bomb()}}, "function.runtime: [[[["),
    ({"function": {"env": {"A": "x\0y"}}}, "function.env: contains a NUL"),
    ({"function": {"name": "a" * 65}}, "a Lambda function name is 1 to 64"),
    ({"sweep": {"axes": {"function.handler": _bomb()}}}, "sweep.axes: more than 1048576 bytes"),
])
def test_dict_scenarios_are_bounded_too(doc, words):
    with pytest.raises(ScenarioError) as info:
        sc.validate(doc, "dict")
    message = str(info.value)
    assert words in message and len(message) < 300


@pytest.mark.parametrize("value,words", [(_bomb(), "aliases expand"),
                                         (_cycle(), "refers to the value that contains it")])
def test_plugin_keyword_overrides_keep_sharing_and_are_refused_not_expanded(value, words):
    from harness.plugin.request import TrialRequest

    request = TrialRequest("late-eni-attach").with_overrides(workload__payload=value)
    with pytest.raises(ScenarioError, match=words):
        request.scenario()


def test_the_payload_limit_is_lambdas_6_mib_as_sent():
    at_limit = "x" * limits.MAX_PAYLOAD_BYTES
    assert sc.validate({"workload": {"payload": at_limit}}, "d").workload.payload == at_limit
    with pytest.raises(ScenarioError, match="more than 6291456 bytes"):
        sc.validate({"workload": {"payload": at_limit + "x"}}, "d")
    # As JSON: the quotes count.
    with pytest.raises(ScenarioError, match="more than 6291456 bytes"):
        sc.validate({"workload": {"payload": ["x" * (limits.MAX_PAYLOAD_BYTES - 3)]}}, "d")


@pytest.mark.parametrize("value", [{}, [], {"a": [1, 2.5, None, True, "é\n\""]}, {1: 2, None: [], 2.5: {}}, {True: 1},
                                   [[[[]]]], [1e300, -0.0, float("inf")], "héllo"])
def test_payload_size_is_the_size_a_trial_sends(value):
    sent = value.encode() if isinstance(value, str) else json.dumps(value).encode()
    assert limits.payload_size(value) == len(sent)


@pytest.mark.parametrize("value", [_bomb(), _cycle(), "x" * 10_000_000, {"k" * 10_000: 1}, 10 ** 200,
                                   [[[[[[["deep"]]]]]]]])
def test_brief_is_short_whatever_the_value(value):
    text = limits.brief(value)
    assert len(text) <= limits.BRIEF_CHARS


# -- through the CLI, in a subprocess that reports its own peak memory -----------------------

# The CLI runs as a grandchild: Linux carries a process's peak RSS across fork and
# exec, so a child of pytest would report pytest's peak; a child of this small
# driver starts from the driver's.
_DRIVER = """
import resource, subprocess, sys
def cap():  # a regression fails the test, not the machine
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
done = subprocess.run([sys.executable, "-m", "harness.cli.main", *sys.argv[1:]], preexec_fn=cap)
print(f"maxrss_kb={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
sys.exit(done.returncode)
"""

CLI_CASES = {
    **{name: (text, []) for name, (text, _) in HOSTILE_FILES.items()},
    "self-referencing --set": (None, ["--set", "workload.payload=&a [*a]"]),
    "50 MB file": ("workload:\n  payload: [" + "1, " * (17 * 1024 * 1024) + "]\n", []),
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_enirace_run_answers_hostile_input_with_one_line_exit_2_in_bounded_memory(tmp_path, case):
    text, extra = CLI_CASES[case]
    path = LATE_ENI if text is None else _write(tmp_path, text)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", _DRIVER, "run", str(path), "--out", str(out), *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=300,  # a hang guard, not a timing
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines[:5]
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    assert len(lines[0]) < 400
    maxrss_kb = int(proc.stdout.rsplit("maxrss_kb=", 1)[1])
    assert maxrss_kb < 100 * 1024, f"{maxrss_kb} KB"
    assert not out.exists()  # refused before any trial folder exists


@pytest.mark.parametrize("value,why", [("-5ms", "'-5ms' is negative"), ("2h", "'2h' is over the limit of an hour"),
                                       ("61m", "'61m' is over the limit of an hour"),
                                       ("soon", "'soon' is not a duration")])
def test_a_refused_duration_says_why(value, why):
    from harness.scenario.triggers import parse_duration_ms

    with pytest.raises(ValueError, match=why):
        parse_duration_ms(value)
