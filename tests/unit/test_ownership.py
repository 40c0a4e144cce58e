import os
import signal
import subprocess
import sys
import time

import pytest

from harness import ownership


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(ownership, "STATE_DIR", tmp_path)
    return tmp_path


def test_a_registered_run_is_alive_until_closed(state_dir):
    run = ownership.Run.register("t")
    assert ownership.RUN_ID_RE.match(run.run_id)
    assert ownership.is_alive(run.run_id)
    run.close()
    assert not ownership.is_alive(run.run_id)
    assert not list((state_dir / "runs").iterdir())


def test_a_run_killed_with_sigkill_is_dead(state_dir):
    code = ("import sys, time; from harness import ownership; from pathlib import Path;"
            f"ownership.STATE_DIR = Path({str(state_dir)!r}); r = ownership.Run.register('victim');"
            "print(r.run_id, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    assert ownership.is_alive(run_id)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while ownership.is_alive(run_id) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not ownership.is_alive(run_id)


def test_names_carry_prefix_and_run_id(state_dir):
    with ownership.Run.register() as run:
        ns = run.netns_name(3, "vpc")
        assert ns == f"enr-{run.run_id}-3-vpc"
        assert ownership.run_of_netns(ns) == run.run_id
        assert len(run.link_name(42, "e12")) <= 15
    assert ownership.run_of_netns("enr-zzzzzz-1-vpc") is None
    assert ownership.run_of_netns("myns") is None


# -- the manifest, and cleanup working from it only ----------------------------------


def _dead_run() -> ownership.Run:
    """A run whose process is gone: its lock released without closing (as kill -9 does)."""
    run = ownership.Run.register("victim")
    os.close(run._fd)
    run._fd = -1
    return run


def _own_dir(run: ownership.Run, path):
    run.record("dir", path)
    path.mkdir()
    run.prove("dir", path, **ownership.write_marker(path, run.run_id))
    return path


def test_the_manifest_replays_record_prove_forget_and_ignores_a_torn_line(state_dir):
    with ownership.Run.register() as run:
        run.record("netns", "a")
        run.prove("netns", "a", inode=7)
        run.record("dir", "/x")
        run.record("lease", "/l")
        run.forget("lease", "/l")
        with open(ownership.manifest_path(run.run_id), "a") as fh:
            fh.write('{"op": "add", "kind": "netns", "id": "tor')  # kill -9 mid-write
        assert run.owned() == [ownership.Owned("netns", "a", {"inode": 7}), ownership.Owned("dir", "/x", {})]


def test_cleanup_removes_a_dead_runs_proven_dir_and_keeps_what_it_cannot_prove(state_dir, tmp_path):
    from harness import cleanup

    dead = _dead_run()
    ours = _own_dir(dead, tmp_path / "ours")
    (ours / "file").write_text("x")
    replaced = _own_dir(dead, tmp_path / "replaced")
    replaced.rename(tmp_path / "moved")
    replaced.mkdir()  # someone made a new directory of the same name: not the run's
    (replaced / "theirs.txt").write_text("keep me")
    unproven = tmp_path / "unproven"
    dead.record("dir", unproven)  # the run died before proving it
    unproven.mkdir()

    report = cleanup.cleanup()

    assert not ours.exists()
    assert f"dir {ours}" in report.removed
    assert (replaced / "theirs.txt").read_text() == "keep me"
    assert unproven.is_dir()
    kept = "\n".join(report.kept_unproven)
    assert f"dir {replaced}" in kept and f"dir {unproven}: recorded but never proven" in kept
    assert not ownership.manifest_path(dead.run_id).exists()
    assert not (ownership.runs_dir() / f"{dead.run_id}.lock").exists()


def test_cleanup_keeps_a_live_runs_objects_and_a_dry_run_changes_nothing(state_dir, tmp_path):
    from harness import cleanup

    dead = _dead_run()
    gone_later = _own_dir(dead, tmp_path / "dead-dir")
    with ownership.Run.register("alive") as live:
        alive_dir = _own_dir(live, tmp_path / "live-dir")

        dry = cleanup.cleanup(dry_run=True)
        assert f"dir {gone_later}" in dry.removed and gone_later.is_dir()
        assert ownership.manifest_path(dead.run_id).exists()

        report = cleanup.cleanup()
        assert f"dir {alive_dir}" in report.kept_live and alive_dir.is_dir()
        assert not gone_later.exists()
        live.forget("dir", alive_dir)


def test_cleanup_removes_newest_first_through_the_kinds_remover(state_dir, monkeypatch):
    from harness import cleanup

    calls = []
    monkeypatch.setitem(cleanup.REMOVERS, "thing",
                        lambda ident, run_id, proof, dry: calls.append((ident, run_id)) or ("removed", ""))
    dead = _dead_run()
    for name in ("first", "second", "third"):
        dead.record("thing", name)
        dead.prove("thing", name, token=name)
    cleanup.cleanup()
    assert calls == [("third", dead.run_id), ("second", dead.run_id), ("first", dead.run_id)]


def test_a_failed_removal_keeps_the_rest_of_the_manifest_for_the_next_cleanup(state_dir, monkeypatch):
    from harness import cleanup

    def flaky(ident, run_id, proof, dry):
        if ident == "stuck":
            raise OSError("busy")
        return "removed", ""

    monkeypatch.setitem(cleanup.REMOVERS, "thing", flaky)
    dead = _dead_run()
    for name in ("stuck", "fine"):
        dead.record("thing", name)
        dead.prove("thing", name, n=1)
    report = cleanup.cleanup()
    assert report.failed == ["thing stuck: busy"] and "thing fine" in report.removed
    assert [o.ident for o in ownership.read_manifest(dead.run_id)] == ["stuck"]
