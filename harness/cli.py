"""The `enirace` command line.

Exit codes: 0 the verdict matches the scenario's expect block (or there is none);
1 it does not; 2 a usage error, a bad scenario or a harness error; 130 interrupted.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from harness import cleanup as cleanup_mod
from harness import doctor as doctor_mod
from harness import scenario as scenario_mod
from harness.errors import PrivilegeError, UserError

EXIT_OK, EXIT_MISMATCH, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
REPO_ROOT = Path(__file__).resolve().parent.parent
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class Terminated(BaseException):
    """SIGTERM, turned into an exception so every finally block runs."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def require_privileges() -> None:
    if not doctor_mod.has_privileges():
        raise PrivilegeError(f"enirace needs root; {doctor_mod.PRIVILEGE_FIX}")


def _fail(message: str, code: int = EXIT_ERROR) -> None:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    sys.exit(code)


class _Group(click.Group):
    """Turns user errors into one line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            return super().invoke(ctx)
        except UserError as exc:
            _fail(str(exc), exc.exit_code)
        except (KeyboardInterrupt, Terminated):
            err_console.print("[bold red]interrupted[/]: the lab was torn down")
            sys.exit(EXIT_INTERRUPTED)


@click.group(cls=_Group)
@click.version_option(package_name="enirace")
def main() -> None:
    """Reproduce the AWS Lambda late-ENI race on one Linux machine."""


def _run_one(scenario: scenario_mod.Scenario, out: Path, source: Path) -> Any:
    from harness import functions
    from harness.lab import addressing
    from harness.ownership import Run
    from harness.trial import run_trial

    try:
        functions.launch_spec(scenario.function)  # a bad handler is a usage error, root or not
        addressing.check_pool(scenario.lab.pool)
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    require_privileges()
    cleanup_mod.cleanup()  # what dead runs left behind, never a live run's objects
    with Run.register("run") as run:
        return run_trial(scenario, run, out)


@main.command()
@click.argument("scenario_path", metavar="SCENARIO", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field, e.g. --set function.handler=naive_cached.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Where the trial folder goes.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a timeline.")
@click.option("-v", "--verbose", is_flag=True, help="Also show DNS queries and function output.")
def run(scenario_path: Path, overrides: tuple[str, ...], out: Path, as_json: bool, verbose: bool) -> None:
    """Run one trial of SCENARIO and judge whether the handler recovers."""
    from harness.timeline import render

    scenario = scenario_mod.load(scenario_path, overrides)
    if not as_json:
        fn = scenario.function
        with console.status(f"running {scenario.name} with {fn.runtime} handler {fn.handler} ..."):
            result = _run_one(scenario, out, scenario_path)
    else:
        result = _run_one(scenario, out, scenario_path)
    if as_json:
        doc = {"trial": result.trial_id, "folder": str(result.folder), "verdict": result.verdict.to_dict(),
               "expected": result.expected,
               "expect": result.scenario.expect.verdict if result.scenario.expect else None}
        click.echo(json.dumps(doc, indent=2))
    else:
        fn = scenario.function
        render(console, f"{scenario.name} · {fn.runtime} handler {fn.handler} · trial {result.trial_id}",
               result.events, result.verdict, verbose=verbose)
        console.print(f"trial folder: {result.folder}")
        if result.expected is False:
            console.print(f"[bold red]expected[/] {' or '.join(scenario.expect.verdict)}"  # type: ignore[union-attr]
                          f", got {result.verdict.verdict}")
    if result.verdict.verdict == "harness_error":
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_MISMATCH if result.expected is False else EXIT_OK)


@main.command()
def doctor() -> None:
    """List the prerequisites found and missing, with the fix for each."""
    table = Table(show_header=True, header_style="bold")
    for col in ("check", "status", "found", "fix"):
        table.add_column(col, overflow="fold")
    failed = False
    for check in doctor_mod.run_checks():
        status = "[green]ok[/]" if check.ok else ("[red]missing[/]" if check.required else "[yellow]optional[/]")
        failed = failed or (check.required and not check.ok)
        table.add_row(check.name, status, check.found, "" if check.ok else check.fix)
    console.print(table)
    sys.exit(EXIT_ERROR if failed else EXIT_OK)


@main.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def cleanup(dry_run: bool) -> None:
    """Remove what dead runs left behind (never a live run's objects)."""
    require_privileges()
    report = cleanup_mod.cleanup(dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for item in report.removed:
        console.print(f"{verb} {item}")
    for item in report.kept_live:
        console.print(f"[dim]kept {item} (its run is alive)[/]")
    for item in report.failed:
        console.print(f"[red]failed[/] {item}")
    if not (report.removed or report.kept_live or report.failed):
        console.print("nothing to clean up")
    sys.exit(EXIT_ERROR if report.failed else EXIT_OK)


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True)
def demo(out: Path) -> None:
    """late-eni-attach for every sample handler, then a verdict table."""
    from harness.demo import run_demo

    require_privileges()
    sys.exit(run_demo(console, REPO_ROOT / "scenarios" / "late-eni-attach.yaml", out))


if __name__ == "__main__":
    main()
