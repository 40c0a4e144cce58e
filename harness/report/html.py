"""report.html: one static file, images embedded as base64 PNG, opens from disk."""

from __future__ import annotations

import base64
import html
import io
import time
from typing import Any

from matplotlib.figure import Figure

from harness.checker.verdict import ABSORBED, ABSORBED_MEANS
from harness.report.aggregate import Aggregate, CellAgg
from harness.report.tables import VERDICT_COLUMNS, cell_row

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1280px;
 color:#212121;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.facts{color:#555}.facts code{background:#f3f3f3;padding:0 .25rem;border-radius:3px}
.numbers{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.num{background:#fafafa;border:1px solid #e0e0e0;border-radius:6px;padding:.5rem .9rem;min-width:7rem}
.num b{display:block;font-size:1.4rem}
img{max-width:100%;border:1px solid #eee;margin:.6rem 0}
table{border-collapse:collapse;font-size:.86rem;margin:.5rem 0}
th,td{border:1px solid #e0e0e0;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5;position:sticky;top:0}
.stuck{color:#c62828;font-weight:bold}.failed,.recovered{color:#b26a00}.healthy,.absorbed{color:#2e7d32}
.flaky{color:#8e24aa;font-weight:bold}
.wide{overflow-x:auto;max-width:100%}
.wide table{table-layout:fixed;width:100%;min-width:56rem}
.wide th,.wide td{overflow-wrap:anywhere;word-break:break-word;white-space:normal}
.wide td.trials{width:14rem}
.note{background:#fff8e1;border-left:4px solid #ffb300;padding:.4rem .8rem}
pre{white-space:pre-wrap;background:#f7f7f7;padding:.4rem .6rem;border-radius:4px;font-size:.8rem;margin:.2rem 0}
"""


def png(fig: Figure, dpi: int = 96) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def e(value: Any) -> str:
    return html.escape(str(value))


def header(agg: Aggregate, images: int) -> str:
    spec, meta = agg.spec, agg.meta
    axes = "; ".join(f"{e(p.name)}: " + (" × ".join(f"<code>{e(a.name)}</code> ({len(a.points)})" for a in p.axes)
                                           or "no axis") for p in spec.plans)
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(meta.get("created", time.time())))
    flaky = sum(1 for c in agg.cells.values() if agg.status(c) == "flaky")
    nums = [("trials recorded", f"{agg.recorded} / {agg.expected_total}"),
            ("stuck", agg.totals["stuck"]), ("recovered", agg.totals["recovered"] - agg.absorbed),
            (ABSORBED, agg.absorbed),
            ("healthy", agg.totals["healthy"]),
            ("not exercised", agg.totals["not_exercised"]), ("broken (misconfigured)", agg.totals["broken"]),
            ("not armed / harness error", agg.totals["fault_not_armed"] + agg.totals["harness_error"]),
            ("control trials healthy", f"{agg.control_totals['healthy']} / {sum(agg.control_totals.values())}"),
            ("flaky cells", flaky), ("cells stuck or failing", len(agg.findings()))]
    boxes = "".join(f'<div class="num"><b>{e(v)}</b>{e(k)}</div>' for k, v in nums)
    jitter = f" · jitter ±{spec.jitter_ms:g}ms" if spec.jitter_ms else ""
    shard = f" · merged from {e(', '.join(meta['merged_from']))}" if meta.get("merged_from") else (
        f" · shard {e(meta['shard'])}" if meta.get("shard") else "")
    return (f"<h1>enirace sweep: {e(', '.join(p.name for p in spec.plans))}</h1>"
            f'<p class="facts">created {e(created)} · {axes} · {spec.repeats} repeat(s) per cell'
            f" · {spec.controls} control trial(s) per control group · seed <code>{spec.seed}</code>"
            f"{jitter}{shard}"
            f" · fingerprint <code>{e(meta.get('fingerprint'))}</code></p><div class='numbers'>{boxes}</div>"
            + ("" if agg.recorded >= agg.expected_total else
               f"<p class='note'>{agg.expected_total - agg.recorded} trials of the grid are not recorded here "
               "(an interrupted sweep, or one shard): run the same sweep command again to resume, or "
               "<code>enirace merge</code> the shards.</p>")
            + ("" if not agg.lost else
               f"<p class='note'>{len(agg.lost)} of them lost their worker process (killed or crashed: "
               f"{e(', '.join(agg.lost[:5]))}{' ...' if len(agg.lost) > 5 else ''}); "
               "the same sweep command runs them again.</p>"))


def errors_section(agg: Aggregate) -> str:
    if not agg.errors:
        return "<p>No invocation or init failed in any experiment trial.</p>"
    out = ["<table><tr><th>class</th><th>failures</th><th>trials</th><th>what it said (count)</th>"
           "<th>example text (trial)</th></tr>"]
    for name, ec in sorted(agg.errors.items(), key=lambda kv: -kv[1].failures):
        heads = "<br>".join(f"{e(h)} ({n})" for h, n in ec.headlines.most_common(5))
        top = ec.headlines.most_common(1)[0][0] if ec.headlines else ""
        text, trial = ec.examples.get(top, ("", ""))
        out.append(f"<tr><td><b>{e(name)}</b></td><td>{ec.failures}</td><td>{ec.trials}</td><td>{heads}</td>"
                   f"<td><pre>{e(text[:600])}</pre><small>{e(trial)}</small></td></tr>")
    out.append("</table>")
    return "".join(out)


def cells_section(agg: Aggregate) -> str:
    rows = [cell_row(agg, c) for c in agg.cells.values()]
    if not rows:
        return ""
    cols = [k for k in rows[0] if k not in ("scenario",) or len(agg.spec.plans) > 1]
    # A container that scrolls sideways, so a wide grid never pushes the page wider.
    out = ["<div class='wide'><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols)
           + "<th>trial folders</th></tr>"]
    for cell, row in zip(agg.cells.values(), rows, strict=True):
        status = row["status"]
        cells = []
        for c in cols:
            cls = f' class="{e(status.replace(" ", "-"))}"' if c == "status" else ""
            cells.append(f"<td{cls}>{e(row.get(c, ''))}</td>")
        cells.append(f"<td class='trials'>{trial_links(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table></div>")
    return "".join(out)


def trial_links(cell: CellAgg) -> str:
    """One link a trial, relative to report.html (which sits in the sweep directory),
    so the page and its trials/ move together."""
    return " ".join(f'<a class="{e(word)}" href="{e(folder.rstrip("/"))}/" title="{e(folder)}">{e(word)}</a>'
                    for folder, word in cell.folders)


def flaky_section(agg: Aggregate) -> str:
    bad = {g: v for g, v in agg.groups.items() if v.failed}
    if not bad:
        n = sum(g.controls for g in agg.groups.values())
        return f"<p>All {n} control trials (same parameters, no fault, ENI present) were healthy.</p>" if n else (
            "<p>No control trials were recorded, so flakiness was not measured.</p>")
    items = "".join(f"<li>{v.failed} of {v.controls} control trials failed: "
                    f"{e(', '.join(v.failed_trials))}</li>" for v in bad.values())
    return ("<p class='note'>Cells whose control trials failed are marked <b>flaky</b> and are not counted "
            f"as findings:</p><ul>{items}</ul>")


def page(agg: Aggregate, heatmaps: list[str], curves: list[str], timelines: list[str], sample_note: str) -> str:
    replay = next((c["trial"] for cs in agg.candidates.values() for c in cs if c["verdict"] == "stuck"), None)
    replay = replay or next((c["trial"] for cs in agg.candidates.values() for c in cs), "TRIAL")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>enirace sweep report</title>"
             f"<style>{CSS}</style></head><body>", header(agg, len(heatmaps)),
             "<h2>Where the handler gets stuck</h2>",
             "<p>Each cell is one combination of parameters; the number is trials stuck (top) or with any "
             "failed invocation (bottom) out of the trials whose fault was armed. White: never; dark red: always. "
             "Hatched: flaky (a control trial without the fault failed), not a finding.</p>", *heatmaps,
             "<h2>Time to recovery</h2>",
             *(curves or ["<p>No trial recovered after a failure, so there is no recovery time to plot.</p>"]),
             "<h2>Trial timelines</h2>", f"<p>{e(sample_note)} Shaded: the network was impaired. "
             "Bars: invocations (green ok, red failed), blue: init.</p>", *timelines,
             "<h2>Error classes</h2>", errors_section(agg),
             "<h2>Control trials</h2>", flaky_section(agg),
             "<h2>All cells</h2>", "<p>Also in <code>summary.csv</code>. Verdict columns count experiment trials: "
             + ", ".join(VERDICT_COLUMNS) + f" ({e(ABSORBED)}: {e(ABSORBED_MEANS)}; counted as recovered). "
             "Each trial links to its folder.</p>", cells_section(agg),
             "<h2>Reproduce one trial</h2>",
             f"<pre>enirace replay {e(agg.out / 'trials' / replay)}</pre>"
             "<p>reruns that trial from its <code>scenario.yaml</code> (seed included) and says whether the "
             "verdict repeated.</p></body></html>"]
    return "\n".join(parts)
