"""How many concurrent execution environments one machine holds: a fleet of
Python environments (awslambdaric, the fleet_naive sample, frozen between
invocations) scaled out by one burst of simultaneous events, then driven warm.

Prints: environments started and how long the scale-out took, invocations per
second warm, the harness's CPU (its own process: emulators, pumps, freezer, the
lab's resolver and service) and memory per environment, and the runtimes' own
memory per environment for scale. The issue's target: 20 concurrent Python
environments per core.

    sudo .nox/tests/bin/python benchmarks/fleet_scale.py [--environments 40] [--seconds 10]
"""

from __future__ import annotations

import argparse
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

from harness import cleanup  # noqa: E402
from harness.fleet import source as sources  # noqa: E402
from harness.fleet.engine import Fleet  # noqa: E402
from harness.fleet.runner import scenario_for  # noqa: E402
from harness.history.recorder import History  # noqa: E402
from harness.lab import netns  # noqa: E402
from harness.ownership import Run  # noqa: E402
from harness.scenario import model as sc  # noqa: E402
from harness.trial import preflight  # noqa: E402


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _burst(fleet: Fleet, n: int) -> list[bool]:
    """n simultaneous events: each finds every environment busy and cold-starts one."""
    oks: list[bool] = []
    start = threading.Barrier(n)

    def client(i: int) -> None:
        start.wait()
        oks.append(fleet.invoke(sources.payload(f"scale-{i}")).ok)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return oks


def _warm(fleet: Fleet, clients: int, seconds: float) -> tuple[int, int]:
    """`clients` clients invoking back to back for `seconds`: (invocations, failures)."""
    counts = [0] * clients
    failures = [0] * clients
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        k = 0
        while time.monotonic() < stop:
            inv = fleet.invoke(sources.payload(f"warm-{i}-{k}"))
            counts[i] += 1
            failures[i] += not inv.ok
            k += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts), sum(failures)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--environments", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the warm phase")
    args = ap.parse_args()
    n = args.environments
    scenario = sc.validate({"name": "fleet-scale", "seed": 1, "function": {"runtime": "python", "timeout": "10s"},
                            "fleet": {"max_environments": n, "idle_retire": "10m", "messages": n}}, "benchmark")
    prepared = preflight(scenario_for(scenario, "none"))
    cleanup.cleanup()
    out = Path(tempfile.mkdtemp(prefix="enirace-fleet-scale-"))
    with Run.register("benchmark") as run:
        fleet = Fleet(prepared.scenario, prepared.launch, run, out, History(out / "history.jsonl"))
        fleet.up()
        try:
            rss0, cpu0, t0 = rss_mb(), cpu_s(), time.monotonic()
            oks = _burst(fleet, n)
            scale_s, cpu1, rss1 = time.monotonic() - t0, cpu_s(), rss_mb()
            started = len(fleet.started)
            t1 = time.monotonic()
            invocations, failures = _warm(fleet, n, args.seconds)
            warm_s, cpu2 = time.monotonic() - t1, cpu_s()
            # The warm phase keeps `n` events in flight, so the fleet scales to `n`
            # if the burst did not (its first clients can finish before the last start).
            peak, alive = fleet.peak, len(fleet.started)
            runtime_mb = sum(rss_mb(p) for env in fleet.started for p in netns.pids_in(env.lab.sandbox))
            rss2 = rss_mb()
        finally:
            problems = fleet.down()
    cores = os.cpu_count() or 1
    print(f"environments started: {started} (burst of {n} simultaneous events; {sum(oks)} answered ok) "
          f"in {scale_s:.2f} s on {cores} cores: {started / cores:.1f} concurrent environments per core")
    print(f"scale-out: harness CPU {cpu1 - cpu0:.2f} s, {(cpu1 - cpu0) / max(started, 1) * 1000:.0f} ms per "
          f"environment started")
    print(f"harness memory: {rss0:.0f} MiB before, {rss1:.0f} MiB with {started} environments: "
          f"{(rss1 - rss0) / max(started, 1):.2f} MiB per environment")
    print(f"after the warm phase: {alive} environments started, {peak} alive at once "
          f"({peak / cores:.1f} per core); harness memory {rss2:.0f} MiB, "
          f"{(rss2 - rss0) / max(alive, 1):.2f} MiB per environment")
    print(f"runtimes' own memory: {runtime_mb:.0f} MiB, {runtime_mb / max(alive, 1):.1f} MiB per environment")
    print(f"warm: {invocations} invocations ({failures} failed) from {n} clients in {warm_s:.1f} s: "
          f"{invocations / warm_s:.0f} invocations/s, each one thawed and frozen again")
    print(f"warm: harness CPU {cpu2 - cpu1:.2f} s, {(cpu2 - cpu1) / max(invocations, 1) * 1000:.2f} ms per "
          f"invocation, {(cpu2 - cpu1) / warm_s / max(peak, 1) * 100:.2f}% of a core per busy environment")
    if problems:
        print(f"teardown problems: {problems}")


if __name__ == "__main__":
    main()
