"""The per-cell summary as rows: for the terminal table, summary.csv and the HTML."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from rich.table import Table

from harness.checker.verdict import ABSORBED
from harness.report.aggregate import Aggregate, CellAgg, short_name

STATUS_STYLE = {"stuck": "bold red", "failed": "yellow", "healthy": "green", ABSORBED: "green",
                "flaky": "bold magenta", "not armed": "magenta", "not exercised": "magenta", "broken": "bold red",
                "pending": "dim"}
VERDICT_COLUMNS = ("healthy", "recovered", "stuck", "broken", "not_exercised", "fault_not_armed", "harness_error")


def cell_row(agg: Aggregate, cell: CellAgg) -> dict[str, Any]:
    group = agg.groups.get(cell.group)
    med = cell.ttr_median()
    row: dict[str, Any] = {"cell": cell.cell_id, "scenario": cell.scenario}
    row.update({k: cell.params.get(k, "") for k in param_columns(agg)})
    row.update({v: cell.verdicts[v] for v in VERDICT_COLUMNS})
    stuck, failed = cell.share("stuck"), cell.share("failed")
    row.update({
        "trials": cell.trials,
        "stuck_share": "" if stuck is None else round(stuck, 3),
        "failed_share": "" if failed is None else round(failed, 3),
        "reinit": cell.reinit,
        "ttr_median_ms": "" if med is None else round(med, 1),
        "ttr_max_ms": round(max(cell.ttr), 1) if cell.ttr else "",
        "controls": group.text() if group else "none",
        "status": agg.status(cell),
    })
    return row


def param_columns(agg: Aggregate) -> list[str]:
    """Every axis of every scenario, in order (a cell leaves others' empty)."""
    names = [a.name for plan in agg.spec.plans for a in plan.axes]
    return list(dict.fromkeys(names))


def write_csv(agg: Aggregate, path: Path) -> None:
    rows = (cell_row(agg, c) for c in agg.cells.values())
    first = next(rows, None)
    with path.open("w", newline="", encoding="utf-8") as fh:
        if first is None:
            return
        writer = csv.DictWriter(fh, fieldnames=list(first), extrasaction="ignore")
        writer.writeheader()
        writer.writerow(first)
        for row in rows:
            writer.writerow(row)


def summary_table(agg: Aggregate, max_rows: int = 60) -> Table:
    """Cells, one per line; a big grid is summarised per row (handler) instead."""
    many = len(agg.cells) > max_rows
    title = "sweep summary" + (" (one line per row of the heatmap; every cell is in summary.csv)" if many else "")
    table = Table(title=title, title_justify="left")
    xs = {p.x.name for p in agg.panels if p.x is not None}
    keys = (["scenario"] if len(agg.spec.plans) > 1 else []) + [
        k for k in param_columns(agg) if not (many and k in xs)]
    for col in (*keys, "trials", "stuck", "failed", "recovery", "controls", "status"):
        if col in keys:
            table.add_column(short_name(col), overflow="fold", max_width=26)
        else:
            table.add_column(col, no_wrap=True)
    groups: dict[tuple[Any, ...], list[CellAgg]] = {}
    for cell in agg.cells.values():
        key = tuple(cell.params.get(k, "") for k in keys) if many else (cell.cell_id,)
        groups.setdefault(key, []).append(cell)
    for members in groups.values():
        head = members[0]
        valid = sum(c.valid for c in members)
        stuck = sum(c.verdicts["stuck"] for c in members)
        failed = sum(c.failed_any for c in members)
        ttrs = sorted(t for c in members for t in c.ttr)
        statuses = [agg.status(c) for c in members]
        status = next((s for s in ("flaky", "stuck", "failed", ABSORBED, "healthy", "not exercised", "not armed",
                                                "pending") if s in statuses), "")
        if many:
            text = ", ".join(_styled(f"{statuses.count(s)} {s}", s) for s in dict.fromkeys(statuses))
        else:
            text = _styled(status, status)
        group = agg.groups.get(head.group)
        table.add_row(*(head.params.get(k, "-") for k in keys), str(sum(c.trials for c in members)),
                      f"{stuck}/{valid}" if valid else "-", f"{failed}/{valid}" if valid else "-",
                      f"{ttrs[len(ttrs) // 2]:.0f} ms" if ttrs else "-",
                      group.text() if group else "none",
                      text)
    return table


def _styled(text: str, status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{text}[/]" if style else text
