"""CRIU checkpoint/restore of a runtime (harness/function/checkpoint.py), for real:
a Python process contained as enirace contains a runtime (sbx_user1051, private
/tmp, read-only task root, a cgroup) in a sandbox namespace, holding a TCP
connection to a peer, dumped once and restored twice into fresh sandboxes that do
not have its old address. The two copies draw the same "random" numbers: the
uniqueness hazard of SnapStart. Nothing is left behind, after the test nor after
a kill -9 of the process that made the copies and a cleanup."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import cleanup, ownership
from harness.function import cgroup as cgroups
from harness.function import checkpoint as ck
from harness.function import contain, criu_restore
from harness.lab import netns
from harness.ownership import Run
from tests.integration.conftest import REPO

pytestmark = [pytest.mark.root, pytest.mark.criu]

# The lab pool's /24s are leased per lab; these namespaces are joined to nothing
# but each other, so any /24 of the pool is private to them.
NET = "198.19.253"
PEER = f"{NET}.1"
OLD = f"{NET}.10"
PORT = 8080

RUNTIME = textwrap.dedent("""\
    import os, random, signal, socket, sys, uuid
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    random.seed()  # at init, as every module-level client seeds itself
    pooled = socket.create_connection((sys.argv[1], int(sys.argv[2])))  # a pooled connection
    pooled.sendall(b"hello")
    assert pooled.recv(5) == b"hello"
    print("ready", flush=True)
    signal.sigwait([signal.SIGUSR1])  # the snapshot is taken here; each copy wakes here
    print(json.dumps({"random": random.random(), "uuid4": str(uuid.uuid4()), "uid": os.getuid(),
                      "local": pooled.getsockname()[0]}), flush=True)
    signal.sigwait([signal.SIGUSR1])
""").replace("import os,", "import json, os,")


def _readline(f, timeout_s: float = 10.0) -> str:
    ready, _, _ = select.select([f], [], [], timeout_s)
    assert ready, "no output in time"
    return f.readline().decode().strip()


def _ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True)


class Echo:
    """The peer of the pooled connection, listening in its own namespace."""

    def __init__(self, ns: str) -> None:
        self.sock = netns.socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((PEER, PORT))
        self.sock.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.sendall(conn.recv(5))


@pytest.fixture
def lab(run: Run) -> Iterator[dict[str, str]]:
    """peer <-> sandbox (address OLD), and two fresh sandboxes with a new address."""
    lab = run.next_lab_index()
    names = {role: run.netns_name(lab, role) for role in ("peer", "sbx", "new1", "new2")}
    for name in names.values():
        netns.create_owned(run, name)
        _ip(name, "link", "set", "lo", "up")
    try:
        link = run.link_name(lab, "v")
        _ip(names["peer"], "link", "add", link, "type", "veth", "peer", "name", "eni", "netns", names["sbx"])
        _ip(names["peer"], "addr", "add", f"{PEER}/24", "dev", link)
        _ip(names["peer"], "link", "set", link, "up")
        _ip(names["sbx"], "addr", "add", f"{OLD}/24", "dev", "eni")
        _ip(names["sbx"], "link", "set", "eni", "up")
        for i, role in enumerate(("new1", "new2"), start=21):
            # The copy's new ENI: a new address in the same subnet (its far end goes nowhere).
            _ip(names[role], "link", "add", "eni", "type", "veth", "peer", "name", "far")
            _ip(names[role], "addr", "add", f"{NET}.{i}/24", "dev", "eni")
            _ip(names[role], "link", "set", "eni", "up")
        yield names
    finally:
        for name in names.values():
            netns.remove_owned(run, name)
        state = ownership.STATE_DIR / "sandboxes" / names["sbx"]
        shutil.rmtree(state, ignore_errors=True)
        run.forget("dir", state)


def _start(run: Run, tmp_path: Path, sandbox: str) -> tuple[subprocess.Popen[bytes], cgroups.Cgroup, list[str]]:
    task = tmp_path / "task"
    task.mkdir()
    (task / "runtime.py").write_text(RUNTIME)
    argv = [sys.executable, str(task / "runtime.py"), PEER, str(PORT)]
    layout = cgroups.detect()
    assert layout is not None
    group = cgroups.create(layout, run, f"{run.run_id}-ck", None)
    c = contain.Containment()
    state = _owned_dir(run, ownership.STATE_DIR / "sandboxes" / sandbox)  # as the lab's, outside /tmp
    inner = c.prefix(argv, {}, task, state, wrap=ck.pid_holder([]))
    proc = subprocess.Popen([*group.join_prefix(), *netns.exec_prefix(sandbox), *inner, *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, cwd=task)
    restore_prefix = ["ip", "netns", "exec", "{ns}", *c.prefix(argv, {}, task, state, as_root=True)]
    return proc, group, restore_prefix


def _owned_dir(run: Run, path: Path) -> Path:
    run.record("dir", path)
    path.mkdir(parents=True)
    run.prove("dir", path, **ownership.write_marker(path, run.run_id))
    return path


def _with_ns(prefix: list[str], ns: str) -> list[str]:
    return [ns if a == "{ns}" else a for a in prefix]


def test_two_copies_of_one_snapshot_draw_the_same_random_numbers(run: Run, lab: dict[str, str],
                                                                  tmp_path: Path) -> None:
    if reason := ck.unusable():
        pytest.fail(f"CRIU is not usable here: {reason}")
    Echo(lab["peer"])
    proc, group, restore_prefix = _start(run, tmp_path, lab["sbx"])
    copies: list[criu_restore.Restored] = []
    try:
        assert _readline(proc.stdout) == "ready"
        pid = ck.find_runtime(proc.pid)
        assert pid is not None
        snap = ck.dump(run, pid)
        assert snap.local_addresses == [OLD]
        assert proc.wait(timeout=10) == -signal.SIGKILL or proc.returncode == 128 + signal.SIGKILL
        try:
            for role in ("new1", "new2"):
                prefix = [*group.join_prefix(), *_with_ns(restore_prefix, lab[role])]
                copies.append(criu_restore.restore(snap, lab[role], prefix,
                                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        finally:
            image = snap.path
            snap.remove()
        assert not image.exists() and str(image) not in {o.ident for o in run.owned()}
        seen = []
        for copy, role in zip(copies, ("new1", "new2"), strict=True):
            assert os.stat(f"/proc/{copy.pid}/ns/net").st_ino == netns.inode(lab[role])
            assert copy.pid in group.pids()  # so a cleanup's cgroup kill reaches it
            os.kill(copy.pid, signal.SIGUSR1)
            seen.append(json.loads(_readline(copy.popen.stdout)))
        assert seen[0]["random"] == seen[1]["random"], seen  # the hazard: one seed, two environments
        assert seen[0]["uuid4"] != seen[1]["uuid4"], seen  # uuid4 reads os.urandom, which the kernel serves
        assert {s["uid"] for s in seen} == {contain.ensure_user(contain.DEFAULT_USER)[0]}
        assert {s["local"] for s in seen} == {OLD}  # the pooled socket kept the address the copy lacks
    finally:
        for copy in copies:
            copy.popen.kill()
            copy.popen.wait(timeout=10)
        proc.kill()
        proc.wait(timeout=10)
        assert group.remove(run) == []
    assert not any(c.popen.poll() is None for c in copies)


MAKER = textwrap.dedent("""\
    import json, subprocess, sys
    sys.path.insert(0, {repo!r})
    from harness.function import cgroup as cgroups
    from harness.function import checkpoint as ck
    from harness.function import criu_restore
    from harness.ownership import Run
    prefix, holder_pid = json.loads(sys.argv[1]), int(sys.argv[2])
    run = Run.register("pytest-checkpoint-crash")
    group = cgroups.create(cgroups.detect(), run, f"{{run.run_id}}-ck", None)  # the copy's, owned by this run
    prefix = group.join_prefix() + prefix
    pid = ck.find_runtime(holder_pid)
    snap = ck.dump(run, pid)
    copy = criu_restore.restore(snap, sys.argv[3], prefix, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(json.dumps({{"image": str(snap.path), "copy": copy.pid, "run": run.run_id}}), flush=True)
    sys.stdin.read()
""")


def test_cleanup_after_kill_9_removes_the_image_and_kills_the_copy(run: Run, lab: dict[str, str],
                                                                   tmp_path: Path) -> None:
    """A run killed with a snapshot on disk and a copy running leaves both in its
    manifest (the image dir, the cgroup the copy runs in); cleanup removes both."""
    if reason := ck.unusable():
        pytest.fail(f"CRIU is not usable here: {reason}")
    Echo(lab["peer"])
    proc, group, restore_prefix = _start(run, tmp_path, lab["sbx"])
    try:
        assert _readline(proc.stdout) == "ready"
        maker = subprocess.Popen([sys.executable, "-c", MAKER.format(repo=str(REPO)),
                                  json.dumps(_with_ns(restore_prefix, lab["new1"])), str(proc.pid), lab["new1"]],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO)
        made = json.loads(_readline(maker.stdout, 30))
        maker.kill()  # kill -9: no finally, no teardown
        maker.wait(timeout=10)
        assert Path(made["image"]).is_dir() and os.path.exists(f"/proc/{made['copy']}")
        report = cleanup.cleanup()
        assert not Path(made["image"]).exists(), report
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{made['copy']}") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not os.path.exists(f"/proc/{made['copy']}"), "the restored copy survived the cleanup"
    finally:
        proc.kill()
        proc.wait(timeout=10)
        group.remove(run)


SNAPSTART = REPO / "scenarios" / "snapstart-restore.yaml"


def _snap_trial(run: Run, tmp_path: Path, *overrides: str):
    from harness.scenario import model as sc
    from harness.trial import run_one_trial

    out = tmp_path / "trials"
    out.mkdir(exist_ok=True)
    return run_one_trial(sc.load(SNAPSTART, ["snapstart.mode=criu", *overrides]), run, out, capture=True)


def _criu_restored(run: Run, result) -> tuple[dict, dict]:
    from harness.history import schema

    (snap,) = [e for e in result.events if e["kind"] == schema.SNAPSHOT]
    (restore,) = [e for e in result.events if e["kind"] == schema.RESTORE]
    assert snap["method"] == restore["method"] == "criu"
    assert snap["verified"] and restore["verified"], (snap, restore)
    assert snap["detail"]["image_bytes"] > 0 and restore["address"] != restore["from_address"]
    ready = next(e for e in result.events if e["kind"] == schema.RUNTIME_READY)
    assert ready["t_ms"] > restore["t_ms"]  # the restored copy, not the dumped runtime, polled /next
    left = list(ck.IMAGES.glob(f"*-{run.run_id}-*")) + [o for o in run.owned() if str(ck.IMAGES) in o.ident]
    assert not left, f"image directories left: {left}"
    return snap, restore


def test_criu_mode_restores_the_pool_sample_which_fails_once_on_its_stale_connection(run: Run,
                                                                                      tmp_path: Path) -> None:
    """The dumped and restored runtime answers restore/next's 200 on the connection it
    was dumped with; its pooled connection still carries the old address."""
    result = _snap_trial(run, tmp_path, "function.handler=snapstart_pool")
    _, restore = _criu_restored(run, result)
    v = result.verdict
    assert v.verdict == "recovered", v.reason
    assert v.failed_invocations == 1 and v.error_classes[0] in ("timeout", "reset"), v.failures
    assert any(restore["from_address"] in line for line in v.evidence), v.evidence


def test_criu_mode_hooks_sample_fails_nothing_and_its_hooks_print_through_the_copy(run: Run,
                                                                                    tmp_path: Path) -> None:
    from harness.history import schema

    result = _snap_trial(run, tmp_path, "function.handler=snapstart_hooks")
    _criu_restored(run, result)
    v = result.verdict
    assert v.failed_invocations == 0, v.failures
    lines = [e["line"] for e in result.events if e["kind"] == schema.LOG]
    assert lines.index("after restore: new session") > lines.index("before snapshot: pooled connections closed")


def test_criu_mode_where_criu_cannot_run_is_one_line_exit_2(tmp_path: Path) -> None:
    env = dict(os.environ, ENIRACE_CRIU_HOME=str(tmp_path / "no-criu-here"),
               PATH="/usr/local/bin:/usr/bin:/bin")  # Debian 12's criu, if any, is too old for this kernel
    proc = subprocess.run([sys.executable, "-m", "harness.cli.main", "run", str(SNAPSTART),
                           "--set", "snapstart.mode=criu", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "snapstart.mode: criu cannot run here" in lines[0], proc.stderr
    assert "install.sh" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.dotnet
def test_criu_mode_restores_a_dotnet_runtime_whose_pool_fails_once(run: Run, tmp_path: Path) -> None:
    """CoreCLR dumped and restored: its dual-stack sockets (::ffff: addresses) get the
    old address lent back too; the hook-less pool meets its stale connection once."""
    result = _snap_trial(run, tmp_path, "function.runtime=dotnet", "function.handler=snapstart_pool")
    _criu_restored(run, result)
    v = result.verdict
    assert v.verdict == "recovered" and v.failed_invocations == 1, (v.reason, v.failures)


def test_kill_9_of_enirace_run_between_snapshot_and_restore_then_cleanup_leaves_nothing(tmp_path: Path) -> None:
    """The image is on disk and the runtime's pid 1 is held, waiting for the restore,
    when `enirace run` is killed; `enirace cleanup` removes the image, kills what is
    left in the runtime's cgroup and removes the lab."""
    before = set(ck.IMAGES.iterdir()) if ck.IMAGES.is_dir() else set()
    cli = [sys.executable, "-m", "harness.cli.main"]
    proc = subprocess.Popen([*cli, "run", str(SNAPSTART), "--set", "snapstart.mode=criu",
                             "--set", "snapstart.restore_after=60s", "--out", str(tmp_path / "out")],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, image = time.monotonic() + 60, None
        while image is None and time.monotonic() < deadline and proc.poll() is None:
            new = [p for p in (set(ck.IMAGES.iterdir()) if ck.IMAGES.is_dir() else set()) - before
                   if (p / "inventory.img").exists()]
            image = new[0] if new else None
            time.sleep(0.02)
        assert image is not None, f"no snapshot image appeared (enirace run exited {proc.poll()})"
        run_id = image.name.split("-")[1]
        time.sleep(0.2)  # the dump has finished writing (CRIU exits right after the inventory)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert [p for p in netns.list_names() if run_id in p], "the trial's namespaces went before the cleanup"
    held = _in_cgroups_of(run_id)
    assert held, "the runtime's held pid 1 should be waiting for the restore"
    out = subprocess.run([*cli, "cleanup"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not image.exists(), out.stdout
    assert not [p for p in netns.list_names() if run_id in p], out.stdout
    deadline = time.monotonic() + 5
    while (alive := [pid for pid in held if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive, out.stdout


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _in_cgroups_of(run_id: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and f"/{run_id}-" in (d / "cgroup").read_text():
                found.append(int(d.name))
        except OSError:
            continue
    return found


def test_an_interrupted_trial_removes_its_snapshot_image(tmp_path: Path) -> None:
    """Ctrl-C between the snapshot and the restore: the trial stops, the image goes with it."""
    before = set(ck.IMAGES.iterdir()) if ck.IMAGES.is_dir() else set()
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli.main", "run", str(SNAPSTART),
                             "--set", "snapstart.mode=criu", "--set", "snapstart.restore_after=60s",
                             "--out", str(tmp_path / "out")],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, image = time.monotonic() + 60, None
    while image is None and time.monotonic() < deadline and proc.poll() is None:
        new = [p for p in (set(ck.IMAGES.iterdir()) if ck.IMAGES.is_dir() else set()) - before
               if (p / "inventory.img").exists()]
        image = new[0] if new else None
        time.sleep(0.02)
    assert image is not None, f"no snapshot image appeared (enirace run exited {proc.poll()})"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert not image.exists(), "the interrupted trial left its snapshot image"
