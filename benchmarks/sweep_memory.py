"""The sweep parent's memory over a 1,000-trial sweep: it must stay flat, because
results are streamed to results.jsonl and never held.

By default the trials are fake (harness/sweep/fake.py: a trial folder with a
made-up history, no namespaces), so the 1,000 trials take a minute and what is
measured is the sweep machinery itself: the grid, the queue, the workers, the
result stream, the progress display, then the report over all 1,000 results.
`--real` runs real late-eni-attach trials instead (about 12 minutes with 2 workers).

Prints the parent's resident memory sampled as trials finish, its peak, and the
workers' peak. `--recycle 0` keeps each worker for the whole sweep (no retiring
after 50 trials), which is how a per-trial leak in the worker shows: the workers'
growth per trial is printed.

    .venv/bin/python benchmarks/sweep_memory.py [--trials 1000] [--real] [--recycle N]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _procstat import rss_mb  # noqa: E402  (benchmarks/, the script's own folder)
from rich.console import Console  # noqa: E402

from harness import ownership  # noqa: E402
from harness.sweep import results as res  # noqa: E402
from harness.sweep import runner  # noqa: E402
from harness.sweep.define import build_spec  # noqa: E402
from harness.sweep.runner import run_sweep  # noqa: E402

LATE_ENI = REPO / "scenarios" / "late-eni-attach.yaml"



def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
                found += kids
                todo += kids
        except OSError:
            continue
    return found


def workers_of(pid: int) -> list[int]:
    """The sweep's worker processes: children of its forkserver (not the functions they run)."""
    out = []
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as fh:
                cmd = fh.read()
            with open(f"/proc/{p}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{ppid}/cmdline", "rb") as fh:
                parent_cmd = fh.read()
        except (OSError, ValueError):
            continue
        if b"forkserver" in cmd and b"forkserver" in parent_cmd:
            out.append(p)
    return out



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--real", action="store_true", help="real trials (root, ~0.7 s each with 2 workers)")
    parser.add_argument("--recycle", type=int, default=runner.TRIALS_PER_WORKER,
                        help="trials per worker before it retires (0: never)")
    args = parser.parse_args()
    runner.TRIALS_PER_WORKER = args.recycle
    handlers = "naive_cached,naive_crash,naive_session,resilient"
    # 4 handlers x 25 offsets x repeats, minus the controls' share.
    repeats = max(1, args.trials // 100)
    axes = [f"function.handler={handlers}", "schedule[0].at.offset=0ms..960ms/40ms"]
    spec = build_spec([LATE_ENI], axes, repeats=repeats, controls=0, use_blocks=False)
    if args.real:
        from harness.privileges import has_privileges

        if not has_privileges():
            print("sweep_memory --real: needs root; skipped")
            return 0
        trial_fn = "harness.sweep.worker:real_trial"
    else:
        trial_fn = "harness.sweep.fake:fake_trial"
    samples: list[tuple[int, float]] = []
    worker_rss: list[float] = []
    with tempfile.TemporaryDirectory(prefix="enirace-bench-") as tmp:
        out = Path(tmp) / "sweep"
        if not args.real:
            ownership.STATE_DIR = Path(tmp) / "state"  # fake workers need no /run/enirace
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                path = out / res.RESULTS_FILE
                n = sum(1 for _ in path.open()) if path.exists() else 0
                samples.append((n, rss_mb()))
                kids = [rss_mb(p) for p in workers_of(os.getpid())]
                worker_rss.append(max(kids, default=0.0))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        outcome = run_sweep(spec, out, args.workers, Console(file=io.StringIO()), trial_fn=trial_fn,
                            check_functions=args.real, command=["bench"])
        sweep_s = time.monotonic() - t0
        stop.set()
        sampler.join()
        before_report = rss_mb()
        from harness.report import write_report

        t1 = time.monotonic()
        write_report(out)
        report_s = time.monotonic() - t1
        after_report = rss_mb()
        size = (out / res.RESULTS_FILE).stat().st_size
    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kind = "real" if args.real else "fake (harness/sweep/fake.py)"
    print(f"sweep memory, {outcome.ran} {kind} trials, {args.workers} workers, {sweep_s:.0f} s "
          f"(results.jsonl {size / 1e6:.1f} MB):")
    marks = [len(samples) * i // 10 for i in range(1, 10)] + [len(samples) - 1]
    shown = [samples[i] for i in sorted(set(marks)) if 0 <= i < len(samples)]
    print("  parent RSS as trials finish: " + ", ".join(f"{n}: {mb:.0f} MB" for n, mb in shown))
    if shown:
        growth = shown[-1][1] - shown[0][1]
        print(f"  growth from {shown[0][0]} to {shown[-1][0]} trials: {growth:+.1f} MB")
    print(f"  report over all results: {report_s:.1f} s, parent RSS {before_report:.0f} -> {after_report:.0f} MB")
    picks = [worker_rss[i] for i in sorted(set(marks)) if 0 <= i < len(worker_rss)]
    print("  largest worker's RSS at the same points: " + ", ".join(f"{mb:.0f} MB" for mb in picks))
    print(f"  peak RSS: parent {parent_peak:.0f} MB (includes matplotlib for the report), "
          f"workers {max(worker_rss, default=0):.0f} MB")
    if args.recycle == 0 and len(samples) > 2:
        # Each worker ran about trials/workers of them; compare the middle of the
        # sweep's first tenth with its end, past the start-up imports.
        first = len(samples) // 10
        last = max(i for i, mb in enumerate(worker_rss) if mb > 0)  # the workers exit before the last samples
        per_worker = (samples[last][0] - samples[first][0]) / args.workers
        growth = worker_rss[last] - worker_rss[first]
        print(f"  workers never recycled: largest worker {worker_rss[first]:.1f} -> {worker_rss[last]:.1f} MB "
              f"over ~{per_worker:.0f} trials each: {growth / max(per_worker, 1) * 1024:.0f} KB per trial")
    return 0


if __name__ == "__main__":
    sys.exit(main())
