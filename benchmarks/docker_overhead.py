"""Per-trial overhead of the docker backend against the process backend (target:
at most 1.5 s more per trial). The same scenario (late-eni-attach, resilient) runs
TRIALS times on each backend, alternating; the table shows wall time per trial.

Run as root with a Docker engine: python benchmarks/docker_overhead.py [TRIALS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRIALS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
TARGET_S = 1.5


def main() -> int:
    from harness.backends.docker import engine as de
    from harness.backends.docker.images import ensure
    from harness.ownership import Run
    from harness.privileges import has_privileges
    from harness.scenario import model as sc
    from harness.trial import run_one_trial

    if not has_privileges():
        print("skipped: needs root")
        return 0
    ok, found = de.reachable()
    if not ok:
        print(f"skipped: {found}")
        return 0
    ensure("python")
    variants = {"process": [], "docker netlink": ["backend=docker"],
                "docker network": ["backend=docker", "docker.eni=network"]}
    times: dict[str, list[float]] = {name: [] for name in variants}
    verdicts: dict[str, set[str]] = {name: set() for name in variants}
    with Run.register("bench-overhead") as run, tempfile.TemporaryDirectory(prefix="enirace-bench-") as out:
        for _ in range(TRIALS):
            for name, sets in variants.items():
                scenario = sc.load(REPO / "scenarios" / "late-eni-attach.yaml", sets)
                started = time.monotonic()
                result = run_one_trial(scenario, run, Path(out))
                times[name].append(time.monotonic() - started)
                verdicts[name].add(result.verdict.verdict)
    base = statistics.median(times["process"])
    print(f"late-eni-attach (resilient), {TRIALS} trials each; wall time per trial")
    for name, values in times.items():
        extra = statistics.median(values) - base
        mark = "" if name == "process" else (" ok" if extra <= TARGET_S else f" OVER the {TARGET_S} s target")
        print(f"  {name:15} median {statistics.median(values):6.2f} s  max {max(values):6.2f} s  "
              f"+{extra:5.2f} s{mark}  verdicts {sorted(verdicts[name])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
