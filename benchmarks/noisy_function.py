"""The harness's own timing while the function floods stdout.

Each trial runs a real function (a Runtime API loop in Python, process backend)
whose handler writes --megabytes of short lines ("noise 1234567\\n", 14 bytes) to
stdout as fast as the pipe takes them and then hangs, so the 3 s function timeout
must end the invocation. The schedule attaches the ENI 1 s after the invocation
started. Printed per trial: how late the timeout fired (the `timeout` event
against invoke_start + 3 s), how late the fault fired (its timer error), how many
lines of the flood the harness read, the CPU time the harness process used, and
the size of function.log. --busy N adds N spinning processes, as other labs would.

    .nox/tests/bin/python benchmarks/noisy_function.py [--trials 3] [--megabytes 200] [--busy 2]   (needs root)
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.ownership import Run  # noqa: E402
from harness.scenario import model as sc  # noqa: E402
from harness.trial import run_one_trial  # noqa: E402

TIMEOUT_MS = 3000.0
FAULT_AT_MS = 1000.0

BOOTSTRAP = """
    import os, sys, time, urllib.request
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    BLOCK = b"".join(b"noise %07d\\n" % i for i in range(64 * 1024 // 14))
    def flood():
        left = {megabytes} * 1024 * 1024
        while left > 0:
            left -= os.write(1, BLOCK)
        time.sleep(600)  # past the function timeout: the harness must kill us
    while True:
        with urllib.request.urlopen(f"http://{{api}}/2018-06-01/runtime/invocation/next") as r:
            r.read()
        flood()
"""


def scenario(code: Path) -> sc.Scenario:
    return sc.validate({
        "name": "noisy-function",
        "function": {"runtime": "command", "command": [sys.executable, "bootstrap.py"], "code": str(code),
                     "handler": "bootstrap", "timeout": f"{TIMEOUT_MS:.0f}ms"},
        "lab": {"eni": "absent"},
        "schedule": [{"at": f"invoke_start + {FAULT_AT_MS:.0f}ms", "do": "attach_eni"}],
        "workload": {"invocations": 1, "init": "eager"},
    }, "benchmark")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_trial(run: Run, root: Path, scen: sc.Scenario) -> dict[str, float]:
    cpu = cpu_s()
    result = run_one_trial(scen, run, root)
    cpu = cpu_s() - cpu
    ev = result.events
    start = next(e["t_ms"] for e in ev if e["kind"] == "invoke_start")
    timeout = next((e["t_ms"] for e in ev if e["kind"] == "timeout"), float("nan"))
    fault = next((e for e in ev if e["kind"] == "fault"), None)
    log = result.folder / "function.log"
    return {"timeout_late_ms": timeout - start - TIMEOUT_MS,
            "fault_late_ms": fault["error_ms"] if fault else float("nan"),
            "log_mb": log.stat().st_size / 2**20 if log.exists() else 0.0,
            "lines_read": sum(e["lines"] for e in ev if e["kind"] == "log_dropped")
            + sum(e["kind"] == "log" for e in ev),
            "cpu_s": cpu,
            "verdict": result.verdict.verdict}  # type: ignore[dict-item]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--busy", type=int, default=0, help="spinning processes beside the trials")
    args = parser.parse_args()
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        rows = run_trials(args)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    for key, label in (("timeout_late_ms", "timeout lateness"), ("fault_late_ms", "fault timer error")):
        values = [r[key] for r in rows]
        print(f"{label}: median {statistics.median(values):+.3f} ms, max {max(values):+.3f} ms "
              f"({args.megabytes} MB of 14-byte lines, {len(rows)} trials, {args.busy} busy processes)")


def run_trials(args: argparse.Namespace) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="noisy-") as tmp:
        code = Path(tmp) / "fn"
        code.mkdir()
        (code / "bootstrap.py").write_text(textwrap.dedent(BOOTSTRAP.format(megabytes=args.megabytes)))
        scen = scenario(code)
        rows = []
        with Run.register("bench") as run:
            for i in range(args.trials):
                row = one_trial(run, Path(tmp) / "out", scen)
                rows.append(row)
                print(f"trial {i + 1}: timeout fired {row['timeout_late_ms']:+8.1f} ms late (expected at "
                      f"{TIMEOUT_MS / 1000:.0f} s), fault fired {row['fault_late_ms']:+8.3f} ms late, "
                      f"{row['lines_read'] / 1e6:.1f} M lines read, harness CPU {row['cpu_s']:.2f} s, "
                      f"function.log {row['log_mb']:.1f} MB, verdict {row['verdict']}", flush=True)
    return rows


if __name__ == "__main__":
    main()
