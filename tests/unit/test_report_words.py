"""The report's links to trial folders, its page-width CSS, and the one word for a
trial in which no invocation failed (absorbed) across report, sweep and run."""

from __future__ import annotations

import csv
import io
import re

from rich.console import Console

from harness.checker.verdict import ABSORBED, Verdict, shown
from harness.report import write_report
from harness.report.timeline import verdict_line
from harness.sweep.progress import LineProgress
from tests.unit.test_sweep_runs import lines, make_spec, state_dir, sweep  # noqa: F401 (fixture)


def test_shown_word_is_absorbed_only_when_nothing_failed():
    assert shown(Verdict("recovered", "", invocations=5)) == ABSORBED
    assert shown(Verdict("recovered", "", invocations=5, failed_invocations=1)) == "recovered"
    assert shown({"verdict": "recovered", "failed_invocations": 0, "init_errors": 2}) == "recovered"
    assert shown({"verdict": "stuck"}) == "stuck"
    assert verdict_line(Verdict("recovered", "all 5 succeeded", invocations=5)).plain.startswith("verdict: ABSORBED")


def test_report_links_each_trial_to_its_folder_and_keeps_the_table_in_the_page(tmp_path):
    out = tmp_path / "s"
    sweep(make_spec(repeats=2), out)
    page = write_report(out).html.read_text()
    records = [r for r in lines(out) if r["kind"] == "experiment"]
    hrefs = set(re.findall(r'<a class="[^"]*" href="(trials/[^"]+)/"', page))
    assert hrefs == {r["folder"] for r in records}
    for href in hrefs:
        assert (out / href / "history.jsonl").exists()  # relative to report.html, which is in out
    css = page.split("<style>", 1)[1].split("</style>", 1)[0]
    assert ".wide{overflow-x:auto" in css and "table-layout:fixed" in css and "overflow-wrap:anywhere" in css
    assert "<div class='wide'><table>" in page


def test_no_failed_invocation_reads_absorbed_in_csv_report_and_progress(tmp_path):
    out = tmp_path / "s"
    sweep(make_spec(), out)
    report = write_report(out)
    rows = list(csv.DictReader(report.csv.open()))
    statuses = {r["function.handler"]: set() for r in rows}
    for r in rows:
        statuses[r["function.handler"]].add(r["status"])
    assert ABSORBED in statuses["resilient"] and "ok" not in {s for v in statuses.values() for s in v}
    page = report.html.read_text()
    assert f'class="{ABSORBED}"' in page and ">ok<" not in page
    console = Console(file=io.StringIO(), width=200)
    progress = LineProgress(console, 1, 0, "x")
    absorbed = next(r for r in lines(out) if r["kind"] == "experiment" and shown(r["verdict"]) == ABSORBED)
    progress.update(absorbed)
    assert progress.counts == {ABSORBED: 1} and console.file.getvalue().rstrip().endswith(ABSORBED)
