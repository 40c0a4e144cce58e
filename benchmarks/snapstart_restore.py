"""SnapStart restore latency, over N real trials of scenarios/snapstart-restore.yaml
(the hooked sample, restore_after 0s, one invocation): each trial's lab, runtime,
snapshot and restore are real. Printed per row (runtime, mode), p50/p99 in ms:

  restore     the first invocation's arrival to restore/next's answer: the network
              changes (the ENI swap to a new address, the service's and the NAT's
              flows dropped) and the strategy's restore (the freezer's thaw);
  to /next    restore/next's answer to the runtime's first /next after it: the
              runtime's own restore path and its after-restore hooks (the issue's
              "restore latency");
  total       the invocation's arrival to that /next.

Rows for other runtimes and modes come from the same loop:

    .nox/tests/bin/python benchmarks/snapstart_restore.py [--n 30] [--runtime python] [--mode freezer]

`--runtime dotnet` runs the .NET samples of the same name; `--mode` takes any of
harness/scenario/snap_config.py MODES. Needs root.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from harness.history import schema
from harness.ownership import Run
from harness.scenario import model as sc
from harness.scenario.snap_config import MODES
from harness.trial import run_one_trial

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "snapstart-restore.yaml"


def _first(events: list[dict], kind: str, after: float = -1.0) -> dict:
    return next(e for e in events if e["kind"] == kind and e["t_ms"] >= after)


def one(run: Run, out: Path, runtime: str, mode: str) -> tuple[float, float, float]:
    scenario = sc.load(SCENARIO, [f"function.runtime={runtime}", "function.handler=snapstart_hooks",
                                  f"snapstart.mode={mode}", "snapstart.restore_after=0s", "workload.invocations=1",
                                  "function.timeout=10s"])
    result = run_one_trial(scenario, run, out)
    events = result.events
    if result.verdict.failed_invocations or not any(e["kind"] == schema.RESTORE for e in events):
        raise SystemExit(f"trial {result.trial_id} did not restore cleanly: {result.verdict.reason}")
    arrived = _first(events, schema.INVOKE_START)["t_ms"]
    restored = _first(events, schema.RESTORE)["t_ms"]
    ready = _first(events, schema.RUNTIME_READY, restored)["t_ms"]
    return restored - arrived, ready - restored, ready - arrived


def _stats(values: list[float]) -> str:
    ms = sorted(values)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"p50={statistics.median(ms):7.2f} p99={p99:7.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--runtime", default="python", choices=("python", "dotnet"))
    ap.add_argument("--mode", default="freezer", choices=MODES)
    args = ap.parse_args()
    rows: list[tuple[float, float, float]] = []
    with Run.register("bench-snapstart") as run, tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.n):
            rows.append(one(run, Path(tmp), args.runtime, args.mode))
    restore, to_next, total = zip(*rows, strict=True)
    print(f"snapstart {args.runtime:<6} {args.mode:<8} n={len(rows)}  restore {_stats(list(restore))} ms  "
          f"to /next {_stats(list(to_next))} ms  total {_stats(list(total))} ms")


if __name__ == "__main__":
    main()
