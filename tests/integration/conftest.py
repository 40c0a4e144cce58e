"""Fixtures for tests that build real labs. Every one tears down what it built."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import ownership
from harness.lab import netns
from harness.lab.topology import Lab
from harness.ownership import Run
from harness.scenario import model as sc
from harness.trial import TrialResult, run_one_trial

REPO = Path(__file__).resolve().parents[2]
LATE_ENI = REPO / "scenarios" / "late-eni-attach.yaml"


@pytest.fixture
def run() -> Iterator[Run]:
    with Run.register("pytest") as r:
        yield r
    leftovers = [n for n in netns.list_names() if r.run_id in n]
    assert not leftovers, f"the test left namespaces behind: {leftovers}"


@pytest.fixture
def lab(enirace_lab: Lab) -> Lab:
    """A lab that is up for the test: the plugin's own fixture, which leases its /24,
    tears the lab down and fails the test on teardown problems or leftover namespaces."""
    return enirace_lab


@pytest.fixture
def trial(run: Run, tmp_path: Path):
    """trial(path, *overrides) -> TrialResult, run for real in this test's run."""

    def _trial(path: Path = LATE_ENI, *overrides: str) -> TrialResult:
        return run_one_trial(sc.load(path, list(overrides)), run, tmp_path)

    return _trial


def host_snapshot() -> dict[str, object]:
    """The host namespace as `ip -j` sees it, minus counters that move on their own."""
    def ip(*args: str) -> object:
        out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
        return json.loads(out or "[]")

    def text(*argv: str) -> str:
        if shutil.which(argv[0]) is None:
            return f"{argv[0]} not installed"
        out = subprocess.run(list(argv), capture_output=True, text=True).stdout
        # iptables-save stamps the time and packet counters into its output.
        return re.sub(r"\[\d+:\d+\]", "[]", "\n".join(
            line for line in out.splitlines() if not line.startswith("#")))

    links = ip("link", "show")
    for link in links:  # type: ignore[union-attr]
        for volatile in ("stats64", "stats", "operstate", "linkinfo"):
            link.pop(volatile, None)
    return {"links": links, "addr": ip("addr", "show"), "routes": ip("route", "show", "table", "all"),
            "rules": ip("rule", "show"), "resolv.conf": Path("/etc/resolv.conf").read_text(),
            "qdiscs": text("tc", "qdisc", "show"), "nft": text("nft", "-s", "list", "ruleset"),
            "iptables": text("iptables-save")}


def runs_of_session(sid: int) -> set[str]:
    """Run ids registered by processes of session `sid` (a command started with
    start_new_session and the workers or environments it runs), so that runs of other
    suites on the machine do not count."""
    found = set()
    for f in ownership.runs_dir().glob("*.lock"):
        try:
            if os.getsid(json.loads(f.read_text())["pid"]) == sid:
                found.add(f.stem)
        except (OSError, ValueError, KeyError):
            continue
    return found
