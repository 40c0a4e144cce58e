"""A fleet comparison: the table (terminal and HTML) and report.html's plots, one
column or bar group per mitigation, from each run's account."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from rich.table import Table  # noqa: E402

from harness.report.html import CSS, e, img, png  # noqa: E402

COLUMNS = ("mitigation", "source", "sent", "once", "dup", "DLQ", "lost", "redelivered", "errors", "p50 ms",
           "p99 ms", "cold", "race", "error classes")
LABELS = {"redelivered": "redelivered (sqs)",
          "dup": "duplicated", "errors": "error rate", "cold": "cold starts", "race": "met the race",
          "error classes": "errors by class"}
COUNT_COLOURS = {"lost": "#c62828", "duplicated": "#ef6c00", "in_dlq": "#6a1b9a"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def row(acct: dict[str, Any]) -> list[str]:
    dup = f"{acct['duplicated']} (+{acct['extra_deliveries']})" if acct["duplicated"] else "0"
    errors = ", ".join(f"{k} {v}" for k, v in acct["errors_by_class"].items()) or "-"
    race = f"{acct['met_race']} ({acct['hurt']} hurt)" if acct["met_race"] else "0"
    latency = acct["latency_ms"]
    return [acct["mitigation"], acct["source"], str(acct["sent"]), str(acct["delivered_once"]), dup,
            str(acct["in_dlq"]), str(acct["lost"]), str(acct.get("redelivered", 0)), f"{acct['error_rate']:.1%}",
            _ms(latency["p50"]), _ms(latency["p99"]), str(acct["cold_starts"]), race, errors]


def table(accounts: list[dict[str, Any]]) -> Table:
    """One column per mitigation (fits a narrow terminal), one row per measure."""
    t = Table(title=None)
    t.add_column("", no_wrap=True, style="bold")
    for acct in accounts:
        t.add_column(acct["mitigation"], overflow="fold")
    rows = [row(a) for a in accounts]
    for i, name in enumerate(COLUMNS[1:], start=1):
        cells = [r[i] for r in rows]
        if name == "lost":
            cells = [f"[bold red]{c}[/]" if a["lost"] else c for c, a in zip(cells, accounts, strict=True)]
        t.add_row(LABELS.get(name, name), *cells)
    return t


def counts_plot(accounts: list[dict[str, Any]]) -> Figure:
    """Lost, duplicated and dead-lettered messages per mitigation; latency beside."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    names = [a["mitigation"] for a in accounts]
    width = 0.26
    for i, (key, label) in enumerate((("lost", "lost"), ("duplicated", "duplicated"), ("in_dlq", "in DLQ"))):
        xs = [n + (i - 1) * width for n in range(len(names))]
        left.bar(xs, [a[key] for a in accounts], width, label=label, color=COUNT_COLOURS[key])
    left.set_xticks(range(len(names)), names)
    left.set_ylabel("messages")
    left.set_title("What became of the messages")
    left.legend(frameon=False)
    for i, q in enumerate(("p50", "p95", "p99")):
        xs = [n + (i - 1) * width for n in range(len(names))]
        right.bar(xs, [a["latency_ms"][q] or 0 for a in accounts], width, label=q,
                  color=("#90caf9", "#42a5f5", "#1565c0")[i])
    right.set_xticks(range(len(names)), names)
    right.set_ylabel("ms, sent to recorded")
    right.set_title("End-to-end latency of delivered messages")
    right.legend(frameon=False)
    fig.tight_layout()
    return fig


def write_html(out: Path, scenario_name: str, accounts: list[dict[str, Any]], notes: list[str]) -> Path:
    head = "".join(f"<th>{e(LABELS.get(c, c))}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row(a)) + "</tr>" for a in accounts)
    lost = "".join(f"<li>{e(a['mitigation'])}: {e(', '.join(a['lost_ids']))}</li>" for a in accounts if a["lost_ids"])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>enirace fleet report</title>"
             f"<style>{CSS}</style></head><body><h1>Fleet: {e(scenario_name)}</h1>",
             f"<p class='facts'>{e(time.strftime('%Y-%m-%d %H:%M:%S'))} · each mitigation ran the same seeded "
             "traffic and cold-start draws; every count is checked against the service's own record.</p>",
             img(png(counts_plot(accounts)), "lost, duplicated, DLQ and latency per mitigation"),
             f"<h2>Comparison</h2><table><tr>{head}</tr>{body}</table>",
             *(f"<p class='note'>{e(n)}</p>" for n in notes),
             f"<h2>Lost messages</h2><ul>{lost or '<li>none</li>'}</ul>",
             "<p>Each mitigation's folder holds <code>account.json</code>, the fleet's <code>history.jsonl</code> "
             "and one folder per environment (<code>env-N/history.jsonl</code>, <code>function.log</code>), "
             "as a trial's.</p></body></html>"]
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path
