"""The verdict heatmap: rows (handler, ...) x the swept offset -> share of trials
stuck, and share with any failed invocation. Each cell is annotated with its
counts; flaky cells (a control trial failed) are hatched grey and say so."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from harness.report.aggregate import Aggregate, CellAgg, PanelLayout, short_name  # noqa: E402

# White (never) through amber to deep red (always): readable in greyscale too.
SHARE_CMAP = LinearSegmentedColormap.from_list("share", ["#f7f7f7", "#fdd49e", "#fc8d59", "#d7301f", "#7f0000"])
PANELS = (("stuck", "stuck: still failing after the fault cleared"),
          ("failed", "any invocation failed (stuck or recovered after failures)"))


def axis_title(panel: PanelLayout, agg: Aggregate) -> str:
    if panel.x is None:
        return ""
    key = panel.x.keys[0]
    plan = agg.spec.plans[panel.plan]
    if key.endswith(".offset") and key.startswith("schedule["):
        idx = key.split("[", 1)[1].split("]", 1)[0]
        try:
            entry = plan.doc["schedule"][int(idx)]
            event = str(entry["at"]).split("+")[0].strip()
            return f"{entry['do']} at {event} + offset   [{key}]"
        except (KeyError, IndexError, ValueError, TypeError):
            pass
    return key


def grid_cells(agg: Aggregate, panel: PanelLayout) -> dict[tuple[int, int], CellAgg]:
    out = {}
    for cell in agg.cells.values():
        if cell.plan == panel.plan and cell.row in panel.rows and cell.x_label in panel.xs:
            out[(panel.rows.index(cell.row), panel.xs.index(cell.x_label))] = cell
    return out


def heatmap(agg: Aggregate, panel: PanelLayout) -> Figure:
    rows, xs = panel.rows, panel.xs
    found = grid_cells(agg, panel)
    width = min(22.0, max(8.5, 2.5 + 0.62 * len(xs)))
    height = 1.6 + 0.55 * len(rows)
    fig, axes = plt.subplots(2, 1, figsize=(width, 2 * height + 0.9), constrained_layout=True)
    annotate = len(xs) * len(rows) <= 600
    image = None
    for ax, (what, title) in zip(axes, PANELS, strict=True):
        data = np.full((len(rows), len(xs)), np.nan)
        for (r, c), cell in found.items():
            share = cell.share(what)
            if share is not None and agg.status(cell) != "flaky":
                data[r, c] = share
        image = ax.imshow(np.ma.masked_invalid(data), cmap=SHARE_CMAP, vmin=0, vmax=1, aspect="auto")
        ax.set_facecolor("#e0e0e0")
        for (r, c), cell in found.items():
            status = agg.status(cell)
            if status == "flaky":
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor="#bdbdbd", hatch="///",
                                       edgecolor="#757575", linewidth=0))
            if not annotate:
                continue
            share = cell.share(what)
            if status == "flaky":
                text, colour = "flaky", "black"
            elif status == "pending":
                text, colour = "", "black"
            elif share is None:
                text, colour = "n/a", "#424242"
            else:
                n = cell.verdicts["stuck"] if what == "stuck" else cell.failed_any
                text = f"{n}/{cell.valid}"
                colour = "white" if share >= 0.55 else "black"
            ax.text(c, r, text, ha="center", va="center", fontsize=9 if len(xs) <= 24 else 7, color=colour)
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels(xs, rotation=45 if len(xs) > 8 else 0, ha="right" if len(xs) > 8 else "center")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(rows)
        ax.set_title(title, fontsize=11, loc="left")
        ax.set_xlabel(axis_title(panel, agg))
        ax.set_ylabel(_row_title(agg, panel))
        ax.set_xticks(np.arange(-0.5, len(xs)), minor=True)
        ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
        ax.grid(which="minor", color="white", linewidth=1.5)
        ax.tick_params(which="minor", length=0)
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes), shrink=0.8, pad=0.01)
        bar.set_label("share of trials (fault armed, controls healthy)")
        bar.set_ticks([0, 0.25, 0.5, 0.75, 1])
        bar.set_ticklabels(["0%", "25%", "50%", "75%", "100%"])
    reps = agg.spec.repeats
    fig.suptitle(f"{panel.name}: share of trials where the handler got stuck or failed\n"
                 f"n = {reps} trial{'s' if reps != 1 else ''} per cell · grey: no data · hatched: flaky",
                 fontsize=11, fontweight="bold", ha="left", x=0.01)
    return fig


def _row_title(agg: Aggregate, panel: PanelLayout) -> str:
    plan = agg.spec.plans[panel.plan]
    names = [short_name(a.name) for a in plan.axes if panel.x is None or a.name != panel.x.name]
    return " · ".join(names) or "scenario"
