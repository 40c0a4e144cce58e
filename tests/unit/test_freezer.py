"""Which freezer a runtime is frozen with: doctor's row for this machine and
for other layouts, and ENIRACE_FREEZER=sigstop forcing the fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.doctor import check_freezer
from harness.errors import UserError
from harness.function import cgroup as cgroups
from harness.function import freezer


@pytest.fixture(autouse=True)
def _no_force(monkeypatch):
    monkeypatch.delenv(freezer.FORCE_ENV, raising=False)


def test_a_v1_freezer_hierarchy_is_used():
    layout = cgroups.Layout(1, Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup/freezer"), freezer=True)
    assert freezer.available(layout) == "cgroup_v1"
    ok, found, fix = freezer.doctor_row(layout)
    assert ok and found == "cgroup v1 freezer (freezer.state under /sys/fs/cgroup/freezer)" and fix == ""


def test_v1_without_a_freezer_falls_back_to_sigstop():
    layout = cgroups.Layout(1, Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup/memory"), freezer=False)
    assert freezer.available(layout) == "sigstop"
    ok, found, fix = freezer.doctor_row(layout)
    assert not ok and found.startswith("SIGSTOP fallback (no cgroup freezer)") and fix == freezer.FREEZER_FIX


def test_v2_needs_cgroup_freeze_in_its_groups(tmp_path):
    layout = cgroups.Layout(2, tmp_path, tmp_path)
    (tmp_path / "system.slice").mkdir()
    assert not freezer.doctor_row(layout)[0]  # a kernel before 5.2: no cgroup.freeze
    (tmp_path / "system.slice" / "cgroup.freeze").write_text("0\n")
    assert freezer.doctor_row(layout)[:2] == (True, f"cgroup v2 (cgroup.freeze under {tmp_path})")


def test_no_cgroups_at_all_is_sigstop():
    assert freezer.available(None) == "sigstop"
    assert not freezer.doctor_row(cgroups.Layout(1, None, Path("/nonexistent"), freezer=False))[0]


def test_enirace_freezer_sigstop_forces_the_fallback(monkeypatch):
    layout = cgroups.Layout(1, Path("/m"), Path("/f"), freezer=True)
    monkeypatch.setenv(freezer.FORCE_ENV, "sigstop")
    assert freezer.available(layout) == "sigstop"
    ok, found, fix = freezer.doctor_row(layout)
    assert not ok and "ENIRACE_FREEZER=sigstop" in found and fix == "unset ENIRACE_FREEZER"
    assert isinstance(freezer.for_process(None, 1), freezer.SignalFreezer)


def test_a_bad_enirace_freezer_is_a_user_error(monkeypatch):
    monkeypatch.setenv(freezer.FORCE_ENV, "cgroup_v3")
    with pytest.raises(UserError, match=r"ENIRACE_FREEZER='cgroup_v3': use one of auto, sigstop"):
        freezer.forced()
    row = check_freezer()
    assert not row.ok and not row.required and row.fix == "unset ENIRACE_FREEZER"


def test_doctors_row_names_this_machines_freezer():
    layout = cgroups.detect()
    row = check_freezer()
    assert row.name == "freezer (freeze between invocations)" and not row.required
    if layout is not None and layout.version == 1 and layout.freezer:
        assert row.ok and row.found.startswith("cgroup v1 freezer")
    elif layout is not None and layout.version == 2:
        assert row.found.startswith("cgroup v2" if row.ok else "SIGSTOP fallback")
    else:
        assert not row.ok and row.found.startswith("SIGSTOP fallback")
