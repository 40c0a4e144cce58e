"""Where .NET build outputs are cached, for root and non-root runs alike.

`sudo` (or `sudo -E`) often keeps the invoking user's HOME, so root fills
~user/.cache/enirace/dotnet and the user's later runs find it owned by root. Such
a cache is still used for what it already holds (entries are published 0755/0644),
and anything new goes to the first cache this user can write: the default one,
then the user's own home from the password database, then a private folder under
the temp dir."""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import UserError

SUBDIR = Path("enirace") / "dotnet"


def default_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / SUBDIR


def _own_temp_root() -> Path | None:
    """tempdir/enirace-<uid>, unless someone else made that name first (a planted
    dll there would be run as the function)."""
    base = Path(tempfile.gettempdir()) / f"enirace-{os.getuid()}"
    try:
        st = base.lstat()
    except FileNotFoundError:
        return base / "dotnet"
    except OSError:
        return None
    ours = stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022
    return base / "dotnet" if ours else None


def candidates() -> list[Path]:
    """The caches to try, in order, without duplicates."""
    found = [default_root()]
    try:
        found.append(Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / SUBDIR)
    except KeyError:  # a uid without a passwd entry (containers)
        pass
    temp = _own_temp_root()
    if temp is not None:
        found.append(temp)
    return list(dict.fromkeys(found))


def writable(root: Path) -> bool:
    """Whether this user can create entries under root: root itself if it exists,
    else its nearest existing ancestor, in which the missing folders would be made."""
    probe = root
    while not os.path.exists(probe):  # False too where a parent cannot be searched
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def pick(entry: str, roots: Sequence[Path] | None = None,
         can_write: Callable[[Path], bool] = writable) -> Path:
    """The root to use for `entry` (a path relative to a cache root): the first one
    that already holds it readably (entries are published whole, by one rename),
    else the first this user can write."""
    roots = list(roots) if roots is not None else candidates()
    for root in roots:
        if os.access(root / entry, os.R_OK | os.X_OK):
            return root
    for root in roots:
        if can_write(root):
            return root
    raise UserError(f"no .NET build cache is writable for this user (tried {', '.join(map(str, roots))}); "
                    "set XDG_CACHE_HOME to a folder you own")


def make_dirs(path: Path) -> Path:
    """mkdir -p, each folder made 0755 whatever the umask: a cache root made by
    root must stay traversable for a later non-root run and for the sandbox user."""
    missing = []
    probe = path
    while not os.path.exists(probe):
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:  # a parallel build made it
            continue
        folder.chmod(0o755)
    return path


def share(tree: Path) -> None:
    """Folders 0755, files 0644 (executables 0755), before the tree is published."""
    for p in [tree, *tree.rglob("*")]:
        if p.is_symlink():
            continue
        if p.is_dir():
            p.chmod(0o755)
        else:
            p.chmod(0o755 if p.stat().st_mode & 0o100 else 0o644)
