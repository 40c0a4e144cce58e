"""The pieces of snapstart.mode: criu that need no CRIU: the launch's pid-namespace
wrap, the containment script's order, the socket-table parsing, the restore's argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.function import checkpoint as ck
from harness.function import contain, criu_restore
from harness.ownership import Run
from harness.scenario.snap_config import SnapStartConfig


def test_the_wrap_runs_as_root_between_the_mounts_and_the_switch_to_the_user(tmp_path: Path) -> None:
    p = contain.plan([tmp_path], tmp_path)
    text = contain.script(p, tmp_path, 999, 995, wrap=ck.pid_holder([]))
    last = text[text.index("\nexec ") + 1:]  # the last command (pid 1's program spans lines)
    assert last.startswith("exec unshare --pid --fork --kill-child --mount-proc ")
    assert last.index("unshare") < last.index("setpriv --reuid=999") < last.index('"$@"')
    assert text.index("mount -t tmpfs") < text.index("exec unshare")  # the private /tmp first
    assert contain.script(p, tmp_path, None, None).splitlines()[-1] == 'exec "$@"'  # no wrap: unchanged


def test_pid_holder_puts_the_runtime_after_pid_1s_program() -> None:
    argv = ck.pid_holder(["python", "-m", "awslambdaric", "fn.handler"])
    assert argv[:5] == ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]
    assert argv[6:8] == ["-c", ck.HOLDER] and argv[8:] == ["python", "-m", "awslambdaric", "fn.handler"]
    compile(ck.HOLDER, "holder", "exec")


def test_socket_tables_give_ipv4_and_ipv4_mapped_local_addresses() -> None:
    assert ck._hex_ip("6412A8C6") == "198.168.18.100"
    assert ck._hex_ip("0100007F") == "127.0.0.1"
    mapped = "0000000000000000FFFF00006412A8C6"
    assert mapped.startswith(ck.V4_MAPPED) and ck._hex_ip(mapped[len(ck.V4_MAPPED):]) == "198.168.18.100"


def test_first_error_skips_criu_noise_and_falls_back_to_the_last_line() -> None:
    log = ("(00.01) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n"
           "(00.02) Error (soccr/soccr.c:499): Can't bind inet socket back: Cannot assign requested address\n")
    assert "Can't bind inet socket back" in ck.first_error(log)
    assert ck.first_error("Warn one\nlast words\n") == "last words"
    assert ck.first_error("") == "no output"


def test_one_inherit_fd_per_pipe(tmp_path: Path) -> None:
    snap = ck.Snapshot(run=None, path=tmp_path, criu=["criu"], uid=999, gid=995,  # type: ignore[arg-type]
                       pipes={1: 4242, 2: 4242})
    argv = criu_restore.criu_restore(snap, {1: 7, 2: 8}, "restore-1.log")
    assert argv.count("--inherit-fd") == 1 and "fd[7]:pipe:[4242]" in argv
    assert {"--tcp-established", "--manage-cgroups=ignore"} <= set(argv)


def test_image_dirs_are_in_the_manifest_before_they_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ck, "IMAGES", tmp_path / "criu")
    monkeypatch.setattr("harness.ownership.STATE_DIR", tmp_path / "state")
    with Run.register("pytest") as run:
        path = ck.make_image_dir(run, __import__("os").getuid(), __import__("os").getgid())
        owned = {o.ident: o for o in run.owned()}
        assert owned[str(path)].kind == "dir" and owned[str(path)].proven
        ck.Snapshot(run, path, ["criu"], 0, 0).remove()
        assert not path.exists() and str(path) not in {o.ident for o in run.owned()}


def test_criu_is_a_mode() -> None:
    assert SnapStartConfig(mode="criu").mode == "criu"
    with pytest.raises(ValueError):
        SnapStartConfig(mode="podman")  # type: ignore[arg-type]


def test_doctor_names_the_criu_it_would_use_or_why_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.cli.doctor import check_criu
    from harness.function import checkpoint

    monkeypatch.setattr(checkpoint, "unusable", lambda: "no CRIU; " + checkpoint.FIX)
    monkeypatch.setattr(checkpoint, "locate", lambda: None)
    row = check_criu()
    assert not row.ok and not row.required and row.found.startswith("no CRIU") and "install.sh" in row.fix
    monkeypatch.setattr(checkpoint, "unusable", lambda: None)
    monkeypatch.setattr(checkpoint, "locate", lambda: ["/opt/criu/criu"])
    monkeypatch.setattr(checkpoint, "version", lambda argv: (4, 2, 1))
    row = check_criu()
    assert row.ok and row.found == "criu 4.2.1 at /opt/criu/criu"
