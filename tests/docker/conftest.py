"""Fixtures for the docker backend's tests: a reachable engine, the images built
once per session (later sessions reuse them: they are rebuilt only when their
sources change), and a check that no container or network of the run survives."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.docker import engine as de
from harness.lab import netns
from harness.ownership import Run
from harness.privileges import has_privileges
from harness.scenario import model as sc
from harness.trial import TrialResult, run_one_trial

REPO = Path(__file__).resolve().parents[2]
LATE_ENI = REPO / "scenarios" / "late-eni-attach.yaml"
REQUIRE_ALL = os.environ.get("ENIRACE_REQUIRE_ALL") == "1"


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(f"ENIRACE_REQUIRE_ALL=1 but this `docker` test cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def engine() -> None:
    # Until tests/conftest.py handles the `docker` marker, these tests check for themselves.
    if not has_privileges():
        _skip_or_fail("needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN) for network namespaces")
    ok, found = de.reachable()
    if not ok:
        _skip_or_fail(found)


@pytest.fixture(scope="session")
def images(engine: None) -> dict[str, str]:
    """kind -> image reference, built now when missing (a cold machine: ~2 minutes)."""
    from harness.backends.docker import images as im

    return {kind: im.ensure(kind) for kind in ("python", "python-rie")}


@pytest.fixture(scope="session")
def dotnet_image(engine: None) -> str:
    from harness.backends.docker import images as im
    from harness.function import dotnet as dotnet

    if dotnet.locate_runtime() is None or dotnet.locate_compiler() is None:
        _skip_or_fail("needs a .NET 8 runtime and a C# compiler on the host")
    return im.ensure("dotnet")


def owned(run_id: str) -> tuple[list[str], list[str]]:
    api = de.client().api
    flt = de.owned_filter(run_id)
    return ([c["Names"][0] for c in api.containers(all=True, filters=flt)],
            [n["Name"] for n in api.networks(filters=flt)])


@pytest.fixture
def run(engine: None) -> Iterator[Run]:
    with Run.register("pytest-docker") as r:
        yield r
    containers, networks = owned(r.run_id)
    namespaces = [n for n in netns.list_names() if r.run_id in n]
    assert not (containers or networks or namespaces), f"left behind: {containers} {networks} {namespaces}"


@pytest.fixture
def trial(run: Run, tmp_path: Path, images: dict[str, str]):
    """trial(*overrides) -> TrialResult of late-eni-attach on the docker backend."""

    def _trial(*overrides: str, path: Path = LATE_ENI) -> TrialResult:
        return run_one_trial(sc.load(path, ["backend=docker", *overrides]), run, tmp_path)

    return _trial
