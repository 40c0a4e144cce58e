"""One streaming pass over results.jsonl: per-cell verdict counts, control groups,
error classes with example texts, and a sample of trials for timeline plots.

Nothing here holds a history: only counters, recovery times (one number per
recovered trial) and small references to the sampled trials.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checker.classify import headline
from harness.checker.verdict import ABSORBED, shown
from harness.scenario import model as sc
from harness.sweep import results as res
from harness.sweep.axes import Axis
from harness.sweep.grid import Plan, SweepSpec, cells

VALID = ("healthy", "recovered", "stuck")  # verdicts that say something about the handler
MAX_HEADLINES = 200


@dataclass
class CellAgg:
    cell_id: str
    plan: int
    scenario: str
    params: dict[str, str]
    group: str
    row: str = ""
    x_label: str = ""
    verdicts: Counter[str] = field(default_factory=Counter)
    failed_any: int = 0
    reinit: int = 0
    ttr: list[float] = field(default_factory=list)
    # (folder relative to the sweep directory, the verdict as people read it), for
    # the report's links: two short strings a trial, nothing of its history.
    folders: list[tuple[str, str]] = field(default_factory=list)

    @property
    def trials(self) -> int:
        return sum(self.verdicts.values())

    @property
    def valid(self) -> int:
        return sum(self.verdicts[v] for v in VALID)

    def share(self, what: str) -> float | None:
        if not self.valid:
            return None
        n = self.verdicts["stuck"] if what == "stuck" else self.failed_any
        return n / self.valid

    def ttr_median(self) -> float | None:
        return statistics.median(self.ttr) if self.ttr else None


@dataclass
class GroupAgg:
    controls: int = 0
    failed: int = 0
    failed_trials: list[str] = field(default_factory=list)

    def text(self) -> str:
        if not self.controls:
            return "none"
        return f"{self.controls - self.failed}/{self.controls} ok"


@dataclass
class ErrorClass:
    failures: int = 0
    trials: int = 0
    headlines: Counter[str] = field(default_factory=Counter)
    examples: dict[str, tuple[str, str]] = field(default_factory=dict)  # headline -> (text, trial)


@dataclass
class PanelLayout:
    plan: int
    name: str
    x: Axis | None
    rows: list[str]
    xs: list[str]
    x_values: dict[str, float | None]


@dataclass
class Aggregate:
    spec: SweepSpec
    meta: dict[str, Any]
    out: Path
    cells: dict[str, CellAgg]
    groups: dict[str, GroupAgg]
    panels: list[PanelLayout]
    errors: dict[str, ErrorClass] = field(default_factory=lambda: defaultdict(ErrorClass))
    totals: Counter[str] = field(default_factory=Counter)  # experiment verdicts
    absorbed: int = 0  # of totals["recovered"], those in which nothing failed
    control_totals: Counter[str] = field(default_factory=Counter)
    recorded: int = 0
    expected_total: int = 0
    candidates: dict[tuple[int, str], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    duration_s: float = 0.0
    lost: list[str] = field(default_factory=list)  # trials whose worker died, not yet retried

    def status(self, cell: CellAgg) -> str:
        group = self.groups.get(cell.group, GroupAgg())
        if not cell.trials:
            return "pending"
        if group.failed:
            return "flaky"
        if not cell.valid:
            # Apart from not armed: the fault took, the function just never met it.
            if cell.verdicts["broken"]:
                return "broken"  # the function is misconfigured: a fix for the user, not a finding
            return "not exercised" if cell.verdicts["not_exercised"] else "not armed"
        if cell.verdicts["stuck"]:
            return "stuck"
        if cell.failed_any:
            return "failed"
        return "healthy" if cell.verdicts["healthy"] == cell.valid else ABSORBED

    def findings(self) -> list[CellAgg]:
        return [c for c in self.cells.values() if self.status(c) in ("stuck", "failed")]


def _numeric(label: str) -> float | None:
    try:
        return sc.parse_duration_ms(label)
    except ValueError:
        pass
    try:
        return float(label)
    except ValueError:
        return None


def x_axis(plan: Plan) -> Axis | None:
    """The axis to put across: a trigger offset if there is one, else the first axis
    whose values are all durations or numbers."""
    numeric = [a for a in plan.axes if len(a.keys) == 1 and all(_numeric(v) is not None for v in a.labels)]
    for axis in numeric:
        if axis.keys[0].endswith((".offset", ".at")):
            return axis
    return numeric[0] if numeric else None


def layout(spec: SweepSpec) -> list[PanelLayout]:
    panels = []
    for i, plan in enumerate(spec.plans):
        x = x_axis(plan)
        rows: list[str] = []
        for cell in cells(spec):
            if cell.plan == i:
                row = row_label(cell.params, x, plan.name)
                if row not in rows:
                    rows.append(row)
        xs = x.labels if x else [_as_scheduled(plan)]
        panels.append(PanelLayout(i, plan.name, x, rows, xs, {v: _numeric(v) for v in xs}))
    return panels


def _as_scheduled(plan: Plan) -> str:
    entries = plan.doc.get("schedule") or []
    if not entries:
        return "(as in the scenario)"
    first = entries[0]
    more = f" (+{len(entries) - 1} more)" if len(entries) > 1 else ""
    return f"{first.get('do')} at {first.get('at')}{more}"


def row_label(params: dict[str, str], x: Axis | None, default: str) -> str:
    parts = [v for k, v in params.items() if k != "scenario" and (x is None or k != x.name)]
    return " · ".join(parts) or default


def aggregate(out: Path, sample_per_row: int = 12) -> Aggregate:
    meta = res.read_meta(out)
    spec = SweepSpec.from_json(meta["spec"])
    panels = layout(spec)
    agg = Aggregate(spec, meta, out, {}, defaultdict(GroupAgg), panels)
    for cell in cells(spec):
        x = panels[cell.plan].x
        agg.cells[cell.cell_id] = CellAgg(cell.cell_id, cell.plan, cell.scenario, cell.params, cell.group,
                                          row_label(cell.params, x, cell.scenario),
                                          cell.params.get(x.name, "") if x else panels[cell.plan].xs[0])
        agg.expected_total += spec.repeats
    agg.expected_total += spec.controls * len({c.group for c in agg.cells.values()})
    # A trial counts once, by its first final line: not by a `worker_died` line, which
    # resume supersedes, nor twice if two runs ever wrote it.
    for record in res.iter_results(out, final_only=True):
        _add(agg, record, sample_per_row)
    agg.lost = res.lost_to_dead_workers(out)
    return agg


def _add(agg: Aggregate, record: dict[str, Any], sample_per_row: int) -> None:
    agg.recorded += 1
    agg.duration_s += record.get("duration_s") or 0.0
    v = record["verdict"]
    verdict = v["verdict"]
    if record["kind"] == "control":
        agg.control_totals[verdict] += 1
        group = agg.groups[record["group"]]
        group.controls += 1
        if verdict != "healthy":
            group.failed += 1
            if len(group.failed_trials) < 5:
                group.failed_trials.append(record["trial"])
        return
    cell = agg.cells.get(record.get("cell") or "")
    if cell is None:
        return  # from a different grid; merge and resume refuse those, so this is a hand edit
    agg.totals[verdict] += 1
    cell.verdicts[verdict] += 1
    word = shown(v)
    agg.absorbed += word == ABSORBED
    if record.get("folder"):
        cell.folders.append((str(record["folder"]), word))
    # As `enirace run` words it: anything but healthy or absorbed had a failure.
    if verdict in VALID and word not in ("healthy", ABSORBED):
        cell.failed_any += 1
    if v.get("reinit_needed"):
        cell.reinit += 1
    if verdict == "recovered" and v.get("time_to_recovery_ms") is not None:
        cell.ttr.append(float(v["time_to_recovery_ms"]))
    seen_classes: set[str] = set()
    for failure in v.get("failures") or []:
        cls = failure.get("error_class", "other")
        ec = agg.errors[cls]
        ec.failures += 1
        if cls not in seen_classes:
            ec.trials += 1
            seen_classes.add(cls)
        head = headline(failure.get("text", ""))
        if head in ec.headlines or len(ec.headlines) < MAX_HEADLINES:
            ec.headlines[head] += 1
            ec.examples.setdefault(head, (failure.get("text", ""), record["trial"]))
    candidates = agg.candidates[(cell.plan, cell.row)]
    if len(candidates) < sample_per_row * 8:
        candidates.append({"trial": record["trial"], "folder": record["folder"], "x": cell.x_label,
                           "verdict": verdict, "repeat": record.get("repeat", 1)})


def sample(agg: Aggregate, limit: int) -> list[tuple[PanelLayout, str, list[dict[str, Any]]]]:
    """Trials to draw as timelines: per row, every verdict it shows, then evenly
    spread across the x axis; at most `limit` in all."""
    rows = [(p, r) for p in agg.panels for r in p.rows]
    per_row = max(1, limit // max(1, len(rows)))
    picked = []
    for panel, row in rows:
        cands = sorted(agg.candidates.get((panel.plan, row), []),
                       key=lambda c: (panel.xs.index(c["x"]) if c["x"] in panel.xs else 0, c["repeat"]))
        if not cands:
            continue
        chosen: list[dict[str, Any]] = []
        for verdict in dict.fromkeys(c["verdict"] for c in cands):
            chosen.append(next(c for c in cands if c["verdict"] == verdict))
        step = max(1, len(cands) // per_row)
        for c in cands[::step]:
            if len(chosen) >= per_row:
                break
            if c not in chosen:
                chosen.append(c)
        chosen = chosen[:per_row]
        chosen.sort(key=lambda c: (panel.xs.index(c["x"]) if c["x"] in panel.xs else 0, c["repeat"]))
        picked.append((panel, row, chosen))
    return picked


def short_name(axis_name: str) -> str:
    """`function.runtime+function.handler` -> `runtime+handler`; `schedule[0].at.offset` -> `offset`."""
    return "+".join(key.rsplit(".", 1)[-1].split("[", 1)[0] for key in axis_name.split("+"))
