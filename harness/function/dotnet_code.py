"""A .NET team's own function, run the way Lambda's managed dotnet8 runtime runs
it: the output of `dotnet publish` (a folder or its .zip) with the handler string
`Assembly::Namespace.Type::Method`, started as the runtime's bootstrap starts
Amazon.Lambda.RuntimeSupport (`dotnet exec --depsfile F.deps.json --runtimeconfig
F.runtimeconfig.json <host> HANDLER`), with enirace's host
(containers/dotnet/host/) in RuntimeSupport's place. An executable assembly
(handler without `::`) is its own bootstrap, as in Lambda.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

from harness.errors import UserError
from harness.function import dotnet

HOST_SOURCES = dotnet.REPO_ROOT / "containers" / "dotnet" / "host"
# The host shares the Runtime API client with the sample loop, not its Main.
SHARED_RUNTIME = ("RuntimeApiClient.cs", "Json.cs", "Handler.cs", "XRayCause.cs", "SnapStart.cs")
HOST = "enirace-host"
SIGNATURES = ("a handler takes (), (input), (ILambdaContext) or (input, ILambdaContext), input a Stream or "
              "a type the function's ILambdaSerializer reads, and returns void, Task, T, Task<T> or Stream")
SDK_FIX = ("run `dotnet publish -c Release -o publish` where a .NET 8 SDK is installed and point "
           "function.code at publish/ (or install the .NET 8 SDK here)")


def kind(code: Path) -> str:
    """'zip', 'published' (a .deps.json), 'project' (a .csproj) or 'sources' (plain .cs)."""
    if code.is_file() and code.suffix == ".zip":
        return "zip"
    if code.is_dir() and any(code.glob("*.deps.json")):
        return "published"
    if code.is_dir() and any(code.glob("*.csproj")):
        return "project"
    return "sources"


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.name).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:24]


def _extract(zip_path: Path) -> Path:
    """The zip's files in the cache, keyed by its content, readable by the sandbox user."""
    entry = f"zip/{_digest([zip_path])}"
    final = dotnet.cache_root_for(entry) / entry
    if final.is_dir():
        return final
    dotnet._mkdir(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    try:
        with zipfile.ZipFile(zip_path) as z:
            for info in z.infolist():
                target = (tmp / info.filename).resolve()
                if not target.is_relative_to(tmp.resolve()):
                    raise UserError(f"function.code: {zip_path}: entry {info.filename!r} points outside the zip")
            z.extractall(tmp)
    except zipfile.BadZipFile as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"function.code: {zip_path} is not a zip file ({e})") from None
    for p in [tmp, *tmp.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    dotnet._publish(tmp, final)
    return final


def locate_sdk() -> tuple[str, list[str]] | None:
    """(the `dotnet` on PATH, its SDK versions) when that dotnet has an SDK:
    `dotnet publish` needs one, a runtime-only dotnet cannot build."""
    sdk = shutil.which("dotnet")
    if sdk is None:
        return None
    try:
        listed = subprocess.run([sdk, "--list-sdks"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    versions = [ln.split()[0] for ln in listed.splitlines() if ln.strip()]
    return (sdk, versions) if versions else None


def _project(code: Path) -> Path:
    """A .csproj folder, published with the SDK into the cache (keyed by the
    sources and the project file); without an SDK, one line with the fix."""
    found = locate_sdk()
    if found is None:
        raise UserError(f"function.code: {code} is a .NET project and building it needs a .NET 8 SDK "
                        f"(none found); fix: {SDK_FIX}")
    sdk = found[0]
    files = [p for p in code.rglob("*") if p.is_file() and not {"bin", "obj"} & set(p.relative_to(code).parts)]
    entry = f"publish/{_digest(files)}"
    final = dotnet.cache_root_for(entry) / entry
    if not final.is_dir():
        dotnet._mkdir(final.parent)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        proc = subprocess.run([sdk, "publish", str(code), "-c", "Release", "-o", str(tmp)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            errors = [ln.strip() for ln in proc.stdout.splitlines() if ": error " in ln]
            raise UserError(f"function.code: dotnet publish {code} failed: "
                            f"{errors[0] if errors else (proc.stdout.strip().splitlines() or ['?'])[-1]}")
        dotnet._publish(tmp, final)
    return final


def published_folder(code: Path) -> Path:
    k = kind(code)
    if k == "zip":
        return _extract(code)
    if k == "project":
        return _project(code)
    return code


def build_host() -> Path:
    """enirace-host.dll, compiled once per source change (cached like the sample loop)."""
    compiler = dotnet.locate_compiler()
    if compiler is None:
        raise dotnet.DotnetMissingError(f"no C# compiler found; fix: {dotnet.COMPILER_FIX_HINT}")
    sources = [dotnet.Source(f"runtime/{n}", dotnet.RUNTIME_SOURCES / n, (dotnet.RUNTIME_SOURCES / n).read_bytes())
               for n in SHARED_RUNTIME]
    sources += [dotnet.Source(f"host/{p.name}", p, p.read_bytes()) for p in sorted(HOST_SOURCES.glob("*.cs"))]
    entry = f"host-{dotnet.cache_key(compiler, sources)}"
    cache_root = dotnet.cache_root_for(entry)
    final = cache_root / entry
    if not (final / f"{HOST}.dll").is_file():
        dotnet._mkdir(cache_root)
        work = Path(tempfile.mkdtemp(prefix=".tmp-host-", dir=cache_root))
        try:
            out = dotnet._compile(compiler, sources, work, 300)
            (out / f"{dotnet.ASSEMBLY}.dll").rename(out / f"{HOST}.dll")
            dotnet._publish(out, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final / f"{HOST}.dll"


def _config_files(folder: Path, assembly: str) -> tuple[Path, Path]:
    """The deps and runtimeconfig files the bootstrap picks: <assembly>.*, else the only one."""
    found = []
    for suffix in (".deps.json", ".runtimeconfig.json"):
        own = folder / f"{assembly}{suffix}"
        others = sorted(folder.glob(f"*{suffix}"))
        if own.is_file():
            found.append(own)
        elif len(others) == 1:
            found.append(others[0])
        else:
            raise UserError(f"function.code: {folder} has no {assembly}{suffix} (the output of `dotnet publish` "
                            f"has one); fix: point function.code at the publish folder")
    return found[0], found[1]


def argv(runtime: dotnet.DotnetRuntime, folder: Path, handler: str) -> tuple[list[str], Path]:
    """(the bootstrap's argv, the program it runs) for a published function."""
    if "::" not in handler:
        exe = folder / (handler if handler.endswith(".dll") else f"{handler}.dll")
        if not exe.is_file():
            raise UserError(f"function.handler: executable assembly {exe.name} not found in {folder}; "
                            f"use Assembly::Namespace.Type::Method for a class library")
        return [str(runtime.host), "exec", str(exe)], exe
    deps, config = _config_files(folder, handler.split("::", 1)[0].strip())
    host = build_host()
    return [str(runtime.host), "exec", "--depsfile", str(deps), "--runtimeconfig", str(config),
            str(host), handler], host


@lru_cache(maxsize=64)
def _check(command: tuple[str, ...], folder: Path, stamp: str) -> str | None:
    env = {"PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(folder), "DOTNET_CLI_TELEMETRY_OPTOUT": "1",
           "DOTNET_ROOT": str(Path(command[0]).parent)}
    proc = subprocess.run([*command[:-1], "--check", command[-1]], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=60)
    if proc.returncode == 0:
        return None
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    return lines[0] if lines else f"the handler check exited {proc.returncode}"


def check_handler(command: list[str], folder: Path) -> None:
    """Resolve the handler string outside the sandbox, before any lab is built
    (no user code runs), so a handler that cannot resolve is one line, exit 2."""
    if "--depsfile" not in command:
        return
    stamp = ";".join(f"{p.name}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in sorted(folder.glob("*.dll")))
    problem = _check(tuple(command), folder, stamp)
    if problem:
        raise UserError(f"function.handler: {problem} ({SIGNATURES})")
