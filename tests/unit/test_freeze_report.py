"""Frozen spans in the report: the timeline's `frozen` rows and the trial
plot's shading, from a stored history (the events as a trial with
workload.gaps [200ms, 1.2s] recorded them)."""

from __future__ import annotations

import io
import json

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_rgb
from rich.console import Console

from harness.checker.verdict import judge
from harness.history import queries, schema
from harness.report import plots, timeline


def _freeze(t, method="cgroup_v1", verified=True, state="FROZEN", **more):
    return {"t_ms": t, "kind": schema.FREEZE, "generation": 1, "verified": verified, "method": method,
            "state": state, "took_ms": 0.3, **more}


def _thaw(t, frozen_ms, reason="invoke", method="cgroup_v1", verified=True):
    return {"t_ms": t, "kind": schema.THAW, "generation": 1, "verified": verified, "method": method,
            "state": "THAWED", "took_ms": 0.2, "frozen_ms": frozen_ms, "reason": reason}


def _invoke(n, t, took=6.0):
    return [{"t_ms": t, "kind": schema.INVOKE_START, "n": n, "request_id": f"r{n}"},
            {"t_ms": t + took, "kind": schema.INVOKE_END, "n": n, "request_id": f"r{n}", "status": "ok",
             "error_type": "", "error_message": "", "reinit": False, "init_starts": [], "body": "{}",
             "duration_ms": took}]


def _history(method="cgroup_v1"):
    return [
        {"t_ms": 1.4, "kind": schema.TRIAL_START, "trial": "t", "run": "r", "subnet": "198.19.1.0/24", "pid": 1,
         "seed": 0, "schema": schema.SCHEMA_VERSION},
        {"t_ms": 31.1, "kind": schema.INIT_START, "generation": 1, "phase": "init", "command": "python"},
        {"t_ms": 209.4, "kind": schema.RUNTIME_READY, "generation": 1},
        _freeze(209.9, method), *_invoke(1, 210.2), _thaw(210.5, 0.7, method=method),
        _freeze(218.0, method), *_invoke(2, 410.2), _thaw(411.0, 192.9, method=method),
        _freeze(415.8, method), *_invoke(3, 1610.2), _thaw(1611.0, 1195.4, method=method),
        _freeze(1619.1, method), _thaw(1624.0, 1.3, reason="shutdown", method=method),
        {"t_ms": 1635.6, "kind": schema.RUNTIME_EXIT, "generation": 1, "reason": "killed", "during": "killed"},
    ]


def _stored(tmp_path, events):
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return queries.load(path)


def _rendered(events, verbose=False) -> list[str]:
    out = io.StringIO()
    timeline.render(Console(file=out, width=200, color_system=None), "t", events, judge(events), verbose=verbose)
    return out.getvalue().splitlines()


def _rows(lines, label):
    return [" ".join(line.split()) for line in lines if f" {label} " in line]


def test_the_timeline_shows_each_frozen_span_once_between_the_invocations(tmp_path):
    lines = _rendered(_stored(tmp_path, _history()))
    frozen = _rows(lines, "frozen")
    # The 0.7 ms span (init done, invoke 1 at once) and the shutdown's are left out.
    # Each names its triggers: the hidden first span is still freeze#1.
    assert frozen == ["218.0 ms frozen 192.9 ms runtime #1 (cgroup_v1), thawed for invoke 2 freeze#2 thaw#2",
                      "415.8 ms frozen 1.2 s runtime #1 (cgroup_v1), thawed for invoke 3 freeze#3 thaw#3"]
    order = [line.split()[2] for line in lines if " ms " in line and line.split()[2] in ("invoke", "frozen")]
    assert order == ["invoke", "frozen", "invoke", "frozen", "invoke"]
    assert not _rows(lines, "thaw")


def test_verbose_shows_the_short_spans_too(tmp_path):
    frozen = _rows(_rendered(_stored(tmp_path, _history()), verbose=True), "frozen")
    assert len(frozen) == 4 and "thawed (shutdown)" in frozen[-1] and "0.7 ms" in frozen[0]


def test_a_sigstop_freeze_says_the_function_can_see_it(tmp_path):
    frozen = _rows(_rendered(_stored(tmp_path, _history("sigstop"))), "frozen")
    assert len(frozen) == 4  # even the short ones: the fallback is worth saying every time
    assert all("SIGSTOP fallback, visible to the function" in row for row in frozen)


def test_a_freeze_that_did_not_take_and_one_never_thawed(tmp_path):
    events = _history()
    events[7] = _freeze(218.0, verified=False, state="FREEZING", detail="OSError: busy")
    events = [e for e in events if not (e["kind"] == schema.THAW and e["reason"] == "shutdown")]
    frozen = _rows(_rendered(_stored(tmp_path, events)), "frozen")
    assert frozen[0] == "218.0 ms frozen freeze of runtime #1 NOT verified (cgroup_v1): FREEZING OSError: busy"
    assert frozen[-1] == "1619.1 ms frozen runtime #1 (cgroup_v1) until the trial ended"


def test_the_spans_pair_each_freeze_with_its_thaw(tmp_path):
    spans = queries.frozen_spans(_stored(tmp_path, _history()))
    assert [(s["n"], s["thaw_n"], s["start"], s["end"], s["frozen_ms"], s["reason"]) for s in spans] == [
        (1, 1, 209.9, 210.5, 0.7, "invoke"), (2, 2, 218.0, 411.0, 192.9, "invoke"),
        (3, 3, 415.8, 1611.0, 1195.4, "invoke"), (4, 4, 1619.1, 1624.0, 1.3, "shutdown")]


@pytest.fixture
def ax():
    fig, axes = plt.subplots()
    yield axes
    plt.close(fig)


def test_the_trial_plot_shades_the_verified_frozen_spans(tmp_path, ax):
    events = _history()
    events[7] = _freeze(218.0, verified=False, state="FREEZING")  # not frozen: not shaded
    events = events[:-2] + [events[-1]]  # the last freeze is never thawed: shaded to the end
    events = _stored(tmp_path, events)
    assert plots.frozen_shading(events) == [(209.9, 210.5), (415.8, 1611.0), (1619.1, 1635.6)]
    plots._draw_trial(ax, 0, events)
    drawn = [round(x, 3) for p in ax.patches if p.get_facecolor()[:3] == pytest.approx(to_rgb(plots.FROZEN))
             for x in (p.get_x(), p.get_x() + p.get_width())]
    assert drawn == [209.9, 210.5, 415.8, 1611.0, 1619.1, 1635.6]


def test_no_freeze_no_shading(tmp_path, ax):
    events = _stored(tmp_path, [e for e in _history() if e["kind"] not in (schema.FREEZE, schema.THAW)])
    assert plots.frozen_shading(events) == []
    assert _rows(_rendered(events), "frozen") == []
