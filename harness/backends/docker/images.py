"""The function images (and the harness image), built only when their sources change.

Each image is tagged enirace/<kind>:<content hash> (and :latest) and labelled with
the owner and that hash. The hash covers the image's build context, its base
image's id and whatever the host contributes (runtime versions), so a changed
handler or Dockerfile builds a new image and an unchanged one is reused.

Bases: the official AWS images (`BASE` default in each Dockerfile) when present or
pullable; otherwise an offline base built here: debootstrap → `docker import`
(enirace/rootfs) → enirace/lambda-python-offline or enirace/lambda-dotnet-offline.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from harness import paths
from harness.backends.docker import engine as de
from harness.backends.docker import rootfs as rootfs
from harness.backends.docker import stage as stage
from harness.errors import UserError

REPO_ROOT = paths.REPO_ROOT
CONTAINERS = REPO_ROOT / "containers"
RECIPE_VERSION = "1"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Recipe:
    kind: str
    context: str  # folder under containers/
    dockerfile: str = "Dockerfile"
    official_base: str | None = None  # the Dockerfile's BASE default, for users with a registry
    offline_base: str | None = None  # kind built here when the official base is unavailable
    base_arg: str = "BASE"
    extra: tuple[str, ...] = field(default_factory=tuple)  # more files/folders that feed the hash


RECIPES = {r.kind: r for r in (
    Recipe("lambda-python-offline", "offline-base", "Dockerfile.python", offline_base="rootfs", base_arg="ROOTFS"),
    Recipe("lambda-dotnet-offline", "offline-base", "Dockerfile.dotnet", offline_base="rootfs", base_arg="ROOTFS",
           extra=("containers/dotnet/host", "containers/dotnet/runtime")),  # enirace-host.dll's sources
    Recipe("python", "python", official_base="public.ecr.aws/lambda/python:3.12",
           offline_base="lambda-python-offline"),
    Recipe("dotnet", "dotnet", official_base="public.ecr.aws/lambda/dotnet:8",
           offline_base="lambda-dotnet-offline"),
    Recipe("lambda-nodejs-offline", "nodejs-offline", offline_base="rootfs", base_arg="ROOTFS",
           extra=("containers/offline-base/lambda-entrypoint.sh",)),
    Recipe("nodejs", "nodejs", official_base="public.ecr.aws/lambda/nodejs:20",
           offline_base="lambda-nodejs-offline"),
    Recipe("python-rie", "python-rie", offline_base="python", extra=("harness",)),
    Recipe("harness", "harness", official_base="python:3.12-slim-bookworm", offline_base="rootfs",
           extra=("pyproject.toml",)),
)}
FUNCTION_KINDS = ("python", "dotnet", "nodejs", "python-rie", "harness")
_pull_failed: set[str] = set()


def tag(kind: str, content_hash: str) -> str:
    return f"enirace/{kind}:{content_hash}"


def _image_id(ref: str) -> str | None:
    import docker

    try:
        return str(de.client().images.get(ref).id)
    except docker.errors.ImageNotFound:
        return None


def _hash_tree(h: hashlib._Hash, path: Path) -> None:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        rel = f.relative_to(REPO_ROOT).as_posix()
        if "__pycache__" in rel or rel.endswith((".pyc", "/wheels")) or "/build/" in rel:
            continue
        h.update(rel.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())


def _host_inputs(kind: str) -> str:
    """What the host contributes to an image, in words that change when it does."""
    if kind == "lambda-python-offline":
        return f"awslambdaric=={metadata.version('awslambdaric')}"
    if kind == "lambda-dotnet-offline":
        from harness.function import dotnet as dotnet

        rt = dotnet.locate_runtime()
        return f"dotnet {rt.version if rt else 'missing'}"
    if kind == "lambda-nodejs-offline":
        from harness.function import nodejs

        node = nodejs.locate_node()
        return f"node {node.version} {nodejs.PACKAGE} {nodejs.ric_version(node)}" if node else "node missing"
    return ""


def content_hash(recipe: Recipe, base_id: str) -> str:
    h = hashlib.sha256(f"{RECIPE_VERSION}\0{recipe.kind}\0{base_id}\0{_host_inputs(recipe.kind)}".encode())
    _hash_tree(h, CONTAINERS / recipe.context)
    for extra in recipe.extra:
        _hash_tree(h, REPO_ROOT / extra)
    return h.hexdigest()[:12]


# -- bases -------------------------------------------------------------------------------

def _official_available(ref: str, offline: bool, progress: Progress) -> bool:
    if _image_id(ref):
        return True
    if offline or ref in _pull_failed:
        return False
    progress(f"pulling {ref} ...")
    try:
        de.client().images.pull(ref)
        return True
    except Exception as exc:
        _pull_failed.add(ref)
        progress(f"cannot pull {ref} ({de._short(exc)}); using the offline base")
        return False


def rootfs_image(progress: Progress, build: bool = True) -> str | None:
    ref = f"enirace/rootfs:{rootfs.recipe_key()}"
    if _image_id(ref) or not build:
        return ref if _image_id(ref) else None
    tar = rootfs.build_tarball(progress)
    progress(f"docker import {tar.name} as {ref}")
    changes = [f"LABEL {de.OWNER_LABEL}={de.OWNER} {de.KIND_LABEL}=rootfs {de.HASH_LABEL}={rootfs.recipe_key()}",
               "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8"]
    de.client().api.import_image_from_file(str(tar), repository="enirace/rootfs", tag=rootfs.recipe_key(),
                                           changes=changes)
    return ref


def base_ref(recipe: Recipe, progress: Progress, offline: bool, build: bool) -> str | None:
    if recipe.official_base and _official_available(recipe.official_base, offline or not build, progress):
        return recipe.official_base
    if recipe.offline_base == "rootfs":
        return rootfs_image(progress, build)
    assert recipe.offline_base is not None
    return ensure(recipe.offline_base, progress, offline=offline) if build else resolve(recipe.offline_base)


# -- building ------------------------------------------------------------------------------

_lock_depth = 0


@contextmanager
def _build_lock() -> Iterator[None]:
    """One builder per machine at a time (parallel test workers, two terminals).
    Re-entrant: building an image builds its base inside the same lock."""
    global _lock_depth
    if _lock_depth:
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
        return
    path = rootfs.cache_root() / "images.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _lock_depth = 1
        try:
            yield
        finally:
            _lock_depth = 0


def resolve(kind: str) -> str | None:
    """The current image of `kind` if it is already built (never builds or pulls)."""
    recipe = RECIPES[kind]
    base = base_ref(recipe, lambda line: None, offline=True, build=False)
    base_id = _image_id(base) if base else None
    if base_id is None:
        return None
    ref = tag(kind, content_hash(recipe, base_id))
    return ref if _image_id(ref) else None


def ensure(kind: str, progress: Progress = lambda line: None, offline: bool = False, force: bool = False) -> str:
    """The image of `kind` for the current sources, built (with its bases) when missing."""
    if kind not in RECIPES:
        raise UserError(f"unknown image {kind!r}; use one of {', '.join(FUNCTION_KINDS)}")
    with _build_lock():
        recipe = RECIPES[kind]
        base = base_ref(recipe, progress, offline, build=True)
        assert base is not None
        base_id = _image_id(base)
        assert base_id is not None, base
        digest = content_hash(recipe, base_id)
        ref = tag(kind, digest)
        if _image_id(ref) and not force:
            progress(f"{ref}: up to date")
            return ref
        _build(recipe, base, digest, progress)
        return ref


def _python_version(image: str) -> str:
    out = de.client().containers.run(image, ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                     entrypoint="python3", network_mode="none", remove=True,
                                     labels={de.OWNER_LABEL: de.OWNER, de.ROLE_LABEL: "probe"})
    return bytes(out).decode().strip()


def _stage(recipe: Recipe, base: str, ctx: Path, progress: Progress) -> None:
    kind = recipe.kind
    if kind == "lambda-python-offline":
        progress("staging wheels: awslambdaric")
        stage.download_wheels([f"awslambdaric=={metadata.version('awslambdaric')}"], _python_version(base),
                              ctx / "wheels")
    elif kind == "lambda-dotnet-offline":
        progress("staging the .NET 8 runtime tree and enirace-host.dll from the host")
        stage.dotnet_runtime_tree(ctx / "dotnet")
        stage.dotnet_host(ctx / "runtime")
    elif kind == "lambda-nodejs-offline":
        progress("staging node and aws-lambda-ric from the host")
        stage.nodejs_runtime(ctx)
    elif kind == "python":
        progress("staging wheels: requests")
        reqs = [ln.strip() for ln in (ctx / "requirements.txt").read_text().splitlines() if ln.strip()]
        stage.download_wheels(reqs, _python_version(base), ctx / "wheels")
    elif kind == "dotnet":
        progress("compiling the .NET samples on the host")
        stage.dotnet_function_build(ctx / "build")
    elif kind == "python-rie":
        progress("staging the enirace-rie drop-in as aws-lambda-rie")
        stage.rie_dropin(ctx / "aws-lambda-rie")
    elif kind == "harness" and base != recipe.official_base:
        progress("staging wheels: enirace and its dependencies")
        stage.project_wheel(ctx / "wheels")
        stage.download_wheels(stage.harness_requirements(), _python_version(base), ctx / "wheels")


def _build(recipe: Recipe, base: str, digest: str, progress: Progress) -> None:
    ref = tag(recipe.kind, digest)
    with tempfile.TemporaryDirectory(prefix="enirace-build-") as tmp:
        ctx = Path(tmp) / "ctx"
        shutil.copytree(CONTAINERS / recipe.context, ctx,
                        ignore=shutil.ignore_patterns("__pycache__", "wheels", "build"))
        if recipe.kind == "harness" and base == recipe.official_base:
            for name in ("pyproject.toml", "README.md"):  # `pip install /tmp/ctx[docker]` from source
                shutil.copy2(REPO_ROOT / name, ctx / name)
            shutil.copytree(REPO_ROOT / "harness", ctx / "harness", ignore=shutil.ignore_patterns("__pycache__"))
        _stage(recipe, base, ctx, progress)
        progress(f"building {ref} FROM {base}")
        labels = {de.OWNER_LABEL: de.OWNER, de.KIND_LABEL: recipe.kind, de.HASH_LABEL: digest}
        api = de.client().api
        tail: list[str] = []
        for chunk in api.build(path=str(ctx), dockerfile=recipe.dockerfile, tag=ref, rm=True, forcerm=True,
                               buildargs={recipe.base_arg: base}, labels=labels, decode=True, pull=False):
            if "error" in chunk:
                shown = " | ".join(tail[-4:])
                raise UserError(f"building {ref} failed: {chunk['error'].strip()[:300]} (last output: {shown})")
            line = str(chunk.get("stream", "")).strip()
            if line:
                tail = (tail + [line])[-8:]
            if line.startswith("Step "):
                progress(f"  {recipe.kind}: {line}")
        api.tag(ref, f"enirace/{recipe.kind}", "latest")
    progress(f"built {ref}")


def owned_images() -> list[tuple[str, str, str]]:
    """(tags, kind, content hash) of every image the harness built."""
    out = []
    for img in de.client().images.list(filters={"label": f"{de.OWNER_LABEL}={de.OWNER}"}):
        lab = img.labels or {}
        out.append((",".join(img.tags) or img.short_id, lab.get(de.KIND_LABEL, "?"), lab.get(de.HASH_LABEL, "?")))
    return out


def prune(progress: Progress = lambda line: None) -> list[str]:
    """Remove the harness's images that are not the current build of their kind."""
    current = {ref for kind in RECIPES if (ref := resolve(kind))}
    current.add(f"enirace/rootfs:{rootfs.recipe_key()}")
    removed = []
    for img in de.client().images.list(filters={"label": f"{de.OWNER_LABEL}={de.OWNER}"}):
        if set(img.tags) & current:
            continue
        for t in img.tags or [img.id]:
            if t.endswith(":latest") and (img.labels or {}).get(de.KIND_LABEL) in RECIPES:
                continue
            try:
                de.client().images.remove(t, noprune=False)
                removed.append(t)
                progress(f"removed {t}")
            except Exception as exc:  # in use by a container, say
                progress(f"kept {t}: {de._short(exc)}")
    return removed
