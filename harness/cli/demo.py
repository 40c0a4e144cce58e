"""`enirace demo`: a small sweep over every sample handler of each runtime that can
run here, under late-eni-attach (over a few attach offsets) and eni-swap, then the
lifecycle scenarios (nat-idle-reap, keepalive-close, dns-moved) with the samples
each one is about, a verdict table and report.html. What cannot run is skipped with
the reason."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from harness import cleanup, paths
from harness.checker.classify import headline
from harness.checker.verdict import ABSORBED, ABSORBED_MEANS
from harness.cli.common import console as cli_console
from harness.cli.common import require_privileges
from harness.cli.progress import SweepProgress
from harness.errors import UserError
from harness.function import dotnet, nodejs
from harness.function import launch as functions
from harness.function.patterns import PATTERNS, RUNTIMES
from harness.report import write_report
from harness.report.aggregate import Aggregate, CellAgg
from harness.scenario import fleet_config
from harness.sweep import results as res
from harness.sweep.define import build_spec
from harness.sweep.grid import SweepSpec
from harness.sweep.runner import run_sweep

# Attach offsets after the runtime is spawned: before, around and after the moment
# the handlers first use the network at init (~100-200 ms after spawn).
OFFSETS = {"late-eni-attach": "0ms,100ms,200ms,500ms,800ms"}
SCENARIOS = ("late-eni-attach", "eni-swap", "nat-idle-reap", "keepalive-close", "dns-moved")
# The lifecycle scenarios spend ~3 s each in frozen gaps, so each runs only the naive
# sample that shows its mechanism and the ones that survive it (under 3 minutes in
# all); their own samples stay out of the init scenarios, which they are not about.
LIFECYCLE_CASES = {
    "nat-idle-reap": ("python naive_session", "python pooled_retry", "dotnet static_httpclient",
                      "dotnet pooled_idle_timeout"),
    # Node's keep-alive agent is left out: whether it sees the FIN before reusing the
    # socket after the thaw varies from run to run (a "socket hang up" or nothing).
    "keepalive-close": ("python kept_connection", "python pooled_retry", "dotnet static_httpclient"),
    "dns-moved": ("python naive_session", "python pooled_retry", "dotnet static_httpclient",
                  "dotnet pooled_idle_timeout"),
}
# Left out of the init scenarios too: the fleet samples, which only `enirace fleet` runs.
# And the SnapStart samples, which are about a restore (scenarios/snapstart-restore.yaml).
LIFECYCLE_ONLY = {"python pooled_retry", "python kept_connection", "dotnet pooled_idle_timeout",
                  *(f"{runtime} {sample}" for runtime in ("python", "dotnet", "nodejs")
                    for sample in fleet_config.SAMPLES.values()),
                  *(f"{runtime} snapstart_{kind}" for runtime in ("python", "dotnet") for kind in ("pool", "hooks"))}
CASE_AXIS = "function.runtime+function.handler"


def runtime_cases() -> tuple[list[tuple[str, str]], list[str]]:
    """(runtime, handler) pairs that can run here, and what is skipped and why."""
    cases = [("python", h) for h in functions.python_samples()]
    skipped: list[str] = []
    if dotnet.locate_runtime() is None:
        skipped.append(f".NET samples: no .NET 8 runtime; fix: {dotnet.runtime_fix_hint()}")
    elif dotnet.locate_compiler() is None:
        skipped.append(f".NET samples: no C# compiler; fix: {dotnet.compiler_fix_hint()}")
    else:
        try:
            dotnet.build_samples()  # once, here, rather than racing in the workers
            cases += [("dotnet", h) for h in functions.dotnet_samples()]
        except UserError as exc:
            skipped.append(f".NET samples: the build failed: {exc}")
    return cases + _nodejs_cases(skipped), skipped


def _nodejs_cases(skipped: list[str]) -> list[tuple[str, str]]:
    node = nodejs.locate_node()
    if node is None:
        skipped.append(f"Node.js samples: no node on PATH; fix: {nodejs.NODE_FIX}")
        return []
    try:
        nodejs.ensure_ric(node)  # once, here, rather than racing in the workers
    except UserError as exc:
        skipped.append(f"Node.js samples: {exc}")
        return []
    return [("nodejs", h) for h in nodejs.samples()]


def docker_note() -> str:
    """The demo runs functions as processes (no image builds, under 3 minutes); say
    whether Docker could run them too, and how."""
    how = "`--set backend=docker` runs any sweep in containers"
    if shutil.which("docker") is None:
        return "Docker backend: skipped (no docker CLI); the demo runs functions as processes"
    try:
        ok = subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        return f"Docker backend: skipped (no Docker engine answering); with dockerd, {how}"
    return f"Docker backend: not part of the demo (containers cost seconds per trial); {how}"


def _fresh(out: Path) -> None:
    """The demo starts over each time, but only removes a sweep directory's own files."""
    if (out / res.SWEEP_FILE).exists():
        shutil.rmtree(out / res.TRIALS_DIR, ignore_errors=True)
        for name in (res.SWEEP_FILE, res.RESULTS_FILE, "report.html", "summary.csv"):
            (out / name).unlink(missing_ok=True)


def _cases_for(scenario: str, cases: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if scenario in LIFECYCLE_CASES:
        return [(r, h) for r, h in cases if f"{r} {h}" in LIFECYCLE_CASES[scenario]]
    return [(r, h) for r, h in cases if f"{r} {h}" not in LIFECYCLE_ONLY]


def plan_demo(scenarios_dir: Path) -> tuple[SweepSpec, list[tuple[str, str]], list[str]]:
    """The demo's grid, the (runtime, handler) cases in it, and what it skips and why."""
    cases, skipped = runtime_cases()
    chosen, axes = [], []
    for name in SCENARIOS:
        path = scenarios_dir / f"{name}.yaml"
        if not path.exists():
            skipped.append(f"{name}: {path} is not in this checkout")
            continue
        values = ",".join(f"{r}+{h}" for r, h in _cases_for(name, cases))
        if not values:
            skipped.append(f"{name}: none of its samples can run here")
            continue
        own = [f"{CASE_AXIS}={values}"]
        if name in OFFSETS:
            own.append(f"schedule[0].at.offset={OFFSETS[name]}")
        chosen.append(path)
        axes.append(own)
    if not chosen:
        raise UserError(f"{scenarios_dir}: none of {', '.join(SCENARIOS)} is there; run the demo from the repo")
    skipped.append(docker_note())
    return build_spec(chosen, repeats=1, controls=1, per_scenario_axes=axes, use_blocks=False), cases, skipped


DEMO_EPILOG = """\b
Examples:
  sudo enirace demo
  sudo enirace demo --workers 1 --out runs/demo-1

\b
Exit codes: 0 finished (stuck handlers are findings, not errors); 2 a harness_error or
a trial whose worker died, missing privileges, or no scenarios/ to run from;
130 interrupted."""


@click.command(epilog=DEMO_EPILOG)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Trials run in parallel, each in its own lab.")
def demo(out: Path, workers: int) -> None:
    """A small sweep: every sample handler of each runtime under late-eni-attach and
    eni-swap, the lifecycle scenarios with their samples, a verdict table and report.html."""
    require_privileges()
    sys.exit(run_demo_sweep(cli_console, paths.REPO_ROOT / "scenarios", out, workers))


def run_demo_sweep(console: Console, scenarios_dir: Path, out: Path, workers: int = 2) -> int:
    started = time.monotonic()
    if not console.is_terminal:  # a log file or CI: room for the table rather than 80 columns
        console.width = max(console.width, 110)
    spec, cases, skipped = plan_demo(scenarios_dir)
    _fresh(out)
    cleanup.cleanup()
    for note in skipped:
        console.print(f"[yellow]skipped[/] {note}" if "Docker" not in note else f"[dim]{note}[/]",
                      highlight=False)
    runtimes = sorted({r for r, _ in cases})
    console.print(f"demo: {', '.join(p.name for p in spec.plans)} × {len(cases)} sample handlers "
                  f"({', '.join(runtimes)}), {workers} workers")
    outcome = run_sweep(spec, out, workers, console, command=["demo"], progress=SweepProgress)
    report = write_report(out, max_timelines=200)  # a small sweep: every trial's timeline
    for title, panel_table in verdict_tables(report.agg):
        console.print(title, style="bold", highlight=False)
        console.print(panel_table)
    matrix = pattern_table(report.agg)
    if matrix is not None:
        console.print("the same logic in three languages: the verdict by pattern", style="bold", highlight=False)
        console.print(matrix)
    errors = stuck_errors(report.agg)
    if errors:
        console.print("stuck, and what the handler kept failing with:")
        for line in errors:
            console.print(line, soft_wrap=True, highlight=False)
    console.print(f"{ABSORBED}: {ABSORBED_MEANS} · recovered: failed, then worked again · "
                  "stuck: still failing after the network came back · flaky: a control trial without "
                  "the fault failed")
    console.print(f"{outcome.ran} trials in {time.monotonic() - started:.0f} s · trial folders: {out}/trials/")
    console.print(f"report: {report.html}")
    return 2 if report.agg.totals["harness_error"] or report.agg.lost else 0


def cell_status(agg: Aggregate, cell: CellAgg) -> str:
    """The aggregate's status, except in a scenario that fires nothing (keepalive-close):
    its control trial is the same trial, so a failure there is the finding, not flakiness."""
    status = agg.status(cell)
    if status == "flaky" and not agg.spec.plans[cell.plan].doc.get("schedule"):
        return "stuck" if cell.verdicts["stuck"] else "failed" if cell.failed_any else status
    return status


def cell_text(agg: Aggregate, cell: CellAgg) -> str:
    status = cell_status(agg, cell)
    n = cell.valid
    count = f" {cell.verdicts['stuck']}/{n}" if n > 1 else ""
    if status == "flaky":
        return "[bold magenta]flaky[/]"
    if status == "stuck":
        return f"[bold red]stuck{count}[/]"
    if status == "failed":
        return f"[yellow]recovered{f' {cell.failed_any}/{n}' if n > 1 else ''}[/]"
    if status in ("healthy", ABSORBED):
        return f"[green]{status}[/]"
    return f"[magenta]{status}[/]"


def verdict_tables(agg: Aggregate) -> list[tuple[str, Table]]:
    tables = []
    for panel in agg.panels:
        plan = agg.spec.plans[panel.plan]
        where = ""
        for entry in plan.doc.get("schedule") or []:
            at = str(entry.get("at"))
            if panel.x is not None and panel.x.keys[0].endswith(".offset"):
                at = at.split("+")[0].strip() + " + offset"
            where = f"{entry.get('do')} at {at}"
            break
        if not where:  # keepalive-close: nothing is fired, the lab's service closes idle connections
            where = "no fault fired, the lab's own behaviour over frozen gaps"
        table = Table()
        table.add_column("runtime handler", no_wrap=True)
        for x in panel.xs:
            table.add_column(f"+{x}" if panel.x is not None else "verdict", no_wrap=True)
        by_pos: dict[tuple[str, str], Any] = {(c.row, c.x_label): c for c in agg.cells.values()
                                              if c.plan == panel.plan}
        for row in panel.rows:
            cells = [by_pos.get((row, x)) for x in panel.xs]
            table.add_row(row.replace(" · ", " "), *(cell_text(agg, c) if c else "" for c in cells))
        tables.append((f"{panel.name}: {where}", table))
    return tables


def pattern_table(agg: Aggregate, column: str | None = "500ms") -> Table | None:
    """Rows: the samples' patterns, one sub-row per runtime; columns: the panels, so a
    failure of one language stands out from a failure of the pattern. An offset panel
    shows `column` (None: its last one). None when fewer than two runtimes ran."""
    by_case: dict[tuple[int, str, str], CellAgg] = {}
    for c in agg.cells.values():
        runtime, _, handler = c.row.replace(" · ", " ").partition(" ")
        panel = agg.panels[c.plan]
        if panel.x is None or c.x_label == (column or panel.xs[-1]):
            by_case[(c.plan, runtime, handler)] = c
    runtimes = [r for r in RUNTIMES if any(k[1] == r for k in by_case)]
    if len(runtimes) < 2:
        return None
    table = Table()
    table.add_column("pattern", no_wrap=True)
    table.add_column("runtime handler", no_wrap=True)
    panels = [p for p in agg.panels if p.name not in LIFECYCLE_CASES]  # their own tables say it
    for panel in panels:
        at = f" +{column or panel.xs[-1]}" if panel.x is not None else ""
        table.add_column(f"{panel.name}{at}", no_wrap=True)
    for pattern in PATTERNS:
        present = [r for r in runtimes if r in pattern.handlers]
        for i, r in enumerate(present):
            handler = pattern.handlers[r]
            cells = [by_case.get((panel.plan, r, handler)) for panel in panels]
            table.add_row(pattern.name if i == 0 else "", f"{r} {handler}",
                          *(cell_text(agg, c) if c else "[dim]-[/]" for c in cells),
                          end_section=i == len(present) - 1)
    return table


def stuck_errors(agg: Aggregate) -> list[str]:
    """One line per stuck row: what the handler kept saying, from which offset on."""
    first: dict[tuple[int, str], tuple[int, str, str]] = {}
    for record in res.iter_results(agg.out):
        cell = agg.cells.get(record.get("cell") or "")
        v = record["verdict"]
        if cell is None or v["verdict"] != "stuck" or not v.get("failures"):
            continue
        panel = agg.panels[cell.plan]
        pos = panel.xs.index(cell.x_label) if cell.x_label in panel.xs else 0
        key = (cell.plan, cell.row)
        if key not in first or pos < first[key][0]:
            first[key] = (pos, cell.x_label, headline(v["failures"][-1]["text"], 70))
    lines = []
    for (plan, row), (_, x, text) in sorted(first.items()):
        at = f" (from +{x})" if agg.panels[plan].x is not None else ""
        lines.append(f"  {agg.panels[plan].name}: {row.replace(' · ', ' ')}{at}: {text}")
    return lines
