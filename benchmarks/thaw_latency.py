"""Thaw latency: from an invocation's arrival at the emulator to the runtime
receiving its /next answer, over 200 freezes, with the cgroup freezer on and
off (workload.freeze). The runtime is a minimal Runtime API loop in its own
cgroup (as the process backend makes one); it reports when /next answered, on
the same CLOCK_MONOTONIC. Needs root. Prints p50/p99 in ms.

    .nox/tests/bin/python benchmarks/thaw_latency.py [--n 200] [--gap-ms 20]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness.emulator.api import RuntimeAPI
from harness.function import cgroup as cgroups
from harness.function.handle import RuntimeProcess
from harness.function.spec import LaunchSpec
from harness.history.recorder import History
from harness.ownership import Run

RUNTIME = r"""
import http.client, os, sys, time, json
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    got = time.monotonic()
    r.read()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    conn.request("POST", f"/2018-06-01/runtime/invocation/{rid}/response", body=json.dumps(got))
    conn.getresponse().read()
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(run: Run, freeze: bool, n: int, gap_s: float) -> list[float]:
    layout = cgroups.detect()
    port = _port()
    spec = LaunchSpec([sys.executable, "-c", RUNTIME], {"AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}"},
                      Path.cwd(), "bench runtime")

    def spawn(spec: LaunchSpec, gen: int) -> RuntimeProcess:
        cg = cgroups.create(layout, run, f"{run.run_id}-bench-{int(freeze)}-rt{gen}", None) if layout else None
        popen = subprocess.Popen((cg.join_prefix() if cg else []) + spec.argv, env=spec.env,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        return RuntimeProcess(gen, popen, cgroup=cg, run=run)

    history = History()
    api = RuntimeAPI(None, history, spawn, spec, timeout_s=5, freeze=freeze,
                     runtime_addr=("127.0.0.1", port), invoke_addr=("127.0.0.1", _port()))
    api.start(serve_invoke_port=False)
    out = []
    try:
        assert api.init() == "ready"
        for _ in range(n):
            time.sleep(gap_s)  # long enough for the runtime to be back on /next (and frozen)
            t0 = time.monotonic()
            _, outcome = api.invoke(b"{}")
            out.append((float(outcome.body) - t0) * 1000)
    finally:
        api.stop()
    freezes = [e for e in history.events if e["kind"] == "freeze"]
    if freeze:
        assert len(freezes) >= n and all(e["verified"] for e in freezes), "a freeze did not take"
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--gap-ms", type=float, default=20.0)
    args = ap.parse_args()
    with Run.register("bench-thaw") as run:
        for freeze in (True, False):
            ms = sorted(measure(run, freeze, args.n, args.gap_ms / 1000))
            p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
            print(f"freeze {'on ' if freeze else 'off'}: n={len(ms)} p50={statistics.median(ms):.3f} ms "
                  f"p99={p99:.3f} ms max={ms[-1]:.3f} ms")


if __name__ == "__main__":
    main()
