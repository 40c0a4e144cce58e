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
    assert len(cells) == len(cases) * len(offsets)
    assert {c.params["function.runtime+function.handler"] for c in cells} == {f"python {h}" for _, h in cases}
    controls = [t for t in grid.trials(spec) if t.kind == grid.CONTROL]
    assert len(controls) == len(cases)  # one per handler, shared by its offsets


def test_dotnet_is_skipped_with_the_fix_when_it_cannot_run(monkeypatch):
    from harness.function import dotnet as dotnet

    monkeypatch.setattr(dotnet, "locate_runtime", lambda: None)
    cases, skipped = demo.runtime_cases()
    assert {r for r, _ in cases} == {"python"}
    assert len(skipped) == 1 and ".NET samples: no .NET 8 runtime; fix:" in skipped[0]


def test_both_scenarios_when_present():
    spec, cases, skipped = demo.plan_demo(REPO / "scenarios")
    names = [p.name for p in spec.plans]
    assert names[0] == "late-eni-attach"
    if (REPO / "scenarios" / "eni-swap.yaml").exists():
        assert names == ["late-eni-attach", "eni-swap"]
    assert any("Docker" in s for s in skipped)


def test_no_scenarios_is_a_usage_error(tmp_path):
    with pytest.raises(UserError, match="none of"):
        demo.plan_demo(tmp_path)
