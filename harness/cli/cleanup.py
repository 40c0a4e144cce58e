"""`enirace cleanup`: remove what dead runs left behind."""

from __future__ import annotations

import sys

import click

from harness import cleanup as cleanup_mod
from harness.cli.common import EXIT_ERROR, EXIT_OK, console, require_privileges

CLEANUP_EPILOG = """\b
Examples:
  sudo enirace cleanup --dry-run
  sudo enirace cleanup

\b
Exit codes: 0 removed what could be proven ours (or nothing was left); 2 something
could not be removed (listed as failed) or missing privileges; 130 interrupted."""


@click.command(epilog=CLEANUP_EPILOG)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def cleanup(dry_run: bool) -> None:
    """Remove what dead runs left behind: only what their manifests list and can still
    prove (never a live run's objects, never anything by its name alone)."""
    require_privileges()
    report = cleanup_mod.cleanup(dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for item in report.removed:
        console.print(f"{verb} {item}")
    for item in report.kept_live:
        console.print(f"[dim]kept {item} (its run is alive)[/]")
    for item in report.kept_unproven:
        console.print(f"[yellow]kept[/] {item} (not proven ours: left alone)")
    for item in report.failed:
        console.print(f"[red]failed[/] {item}")
    if not (report.removed or report.kept_live or report.kept_unproven or report.failed):
        console.print("nothing to clean up")
    sys.exit(EXIT_ERROR if report.failed else EXIT_OK)
