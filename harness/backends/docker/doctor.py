"""`enirace doctor`'s Docker rows: engine, offline-base tooling, images. Optional:
only the docker backend needs them."""

from __future__ import annotations

import shutil

from harness.backends.base import Check
from harness.backends.docker import engine as de
from harness.backends.docker import images as images


def docker_checks() -> list[Check]:
    try:
        import docker  # noqa: F401
    except ImportError:
        return [Check("docker", False, "the docker Python package is missing",
                      "pip install 'enirace[docker]'", required=False)]
    ok, found = de.reachable()
    if not ok:
        fix = "apt-get install -y docker.io" if shutil.which("dockerd") is None else de.ENGINE_FIX
        return [Check("docker engine", False, found.split(";")[0], fix, required=False)]
    info = de.client().info()
    found += f", {info.get('Driver', '?')} storage, cgroup v{info.get('CgroupVersion', '?')}"
    checks = [Check("docker engine", True, found, required=False)]
    deboot = shutil.which("debootstrap")
    checks.append(Check("debootstrap (offline base)", bool(deboot), deboot or "not installed",
                        "apt-get install -y debootstrap (needed only when no registry is reachable)",
                        required=False))
    checks.append(_images_check())
    return checks


def _images_check() -> Check:
    try:
        current = {kind: images.resolve(kind) for kind in ("python", "dotnet", "python-rie")}
    except Exception as exc:
        return Check("docker images", False, f"cannot inspect: {exc}", "enirace images build", required=False)
    built = [ref for ref in current.values() if ref]
    missing = [kind for kind, ref in current.items() if not ref]
    found = ", ".join(built) if built else "none built"
    return Check("docker images", not missing, found + (f"; not built: {', '.join(missing)}" if missing else ""),
                 f"enirace images build {' '.join(missing)}", required=False)
