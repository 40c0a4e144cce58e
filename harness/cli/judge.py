"""`enirace judge TRIAL_DIR`: judge a stored trial again from its history.jsonl and
print what `enirace run` printed: the timeline, the verdict, the trial folder.

The verdict is a pure function of the history, so the same checker says again what
verdict.json holds, and a newer checker says what it makes of the same events.
Nothing runs: no lab, no root. scenario.yaml gives the title and the `expect:`
block, so the exit code is run's: 0, 1 when the verdict is not one the scenario
expects, 2 for a harness_error or a folder that is not a trial folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from harness.checker.verdict import Verdict, judge
from harness.cli.common import console
from harness.cli.run import exit_code, show_result
from harness.errors import UserError
from harness.history.schema import TRIAL_START
from harness.scenario import model as sc
from harness.trial import TrialResult

HISTORY, SCENARIO, VERDICT = "history.jsonl", "scenario.yaml", "verdict.json"


def _require(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise UserError(f"{folder}: no {name}, so it is not a trial folder (`enirace run` writes "
                        f"{HISTORY}, {SCENARIO} and {VERDICT} into runs/<trial>)")
    return path


def read_history(path: Path) -> list[dict[str, Any]]:
    """The events of history.jsonl; a line that is not an event is a one-line error."""
    events = []
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    raise UserError(f"{path}:{lineno}: not JSON; a history has one event per line") from None
                if (not isinstance(event, dict) or not isinstance(event.get("kind"), str)
                        or not isinstance(event.get("t_ms"), int | float)):
                    raise UserError(f"{path}:{lineno}: not a history event (it needs \"kind\" and \"t_ms\")")
                events.append(event)
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; is it a history.jsonl enirace wrote?") from None
    return events


def _judged(events: list[dict[str, Any]], path: Path) -> Verdict:
    try:
        return judge(events)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # An event of a known kind without a field the checker reads: a hand-edited
        # or foreign file, not something to show a traceback for.
        what = f"missing field {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise UserError(f"{path}: an event the checker cannot read ({what})") from None


def load_trial(folder: Path) -> TrialResult:
    """The trial in `folder`, judged again from its history."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such trial folder (it holds {HISTORY} and {SCENARIO})")
    history = _require(folder, HISTORY)
    scenario = sc.load(_require(folder, SCENARIO))
    events = read_history(history)
    start = next((e for e in events if e["kind"] == TRIAL_START), {})
    trial_id = str(start.get("trial") or folder.resolve().name)
    return TrialResult(trial_id, scenario, _judged(events, history), events, folder, [])


def recorded_verdict(folder: Path) -> dict[str, Any] | None:
    """verdict.json as the trial wrote it (None: absent or unreadable)."""
    try:
        doc = json.loads((folder / VERDICT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


JUDGE_EPILOG = """\b
Examples:
  enirace judge runs/late-eni-attach-naive_cached-1a2b3c-1
  enirace judge runs/sweeps/<sweep>/trials/<trial> --json

\b
Exit codes: 0 the verdict is one the scenario's expect: allows (or it expects none);
1 it is not; 2 harness_error or broken, or a folder without history.jsonl or
scenario.yaml, or an event the checker cannot read. Needs no root."""


@click.command("judge", epilog=JUDGE_EPILOG)
@click.argument("trial_dir", metavar="TRIAL_DIR", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a timeline.")
@click.option("-v", "--verbose", is_flag=True, help="Also show DNS queries and function output.")
def judge_command(trial_dir: Path, as_json: bool, verbose: bool) -> None:
    """Judge a stored trial again from TRIAL_DIR/history.jsonl and print its verdict as `run` did."""
    result = load_trial(trial_dir)
    recorded = recorded_verdict(result.folder)
    same = None if recorded is None else recorded == result.verdict.to_dict()
    show_result(result, as_json, verbose, extra={"matches_verdict_json": same})
    if recorded is not None and same is False and not as_json:
        console.print(f"[yellow]note:[/] {VERDICT} says {recorded.get('verdict')}: {recorded.get('reason')} "
                      "(judged by another version of the checker?)")
    sys.exit(exit_code(result))
