"""What `enirace demo` runs, and what it says it skipped (no root: the plan only)."""

from pathlib import Path

import pytest

from harness.cli import demo as demo
from harness.errors import UserError
from harness.function import launch as functions
from harness.sweep import grid

REPO = Path(__file__).resolve().parents[2]


def test_python_samples_under_late_eni_attach_over_offsets(tmp_path, monkeypatch):
    (tmp_path / "late-eni-attach.yaml").write_text((REPO / "scenarios" / "late-eni-attach.yaml").read_text())
    monkeypatch.setattr(demo, "runtime_cases", lambda: ([("python", h) for h in functions.python_samples()], []))
    spec, cases, skipped = demo.plan_demo(tmp_path)
    assert [p.name for p in spec.plans] == ["late-eni-attach"]
    assert any("eni-swap" in s and "not in this checkout" in s for s in skipped)
    cells = list(grid.cells(spec))
    offsets = demo.OFFSETS["late-eni-attach"].split(",")
    init_cases = {f"python {h}" for _, h in cases} - demo.LIFECYCLE_ONLY
    assert len(cells) == len(init_cases) * len(offsets)
    assert {c.params["function.runtime+function.handler"] for c in cells} == init_cases
    controls = [t for t in grid.trials(spec) if t.kind == grid.CONTROL]
    assert len(controls) == len(init_cases)  # one per handler, shared by its offsets


def test_dotnet_is_skipped_with_the_fix_when_it_cannot_run(monkeypatch):
    from harness.function import dotnet as dotnet

    monkeypatch.setattr(dotnet, "locate_runtime", lambda: None)
    monkeypatch.setattr(demo.nodejs, "locate_node", lambda: None)
    cases, skipped = demo.runtime_cases()
    assert {r for r, _ in cases} == {"python"}
    assert len(skipped) == 2 and ".NET samples: no .NET 8 runtime; fix:" in skipped[0]
    assert skipped[1].startswith("Node.js samples: no node on PATH; fix: apt-get install -y nodejs npm")


def test_the_pattern_table_lines_the_languages_up(tmp_path):
    from collections import Counter

    from harness.report.aggregate import Aggregate, CellAgg, PanelLayout
    from harness.sweep.axes import make_axis

    def cell(plan, row, x, verdicts):
        return CellAgg(f"{plan}{row}{x}", plan, "s", {}, "g", row, x, Counter(verdicts),
                       failed_any=verdicts.get("stuck", 0) + verdicts.get("failed", 0))

    offsets = make_axis("schedule[0].at.offset", "200ms,500ms")
    panels = [PanelLayout(0, "late-eni-attach", offsets, [], ["200ms", "500ms"], {}),
              PanelLayout(1, "eni-swap", None, [], ["as scheduled"], {})]
    cells = [cell(0, "python naive_cached", "500ms", {"stuck": 1}),
             cell(0, "python naive_cached", "200ms", {"recovered": 1}),
             cell(0, "nodejs cached_lookup", "500ms", {"stuck": 1}),
             cell(1, "nodejs cached_lookup", "as scheduled", {"recovered": 1, "failed": 1})]
    agg = Aggregate(None, {}, tmp_path, {c.cell_id: c for c in cells}, {}, panels)  # type: ignore[arg-type]
    table = demo.pattern_table(agg)
    assert table is not None
    headers = [str(c.header) for c in table.columns]
    assert headers == ["pattern", "runtime handler", "late-eni-attach +500ms", "eni-swap"]
    rows = list(zip(*(list(c.cells) for c in table.columns), strict=True))
    cached = rows.index(("cached failure", "python naive_cached", "[bold red]stuck[/]", "[dim]-[/]"))
    assert rows[cached + 1] == ("", "nodejs cached_lookup", "[bold red]stuck[/]", "[yellow]recovered[/]")
    # A pattern only one language has (a .NET type initializer) gets a row for that language only.
    assert ("static initializer", "python naive_cached") not in [r[:2] for r in rows]
    one_runtime = Aggregate(None, {}, tmp_path, {cells[0].cell_id: cells[0]}, {}, panels)  # type: ignore[arg-type]
    assert demo.pattern_table(one_runtime) is None


def test_both_scenarios_when_present():
    spec, cases, skipped = demo.plan_demo(REPO / "scenarios")
    names = [p.name for p in spec.plans]
    assert names[0] == "late-eni-attach"
    assert names == [n for n in demo.SCENARIOS if (REPO / "scenarios" / f"{n}.yaml").exists()]
    assert any("Docker" in s for s in skipped)


def test_no_scenarios_is_a_usage_error(tmp_path):
    with pytest.raises(UserError, match="none of"):
        demo.plan_demo(tmp_path)


def test_lifecycle_scenarios_run_only_their_own_samples():
    cases = [("python", h) for h in functions.python_samples()] + [("dotnet", "static_httpclient"),
                                                                     ("dotnet", "snapstart_pool"),
                                                                     ("nodejs", "fleet_naive"),
                                                                     ("dotnet", "fleet_batch")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo, "runtime_cases", lambda: (cases, []))
        spec, _, _ = demo.plan_demo(REPO / "scenarios")
    by_plan: dict[str, set[str]] = {}
    for c in grid.cells(spec):
        by_plan.setdefault(spec.plans[c.plan].name, set()).add(c.params["function.runtime+function.handler"])
    assert by_plan["nat-idle-reap"] == {"python naive_session", "python pooled_retry", "dotnet static_httpclient"}
    assert by_plan["keepalive-close"] == {"python kept_connection", "python pooled_retry",
                                          "dotnet static_httpclient"}
    # The lifecycle samples are not about init: the init scenarios leave them out.
    assert not by_plan["late-eni-attach"] & demo.LIFECYCLE_ONLY
    assert not {c for c in by_plan["late-eni-attach"] | by_plan["eni-swap"] if "snapstart" in c or "fleet_" in c}
    assert "python naive_session" in by_plan["eni-swap"]


def test_a_failed_control_is_flaky_only_where_a_fault_was_fired(tmp_path):
    from collections import Counter

    from harness.report.aggregate import Aggregate, CellAgg, GroupAgg

    spec, _, _ = demo.plan_demo(REPO / "scenarios")
    plan = {p.name: i for i, p in enumerate(spec.plans)}

    def failed_once(name):
        return CellAgg(name, plan[name], name, {}, "g", "python kept_connection", "as scheduled",
                       Counter({"recovered": 1}), failed_any=1)

    cells = [failed_once("keepalive-close"), failed_once("nat-idle-reap")]
    groups = {"g": GroupAgg(controls=1, failed=1)}
    agg = Aggregate(spec, {}, tmp_path, {c.cell_id: c for c in cells}, groups, [])
    # keepalive-close fires nothing: its control is the experiment, its failure the finding.
    assert demo.cell_status(agg, cells[0]) == "failed"
    assert demo.cell_status(agg, cells[1]) == "flaky"
