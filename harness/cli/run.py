"""`enirace run SCENARIO`: one trial, its timeline and its verdict."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from harness import cleanup as cleanup_mod
from harness.cli.common import (
    EXIT_ERROR,
    EXIT_MISMATCH,
    EXIT_OK,
    console,
    fail,
    reporting_interrupts,
    require_privileges,
)
from harness.errors import UserError
from harness.ownership import Run
from harness.report.timeline import render
from harness.scenario import model as scenario_mod
from harness.trial import TrialResult, preflight, run_one_trial


def run_one(scenario: scenario_mod.Scenario, out: Path, source: Path, capture: bool = True) -> TrialResult:
    # Privileges first: preflight builds (.NET, docker images) and writes caches,
    # which an unprivileged run must not start only to fail on the lab.
    require_privileges()
    try:
        prepared = preflight(scenario)
    except UserError as exc:
        if getattr(exc, "names_its_file", False):  # a C# build error: file:line of the source
            raise
        raise UserError(f"{source}: {exc}") from None
    cleanup_mod.cleanup()  # what dead runs left behind, never a live run's objects
    run = Run.register("run")
    with reporting_interrupts(run), run:  # the run is released before the report says what is left
        return run_one_trial(prepared, run, out, capture=capture)


RUN_EPILOG = """\b
Examples:
  enirace run scenarios/late-eni-attach.yaml
  enirace run scenarios/late-eni-attach.yaml --set function.handler=naive_cached -v
  enirace run scenarios/late-eni-attach.yaml --set 'schedule[0].at=init_start + 1s' --json
  enirace run scenarios/eni-swap.yaml --backend docker

\b
Exit codes: 0 the verdict is one the scenario's expect: allows; 1 it is not; 2 a bad scenario
or --set, a misconfigured function (broken: one line), missing privileges or harness_error;
130 interrupted."""


@click.command(epilog=RUN_EPILOG)
@click.argument("scenario_path", metavar="SCENARIO", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field: a dotted path with list indices and a YAML value, e.g. "
                   "--set function.handler=naive_cached or --set 'schedule[0].at=init_start + 1s'. Repeatable.")
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
    overrides += docker_overrides(backend, image, eni_mode, rie)
    scenario = scenario_mod.load(scenario_path, overrides)
    if not as_json:
        fn = scenario.function
        with console.status(f"running {scenario.name} with {fn.runtime} handler {fn.handler} ..."):
            result = run_one(scenario, out, scenario_path, capture)
    else:
        result = run_one(scenario, out, scenario_path, capture)
    if result.verdict.verdict == "broken" and not as_json:
        fail(f"{scenario_path}: the function is misconfigured, as Lambda would report it: {result.verdict.reason} "
             f"(not a network finding; trial folder: {result.folder})")
    show_result(result, as_json, verbose)
    sys.exit(exit_code(result))


def show_result(result: TrialResult, as_json: bool, verbose: bool, extra: dict[str, Any] | None = None) -> None:
    """The trial's timeline and verdict, or its JSON document (with `extra` keys);
    `enirace judge` prints a stored trial with it too."""
    scenario = result.scenario
    if as_json:
        doc = {"trial": result.trial_id, "folder": str(result.folder), "verdict": result.verdict.to_dict(),
               "expected": result.expected,
               "expect": scenario.expect.verdict if scenario.expect else None, **(extra or {})}
        click.echo(json.dumps(doc, indent=2))
        return
    fn = scenario.function
    render(console, f"{scenario.name} · {fn.runtime} handler {fn.handler} · trial {result.trial_id}",
           result.events, result.verdict, verbose=verbose)
    console.print(f"trial folder: {result.folder}")
    if scenario.expect is not None and result.expected is False:
        console.print(f"[bold red]expected[/] {' or '.join(scenario.expect.verdict)}, got {result.verdict.verdict}")


def exit_code(result: TrialResult) -> int:
    """0, 1 when the verdict is not one the scenario expects, 2 for a harness_error
    or a misconfigured function (broken)."""
    if result.verdict.verdict in ("harness_error", "broken"):
        return EXIT_ERROR
    return EXIT_MISMATCH if result.expected is False else EXIT_OK


def docker_overrides(backend: str | None, image: str | None, eni_mode: str | None,
                     rie: str | None) -> tuple[str, ...]:
    """run's docker flags as --set overrides; any docker flag implies --backend docker."""
    sets = [f"docker.image={image}"] if image else []
    sets += [f"docker.eni={eni_mode}"] if eni_mode else []
    sets += [f"docker.rie={rie}"] if rie else []
    if backend or sets:
        sets.insert(0, f"backend={backend or 'docker'}")
    return tuple(sets)
