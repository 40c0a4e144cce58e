"""The sweep machinery with a fake trial function (no root, no namespaces): streaming
results, resume after an interruption, shards and merge, the report."""

from __future__ import annotations

import base64
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
from rich.console import Console

from harness import ownership
from harness.errors import UserError
from harness.sweep import grid
from harness.sweep import results as res
from harness.sweep.define import build_spec
from harness.sweep.runner import run_sweep

REPO = Path(__file__).resolve().parents[2]
LATE_ENI = REPO / "scenarios" / "late-eni-attach.yaml"
FAKE = "harness.sweep.fake:fake_trial"
AXES = ["function.handler=naive_cached,resilient", "schedule[0].at.offset=0ms..400ms/200ms"]


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    # Runs and leases of the fake workers live here, not in /run/enirace.
    monkeypatch.setattr(ownership, "STATE_DIR", tmp_path / "state")


def make_spec(**kw):
    # The scenario file's own sweep: block is left out, so these grids are exactly AXES.
    return build_spec([LATE_ENI], kw.pop("axes", AXES), use_blocks=False, **kw)


def sweep(spec, out, shard=None, workers=2):
    console = Console(file=io.StringIO(), width=120)
    outcome = run_sweep(spec, out, workers, console, shard, trial_fn=FAKE, check_functions=False)
    return outcome, console.file.getvalue()


def lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / res.RESULTS_FILE).read_text().splitlines()]


def test_results_stream_one_line_per_trial(tmp_path):
    spec = make_spec(repeats=2)
    outcome, printed = sweep(spec, tmp_path / "s")
    recorded = lines(tmp_path / "s")
    assert outcome.ran == len(recorded) == grid.count(spec)
    assert {r["trial"] for r in recorded} == {t.trial_id for t in grid.trials(spec)}
    first = recorded[0]
    for key in ("trial", "kind", "seed", "params", "verdict", "folder", "worker", "duration_s"):
        assert key in first
    assert (tmp_path / "s" / first["folder"] / "verdict.json").exists()
    by_id = {r["trial"]: r for r in recorded}
    stuck = by_id["c0002-naive_cached-200ms-r1"]
    assert stuck["verdict"]["verdict"] == "stuck"
    assert by_id["c0004-resilient-0ms-r1"]["verdict"]["verdict"] != "stuck"
    assert "[1/" in printed  # one progress line per trial when not on a terminal


def test_resume_runs_only_what_is_missing(tmp_path):
    spec = make_spec()
    out = tmp_path / "s"
    sweep(spec, out)
    kept = lines(out)[:3]
    # As if interrupted after three trials, with a torn last line from a kill -9.
    (out / res.RESULTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in kept) + '{"trial": "c00')
    outcome, printed = sweep(spec, out)
    assert outcome.resumed == 3 and outcome.ran == grid.count(spec) - 3
    assert "resuming: 3 trials" in printed
    recorded = list(res.iter_results(out))
    assert sorted(r["trial"] for r in recorded) == sorted(t.trial_id for t in grid.trials(spec))
    assert recorded[:3] == kept  # finished trials were not run again


def test_resume_refuses_a_different_sweep(tmp_path):
    out = tmp_path / "s"
    sweep(make_spec(), out)
    with pytest.raises(UserError, match="different sweep"):
        sweep(make_spec(repeats=2), out)
    with pytest.raises(UserError, match="shard"):
        sweep(make_spec(), out, shard=(1, 2))


def test_sigint_stops_the_workers_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "s"
    script = (
        "import sys, pathlib, io\n"
        "from rich.console import Console\n"
        "from harness import ownership\n"
        "from harness.sweep.define import build_spec\n"
        "from harness.sweep.runner import run_sweep\n"
        f"ownership.STATE_DIR = pathlib.Path({str(tmp_path / 'state')!r})\n"
        f"spec = build_spec([{str(LATE_ENI)!r}], {AXES!r}, repeats=3, use_blocks=False)\n"
        f"run_sweep(spec, pathlib.Path({str(out)!r}), 2, Console(file=io.StringIO()), trial_fn={FAKE!r},"
        " check_functions=False)\n")
    env = dict(os.environ, ENIRACE_FAKE_TRIAL_S="0.3")
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=REPO, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (out / res.RESULTS_FILE).exists() and len(list(res.iter_results(out))) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0 and b"KeyboardInterrupt" in stderr
    done = list(res.iter_results(out))
    total = grid.count(make_spec(repeats=3))
    assert 3 <= len(done) < total
    # Every worker released its run: nothing of theirs is left in the state directory.
    assert not list((tmp_path / "state" / "runs").glob("*.lock"))
    outcome, _ = sweep(make_spec(repeats=3), out)
    assert outcome.resumed == len(done) and outcome.ran == total - len(done)
    assert len({r["trial"] for r in res.iter_results(out)}) == total == len(list(res.iter_results(out)))


def test_shards_merge_into_the_whole_sweep(tmp_path):
    spec = make_spec(repeats=2)
    dirs = [tmp_path / f"shard{i}" for i in (1, 2, 3)]
    for i, d in enumerate(dirs, 1):
        sweep(spec, d, shard=(i, 3), workers=1)
    counts = [len(lines(d)) for d in dirs]
    assert sum(counts) == grid.count(spec)
    merged, total, notes = res.merge(dirs, tmp_path / "all", ["merge"])
    assert merged == total == grid.count(spec) and not notes
    recorded = lines(tmp_path / "all")
    assert {r["trial"] for r in recorded} == {t.trial_id for t in grid.trials(spec)}
    assert all((tmp_path / "all" / r["folder"] / "history.jsonl").exists() for r in recorded)
    with pytest.raises(UserError, match="already holds results"):
        res.merge(dirs, tmp_path / "all", ["merge"])
    other = tmp_path / "other"
    sweep(make_spec(seed=99), other)
    with pytest.raises(UserError, match="different sweeps"):
        res.merge([dirs[0], other], tmp_path / "bad", ["merge"])


def test_partial_merge_says_what_is_missing(tmp_path):
    spec = make_spec()
    sweep(spec, tmp_path / "one", shard=(1, 2))
    merged, total, _ = res.merge([tmp_path / "one"], tmp_path / "m", ["merge"])
    assert merged < total


def test_report_from_a_fake_sweep_has_tables_and_images(tmp_path):
    from harness.report import write_report

    spec = make_spec(repeats=2)
    out = tmp_path / "s"
    sweep(spec, out)
    report = write_report(out)
    page = report.html.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 3  # heatmap, recovery curves, timelines
    for data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert "<table>" in page and "naive_cached" in page and "Temporary failure in name resolution" in page
    assert "http" not in page.split("<body>", 1)[1].replace("http://", "").lower() or "src=\"http" not in page
    csv_rows = report.csv.read_text().splitlines()
    assert csv_rows[0].startswith("cell,scenario,function.handler,schedule[0].at.offset")
    assert len(csv_rows) == 1 + 2 * 3
    stuck_row = next(r for r in csv_rows if r.startswith("c0002,"))
    assert stuck_row.endswith(",stuck")


def _line(trial, verdict, **kw):
    base = {"trial": trial.trial_id, "kind": trial.kind, "cell": trial.cell, "group": trial.group,
            "repeat": trial.repeat, "seed": trial.seed, "scenario": trial.scenario, "params": trial.params,
            "verdict": {"verdict": verdict, "reason": "", "failures": [], "failed_invocations": 0},
            "folder": f"trials/{trial.trial_id}"}
    base.update(kw)
    return json.dumps(base) + "\n"


def test_a_cell_whose_control_failed_is_flaky_not_a_finding(tmp_path):
    from harness.cli.sweep import unexpected
    from harness.report.aggregate import aggregate

    spec = make_spec(axes=["function.handler=naive_cached,resilient"])
    out = tmp_path / "s"
    res.write_meta(out, spec, None, ["test"])
    lines_out = []
    for t in grid.trials(spec):
        handler = t.params["function.handler"]
        if t.kind == grid.CONTROL:
            # naive_cached's control failed without any fault: its cells cannot count.
            lines_out.append(_line(t, "recovered" if handler == "naive_cached" else "healthy"))
        else:
            lines_out.append(_line(t, "stuck"))
    (out / res.RESULTS_FILE).write_text("".join(lines_out))
    agg = aggregate(out)
    status = {c.params["function.handler"]: agg.status(c) for c in agg.cells.values()}
    assert status == {"naive_cached": "flaky", "resilient": "stuck"}
    assert [c.params["function.handler"] for c in agg.findings()] == ["resilient"]
    # Only the non-flaky cell's stuck trial violates the scenario's expect: block.
    assert unexpected(agg) == 1


def test_report_of_a_sweep_with_no_results_yet(tmp_path):
    from harness.report import write_report

    out = tmp_path / "s"
    res.write_meta(out, make_spec(), None, ["test"])
    report = write_report(out)
    page = report.html.read_text()
    assert "trials of the grid are not recorded here" in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 1  # the (empty) heatmap


def test_workers_retire_after_a_number_of_trials(tmp_path, monkeypatch):
    from harness.sweep import runner

    monkeypatch.setattr(runner, "TRIALS_PER_WORKER", 3)
    spec = make_spec(repeats=2)
    outcome, _ = sweep(spec, tmp_path / "s")
    recorded = lines(tmp_path / "s")
    assert outcome.ran == len(recorded) == grid.count(spec)
    per_worker: dict[str, int] = {}
    for r in recorded:
        per_worker[r["worker"]] = per_worker.get(r["worker"], 0) + 1
    assert max(per_worker.values()) <= 3 and len(per_worker) >= grid.count(spec) // 3
    assert not list((tmp_path / "state" / "runs").glob("*.lock"))  # every retired run released


def _sweep_in_a_subprocess(out: Path, state: Path, trial_s: str) -> subprocess.Popen:
    script = (
        "import pathlib, io\n"
        "from rich.console import Console\n"
        "from harness import ownership\n"
        "from harness.sweep.define import build_spec\n"
        "from harness.sweep.runner import run_sweep\n"
        f"ownership.STATE_DIR = pathlib.Path({str(state)!r})\n"
        f"spec = build_spec([{str(LATE_ENI)!r}], {AXES!r}, repeats=3, use_blocks=False)\n"
        f"run_sweep(spec, pathlib.Path({str(out)!r}), 2, Console(file=io.StringIO()), trial_fn={FAKE!r},"
        " check_functions=False)\n")
    env = dict(os.environ, ENIRACE_FAKE_TRIAL_S=trial_s)
    return subprocess.Popen([sys.executable, "-c", script], env=env, cwd=REPO, stderr=subprocess.DEVNULL)


def test_a_second_sweep_on_a_running_sweeps_directory_stops(tmp_path):
    out = tmp_path / "s"
    first = _sweep_in_a_subprocess(out, tmp_path / "state", "0.3")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(res.iter_results(out))) < 2:
            time.sleep(0.05)
        before = (out / res.RESULTS_FILE).read_bytes()
        trials_before = sorted(p.name for p in (out / res.TRIALS_DIR).iterdir())
        with pytest.raises(UserError, match="in use by another sweep") as err:
            sweep(make_spec(repeats=3), out)
        assert str(first.pid) in str(err.value) and "--out" in str(err.value)
        # Nothing of the first sweep's was touched: no line written, no trial folder removed.
        assert (out / res.RESULTS_FILE).read_bytes()[:len(before)] == before
        assert set(trials_before) <= {p.name for p in (out / res.TRIALS_DIR).iterdir()}
        first.send_signal(signal.SIGKILL)  # the kernel drops its lock with it
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    done = list(res.iter_results(out))
    outcome, printed = sweep(make_spec(repeats=3), out)  # the kill -9 left no lock behind: it resumes
    total = grid.count(make_spec(repeats=3))
    assert outcome.resumed == len(done) and outcome.ran == total - len(done)
    assert len(list(res.iter_results(out))) == total == len({r["trial"] for r in res.iter_results(out)})


def test_the_cli_refuses_a_locked_directory_in_one_line(tmp_path):
    out = tmp_path / "s"
    sweep(make_spec(), out)
    before = (out / res.RESULTS_FILE).read_bytes()
    with res.locked(out):  # what a running sweep holds
        done = subprocess.run([sys.executable, "-m", "harness.cli.main", "sweep", str(LATE_ENI), "--no-report",
                               *[a for axis in AXES for a in ("--axis", axis)], "--out", str(out)],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
    printed = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, printed
    assert len(printed.splitlines()) == 1 and str(out) in printed and "in use by another sweep" in printed
    assert "Traceback" not in printed
    assert (out / res.RESULTS_FILE).read_bytes() == before


def dying_trial(spec, task, run, out_root, capture):
    """The fake trial, except that the first trial of the first cell kills its own
    worker with SIGKILL, once (a marker in the state directory remembers)."""
    from harness.sweep.fake import fake_trial

    marker = ownership.STATE_DIR / "died-once"
    if task["trial"] == DYING and not marker.exists():
        marker.write_text("")
        os.kill(os.getpid(), signal.SIGKILL)
    return fake_trial(spec, task, run, out_root, capture)


DYING = "c0001-naive_cached-0ms-r1"


def test_a_trial_whose_worker_died_is_retried_on_resume(tmp_path):
    from harness.cli.sweep import finish
    from harness.report.aggregate import aggregate

    spec, out = make_spec(), tmp_path / "s"
    console = Console(file=io.StringIO(), width=200)
    outcome = run_sweep(spec, out, 2, console, trial_fn=f"{__name__}:dying_trial", check_functions=False)
    assert outcome.worker_died == [DYING] and outcome.harness_errors == 0
    assert outcome.ran == grid.count(spec)  # the sweep went on with a fresh worker
    [died] = [r for r in lines(out) if r["trial"] == DYING]
    assert died["verdict"]["verdict"] == res.WORKER_DIED and "SIGKILL" in died["verdict"]["reason"]
    assert DYING not in res.done_ids(out) and res.lost_to_dead_workers(out) == [DYING]
    assert finish(console, outcome, make_report=True) == 2
    printed = console.file.getvalue()
    assert "1 trial(s) lost their worker process" in printed and "retried on resume" in printed

    again, _ = sweep(spec, out)
    assert again.resumed == grid.count(spec) - 1 and again.ran == 1 and not again.worker_died
    assert res.lost_to_dead_workers(out) == []
    agg = aggregate(out)
    assert agg.recorded == grid.count(spec) and not agg.lost  # the retried trial counts once
    assert finish(Console(file=io.StringIO()), again, make_report=True) in (0, 1)


def dies_while_sending(spec, task, run, out_root, capture):
    """The fake trial, except that the dying trial returns a result of 64 MiB, and its
    worker is SIGKILLed once the first MiB of that result is written to the parent:
    in the middle of the message, whatever multiprocessing carries it on."""
    from multiprocessing import connection

    from harness.sweep.fake import fake_trial

    out = fake_trial(spec, task, run, out_root, capture)
    marker = ownership.STATE_DIR / "died-once"
    if task["trial"] == DYING and not marker.exists():
        marker.write_text("")
        send = connection.Connection._send

        def send_half_then_die(self, buf, write=os.write):
            if len(buf) > 1 << 20:
                send(self, buf[:1 << 20], write)
                os.kill(os.getpid(), signal.SIGKILL)
            send(self, buf, write)

        connection.Connection._send = send_half_then_die
        out["teardown_problems"] = ["x" * (64 << 20)]
    return out


def test_a_worker_killed_in_the_middle_of_its_result_stalls_no_other_worker(tmp_path):
    spec, out = make_spec(), tmp_path / "s"
    outcome = run_sweep(spec, out, 2, Console(file=io.StringIO()), trial_fn=f"{__name__}:dies_while_sending",
                        check_functions=False)
    assert outcome.ran == grid.count(spec) == len(lines(out))
    # The half-sent result is not taken for a finished trial: resume runs it again.
    assert outcome.worker_died == [DYING] and res.lost_to_dead_workers(out) == [DYING]
