"""Sweeps for real: 2 workers, real labs and runtimes, the report from what they
recorded, replay of a recorded trial, and Ctrl-C tearing every worker's lab down."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from harness.lab import netns
from harness.ownership import runs_dir
from harness.sweep import results as res
from tests.integration.conftest import LATE_ENI, REPO

pytestmark = [pytest.mark.root]
AXES = ["--axis", "function.handler=naive_cached,resilient", "--axis", "schedule[0].at.offset=0ms,500ms",
        "--repeats", "1"]


def enirace(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli.main", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, **kw)


def namespaces_of(run_ids: set[str]) -> list[str]:
    return [n for n in netns.list_names() if any(f"-{r}-" in n for r in run_ids)]


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("sweep") / "s"
    done = enirace("sweep", str(LATE_ENI), *AXES, "--controls", "1", "-n", "2", "--out", str(out))
    return out, done


def test_small_sweep_with_two_workers(swept):
    out, done = swept
    # naive_cached gets stuck at 500 ms, outside the scenario's `expect:`, hence exit 1.
    assert done.returncode == 1, done.stdout + done.stderr
    records = [json.loads(line) for line in (out / res.RESULTS_FILE).read_text().splitlines()]
    assert len(records) == 4 + 2
    by = {(r["kind"], r["params"].get("function.handler"), r["params"].get("schedule[0].at.offset")):
          r["verdict"]["verdict"] for r in records}
    assert by[("experiment", "naive_cached", "500ms")] == "stuck"
    assert by[("experiment", "resilient", "500ms")] == "recovered"
    assert by[("control", "naive_cached", None)] == by[("control", "resilient", None)] == "healthy"
    workers = {r["worker"] for r in records}
    assert 1 <= len(workers) <= 2  # worker processes, each its own run (both, unless one started late)
    assert not namespaces_of(workers)
    for r in records:
        assert (out / r["folder"] / "history.jsonl").exists()
        assert f"seed: {r['seed']}" in (out / r["folder"] / "scenario.yaml").read_text()
    assert "sweep summary" in done.stdout and "report.html" in done.stdout


def test_report_from_the_recorded_sweep(swept, tmp_path):
    out, _ = swept
    again = enirace("report", str(out))
    assert again.returncode == 0, again.stderr
    page = (out / "report.html").read_text()
    assert "<table>" in page and "naive_cached" in page and "stuck" in page
    assert "Temporary failure in name resolution" in page  # the error classes carry example texts
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 4  # heatmap, recovery curves, a timeline per handler
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as img:
            img.verify()
            assert img.format == "PNG"
    assert 'src="http' not in page and "<script src" not in page  # self-contained
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 4
    status = {(r["function.handler"], r["schedule[0].at.offset"]): r["status"] for r in rows}
    assert status[("naive_cached", "500ms")] == "stuck"
    assert status[("resilient", "500ms")] == "absorbed"  # no invocation failed, as run words it


def test_replay_repeats_the_recorded_verdict(swept):
    out, _ = swept
    record = next(json.loads(line) for line in (out / res.RESULTS_FILE).read_text().splitlines()
                  if '"stuck"' in line)
    folder = out / record["folder"]
    done = enirace("replay", str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "repeated in 1 of 1" in done.stdout
    assert json.loads((folder / "replays" / "1" / "verdict.json").read_text())["verdict"] == "stuck"


def test_replay_of_a_missing_folder_is_a_usage_error(tmp_path):
    done = enirace("replay", str(tmp_path / "nothing"))
    assert done.returncode == 2 and "no such trial folder" in done.stderr + done.stdout


def _sweep_runs(parent: int) -> set[str]:
    """Run ids registered by the workers of the sweep process `parent`."""
    found = set()
    for lock in runs_dir().glob("*.lock"):
        try:
            info = json.loads(lock.read_text() or "{}")
            stat = Path(f"/proc/{info['pid']}/stat").read_text()
        except (OSError, ValueError, KeyError):
            continue
        # The workers are children of the forkserver, itself a child of the sweep.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        grand = int(Path(f"/proc/{ppid}/stat").read_text().rsplit(")", 1)[1].split()[1]) if ppid > 1 else 0
        if parent in (ppid, grand):
            found.add(lock.stem)
    return found


def test_ctrl_c_tears_down_every_workers_lab(tmp_path):
    out = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli.main", "sweep", str(LATE_ENI), *AXES, "--repeats", "3",
                             "-n", "2", "--out", str(out)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    runs: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (len(runs) == 2 and namespaces_of(runs)):
        runs = _sweep_runs(proc.pid)
        time.sleep(0.05)
    assert len(runs) == 2 and namespaces_of(runs), "the workers never built a lab"
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "no namespace of theirs is left" in output
    assert not namespaces_of(runs)
    assert not [r for r in runs if (runs_dir() / f"{r}.lock").exists()]
    recorded = list(res.iter_results(out))
    assert len(recorded) < 6 * 3 + 6
