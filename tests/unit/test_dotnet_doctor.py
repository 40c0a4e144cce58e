"""`enirace doctor`'s .NET rows: which of the three paths (publish folders,
.csproj folders, plain sources) work here, and mcs's C# language limit."""

from __future__ import annotations

import pytest

from harness.function import dotnet, dotnet_doctor


def test_sources_need_a_runtime_and_say_the_fix() -> None:
    compiler = dotnet.Compiler("mcs", ("/usr/bin/mcs",), (), (), "x")
    name, ok, found, fix = dotnet_doctor.sources_row(None, compiler)
    assert not ok and "runtime" in found and fix == dotnet.RUNTIME_FIX_HINT


def test_publish_folders_need_a_compiler_once_for_the_host() -> None:
    runtime = dotnet.DotnetRuntime(dotnet.Path("/nonexistent/dotnet"), "8.0.4", "PATH")
    name, ok, found, fix = dotnet_doctor.published_row(runtime, None)
    assert not ok and "host" in found and fix == dotnet.COMPILER_FIX_HINT


def test_an_sdk_compiler_has_no_language_limit() -> None:
    csc = dotnet.Compiler("dotnet-sdk", ("dotnet", "exec", "csc.dll"), (), (), "x")
    assert dotnet_doctor.language_row(csc)[1:3] == (True, "dotnet-sdk: C# latest")


@pytest.mark.dotnet
def test_mcs_reports_its_own_language_limit() -> None:
    compiler = dotnet.locate_compiler()
    if compiler is None or compiler.kind != "mcs":
        pytest.skip("the compiler here is not mcs")
    limit = dotnet_doctor.mcs_language_limit(compiler)
    assert limit is not None and 7 <= float(limit) < 8  # Debian's mono-mcs: 7.2
    name, ok, found, _ = dotnet_doctor.language_row(compiler)
    assert ok and f"C# {limit} at most" in found and "file-scoped namespaces" in found


@pytest.mark.dotnet
def test_a_runtime_only_dotnet_cannot_build_projects(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = dotnet.locate_runtime()
    assert runtime is not None
    monkeypatch.setenv("PATH", f"{runtime.host.parent}:/usr/bin:/bin")
    sdks = dotnet.subprocess.run([str(runtime.host), "--list-sdks"], capture_output=True, text=True).stdout
    if sdks.strip():
        pytest.skip("this dotnet has an SDK")
    name, ok, found, fix = dotnet_doctor.project_row()
    assert not ok and "no .NET SDK" in found and "dotnet publish" in fix


@pytest.mark.dotnet
def test_every_path_is_a_row() -> None:
    names = [row[0] for row in dotnet_doctor.rows()]
    assert names == [".NET: publish folders and zips", ".NET: .csproj folders (dotnet publish)",
                     ".NET: plain .cs sources (enirace's loop)", ".NET: C# language (plain .cs sources)"]
    published = dotnet_doctor.rows()[0]
    assert published[1], published  # this machine runs publish folders (the integration tests do)
