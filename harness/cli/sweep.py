"""What `enirace sweep`, `report` and `merge` do, behind the click commands.

Sweep exit codes: 0 finished; 1 a trial outside the scenario's `expect:` verdicts in
a cell that is not flaky (fault_not_armed never counts); 2 a harness error in some
trial, a trial whose worker process died (the same command retries it), or a usage
error; 130 interrupted (the finished trials stay in results.jsonl).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.report.aggregate import VALID, Aggregate
from harness.scenario import model as sc
from harness.sweep import results as res
from harness.sweep.grid import SweepSpec, count, parse_shard
from harness.sweep.runner import SweepOutcome, run_sweep


def default_out(spec: SweepSpec, shard: tuple[int, int] | None) -> Path:
    """Stable for the same grid, so running the same command again resumes."""
    names = "+".join(p.name for p in spec.plans)[:60]
    tail = f"-shard{shard[0]}of{shard[1]}" if shard else ""
    return Path("runs") / "sweeps" / f"{names}-{spec.fingerprint()[:8]}{tail}"


def unexpected(agg: Aggregate) -> int:
    """Experiment trials whose verdict the scenario's `expect:` does not allow, in non-flaky cells."""
    allowed: list[list[str] | None] = []
    for plan in agg.spec.plans:
        expect = sc.validate(dict(plan.doc), plan.source).expect
        allowed.append(list(expect.verdict) if expect else None)
    bad = 0
    for cell in agg.cells.values():
        ok = allowed[cell.plan]
        if ok is None or agg.status(cell) == "flaky":
            continue
        bad += sum(n for v, n in cell.verdicts.items() if v in VALID and v not in ok)
    return bad


def report_and_summarise(console: Console, out: Path, max_timelines: int | None = None) -> tuple[Aggregate, Path]:
    from harness.report import MAX_TIMELINES, write_report
    from harness.report.tables import summary_table

    if not console.is_terminal:  # a log or CI: room for the table rather than 80 columns
        console.width = max(console.width, 120)
    with console.status("writing report.html ..."):
        report = write_report(out, max_timelines or MAX_TIMELINES)
    agg = report.agg
    console.print(summary_table(agg))
    flaky = sum(1 for c in agg.cells.values() if agg.status(c) == "flaky")
    stuck = sum(1 for c in agg.cells.values() if agg.status(c) == "stuck")
    lost = f" · {len(agg.lost)} trial(s) whose worker died, retried on resume" if agg.lost else ""
    console.print(f"{agg.recorded}/{agg.expected_total} trials recorded{lost} · {stuck} cell(s) with stuck "
                  f"trials · {flaky} flaky cell(s) (control trials failed; not counted as findings)")
    console.print(f"results: {out / res.RESULTS_FILE}\nsummary: {report.csv}\nreport:  {report.html}")
    return agg, report.html


def do_sweep(console: Console, paths: list[Path], axes: list[str], overrides: list[str], repeats: int | None,
             controls: int | None, workers: int, out: Path | None, shard_text: str | None, seed: int | None,
             jitter: str | None, capture: bool, make_report: bool) -> int:
    from harness.cli.main import require_privileges
    from harness.sweep.define import build_spec

    spec = build_spec(paths, axes, overrides, repeats, controls, seed, jitter)
    shard = parse_shard(shard_text)
    out = out or default_out(spec, shard)
    require_privileges()
    with res.locked(out):  # another sweep on this directory: one line, before anything is printed or cleaned
        return _sweep_locked(console, spec, shard, out, workers, capture, make_report)


def _sweep_locked(console: Console, spec: SweepSpec, shard: tuple[int, int] | None, out: Path, workers: int,
                  capture: bool, make_report: bool) -> int:
    from harness import cleanup
    from harness.sweep.worker import capture_supported

    if capture and not capture_supported():
        console.print("[yellow]note[/]: packet capture is not available in this build (run_trial has no "
                      "capture option yet); running without it")
        capture = False
    cleanup.cleanup()
    total = count(spec)
    console.print(f"sweep: {total} trials in the grid ({len(list(_cells(spec)))} cells × {spec.repeats} "
                  f"repeat(s) + control trials), seed {spec.seed}"
                  + (f", shard {shard[0]}/{shard[1]}" if shard else "") + f", {workers} worker(s) → {out}")
    outcome = run_sweep(spec, out, workers, console, shard, capture, command=sys.argv[1:])
    return finish(console, outcome, make_report)


def _cells(spec: SweepSpec) -> Any:
    from harness.sweep.grid import cells

    return cells(spec)


def finish(console: Console, outcome: SweepOutcome, make_report: bool) -> int:
    if outcome.leftovers:
        console.print(f"[bold red]warning[/]: namespaces left behind: {', '.join(outcome.leftovers)}; "
                      "run `enirace cleanup`")
    if outcome.worker_died:
        shown = ", ".join(outcome.worker_died[:5]) + (" ..." if len(outcome.worker_died) > 5 else "")
        console.print(f"[bold red]{len(outcome.worker_died)} trial(s) lost their worker process[/] (killed or "
                      f"crashed: {shown}); they are recorded as worker_died, not final: run the same command "
                      "again to retry them")
    if not make_report:
        console.print(f"results: {outcome.out / res.RESULTS_FILE}")
        return 2 if outcome.harness_errors or outcome.worker_died else 0
    agg, _ = report_and_summarise(console, outcome.out)
    if agg.totals["harness_error"] or agg.control_totals["harness_error"]:
        console.print("[bold red]some trials ended in harness_error[/]: see `traceback` in results.jsonl")
        return 2
    if agg.lost:
        return 2
    bad = unexpected(agg)
    if bad:
        console.print(f"{bad} trial(s) ended outside the scenario's expect: verdicts")
        return 1
    return 0


def do_merge(console: Console, dirs: list[Path], out: Path) -> int:
    merged, total, notes = res.merge(dirs, out, sys.argv[1:])
    for note in notes[:20]:
        console.print(f"[yellow]note[/]: {note}")
    console.print(f"merged {merged} of the grid's {total} trials from {len(dirs)} director"
                  f"{'y' if len(dirs) == 1 else 'ies'} into {out}")
    if merged < total:
        console.print(f"[yellow]{total - merged} trials are missing[/] (a shard not merged, or interrupted)")
    report_and_summarise(console, out)
    return 0


def env_workers(default: int = 2) -> int:
    try:
        return max(1, int(os.environ.get("ENIRACE_WORKERS", default)))
    except ValueError:
        return default
