"""Harness overhead per trial on the process backend, without the function.

Runs the harness part of a trial (what harness/trial.py does around the workload:
address lease, trial folder and history, lab up with resolver and service, initial
state and its verification, nemesis, Runtime API emulator start and stop, verdict,
lab down) N times and prints the phases' medians and the total. Target: <= 50 ms.

Then, as a cross-check, real trials with a 1-invocation Python function: their wall
time and the part of it outside the function's lifetime (spawn to last response).

    .venv/bin/python benchmarks/trial_overhead.py [--trials 40]     (needs root)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.checker.verdict import judge  # noqa: E402
from harness.emulator.api import RuntimeAPI  # noqa: E402
from harness.function.spec import LaunchSpec  # noqa: E402
from harness.history.recorder import History  # noqa: E402
from harness.lab import addressing  # noqa: E402
from harness.lab.topology import Lab  # noqa: E402
from harness.nemesis.firing import Nemesis  # noqa: E402
from harness.ownership import Run  # noqa: E402
from harness.scenario import model as sc  # noqa: E402
from harness.trial import _set_initial_state, preflight, run_one_trial  # noqa: E402

LATE_ENI = REPO / "scenarios" / "late-eni-attach.yaml"
TARGET_MS = 50.0


class Clock:
    def __init__(self) -> None:
        self.phases: dict[str, list[float]] = defaultdict(list)
        self._t = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase].append((now - self._t) * 1000)
        self._t = now


def harness_only(scenario: sc.Scenario, run: Run, root: Path, clock: Clock) -> float:
    """run_one_trial's steps minus the function: no runtime process, no invocation."""
    start = time.perf_counter()
    clock._t = start
    preflight(scenario)
    clock.lap("preflight (function, pool vs host routes, backend)")
    lease = addressing.acquire(scenario.lab.pool, run)
    folder = root / f"t{run._labs + 1}"
    folder.mkdir()
    (folder / "scenario.yaml").write_text(sc.dump(scenario))
    history = History(folder / "history.jsonl")
    clock.lap("lease + folder")
    lab = Lab(run, lease.subnet, notify=history.record)
    lab.up()
    clock.lap("lab up (2 netns, bridge, resolver, service)")
    _set_initial_state(lab, scenario, history)
    clock.lap(f"initial state eni={scenario.lab.eni} (+verify)")
    nemesis = Nemesis(lab, history, scenario.schedule)
    nemesis.start()
    spec = LaunchSpec(["true"], {}, folder)
    api = RuntimeAPI(lab.sandbox, history, lambda *_: None, spec, timeout_s=3.0)  # type: ignore[arg-type,return-value]
    api.start()
    clock.lap("emulator start")
    nemesis.stop()
    api.stop()
    clock.lap("emulator + nemesis stop")
    verdict = judge(history.events)
    (folder / "verdict.json").write_text(json.dumps(verdict.to_dict()))
    history.close()
    clock.lap("verdict")
    problems = lab.down()
    lease.release()
    clock.lap("lab down")
    assert not problems, problems
    return (time.perf_counter() - start) * 1000


def real_trials(run: Run, root: Path, n: int) -> tuple[list[float], list[float]]:
    walls, outside = [], []
    scenario = sc.load(LATE_ENI, ["lab.eni=present", "schedule=[]", "workload.invocations=1"])
    for _ in range(n):
        t0 = time.perf_counter()
        result = run_one_trial(scenario, run, root)
        wall = (time.perf_counter() - t0) * 1000
        spawn = next(e["t_ms"] for e in result.events if e["kind"] == "init_start")
        last = max(e["t_ms"] for e in result.events if e["kind"] == "invoke_end")
        walls.append(wall)
        outside.append(wall - (last - spawn))
    return walls, outside


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--real", type=int, default=10, help="real 1-invocation trials for the cross-check")
    parser.add_argument("--gap-ms", type=float, default=200.0,
                        help="pause between trials, as the function's run gives in a sweep (0: back to back)")
    args = parser.parse_args()
    from harness.privileges import has_privileges

    if not has_privileges():
        print("trial_overhead: needs root (network namespaces); skipped")
        return 0
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="enirace-bench-") as tmp, Run.register("bench") as run:
        root = Path(tmp)
        for _ in range(3):  # warm-up: imports, first netlink sockets
            harness_only(sc.load(LATE_ENI), run, root, Clock())
        for eni in ("absent", "present"):
            scenario = sc.load(LATE_ENI, [f"lab.eni={eni}"])
            clock = Clock()
            totals = []
            for _ in range(args.trials):
                # In a sweep, the function's own run (a second or more) separates one
                # trial's teardown from the worker's next setup; the kernel destroys a
                # namespace asynchronously, holding the rtnl lock, so back-to-back labs
                # (--gap-ms 0) measure that cleanup too.
                time.sleep(args.gap_ms / 1000)
                totals.append(harness_only(scenario, run, root, clock))
            print(f"\nharness overhead per trial, initial ENI {eni} ({args.trials} trials, process backend, "
                  f"{args.gap_ms:g} ms between trials):")
            for phase, values in clock.phases.items():
                print(f"  {phase:<46} {statistics.median(values):7.2f} ms")
            med, p90 = statistics.median(totals), sorted(totals)[int(len(totals) * 0.9) - 1]
            print(f"  {'total':<46} {med:7.2f} ms median, {p90:.2f} ms p90   (target <= {TARGET_MS:.0f} ms)")
            results[eni] = med
        if args.real:
            walls, outside = real_trials(run, root, args.real)
            print(f"\nreal trials, 1 invocation of a Python function, ENI present ({args.real} trials):")
            print(f"  wall time                                      {statistics.median(walls):7.1f} ms median")
            print(f"  outside the function (before spawn, after its  {statistics.median(outside):7.1f} ms median")
            print("  last response: lab, emulator, kill, verdict)")
    worst = max(results.values())
    print(f"\nresult: {worst:.1f} ms per trial of harness overhead "
          f"({'meets' if worst <= TARGET_MS else 'MISSES'} the {TARGET_MS:.0f} ms target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
