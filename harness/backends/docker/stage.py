"""What `enirace images build` prepares on the host for a build context: wheels
(HTTPS to PyPI fails inside builds here), the .NET runtime tree and compiled
samples, and the enirace-rie drop-in as one stdlib-only file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipapp
from pathlib import Path

from harness import paths
from harness.errors import UserError

REPO_ROOT = paths.REPO_ROOT
# pip download for another interpreter needs explicit platform tags.
HARNESS_EXTRAS = ("docker", "capture")  # keep in step with containers/harness/Dockerfile
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "linux_x86_64")


class StageError(UserError):
    """Something the image needs could not be prepared on the host."""


def download_wheels(requirements: list[str], python_version: str, dest: Path) -> None:
    """Binary wheels of `requirements` (and their dependencies) for CPython `python_version`."""
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp",
            *[f"--platform={p}" for p in PLATFORMS], "-d", str(dest), *requirements]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise StageError(f"could not download wheels for Python {python_version} "
                         f"({', '.join(requirements)}): {tail}")


def project_wheel(dest: Path) -> None:
    """A wheel of enirace itself, built from this checkout."""
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
            "-w", str(dest), str(REPO_ROOT)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise StageError(f"could not build the enirace wheel: {tail}")


def harness_requirements() -> list[str]:
    """enirace's own dependencies plus the extras the harness image installs."""
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(req for name in HARNESS_EXTRAS for req in extras.get(name, []))]


def dotnet_runtime_tree(dest: Path) -> str:
    """Copy the host's .NET 8 runtime (host + Microsoft.NETCore.App) to dest; its version."""
    from harness.function import dotnet as dotnet

    rt = dotnet.locate_runtime()
    if rt is None:
        raise StageError(f"no .NET 8 runtime on the host to copy into the offline base; "
                         f"fix: {dotnet.runtime_fix_hint()}")
    root = rt.host.parent
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(rt.host, dest / "dotnet")
    (dest / "dotnet").chmod(0o755)
    # symlinks=False: the runtime may be a shim whose host/ and shared/ link elsewhere.
    shutil.copytree(root / "host", dest / "host", symlinks=False)
    framework = Path("shared") / dotnet.FRAMEWORK / rt.version
    shutil.copytree(root / framework, dest / framework, symlinks=False)
    return rt.version


def dotnet_host(dest: Path) -> Path:
    """enirace-host.dll (the offline base's stand-in for Amazon.Lambda.RuntimeSupport.dll),
    compiled on the host: the image has no compiler."""
    from harness.function import dotnet_code

    host = dotnet_code.build_host()
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(host, dest / host.name)
    return dest / host.name


def nodejs_runtime(ctx: Path) -> str:
    """The host's node (node/node) and the aws-lambda-ric enirace built on the host
    (runtime/node_modules/aws-lambda-ric: what it runs, not its build sources), and the
    offline base's entrypoint; the client's version. Containers cannot reach npm's
    HTTPS registry reliably, and the client's native addon takes minutes to build."""
    from harness.function import nodejs

    node = nodejs.locate_node()
    if node is None:
        raise StageError(f"no node on the host to copy into the offline base; fix: {nodejs.NODE_FIX}")
    ric = nodejs.ensure_ric(node)
    (ctx / "node").mkdir(parents=True, exist_ok=True)
    shutil.copy2(os.path.realpath(node.path), ctx / "node" / "node")
    dest = ctx / "runtime" / "node_modules" / nodejs.PACKAGE
    dest.mkdir(parents=True)
    for name in ("package.json", "bin", "dist", "LICENSE", "NOTICE", "THIRD-PARTY-LICENSES"):
        src = ric / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy2(src, dest / name)
    shutil.copy2(REPO_ROOT / "containers" / "offline-base" / "lambda-entrypoint.sh", ctx / "lambda-entrypoint.sh")
    return nodejs.ric_version(node)


def dotnet_function_build(dest: Path) -> str:
    """The samples and the runtime loop compiled on the host; the build's cache key."""
    from harness.function import dotnet as dotnet

    built = dotnet.build(dotnet.SAMPLE_HANDLERS)
    dest.mkdir(parents=True, exist_ok=True)
    for f in (built.dll, built.runtimeconfig):
        shutil.copy2(f, dest / f.name)
    return built.key


def rie_dropin(target: Path) -> Path:
    """enirace-rie as one executable file (a zipapp of the harness package, stdlib only)."""
    with tempfile.TemporaryDirectory(prefix="enirace-zipapp-") as tmp:
        pkg = Path(tmp) / "harness"
        shutil.copytree(REPO_ROOT / "harness", pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (Path(tmp) / "__main__.py").write_text("from harness.emulator.dropin import main\n\nmain()\n")
        zipapp.create_archive(tmp, target, interpreter="/usr/bin/env python3", compressed=True)
    target.chmod(0o755)
    return target
