"""Time-to-recovery curves, and trial timelines with the fault intervals shaded
(Jepsen's nemesis shading): one row per trial, invocations as bars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from harness.checker.windows import impaired_windows  # noqa: E402
from harness.history import queries, schema  # noqa: E402
from harness.report.aggregate import Aggregate, PanelLayout, short_name  # noqa: E402
from harness.report.heatmap import axis_title  # noqa: E402

STATUS_COLOUR = {"ok": "#2e7d32", "error": "#c62828", "timeout": "#ef6c00", "init_error": "#6a1b9a",
                 "crash": "#ad1457", "restore_error": "#6a1b9a"}
VERDICT_COLOUR = {"healthy": "#2e7d32", "recovered": "#b26a00", "stuck": "#c62828",
                  "fault_not_armed": "#8e24aa", "harness_error": "#424242"}
IMPAIRED = "#ffcdd2"
FROZEN = "#bbdefb"
INIT_FAILED = "#ce93d8"


def recovery_curves(agg: Aggregate, panel: PanelLayout) -> Figure | None:
    cells = [c for c in agg.cells.values() if c.plan == panel.plan and c.ttr and agg.status(c) != "flaky"]
    if not cells:
        return None
    has_x = panel.x is not None and any(v is not None for v in panel.x_values.values()) and len(panel.xs) > 1
    fig, axes = plt.subplots(1, 2 if has_x else 1, figsize=(13 if has_x else 7, 4.6), constrained_layout=True,
                             squeeze=False)
    colours = plt.get_cmap("tab10")
    rows = [r for r in panel.rows if any(c.row == r for c in cells)]
    ecdf_ax = axes[0][-1]
    for i, row in enumerate(rows):
        mine = [c for c in cells if c.row == row]
        colour = colours(i % 10)
        if has_x:
            pts = sorted((panel.x_values[c.x_label], c) for c in mine if panel.x_values.get(c.x_label) is not None)
            xs = [p[0] for p in pts]
            med = [p[1].ttr_median() for p in pts]
            lo = [min(p[1].ttr) for p in pts]
            hi = [max(p[1].ttr) for p in pts]
            ax = axes[0][0]
            ax.plot(xs, med, marker="o", color=colour, label=row)
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, linewidth=0)
        values = np.sort([t for c in mine for t in c.ttr])
        share = np.arange(1, len(values) + 1) / len(values)
        ecdf_ax.step(np.concatenate([[0.0], values]), np.concatenate([[0.0], share]), where="post", color=colour,
                     label=f"{row} (n={len(values)})")
        ecdf_ax.plot(values, share, "o", color=colour, markersize=3)
    if has_x:
        ax = axes[0][0]
        ax.set_xlabel(axis_title(panel, agg) + " [ms]")
        ax.set_ylabel("time to recovery [ms]\n(median; band: min–max)")
        ax.set_title("recovery time by offset (recovered trials only)", loc="left", fontsize=11)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    ecdf_ax.set_xlabel("time to recovery [ms] (fault cleared → first lasting success)")
    ecdf_ax.set_ylabel("share of recovered trials")
    ecdf_ax.set_title("distribution (ECDF)", loc="left", fontsize=11)
    ecdf_ax.grid(alpha=0.3)
    ecdf_ax.set_ylim(0, 1.02)
    ecdf_ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{panel.name}: time to recovery", fontsize=12, fontweight="bold")
    return fig


def _load(folder: Path) -> list[dict[str, Any]]:
    try:
        with (folder / "history.jsonl").open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip() and f'"kind": "{schema.LOG}"' not in line]
    except (FileNotFoundError, ValueError):
        return []


def frozen_shading(events: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(start, stop) in ms of each span the runtime was verifiably frozen; a span
    the trial ended in stops at the last event."""
    end = max((e["t_ms"] for e in events), default=0.0)
    return [(s["start"], s["end"] if s["end"] is not None else end)
            for s in queries.frozen_spans(events) if s["verified"]]


def _draw_trial(ax: Any, y: float, events: list[dict[str, Any]]) -> float:
    """One trial's row; returns where its last event is."""
    end = max((e["t_ms"] for e in events), default=0.0)
    for start, stop in frozen_shading(events):
        # Below the impaired shading's band: a fault fired while frozen shows both.
        ax.add_patch(Rectangle((start, y - 0.48), stop - start, 0.2, facecolor=FROZEN, edgecolor="none",
                               zorder=1))
    for start, until in impaired_windows(events):
        ax.add_patch(Rectangle((start, y - 0.48), (until if until is not None else end) - start, 0.96,
                               facecolor=IMPAIRED, edgecolor="none", zorder=0))
    starts = queries.invoke_starts(events)
    for e in events:
        if e["kind"] == schema.INVOKE_END:
            t0 = starts.get(e["n"], e["t_ms"] - e.get("duration_ms", 0))
            ax.add_patch(Rectangle((t0, y - 0.3), max(e["t_ms"] - t0, end / 150), 0.45,
                                   facecolor=STATUS_COLOUR.get(e["status"], "#616161"), zorder=2))
    gens: dict[int, float] = {}
    for e in events:
        kind = e["kind"]
        if kind == schema.INIT_START:
            gens[e["generation"]] = e["t_ms"]
        elif kind in (schema.RUNTIME_READY, schema.INIT_ERROR) and e.get("generation") in gens:
            t0 = gens.pop(e["generation"])
            ax.add_patch(Rectangle((t0, y + 0.2), max(e["t_ms"] - t0, end / 400), 0.2,
                                   facecolor="#1565c0" if kind == schema.RUNTIME_READY else INIT_FAILED, zorder=2))
        elif kind in (schema.FAULT, schema.RESTORE):  # a SnapStart restore changes the network too
            ax.plot([e["t_ms"]] * 2, [y - 0.48, y + 0.48], color="black", linestyle="--", linewidth=1.4, zorder=3)
    return end


def timelines(agg: Aggregate, panel: PanelLayout, row: str, chosen: list[dict[str, Any]]) -> Figure:
    fig, ax = plt.subplots(figsize=(12, 1.1 + 0.42 * len(chosen)), constrained_layout=True)
    labels = []
    t_max = 0.0
    for i, c in enumerate(chosen):
        events = _load(agg.out / c["folder"])
        t_max = max(t_max, _draw_trial(ax, i, events))
        xlabel = f"{c['x']} " if panel.x else ""
        labels.append(f"{xlabel}r{c['repeat']}")
        ax.text(1.005, i, c["verdict"], transform=ax.get_yaxis_transform(), va="center", fontsize=9,
                color=VERDICT_COLOUR.get(c["verdict"], "black"), fontweight="bold")
    ax.set_ylim(len(chosen) - 0.5, -0.5)
    ax.set_xlim(0, t_max * 1.02 or 1)
    ax.set_yticks(range(len(chosen)))
    ax.set_yticklabels(labels, fontsize=9)
    ax.set_xlabel("ms since the trial started")
    ax.set_ylabel(short_name(panel.x.name) if panel.x else "trial")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{panel.name} · {row}: trial timelines", loc="left", fontsize=11, fontweight="bold")
    legend = [Patch(facecolor=IMPAIRED, label="network impaired (no usable ENI)"),
              Patch(facecolor=FROZEN, label="runtime frozen"),
              Patch(facecolor=STATUS_COLOUR["ok"], label="invocation ok"),
              Patch(facecolor=STATUS_COLOUR["error"], label="invocation failed"),
              Patch(facecolor=STATUS_COLOUR["timeout"], label="timed out"),
              Patch(facecolor="#1565c0", label="init (spawn → first /next)"),
              Patch(facecolor=INIT_FAILED, label="init failed"),
              Line2D([0], [0], color="black", linestyle="--", label="fault fired")]
    fig.legend(handles=legend, loc="outside lower center", ncol=8, fontsize=8, frameon=False)
    return fig
