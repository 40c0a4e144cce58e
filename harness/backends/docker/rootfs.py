"""The offline base's root file system: `debootstrap --variant=minbase` of Debian
bookworm plus Python, trimmed and packed as a tarball for `docker import`.

It is built once per machine and cached under ~/.cache/enirace/rootfs/ (about a
minute with a nearby mirror); the tarball's name carries a hash of the recipe, so a
changed package list builds a new one instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.errors import UserError

SUITE = "bookworm"
MIRROR = os.environ.get("ENIRACE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# python3-venv brings ensurepip (pip for the image's venvs); iproute2 is for the
# harness image. Everything else the images need arrives as wheels from the host.
PACKAGES = ("python3", "python3-venv", "iproute2")
# Documentation, translations and the apt caches: a quarter of the tree, never read.
TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt",
        "var/lib/apt/lists")
RECIPE_VERSION = "1"
Progress = Callable[[str], None]


class RootfsError(UserError):
    """debootstrap is missing or failed; the message says what to do."""


def cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "enirace"


def recipe_key() -> str:
    recipe = "\n".join([RECIPE_VERSION, SUITE, "minbase", ",".join(PACKAGES), ",".join(TRIM)])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def tarball_path() -> Path:
    return cache_root() / "rootfs" / f"{SUITE}-minbase-{recipe_key()}.tar"


def build_tarball(progress: Progress = lambda line: None) -> Path:
    """The cached rootfs tarball, built first when missing."""
    final = tarball_path()
    if final.is_file():
        progress(f"rootfs: cached {final}")
        return final
    if shutil.which("debootstrap") is None:
        raise RootfsError("building the offline base needs debootstrap: apt-get install -y debootstrap")
    if os.geteuid() != 0:
        raise RootfsError("debootstrap needs root to build the offline base; run as root")
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{recipe_key()}-", dir=final.parent))
    try:
        root = work / "root"
        argv = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), MIRROR]
        progress(f"rootfs: {' '.join(argv)}")
        _stream(argv, progress, "debootstrap")
        for rel in TRIM:
            shutil.rmtree(root / rel, ignore_errors=True)
        # debootstrap copied the host's resolver into the tree; an image must not
        # carry it (Docker writes the container's own resolv.conf at run time).
        (root / "etc" / "resolv.conf").write_text("")
        tmp_tar = work / "rootfs.tar"
        progress("rootfs: packing the tree")
        _stream(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(tmp_tar), "."], progress, "tar")
        os.replace(tmp_tar, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"rootfs: built {final} ({final.stat().st_size // (1 << 20)} MiB)")
    return final


def _stream(argv: list[str], progress: Progress, what: str) -> None:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-5:]
        if line.startswith(("I: Retrieving", "I: Extracting", "I: Unpacking", "I: Configuring", "I: Base")):
            progress(f"{what}: {line[3:]}")
    if proc.wait() != 0:
        raise RootfsError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")
