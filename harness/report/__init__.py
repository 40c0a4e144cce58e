"""`enirace report DIR`: report.html (self-contained) and summary.csv from a sweep."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.report.aggregate import Aggregate, aggregate, sample

MAX_TIMELINES = 60


@dataclass
class Report:
    html: Path
    csv: Path
    agg: Aggregate
    timelines_shown: int


def write_report(out: Path, max_timelines: int = MAX_TIMELINES) -> Report:
    from harness.report import heatmap, html, plots, tables

    agg = aggregate(out)
    heatmaps = [html.img(html.png(heatmap.heatmap(agg, p)), f"heatmap {p.name}") for p in agg.panels]
    curves = []
    for panel in agg.panels:
        fig = plots.recovery_curves(agg, panel)
        if fig is not None:
            curves.append(html.img(html.png(fig), f"recovery {panel.name}"))
    picked = sample(agg, max_timelines)
    shown = sum(len(chosen) for _, _, chosen in picked)
    timelines = []
    for i, (panel, row, chosen) in enumerate(picked):
        if len(agg.panels) > 1 and (i == 0 or picked[i - 1][0] is not panel):
            timelines.append(f"<h3>{html.e(panel.name)}</h3>")
        timelines.append(html.img(html.png(plots.timelines(agg, panel, row, chosen), dpi=80), f"timelines {row}"))
    experiments = sum(agg.totals.values())
    note = (f"All {shown} experiment trials." if shown >= experiments else
            f"A sample: {shown} of {experiments} experiment trials (per row every verdict it shows, then spread "
            f"evenly over the swept values; at most {max_timelines}). Every trial's history.jsonl is in trials/.")
    html_path = out / "report.html"
    html_path.write_text(html.page(agg, heatmaps, curves, timelines, note), encoding="utf-8")
    csv_path = out / "summary.csv"
    tables.write_csv(agg, csv_path)
    return Report(html_path, csv_path, agg, shown)
