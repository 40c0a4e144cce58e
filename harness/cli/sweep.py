"""`enirace sweep`, `report` and `merge`.

Sweep exit codes: 0 finished; 1 a trial outside the scenario's `expect:` verdicts in
a cell that is not flaky (fault_not_armed never counts); 2 a harness error in some
trial, a trial whose worker process died (the same command retries it), or a usage
error; 130 interrupted (the finished trials stay in results.jsonl).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from harness import cleanup
from harness.cli.common import EXIT_OK, console, require_privileges
from harness.cli.demo import pattern_table
from harness.cli.progress import SweepProgress
from harness.report import MAX_TIMELINES, write_report
from harness.report.aggregate import VALID, Aggregate
from harness.report.tables import summary_table
from harness.scenario import model as sc
from harness.sweep import results as res
from harness.sweep.define import build_spec
from harness.sweep.grid import SweepSpec, cells, count, parse_shard
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
    if not console.is_terminal:  # a log or CI: room for the table rather than 80 columns
        console.width = max(console.width, 120)
    with console.status("writing report.html ..."):
        report = write_report(out, max_timelines or MAX_TIMELINES)
    agg = report.agg
    console.print(summary_table(agg))
    matrix = pattern_table(agg, column=None)  # samples of several languages: line them up by pattern
    if matrix is not None:
        console.print(matrix)
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
    spec = build_spec(paths, axes, overrides, repeats, controls, seed, jitter)
    shard = parse_shard(shard_text)
    out = out or default_out(spec, shard)
    require_privileges()
    with res.locked(out):  # another sweep on this directory: one line, before anything is printed or cleaned
        return _sweep_locked(console, spec, shard, out, workers, capture, make_report)


def _sweep_locked(console: Console, spec: SweepSpec, shard: tuple[int, int] | None, out: Path, workers: int,
                  capture: bool, make_report: bool) -> int:
    cleanup.cleanup()
    total = count(spec)
    console.print(f"sweep: {total} trials in the grid ({sum(1 for _ in cells(spec))} cells × {spec.repeats} "
                  f"repeat(s) + control trials), seed {spec.seed}"
                  + (f", shard {shard[0]}/{shard[1]}" if shard else "") + f", {workers} worker(s) → {out}")
    outcome = run_sweep(spec, out, workers, console, shard, capture, command=sys.argv[1:], progress=SweepProgress)
    return finish(console, outcome, make_report)


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


SWEEP_EPILOG = """\b
Examples:
  sudo enirace sweep scenarios/late-eni-attach.yaml --workers 2
  sudo enirace sweep scenarios/late-eni-attach.yaml --axis function.handler=naive_cached,resilient \\
      --axis 'schedule[0].at.offset=0ms..2000ms/100ms' --repeats 3
  sudo enirace sweep scenarios/eni-swap.yaml --shard 1/2 --out runs/shard-1 --no-report

\b
Exit codes: 0 finished; 1 a trial outside the scenario's expect: verdicts in a cell
that is not flaky; 2 a usage error or bad scenario, missing privileges, a harness_error
or a trial whose worker died (the same command again retries it), or another sweep
holding --out; 130 interrupted (the finished trials stay in results.jsonl)."""

REPORT_EPILOG = """\b
Examples:
  enirace report runs/sweeps/late-eni-attach-1a2b3c4d
  enirace report runs/demo --max-timelines 200

\b
Exit codes: 0 report.html and summary.csv written; 2 DIR is not a sweep directory
(no sweep.json) or is unreadable; 130 interrupted."""

MERGE_EPILOG = """\b
Examples:
  enirace merge runs/shard-1 runs/shard-2 --out runs/sweep-all

\b
Exit codes: 0 merged and reported (trials missing from the shards are listed, not an
error); 2 the directories hold different sweeps, one is not a sweep directory, or --out
is not new and empty; 130 interrupted."""


@click.command(epilog=SWEEP_EPILOG)
@click.argument("scenario_paths", metavar="SCENARIO...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--axis", "axes", multiple=True, metavar="KEY=VALUES",
              help="A swept field: a comma list (function.handler=naive_cached,resilient) or a range "
                   "(schedule[0].at.offset=0ms..2000ms/100ms). Repeatable; adds to the scenario's sweep: block.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Fix a field for every trial, as `enirace run --set` does (schedule[0].at=...).")
@click.option("--repeats", type=click.IntRange(1, 1000), default=None, help="Trials per cell [sweep block or 1].")
@click.option("--controls", type=click.IntRange(0, 1000), default=None,
              help="Control trials (no fault) per control group [as many as repeats].")
@click.option("--workers", "-n", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Worker processes, each with its own labs.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Sweep directory [runs/sweeps/<scenario>-<grid id>]; the same command again resumes it.")
@click.option("--shard", "shard", metavar="i/N", default=None, help="Run only slice i of N of the grid.")
@click.option("--seed", type=int, default=None, help="Sweep seed [sweep block, else derived from the grid].")
@click.option("--jitter", metavar="DURATION", default=None,
              help="Move each trial's fault offsets by a seeded random amount within ±DURATION.")
@click.option("--capture/--no-capture", default=False, show_default=True, help="Packet capture per trial.")
@click.option("--report/--no-report", "make_report", default=True, show_default=True,
              help="Write report.html and summary.csv at the end.")
def sweep(scenario_paths: tuple[Path, ...], axes: tuple[str, ...], overrides: tuple[str, ...],
          repeats: int | None, controls: int | None, workers: int, out: Path | None, shard: str | None,
          seed: int | None, jitter: str | None, capture: bool, make_report: bool) -> None:
    """Run SCENARIO over a grid of parameters x repeats, with control trials, in parallel."""
    sys.exit(do_sweep(console, list(scenario_paths), list(axes), list(overrides), repeats, controls, workers,
                      out, shard, seed, jitter, capture, make_report))


@click.command(epilog=REPORT_EPILOG)
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.option("--max-timelines", type=click.IntRange(1, 10_000), default=None,
              help="Trials drawn as timelines at most [60].")
def report(directory: Path, max_timelines: int | None) -> None:
    """Write DIR/report.html (self-contained) and DIR/summary.csv for a sweep."""
    report_and_summarise(console, directory, max_timelines)
    sys.exit(EXIT_OK)


@click.command(epilog=MERGE_EPILOG)
@click.argument("directories", metavar="DIR...", nargs=-1, required=True,
                type=click.Path(path_type=Path, file_okay=False))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The merged sweep directory.")
def merge(directories: tuple[Path, ...], out: Path) -> None:
    """Combine shard directories of one sweep into one results.jsonl and report."""
    sys.exit(do_merge(console, list(directories), out))
