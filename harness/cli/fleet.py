"""`enirace fleet SCENARIO [--compare none,retry,wait_for_network,queue]`: the
scenario's fleet under each mitigation with the same seeded traffic, a table of
what became of every message, and report.html."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness import cleanup as cleanup_mod
from harness import signals
from harness.cli.common import (
    EXIT_ERROR,
    EXIT_MISMATCH,
    EXIT_OK,
    Interrupted,
    Terminated,
    console,
    fail,
    left_behind,
    require_privileges,
)
from harness.errors import UserError
from harness.fleet.runner import FleetResult, run_mitigation, scenario_for
from harness.ownership import Run
from harness.scenario import model as scenario_mod
from harness.scenario.fleet_config import Bounds, parse_compare

FLEET_EPILOG = """\b
Examples:
  enirace fleet scenarios/fleet-queue.yaml
  enirace fleet scenarios/fleet-queue.yaml --compare none,queue --messages 200
  enirace fleet scenarios/fleet-queue.yaml --compare none,retry,wait_for_network,queue --seed 7
  enirace fleet scenarios/fleet-queue.yaml --set fleet.cold_start.eni_late.probability=0.5

\b
Exit codes: 0 every mitigation stayed within the scenario's fleet.expect bounds (or it has
none); 1 one did not (a finding); 2 a bad scenario or option, missing privileges, a moto
server that would not start, or a harness error; 130 interrupted."""


def _bounds_broken(result: FleetResult, bounds: Bounds | None) -> list[str]:
    if bounds is None:
        return []
    acct, out = result.account, []
    for key, value, limit in (("lost", acct.lost, bounds.lost), ("duplicated", acct.duplicated, bounds.duplicated),
                              ("dlq", acct.in_dlq, bounds.dlq), ("error_rate", acct.error_rate, bounds.error_rate)):
        if limit is not None and value > limit:
            shown = f"{value:.1%}" if key == "error_rate" else str(value)
            out.append(f"{result.mitigation}: {key} {shown}, expected at most {limit}")
    return out


@contextmanager
def _reporting_interrupts(run: Run, out: Path) -> Iterator[None]:
    """An interrupt, once every fleet is down: what is left, if anything (a trial's
    report looks for a trial folder, which a fleet has not)."""
    try:
        yield
    except (KeyboardInterrupt, Terminated):
        with signals.deferred(redeliver=False):
            left = left_behind(run)
        if left:
            shown = ", ".join(left[:4]) + (f" and {len(left) - 4} more" if len(left) > 4 else "")
            raise Interrupted(f"teardown did not finish: left behind {shown}; `enirace cleanup` removes it") from None
        raise Interrupted(f"every environment and lab was torn down; the runs so far are in {out}") from None


def _progress() -> Progress | None:
    """A bar of messages settled on a terminal; elsewhere (CI logs) a line per mitigation."""
    if not console.is_terminal:
        return None
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("elapsed"), TimeElapsedColumn(), console=console, transient=True)


def _run_all(scenario: scenario_mod.Scenario, mitigations: list[str], out: Path) -> list[FleetResult]:
    cleanup_mod.cleanup()
    results = []
    run = Run.register("fleet")
    with _reporting_interrupts(run, out), run:
        for m in mitigations:
            progress = _progress()
            if progress is None:
                console.print(f"fleet: {m} ...")
                results.append(run_mitigation(scenario, m, run, out))
                continue
            with progress:
                task = progress.add_task(f"{m}: messages settled", total=None)
                def moved(n: int, total: int, bar: Progress = progress, task: Any = task) -> None:
                    bar.update(task, completed=n, total=total)

                results.append(run_mitigation(scenario, m, run, out, moved))
    return results


@click.command(epilog=FLEET_EPILOG)
@click.argument("scenario_path", metavar="SCENARIO", type=click.Path(path_type=Path))
@click.option("--compare", default=None, metavar="M1,M2,...",
              help="Mitigations to run, each with the same seeded traffic: none, retry, wait_for_network, "
                   "queue [the scenario's fleet.mitigation].")
@click.option("--messages", type=click.IntRange(1, 100_000), default=None, help="Messages to send [fleet.messages].")
@click.option("--seed", type=int, default=None, help="Seed of the cold starts' draws [scenario's, else random].")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field, as run's --set.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where the runs go [runs/fleet-<scenario name>].")
def fleet(scenario_path: Path, compare: str | None, messages: int | None, seed: int | None,
          overrides: tuple[str, ...], out: Path | None) -> None:
    """Run SCENARIO's fleet of execution environments and account for every message."""
    sets = list(overrides) + ([f"fleet.messages={messages}"] if messages else [])
    scenario = scenario_mod.load(scenario_path, sets)
    if scenario.fleet is None:
        raise UserError(f"{scenario_path}: fleet: the scenario has no fleet: block (see scenarios/fleet-queue.yaml)")
    try:
        mitigations: list[str] = parse_compare(compare) if compare is not None else [scenario.fleet.mitigation]
    except ValueError as exc:
        raise UserError(f"--compare: {exc}") from None
    seed = seed if seed is not None else scenario.seed if scenario.seed is not None else secrets.randbelow(2**31)
    scenario = scenario.model_copy(update={"seed": seed})
    out = out or Path("runs") / f"fleet-{scenario.name}"
    fleet_cfg = scenario.fleet
    assert fleet_cfg is not None
    try:
        for m in mitigations:
            scenario_for(scenario, m)  # every mitigation's mistakes, alone on their line, before any lab
    except UserError as exc:
        raise UserError(f"{scenario_path}: {exc}") from None
    require_privileges()
    console.print(f"fleet {scenario.name}: {fleet_cfg.messages} messages, up to {fleet_cfg.max_environments} "
                  f"environments, seed {seed}, mitigations {', '.join(mitigations)}")
    try:
        results = _run_all(scenario, mitigations, out)
    except UserError as exc:
        raise UserError(f"{scenario_path}: {exc}") from None
    except Exception as exc:  # the harness's own failure: one line, never a traceback
        fail(f"fleet: harness error: {type(exc).__name__}: {exc} (the runs so far are in {out})", EXIT_ERROR)
    accounts = [{**r.account.to_dict(), "seconds": r.seconds} for r in results]
    from harness.report import fleet as fleet_report  # matplotlib: loaded by `fleet` only, not by every command

    console.print(fleet_report.table(accounts))
    broken = [b for r in results for b in _bounds_broken(r, fleet_cfg.expect.get(r.mitigation))]
    notes = [f"{r.mitigation}: teardown left {'; '.join(r.problems)}" for r in results if r.problems]
    for r in results:
        console.print(f"  {r.mitigation}: {r.seconds:.1f} s, {r.summary['environments']} environments "
                      f"(peak {r.summary['peak']}, {r.summary['retired']} retired) · {r.folder}")
    for note in notes:
        console.print(f"[yellow]warning[/]: {note}")
    report = fleet_report.write_html(out, scenario.name, accounts, broken + notes)
    console.print(f"report: {report}")
    for line in broken:
        console.print(f"[bold red]expected[/] {line}")
    # A message the harness failed to deliver is no finding about the function.
    failed = [f"{r.mitigation}: {e}" for r in results for e in r.harness_errors]
    for line in failed[:5]:
        console.print(f"[bold red]harness error[/] {line}", soft_wrap=True)
    sys.exit(EXIT_ERROR if failed else EXIT_MISMATCH if broken else EXIT_OK)
