"""The .NET build cache for non-root runs: an entry already cached (say by root,
through sudo keeping HOME) is used where it is, a new one goes to the first cache
this user can write, and published entries are readable by everyone."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from harness import paths
from harness.errors import UserError
from harness.function import dotnet, dotnet_cache


def test_an_unwritable_default_falls_back_to_the_next_cache(tmp_path: Path) -> None:
    shared, own = tmp_path / "shared", tmp_path / "own"
    chosen = dotnet_cache.pick("k1", [shared, own], can_write=lambda root: root != shared)
    assert chosen == own


def test_an_entry_the_unwritable_cache_holds_is_used_there(tmp_path: Path) -> None:
    shared, own = tmp_path / "shared", tmp_path / "own"
    (shared / "k1").mkdir(parents=True)
    assert dotnet_cache.pick("k1", [shared, own], can_write=lambda root: root != shared) == shared
    assert dotnet_cache.pick("k2", [shared, own], can_write=lambda root: root != shared) == own


def test_a_writable_default_is_kept(tmp_path: Path) -> None:
    roots = [tmp_path / "a", tmp_path / "b"]
    assert dotnet_cache.pick("k", roots, can_write=lambda root: True) == roots[0]


def test_no_writable_cache_is_one_line_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="XDG_CACHE_HOME") as err:
        dotnet_cache.pick("k", [tmp_path / "a"], can_write=lambda root: False)
    assert "\n" not in str(err.value) and str(tmp_path / "a") in str(err.value)


def test_writable_looks_at_the_nearest_existing_folder(tmp_path: Path) -> None:
    assert dotnet_cache.writable(tmp_path / "not" / "yet")
    (tmp_path / "file").write_text("")
    assert not dotnet_cache.writable(tmp_path / "file" / "below")


def test_candidates_start_with_the_default_and_include_a_private_temp(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(dotnet_cache.tempfile, "gettempdir", lambda: str(tmp_path))
    roots = dotnet_cache.candidates()
    assert roots[0] == tmp_path / "xdg" / "enirace" / "dotnet"
    assert roots[-1] == tmp_path / f"enirace-{os.getuid()}" / "dotnet"
    assert len(roots) == len(set(roots))


def test_a_temp_folder_someone_else_made_is_not_a_candidate(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setattr(dotnet_cache.tempfile, "gettempdir", lambda: str(tmp_path))
    planted = tmp_path / f"enirace-{os.getuid()}"
    planted.mkdir()
    planted.chmod(0o777)  # writable by others: anyone could have put a dll in it
    assert dotnet_cache._own_temp_root() is None
    planted.chmod(0o755)
    assert dotnet_cache._own_temp_root() == planted / "dotnet"


def test_published_entries_are_readable_by_others_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        root = dotnet_cache.make_dirs(tmp_path / "cache" / "enirace" / "dotnet")
        work = root / ".tmp-x"
        (work / "sub").mkdir(parents=True)
        (work / "function.dll").write_bytes(b"MZ")
        (work / "run.sh").write_text("#!/bin/sh\n")
        (work / "run.sh").chmod(0o700)
        dotnet._publish(work, root / "key")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "cache") == mode(root) == 0o755
    assert mode(root / "key") == mode(root / "key" / "sub") == 0o755
    assert mode(root / "key" / "function.dll") == 0o644
    assert mode(root / "key" / "run.sh") == 0o755


# A fake compiler writes the dll; the build runs as `nobody` against a default cache
# that root made and filled, so only real permissions decide.
AS_NOBODY = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from harness.function import dotnet
    from harness.function.dotnet import Compiler
    compiler = Compiler("fake", (sys.executable, sys.argv[1]), (), (), "fake-1")
    out = {}
    for name in ("cached", "new"):
        r = dotnet.build(Path(sys.argv[2]) / name, compiler=compiler)
        out[name] = [str(r.directory.parent), r.cached, r.dll.read_bytes().decode()]
    print(json.dumps(out))
''')
SYSTEM_PYTHON = "/usr/bin/python3"  # the venv's may live under /root, which nobody cannot enter
FAKE = ("import pathlib, sys\n"
        "out = next(a[5:] for a in sys.argv[1:] if a.startswith('-out:'))\n"
        "pathlib.Path(out).write_bytes(b'MZ fake')\n")


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None or not Path(SYSTEM_PYTHON).exists(),
                    reason="needs root, setpriv and /usr/bin/python3")
def test_a_non_root_run_uses_roots_entries_and_builds_the_rest_in_its_own_cache() -> None:
    tmp_path = Path(tempfile.mkdtemp(prefix="enirace-cache-test-"))  # pytest's tmp is root's alone
    try:
        tmp_path.chmod(0o755)
        _as_nobody(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _as_nobody(tmp_path: Path) -> None:
    (tmp_path / "fake.py").write_text(FAKE)
    for name, body in (("cached", "class A {}\n"), ("new", "class B {}\n")):
        (tmp_path / "src" / name).mkdir(parents=True)
        (tmp_path / "src" / name / "F.cs").write_text(body)
    compiler = dotnet.Compiler("fake", (SYSTEM_PYTHON, str(tmp_path / "fake.py")), (), (), "fake-1")
    shared = tmp_path / "shared" / "enirace" / "dotnet"
    old = os.umask(0o077)  # root's own umask must not lock the entry away
    try:
        by_root = dotnet.build(tmp_path / "src" / "cached", shared, compiler)
    finally:
        os.umask(old)
    temp = tmp_path / "temp"
    temp.mkdir(mode=0o1777)
    temp.chmod(0o1777)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "shared"), "XDG_CACHE_HOME": str(tmp_path / "shared"),
           "TMPDIR": str(temp), "PYTHONPATH": str(paths.REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", SYSTEM_PYTHON,
                           "-c", AS_NOBODY, str(tmp_path / "fake.py"), str(tmp_path / "src")],
                          env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["cached"] == [str(shared), True, "MZ fake"]
    assert by_root.directory.parent == shared
    nobody_root = Path(got["new"][0])
    assert nobody_root != shared and got["new"][1:] == [False, "MZ fake"]
    assert nobody_root.is_relative_to(temp) and nobody_root.stat().st_uid != 0
