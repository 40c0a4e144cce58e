"""`enirace doctor`'s rows for the three ways a .NET function reaches a trial:
a publish folder (or its zip), a .csproj folder built with the SDK, and plain
.cs sources compiled with enirace's loop (with mcs: its C# language limit).
Rows are (name, ok, found, fix); the CLI turns them into its table."""

from __future__ import annotations

import re
import subprocess

from harness.function import dotnet, dotnet_code

Row = tuple[str, bool, str, str]
# What a team trips on first when mcs compiles modern C# (each is newer than 7.2).
MODERN_CSHARP = "file-scoped namespaces, nullable annotations, records, top-level statements"


def mcs_language_limit(compiler: dotnet.Compiler) -> str | None:
    """The highest -langversion this mcs accepts, from its own refusal of a bad
    value ("... value in range 1 to 7.2"), so a newer mcs reports its own limit."""
    try:
        proc = subprocess.run([*compiler.launcher, "-langversion:?"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"range \S+ to (\d+(?:\.\d+)?)", proc.stdout + proc.stderr)
    return m.group(1) if m else None


def language_row(compiler: dotnet.Compiler | None) -> Row:
    name = ".NET: C# language (plain .cs sources)"
    if compiler is None:
        return (name, False, "no C# compiler", dotnet.COMPILER_FIX_HINT)
    if compiler.kind != "mcs":
        return (name, True, f"{compiler.kind}: C# latest", "")
    limit = mcs_language_limit(compiler)
    found = f"mcs: C# {limit or '7'} at most (no {MODERN_CSHARP})"
    return (name, True, found, "")


def sources_row(runtime: dotnet.DotnetRuntime | None, compiler: dotnet.Compiler | None) -> Row:
    name = ".NET: plain .cs sources (enirace's loop)"
    if runtime is None or compiler is None:
        missing = [what for what, have in (("a .NET 8 runtime", runtime), ("a C# compiler", compiler))
                   if have is None]
        fix = dotnet.RUNTIME_FIX_HINT if runtime is None else dotnet.COMPILER_FIX_HINT
        return (name, False, f"needs {' and '.join(missing)}", fix)
    return (name, True, f"compiled by {compiler}, run on .NET {runtime.version}", "")


def published_row(runtime: dotnet.DotnetRuntime | None, compiler: dotnet.Compiler | None) -> Row:
    """A publish folder needs the runtime, and a compiler once for enirace's host;
    building the host here (cached) proves the compiler can build it."""
    name = ".NET: publish folders and zips"
    if runtime is None:
        return (name, False, "needs a .NET 8 runtime", dotnet.RUNTIME_FIX_HINT)
    if compiler is None:
        return (name, False, "needs a C# compiler once, for enirace's host", dotnet.COMPILER_FIX_HINT)
    try:
        host = dotnet_code.build_host()
    except Exception as exc:  # a doctor row reports; it never stops the table
        return (name, False, f"enirace's host did not build: {str(exc).splitlines()[0]}", dotnet.COMPILER_FIX_HINT)
    return (name, True, f"host {host.name} built by {compiler.kind}, run on .NET {runtime.version}", "")


def project_row() -> Row:
    name = ".NET: .csproj folders (dotnet publish)"
    sdk = dotnet_code.locate_sdk()
    if sdk is None:
        return (name, False, "no .NET SDK on PATH", dotnet_code.SDK_FIX)
    return (name, True, f"SDK {', '.join(sdk[1])} ({sdk[0]})", "")


def rows() -> list[Row]:
    runtime, compiler = dotnet.locate_runtime(), dotnet.locate_compiler()
    return [published_row(runtime, compiler), project_row(), sources_row(runtime, compiler),
            language_row(compiler)]
