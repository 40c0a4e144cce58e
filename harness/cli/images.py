"""`enirace images ...`: build, list and prune the Lambda container images."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.table import Table

from harness.cli.common import console
from harness.errors import UserError

DEFAULT_KINDS = ("python", "dotnet", "nodejs")

_NO_ENGINE = "2 no Docker engine answering (one line says how to start it)"
IMAGES_EPILOG = f"""\b
Examples:
  enirace images build python dotnet
  enirace images list
  enirace images prune

\b
Exit codes: 0 done; {_NO_ENGINE},
or (build) an image failed to build. `enirace images COMMAND -h` shows its options."""
BUILD_EPILOG = """\b
Examples:
  enirace images build
  enirace images build dotnet --offline
  enirace images build all --force

\b
Exit codes: 0 every image built or already current; 2 some image failed (each failure is
one line; the others are still built), e.g. no Docker engine; 130 interrupted."""
LIST_EPILOG = f"""\b
Examples:
  enirace images list

\b
Exit codes: 0 listed; {_NO_ENGINE}."""
PRUNE_EPILOG = f"""\b
Examples:
  enirace images prune

\b
Exit codes: 0 pruned (possibly nothing); {_NO_ENGINE}."""
DROPIN_EPILOG = """\b
Examples:
  enirace images rie-dropin ./aws-lambda-rie
  sudo enirace images rie-dropin /usr/local/bin/aws-lambda-rie

\b
Exit codes: 0 written (mode 0755); 2 TARGET cannot be written."""


@click.group(epilog=IMAGES_EPILOG)
def images() -> None:
    """Lambda container images for the docker backend."""


@images.command(epilog=BUILD_EPILOG)
@click.argument("kinds", nargs=-1, type=click.Choice(["python", "dotnet", "nodejs", "python-rie", "harness", "all"]))
@click.option("--offline", is_flag=True, help="Do not try to pull the official AWS base images.")
@click.option("--force", is_flag=True, help="Rebuild even when the sources are unchanged.")
def build(kinds: tuple[str, ...], offline: bool, force: bool) -> None:
    """Build KINDS (default: python and dotnet); unchanged images are reused.

    Without a registry the official base images cannot be pulled: an offline base is
    built instead (debootstrap, then docker import; cached under ~/.cache/enirace)."""
    from harness.backends.docker import images as im

    wanted = list(kinds or DEFAULT_KINDS)
    if "all" in wanted:
        wanted = ["python", "dotnet", "nodejs", "python-rie", "harness"]
    failed = False
    for kind in wanted:
        started = time.monotonic()
        with console.status(f"{kind}: ...") as status:
            def progress(line: str, status=status, kind=kind) -> None:  # type: ignore[no-untyped-def]
                status.update(f"{kind}: {line.strip()[:100]}")
                if not line.startswith(("debootstrap:", "  ")):
                    console.print(f"[dim]{line}[/]", soft_wrap=True)

            try:
                ref = im.ensure(kind, progress, offline=offline, force=force)
            except Exception as exc:  # one image failing should not hide the others' results
                console.print(f"[red]{kind}: failed[/]: {exc}", soft_wrap=True)
                failed = True
                continue
        console.print(f"[green]{kind}[/]: {ref}  ({time.monotonic() - started:.1f} s)")
    sys.exit(2 if failed else 0)


@images.command(name="list", epilog=LIST_EPILOG)
def list_images() -> None:
    """The images the harness built, and which are current."""
    from harness.backends.docker import images as im

    current = {kind: im.resolve(kind) for kind in im.RECIPES}
    current["rootfs"] = im.rootfs_image(lambda line: None, build=False)
    table = Table(show_header=True, header_style="bold")
    for col in ("image", "kind", "content hash", "current"):
        table.add_column(col)
    for tags, kind, digest in im.owned_images():
        ref = current.get(kind)
        table.add_row(tags, kind, digest, "yes" if ref and ref in tags else "")
    console.print(table)


@images.command(epilog=PRUNE_EPILOG)
def prune() -> None:
    """Remove the harness's images that are not current (old content hashes)."""
    from harness.backends.docker import images as im

    removed = im.prune(lambda line: console.print(line))
    console.print(f"removed {len(removed)} image(s)")


@images.command(name="rie-dropin", epilog=DROPIN_EPILOG)
@click.argument("target", type=click.Path(path_type=Path))
def rie_dropin(target: Path) -> None:
    """Write enirace-rie as one executable file (stdlib python3 only), e.g. to copy
    to /usr/local/bin/aws-lambda-rie in an image that has python3 but no RIE."""
    from harness.backends.docker.stage import rie_dropin as write

    try:
        written = write(target)
    except OSError as exc:
        raise UserError(f"{target}: cannot write the drop-in ({exc.strerror or exc}); pick a writable path") from None
    console.print(f"wrote {written}")
