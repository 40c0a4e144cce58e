"""Sweep throughput: trials per minute with 1 and with 2 workers, for a
5-invocation Python trial (late-eni-attach, handler resilient, ENI attached at
init_start + 250 ms), measured from the sweep's start to its last result.

    .venv/bin/python benchmarks/sweep_throughput.py [--trials 24] [--workers 1,2]   (needs root)
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402

from harness.sweep import results as res  # noqa: E402
from harness.sweep.define import build_spec  # noqa: E402
from harness.sweep.runner import run_sweep  # noqa: E402

LATE_ENI = REPO / "scenarios" / "late-eni-attach.yaml"


def one(workers: int, trials: int, tmp: Path) -> tuple[float, float]:
    spec = build_spec([LATE_ENI], [], ["function.handler=resilient", "schedule[0].at=init_start + 250ms",
                                       "workload.invocations=5"], repeats=trials, controls=0, seed=workers,
                      use_blocks=False)
    out = tmp / f"w{workers}"
    t0 = time.monotonic()
    outcome = run_sweep(spec, out, workers, Console(file=io.StringIO()), command=["bench"])
    wall = time.monotonic() - t0
    records = list(res.iter_results(out))
    assert outcome.ran == trials == len(records), (outcome, len(records))
    bad = [r["trial"] for r in records if r["verdict"]["verdict"] == "harness_error"]
    assert not bad, bad
    mean_trial = sum(r["duration_s"] for r in records) / len(records)
    return trials / wall * 60, mean_trial


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    from harness.privileges import has_privileges

    if not has_privileges():
        print("sweep_throughput: needs root (network namespaces); skipped")
        return 0
    print(f"sweep throughput, {args.trials} trials of late-eni-attach/resilient, 5 invocations 200 ms apart:")
    with tempfile.TemporaryDirectory(prefix="enirace-bench-") as tmp:
        for workers in (int(w) for w in args.workers.split(",")):
            per_min, mean = one(workers, args.trials, Path(tmp))
            print(f"  {workers} worker(s): {per_min:6.1f} trials/min   (one trial takes {mean:.2f} s on average)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
