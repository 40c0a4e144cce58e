"""Test-time helper: compile .NET functions in the usual Lambda style against
stand-ins of Amazon.Lambda.Core and its JSON serializer (sources owned by the
tests; no NuGet here) with mcs, and lay them out as `dotnet publish` does: the
function's dll, its .deps.json and .runtimeconfig.json, and the dependency dlls."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
STANDINS = HERE / "standins"
FUNCTIONS = HERE / "functions"
CORE, SERIALIZER = "Amazon.Lambda.Core", "Amazon.Lambda.Serialization.SystemTextJson"
MCS = ("mcs", "-noconfig", "-optimize+", "-r:System.dll", "-r:System.Core.dll", "-r:System.Net.Http.dll")
RUNTIMECONFIG = {"runtimeOptions": {"tfm": "net8.0",
                                    "framework": {"name": "Microsoft.NETCore.App", "version": "8.0.0"}}}


def _mcs(out: Path, sources: list[Path], refs: list[Path], target: str = "library",
         defines: tuple[str, ...] = ()) -> None:
    argv = [*MCS, f"-target:{target}", f"-out:{out}", *(f"-define:{d}" for d in defines),
            *(f"-r:{r}" for r in refs), *map(str, sources)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def deps_json(name: str, packages: list[str]) -> dict:
    """A publish-style deps file: the project plus one package per dependency."""
    target = {f"{name}/1.0.0": {"dependencies": {p: "2.2.0" for p in packages},
                                "runtime": {f"{name}.dll": {}}}}
    libraries = {f"{name}/1.0.0": {"type": "project", "serviceable": False, "sha512": ""}}
    for p in packages:
        target[f"{p}/2.2.0"] = {"runtime": {f"lib/net8.0/{p}.dll": {"assemblyVersion": "1.0.0.0",
                                                                     "fileVersion": "1.0.0.0"}}}
        libraries[f"{p}/2.2.0"] = {"type": "package", "serviceable": True, "sha512": "",
                                   "path": f"{p.lower()}/2.2.0", "hashPath": f"{p.lower()}.2.2.0.nupkg.sha512"}
    return {"runtimeTarget": {"name": ".NETCoreApp,Version=v8.0", "signature": ""},
            "compilationOptions": {}, "targets": {".NETCoreApp,Version=v8.0": target}, "libraries": libraries}


def publish(out: Path, name: str = "MyFunction", sources: list[Path] | None = None,
            serializer: bool = True, target: str = "library", old_core: bool = False) -> Path:
    """`dotnet publish`'s output folder for a function compiled from `sources`
    (default: functions/<name>.cs). old_core: an Amazon.Lambda.Core from before
    SnapshotRestore (< 2.5.0)."""
    out.mkdir(parents=True, exist_ok=True)
    _mcs(out / f"{CORE}.dll", [STANDINS / f"{CORE}.cs"], [], defines=("CORE_BEFORE_2_5",) if old_core else ())
    refs = [out / f"{CORE}.dll"]
    packages = [CORE]
    if serializer:
        _mcs(out / f"{SERIALIZER}.dll", [STANDINS / "Serializer.cs"], refs)
        refs.append(out / f"{SERIALIZER}.dll")
        packages.append(SERIALIZER)
    _mcs(out / f"{name}.dll", sources or [FUNCTIONS / f"{name}.cs"], refs, target)
    (out / f"{name}.deps.json").write_text(json.dumps(deps_json(name, packages), indent=2))
    (out / f"{name}.runtimeconfig.json").write_text(json.dumps(RUNTIMECONFIG, indent=2))
    return out


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """What `dotnet lambda package` uploads: the publish folder's files at the zip's root."""
    with zipfile.ZipFile(zip_path, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f.name)
    return zip_path
