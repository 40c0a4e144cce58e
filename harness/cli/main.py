"""The `enirace` command line.

Exit codes: 0 the verdict matches the scenario's expect block (or there is none);
1 it does not; 2 a usage error, a bad scenario or a harness error; 130 interrupted
(the message says whether the lab was torn down, or what is left for `enirace cleanup`).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from harness import cleanup as cleanup_mod
from harness import paths, signals
from harness.cli import doctor as doctor_mod
from harness.errors import PrivilegeError, UserError
from harness.scenario import model as scenario_mod

EXIT_OK, EXIT_MISMATCH, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
REPO_ROOT = paths.REPO_ROOT
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class Terminated(BaseException):
    """SIGTERM, turned into an exception so every finally block runs."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


class Interrupted(BaseException):
    """An interrupt of a command that builds labs, with what it really left behind."""

    def __init__(self, summary: str) -> None:
        super().__init__(summary)
        self.summary = summary


def _left_behind(run: Any) -> list[str]:
    """What `run` still owns: its manifest, and any namespace named after it."""
    from harness import ownership
    from harness.lab import netns

    owned = [f"{o.kind} {o.ident}" for o in run.owned()]
    named = [f"netns {n}" for n in netns.list_names() if ownership.run_of_netns(n) == run.run_id]
    return owned + [n for n in named if n not in owned]


def _interrupt_summary(run: Any, folder: Path | None) -> str:
    left = _left_behind(run)
    verdict = folder / "verdict.json" if folder is not None else None
    saved = f"; the trial so far is in {folder} (verdict.json)" if verdict and verdict.exists() else ""
    if left:
        shown = ", ".join(left[:4]) + (f" and {len(left) - 4} more" if len(left) > 4 else "")
        return f"teardown did not finish: left behind {shown}; `enirace cleanup` removes it{saved}"
    history = folder / "history.jsonl" if folder is not None else None
    if history is None or not history.exists() or '"trial_start"' not in history.read_text():
        return "before the lab was built; nothing was left behind"
    return f"the lab was torn down{saved}"


@contextmanager
def _reporting_interrupts(run: Any) -> Iterator[None]:
    """Turn an interrupt of the block (trials of `run`) into Interrupted, which says
    whether the lab really went and where the verdict is."""
    try:
        yield
    except (KeyboardInterrupt, Terminated) as exc:
        with signals.deferred(redeliver=False):  # one more Ctrl-C must not cut the report short
            summary = _interrupt_summary(run, getattr(exc, "trial_folder", None))
        raise Interrupted(summary) from None


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
        # A signal can land inside pyroute2's asyncio netlink code; asyncio then logs
        # "error during closing of asynchronous generator" with a traceback while the
        # lab is being torn down. Nothing a user can act on, so keep it off the console.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        try:
            return super().invoke(ctx)
        except UserError as exc:
            _fail(str(exc), exc.exit_code)
        except Interrupted as exc:
            _ignore_interrupts()
            err_console.print(f"[bold red]interrupted[/]: {exc.summary}", soft_wrap=True)
            sys.exit(EXIT_INTERRUPTED)
        except (KeyboardInterrupt, Terminated):
            _ignore_interrupts()
            err_console.print("[bold red]interrupted[/]")
            sys.exit(EXIT_INTERRUPTED)


def _ignore_interrupts() -> None:
    """Exiting on an interrupt: one more Ctrl-C must not turn the message into a traceback."""
    for signum in signals.DEFERRED:
        signal.signal(signum, signal.SIG_IGN)


@click.group(cls=_Group)
@click.version_option(package_name="enirace")
def main() -> None:
    """Reproduce the AWS Lambda late-ENI race on one Linux machine."""


def _run_one(scenario: scenario_mod.Scenario, out: Path, source: Path, capture: bool = True) -> Any:
    from harness.function import launch as functions
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
    run = Run.register("run")
    with _reporting_interrupts(run), run:  # the run is released before the report says what is left
        return run_trial(scenario, run, out, capture=capture)


@main.command()
@click.argument("scenario_path", metavar="SCENARIO", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field, e.g. --set function.handler=naive_cached.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Where the trial folder goes.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a timeline.")
@click.option("-v", "--verbose", is_flag=True, help="Also show DNS queries and function output.")
@click.option("--backend", type=click.Choice(["process", "docker"]), default=None,
              help="How the function runs [scenario's backend, else process].")
@click.option("--image", default=None, help="docker: image kind (python, dotnet, python-rie) or local image.")
@click.option("--eni-mode", type=click.Choice(["netlink", "network"]), default=None,
              help="docker: ENI faults by netlink (precise) or docker network connect/disconnect.")
@click.option("--rie", type=click.Choice(["emulator", "image"]), default=None,
              help="docker: the harness's Runtime API, or the image's own /usr/local/bin/aws-lambda-rie.")
@click.option("--capture/--no-capture", default=True, show_default=True,
              help="Sniff in the sandbox: capture.pcap plus DNS/TCP evidence in the timeline.")
def run(scenario_path: Path, overrides: tuple[str, ...], out: Path, as_json: bool, verbose: bool,
        backend: str | None, image: str | None, eni_mode: str | None, rie: str | None,
        capture: bool) -> None:
    """Run one trial of SCENARIO and judge whether the handler recovers."""
    from harness.report.timeline import render

    overrides += _docker_overrides(backend, image, eni_mode, rie)
    scenario = scenario_mod.load(scenario_path, overrides)
    if not as_json:
        fn = scenario.function
        with console.status(f"running {scenario.name} with {fn.runtime} handler {fn.handler} ..."):
            result = _run_one(scenario, out, scenario_path, capture)
    else:
        result = _run_one(scenario, out, scenario_path, capture)
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


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Trials run in parallel, each in its own lab.")
def demo(out: Path, workers: int) -> None:
    """A small sweep: every sample handler of each runtime under late-eni-attach and
    eni-swap, a verdict table and report.html."""
    from harness.cli.demo import run_demo_sweep

    require_privileges()
    sys.exit(run_demo_sweep(console, REPO_ROOT / "scenarios", out, workers))


@main.command()
@click.argument("scenario_paths", metavar="SCENARIO...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--axis", "axes", multiple=True, metavar="KEY=VALUES",
              help="A swept field: a comma list (function.handler=naive_cached,resilient) or a range "
                   "(schedule[0].at.offset=0ms..2000ms/100ms). Repeatable; adds to the scenario's sweep: block.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Fix a field for every trial.")
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
    from harness.cli.sweep import do_sweep

    sys.exit(do_sweep(console, list(scenario_paths), list(axes), list(overrides), repeats, controls, workers,
                      out, shard, seed, jitter, capture, make_report))


@main.command()
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.option("--max-timelines", type=click.IntRange(1, 10_000), default=None,
              help="Trials drawn as timelines at most [60].")
def report(directory: Path, max_timelines: int | None) -> None:
    """Write DIR/report.html (self-contained) and DIR/summary.csv for a sweep."""
    from harness.cli.sweep import report_and_summarise

    report_and_summarise(console, directory, max_timelines)
    sys.exit(EXIT_OK)


@main.command()
@click.argument("directories", metavar="DIR...", nargs=-1, required=True,
                type=click.Path(path_type=Path, file_okay=False))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The merged sweep directory.")
def merge(directories: tuple[Path, ...], out: Path) -> None:
    """Combine shard directories of one sweep into one results.jsonl and report."""
    from harness.cli.sweep import do_merge

    sys.exit(do_merge(console, list(directories), out))


@main.command()
@click.argument("trial_dir", metavar="TRIAL_DIR", type=click.Path(path_type=Path))
@click.option("--count", "times", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Replay it this many times.")
def replay(trial_dir: Path, times: int) -> None:
    """Rerun a recorded trial exactly (its scenario.yaml and seed); exit 0 if the verdict repeated."""
    from harness.cli.replay import compare, load_recorded
    from harness.cli.replay import replay as replay_trial

    recorded = load_recorded(trial_dir)
    require_privileges()
    cleanup_mod.cleanup()
    want = recorded.verdict.get("verdict")
    console.print(f"replaying {trial_dir} (seed {recorded.scenario.seed}); recorded verdict: {want}")
    repeated = 0
    from harness.ownership import Run

    run = Run.register("replay")
    with _reporting_interrupts(run), run:
        for i in range(1, times + 1):
            with console.status(f"replay {i}/{times} ..."):
                result = replay_trial(recorded, run)
            got = result.verdict.verdict
            repeated += got == want
            mark = "[green]repeated[/]" if got == want else "[bold red]differs[/]"
            console.print(f"replay {i}: {got} — {mark}  ({result.folder})")
            for note in compare(recorded.verdict, result.verdict.to_dict()):
                console.print(f"  [dim]{note}[/]")
    console.print(f"verdict {want} repeated in {repeated} of {times} replay(s)")
    sys.exit(EXIT_OK if repeated == times else EXIT_MISMATCH)


def _docker_overrides(backend: str | None, image: str | None, eni_mode: str | None,
                      rie: str | None) -> tuple[str, ...]:
    """run's docker flags as --set overrides; any docker flag implies --backend docker."""
    sets = [f"docker.image={image}"] if image else []
    sets += [f"docker.eni={eni_mode}"] if eni_mode else []
    sets += [f"docker.rie={rie}"] if rie else []
    if backend or sets:
        sets.insert(0, f"backend={backend or 'docker'}")
    return tuple(sets)


def _register_images() -> None:
    from harness.cli.images import images

    main.add_command(images)


_register_images()

if __name__ == "__main__":
    main()
