"""`enirace judge` on a trial folder a real `enirace run` wrote: it prints what run
printed (timeline, verdict line, evidence, trial folder), exits as run did, and
its verdict is verdict.json's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root]

REPO = Path(__file__).resolve().parents[2]
ENIRACE = [sys.executable, "-m", "harness.cli.main"]


def _enirace(*args: str) -> subprocess.CompletedProcess[str]:
    # Wide enough that rich folds no line, so the trial folder's path reads whole.
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run([*ENIRACE, *args], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)


def test_judge_says_again_what_run_said(tmp_path):
    ran = _enirace("run", "scenarios/late-eni-attach.yaml", "--set", "function.handler=naive_cached",
                   "--out", str(tmp_path))
    assert ran.returncode in (0, 1), ran.stderr
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert "\nverdict: " in ran.stdout and f"\ntrial folder: {folder}\n" in ran.stdout

    judged = _enirace("judge", str(folder))
    assert judged.returncode == ran.returncode, judged.stderr
    # The whole output, line for line: the timeline from history.jsonl is the one
    # run drew from the events in memory, and so are the verdict and its evidence.
    assert judged.stdout == ran.stdout

    as_json = _enirace("judge", str(folder), "--json")
    assert as_json.returncode == ran.returncode
    doc = json.loads(as_json.stdout)
    assert doc["verdict"] == json.loads((folder / "verdict.json").read_text())
    assert doc["matches_verdict_json"] is True
    assert doc["trial"] == folder.name and doc["expect"] == ["healthy", "recovered"]
