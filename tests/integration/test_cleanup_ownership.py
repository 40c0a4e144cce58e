"""Cleanup decides ownership by proof, never by name: objects whose names fit
enirace's patterns but that no run made survive any number of runs and cleanups,
and so does an object a dead run's manifest names but whose proof no longer matches."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import cleanup, ownership
from harness.lab import netns
from tests.integration.conftest import LATE_ENI, REPO

pytestmark = [pytest.mark.root]
ENIRACE = [sys.executable, "-m", "harness.cli.main"]

USER_DIR = Path("/tmp/enirace-0badc0-userdata")
RESULTS = Path("/tmp/enirace-251201-results")
USER_NS = "enr-0badc0-1-vpc"
USER_LINK = "enr0badc0x"
USER_ETC = netns.etc_dir(USER_NS)
USER_SANDBOX = ownership.STATE_DIR / "sandboxes" / "enr-0badc0-1-sbx"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _survivors() -> dict[str, bool]:
    return {"user dir": (USER_DIR / "important.txt").read_text() == "precious\n" if USER_DIR.exists() else False,
            "namespace": netns.exists(USER_NS),
            "veth-like host link": Path(f"/sys/class/net/{USER_LINK}").exists(),
            "/etc/netns entry": (USER_ETC / "resolv.conf").exists(),
            "sandbox-like dir": (USER_SANDBOX / "resolv" / "resolv.conf").exists(),
            "--out dir": RESULTS.is_dir()}


@pytest.fixture
def lookalikes():
    """Objects named like enirace's, made by hand (by "the user")."""
    for d in (USER_DIR, RESULTS, USER_ETC, USER_SANDBOX):
        assert not d.exists(), f"{d} exists already; not touching it"
    USER_DIR.mkdir()
    (USER_DIR / "important.txt").write_text("precious\n")
    RESULTS.mkdir()
    USER_ETC.mkdir(parents=True)
    (USER_ETC / "resolv.conf").write_text("nameserver 127.0.0.53\n")
    (USER_SANDBOX / "resolv").mkdir(parents=True)
    (USER_SANDBOX / "resolv" / "resolv.conf").write_text("nameserver 127.0.0.53\n")
    netns.create(USER_NS)
    try:
        # The old cleanup deleted HOST links by name, so only a host link can show the
        # defect. The safety rules forbid adding addresses, routes, rules or qdiscs to
        # the host's namespace; this veth pair carries none of them (no address, no
        # route, left down), and the finally below deletes it at once. (A dummy link
        # would do as well, but this kernel has no dummy driver.)
        _ip("link", "add", USER_LINK, "type", "veth", "peer", "name", USER_LINK[:-1] + "y")
        yield
    finally:
        subprocess.run(["ip", "link", "del", USER_LINK], capture_output=True)
        netns.remove(USER_NS)
        for d in (USER_DIR, RESULTS, USER_ETC, USER_SANDBOX):
            shutil.rmtree(d, ignore_errors=True)


def test_lookalike_objects_survive_runs_and_cleanups(lookalikes):
    for _ in range(2):
        trial = subprocess.run([*ENIRACE, "run", str(LATE_ENI), "--out", str(RESULTS), "--no-capture",
                                "--set", "workload.invocations=2"], cwd=REPO, capture_output=True, text=True)
        assert trial.returncode == 0, trial.stdout + trial.stderr
        swept = subprocess.run([*ENIRACE, "cleanup"], cwd=REPO, capture_output=True, text=True)
        assert swept.returncode == 0, swept.stdout + swept.stderr
        assert "0badc0" not in swept.stdout and "251201" not in swept.stdout
        assert all(_survivors().values()), (_survivors(), swept.stdout)
    assert len([d for d in RESULTS.iterdir() if (d / "verdict.json").exists()]) == 2


def _dead_run_claiming(kind: str, ident: str | Path, **proof: object) -> str:
    """A dead run whose manifest lists `ident` with a proof that does not match it."""
    run = ownership.Run.register("victim")
    run.record(kind, ident)
    run.prove(kind, ident, **proof)
    os.close(run._fd)  # the kernel drops the lock, as on kill -9
    run._fd = -1
    return run.run_id


def test_a_listed_object_whose_proof_does_not_match_is_kept_and_reported(lookalikes):
    claims = [_dead_run_claiming("netns", USER_NS, inode=1),
              _dead_run_claiming("dir", USER_DIR, marker="0" * 16, inode=USER_DIR.stat().st_ino),
              _dead_run_claiming("link", USER_LINK, ifindex=1, alias="enirace 0badc0"),
              _dead_run_claiming("lease", USER_DIR / "important.txt", inode=1)]
    report = cleanup.cleanup()
    assert all(_survivors().values()), report
    kept = "\n".join(report.kept_unproven)
    for what in (f"netns {USER_NS}:", f"dir {USER_DIR}:", f"link {USER_LINK}:", f"lease {USER_DIR}/important.txt:"):
        assert what in kept, report
    assert not [r for r in claims if ownership.manifest_path(r).exists()]


def _cgroup_root(version: int) -> Path | None:
    if version == 2:
        return next((r for r in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
                     if (r / "cgroup.controllers").exists()), None)
    root = Path("/sys/fs/cgroup/freezer")
    return root if (root / "cgroup.procs").exists() else None


def _freeze(group: Path, version: int) -> None:
    if version == 2:
        (group / "cgroup.freeze").write_text("1")
        frozen = lambda: "frozen 1" in (group / "cgroup.events").read_text()  # noqa: E731
    else:
        (group / "freezer.state").write_text("FROZEN")
        frozen = lambda: (group / "freezer.state").read_text().strip() == "FROZEN"  # noqa: E731
    deadline = time.monotonic() + 5
    while not frozen():
        assert time.monotonic() < deadline, f"{group} never froze"
        time.sleep(0.01)


@pytest.mark.parametrize("version", [2, 1], ids=["v2-cgroup.kill", "v1-freezer-cgroup.procs"])
def test_cleanup_empties_and_removes_a_dead_runs_frozen_cgroup(version):
    root = _cgroup_root(version)
    if root is None:
        pytest.skip(f"no cgroup v{version} {'hierarchy' if version == 2 else 'freezer'} mounted")
    group = root / f"enirace-test-{os.getpid()}"
    run = ownership.Run.register("victim")
    run.record("cgroup", group)
    group.mkdir()
    (group / "child").mkdir()
    run.prove("cgroup", group, inode=group.stat().st_ino)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (group / "child" / "cgroup.procs").write_text(str(sleeper.pid))
        _freeze(group, version)
        os.close(run._fd)  # the run dies (its lock goes, as on kill -9)
        run._fd = -1

        report = cleanup.cleanup()

        assert f"cgroup {group}" in report.removed, report
        assert not group.exists()
        assert sleeper.wait(timeout=5) == -9
    finally:
        sleeper.kill()
        if group.exists():
            (group / ("cgroup.freeze" if version == 2 else "freezer.state")).write_text("0" if version == 2 else
                                                                                        "THAWED")
            sleeper.wait()
            for d in (group / "child", group):
                d.rmdir()


def _dead_run() -> ownership.Run:
    run = ownership.Run.register("victim")
    os.close(run._fd)  # the kernel drops the lock, as on kill -9; the manifest stays
    run._fd = -1
    return run


def test_a_namespace_made_by_a_run_that_died_before_proving_its_mount_is_removed():
    """kill -9 between the mount point file and the mount's proof: the manifest holds
    only the mount point file's inode and ctime, still those of the file under the namespace."""
    run = _dead_run()
    name = f"enr-{run.run_id}-1-sbx"
    run.record("netns", name)
    netns.create(name, placed=lambda file: run.prove("netns", name, placeholder=list(file)))
    try:
        report = cleanup.cleanup()
        assert f"netns {name}" in report.removed, report
        assert not netns.exists(name)
    finally:
        if netns.exists(name):
            netns.remove(name)


def test_a_same_named_namespace_that_replaced_a_dead_runs_mount_point_is_kept():
    run = _dead_run()
    name = f"enr-{run.run_id}-1-vpc"
    run.record("netns", name)
    netns.create(name, placed=lambda file: run.prove("netns", name, placeholder=list(file)))
    netns.remove(name)
    netns.create(name)  # somebody else's now, under the same name
    try:
        report = cleanup.cleanup()
        assert netns.exists(name), report
        assert any(item.startswith(f"netns {name}:") for item in report.kept_unproven), report
    finally:
        netns.remove(name)
