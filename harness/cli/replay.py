"""`enirace replay TRIAL_DIR`: run a recorded trial again, exactly as it ran (its
scenario.yaml carries every parameter, the exact fault offsets and the seed), and
say whether the verdict repeated.

A real kernel and a real runtime are involved, so a replay is a new sample of the
same schedule, not a bit-for-bit re-execution: the scheduler, the runtime's own
timing and the network stack are not replayed, so a race close to its edge may
come out the other way.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from harness import cleanup
from harness.cli.common import EXIT_MISMATCH, EXIT_OK, console, reporting_interrupts, require_privileges
from harness.errors import UserError
from harness.ownership import Run
from harness.scenario import model as sc
from harness.trial import TrialResult, run_one_trial


@dataclass
class Recorded:
    folder: Path
    scenario: sc.Scenario
    verdict: dict[str, Any]


def load_recorded(folder: Path) -> Recorded:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such trial folder (it holds scenario.yaml and verdict.json)")
    scenario_file = folder / "scenario.yaml"
    verdict_file = folder / "verdict.json"
    if not scenario_file.is_file():
        raise UserError(f"{folder}: no scenario.yaml; point at a trial folder (e.g. runs/sweeps/.../trials/<id>)")
    scenario = sc.load(scenario_file)
    try:
        verdict = json.loads(verdict_file.read_text())
    except FileNotFoundError:
        raise UserError(f"{folder}: no verdict.json (the trial never finished), nothing to compare with") from None
    return Recorded(folder, scenario, verdict)


def next_replay_dir(folder: Path) -> tuple[Path, str]:
    root = folder / "replays"
    n = 1
    while (root / str(n)).exists():
        n += 1
    return root, str(n)


def replay(recorded: Recorded, run: Run, out_root: Path | None = None) -> TrialResult:
    root, name = next_replay_dir(recorded.folder)
    return run_one_trial(recorded.scenario, run, out_root or root, trial_id=name)


def compare(original: dict[str, Any], again: dict[str, Any]) -> list[str]:
    """Differences worth telling, beyond the verdict itself."""
    notes = []
    for key, label in (("failed_invocations", "failed invocations"), ("reinit_needed", "re-init needed"),
                       ("error_classes", "error classes")):
        if original.get(key) != again.get(key):
            notes.append(f"{label}: {original.get(key)} then, {again.get(key)} now")
    return notes


REPLAY_EPILOG = """\b
Examples:
  sudo enirace replay runs/late-eni-attach-naive_cached-1a2b3c-1
  sudo enirace replay runs/sweeps/<sweep>/trials/<trial> --count 5

\b
Exit codes: 0 the recorded verdict repeated in every replay; 1 it did not in some;
2 not a trial folder (no scenario.yaml or verdict.json), a bad scenario.yaml or
missing privileges; 130 interrupted."""


@click.command("replay", epilog=REPLAY_EPILOG)
@click.argument("trial_dir", metavar="TRIAL_DIR", type=click.Path(path_type=Path))
@click.option("--count", "times", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Replay it this many times.")
def replay_command(trial_dir: Path, times: int) -> None:
    """Rerun a recorded trial exactly (its scenario.yaml and seed); exit 0 if the verdict repeated."""
    recorded = load_recorded(trial_dir)
    require_privileges()
    cleanup.cleanup()
    want = recorded.verdict.get("verdict")
    console.print(f"replaying {trial_dir} (seed {recorded.scenario.seed}); recorded verdict: {want}")
    repeated = 0
    run = Run.register("replay")
    with reporting_interrupts(run), run:
        for i in range(1, times + 1):
            with console.status(f"replay {i}/{times} ..."):
                result = replay(recorded, run)
            got = result.verdict.verdict
            repeated += got == want
            mark = "[green]repeated[/]" if got == want else "[bold red]differs[/]"
            console.print(f"replay {i}: {got} — {mark}  ({result.folder})")
            for note in compare(recorded.verdict, result.verdict.to_dict()):
                console.print(f"  [dim]{note}[/]")
    console.print(f"verdict {want} repeated in {repeated} of {times} replay(s)")
    sys.exit(EXIT_OK if repeated == times else EXIT_MISMATCH)
