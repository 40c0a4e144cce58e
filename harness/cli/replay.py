"""`enirace replay TRIAL_DIR`: run a recorded trial again, exactly as it ran (its
scenario.yaml carries every parameter, the exact fault offsets and the seed), and
say whether the verdict repeated.

A real kernel and a real runtime are involved, so a replay is a new sample of the
same schedule, not a bit-for-bit re-execution (research/anchors.md §5.2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.ownership import Run
from harness.scenario import model as sc
from harness.trial import TrialResult, run_trial


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
    return run_trial(recorded.scenario, run, out_root or root, trial_id=name)


def compare(original: dict[str, Any], again: dict[str, Any]) -> list[str]:
    """Differences worth telling, beyond the verdict itself."""
    notes = []
    for key, label in (("failed_invocations", "failed invocations"), ("reinit_needed", "re-init needed"),
                       ("error_classes", "error classes")):
        if original.get(key) != again.get(key):
            notes.append(f"{label}: {original.get(key)} then, {again.get(key)} now")
    return notes
