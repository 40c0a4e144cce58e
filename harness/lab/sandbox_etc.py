"""The sandbox's /etc/resolv.conf, changeable both in place and by rename.

`ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf. A
bind mount pins the inode it was made with, so a file renamed over the host-side
one is never seen by a process that is already running: "filled by rename" would
silently be a no-op. Instead each sandbox gets a directory of its own, and the
process backend mounts a read-only overlay on /etc inside the runtime's private
mount namespace (the one `ip netns exec` made). The overlay's top layer holds a
single entry: resolv.conf, a relative symlink into <dir>/resolv/. glibc stats
/etc/resolv.conf before lookups (BZ #984: size, inode, mtime), follows the
symlink, and so sees an in-place write (same inode) and a rename (new inode)
exactly as it would on a real /etc. A read-only /etc also matches Lambda, whose
filesystem is read-only outside /tmp. Nothing is mounted in the host's mount
namespace; the directory lives under the run's state dir and goes with the lab.
It is recorded in the run's manifest before it is made and carries a marker file,
so cleanup after a kill -9 removes it only while it is still the one this run made.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from harness import ownership

if TYPE_CHECKING:
    from harness.lab.netns import Manifest

How = Literal["in_place", "rename"]


class SandboxEtc:
    def __init__(self, sandbox: str, run: Manifest | None = None) -> None:
        self.sandbox = sandbox
        self.run = run
        self._made = False
        self.root = ownership.STATE_DIR / "sandboxes" / sandbox
        self.top = self.root / "etc-top"  # the overlay's upper-most lower layer
        self.resolv_dir = self.root / "resolv"
        self.resolv_conf = self.resolv_dir / "resolv.conf"

    def create(self) -> None:
        if self.run is not None:
            self.run.record("dir", self.root)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.root.mkdir()  # not exist_ok: a directory already there is not ours to fill
        except FileExistsError:
            if self.run is not None:
                self.run.forget("dir", self.root)
            raise
        self._made = True
        if self.run is not None:
            self.run.prove("dir", self.root, **ownership.write_marker(self.root, self.run.run_id))
        self.top.mkdir()
        self.resolv_dir.mkdir()
        link = self.top / "resolv.conf"
        if not link.is_symlink():
            # Relative, so it resolves inside whichever mount namespace reads it
            # (also through /proc/<pid>/root, which verify uses).
            os.symlink(os.path.relpath(self.resolv_conf, "/etc"), link)

    def remove(self) -> None:
        if not self._made:
            return
        shutil.rmtree(self.root, ignore_errors=True)
        if self.run is not None and not self.root.exists():
            self.run.forget("dir", self.root)

    def mount_prefix(self) -> list[str]:
        """argv prefix, run inside `ip netns exec`, that overlays /etc, then execs the rest."""
        script = ('mount -t overlay enirace-etc -o "ro,lowerdir=$0:/etc" /etc '
                  '|| { echo "enirace: cannot overlay /etc in the sandbox" >&2; exit 125; }; exec "$@"')
        return ["/bin/sh", "-c", script, str(self.top)]

    def write(self, content: str | None, how: How = "rename") -> dict[str, object]:
        """Set resolv.conf to `content` (None: remove it). in_place keeps the inode
        (truncate and write, as an editor saving in place does); rename writes a
        new file beside it and renames it over (as resolvconf and DHCP clients do)."""
        path = self.resolv_conf
        if content is None:
            path.unlink(missing_ok=True)
        elif how == "in_place":
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, content.encode())
            finally:
                os.close(fd)
        else:
            tmp = self.resolv_dir / ".resolv.conf.new"
            tmp.write_text(content)
            os.replace(tmp, path)
        return self.read()

    def read(self) -> dict[str, object]:
        return _read(self.resolv_conf)

    def overlaid(self, pid: int) -> bool:
        """Does process `pid` see this sandbox's /etc (our symlink)?"""
        try:
            return os.readlink(f"/proc/{pid}/root/etc/resolv.conf") == os.readlink(self.top / "resolv.conf")
        except OSError:
            return False

    def seen_by(self, pid: int) -> dict[str, object]:
        """resolv.conf as process `pid` sees it, resolved in its own mount namespace."""
        state = _read(Path(f"/proc/{pid}/root/etc/resolv.conf"))
        state["pid"] = pid
        return state


def _read(path: Path) -> dict[str, object]:
    try:
        st = path.stat()
        return {"exists": True, "inode": st.st_ino, "content": path.read_text()}
    except FileNotFoundError:
        return {"exists": False, "inode": None, "content": None}


def has_nameserver(content: object) -> bool:
    return isinstance(content, str) and any(
        line.split()[:1] == ["nameserver"] for line in content.splitlines())
