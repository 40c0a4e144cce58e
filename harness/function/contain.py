"""How the runtime is contained, as Lambda contains a function: an unprivileged
user, a private /tmp, a read-only task root (and the cgroup: harness/function/cgroup.py).

All of it happens inside the private mount namespace `ip netns exec` gives the
runtime, in a shell that then execs the runtime: nothing is mounted on the host,
and every mount vanishes with the namespace.

- /tmp is a fresh tmpfs of TMP_SIZE_MB (Lambda's default ephemeral storage).
- The task root is bind-mounted read-only over itself.
- The runtime user must reach its interpreter, its packages and its code. When
  one of those lives below a directory others cannot enter (/root is 0700 on
  Debian), that directory is overlaid, read-only, with a top layer whose
  directories carry the same mode plus o+x: the function may pass through,
  never list it, and every file keeps its own permissions. The same trick as
  the sandbox's /etc (harness/lab/sandbox_etc.py).
- Paths under the host's /tmp that the runtime needs (a task root in a pytest
  tmp_path, say) are bind-mounted aside before the tmpfs hides them, then moved
  back onto the same path inside it, read-only.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

DEFAULT_USER = "sbx_user1051"  # the name Lambda gives its sandbox user
TMP_SIZE_MB = 512
HOST_TMP = Path("/tmp")


def ensure_user(name: str) -> tuple[int, int]:
    """uid and gid of `name`; the default sandbox user is created once (a system
    user without a home or a login shell), any other name must exist."""
    try:
        pw = pwd.getpwnam(name)
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        pass
    if name != DEFAULT_USER:
        raise UserError(f"function.user: no user {name!r} on this machine; use {DEFAULT_USER} "
                        "(enirace creates it) or root")
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    try:
        proc = subprocess.run([useradd, "--system", "--user-group", "--no-create-home",
                               "--home-dir", "/tmp", "--shell", "/usr/sbin/nologin",
                               "--comment", "enirace Lambda sandbox user", name],
                              capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError(f"function.user: cannot create {name} (no useradd; apt-get install passwd), "
                        "or set function.user: root") from None
    try:
        pw = pwd.getpwnam(name)  # also fine when a parallel worker created it first
    except KeyError:
        raise UserError(f"function.user: useradd {name} failed: {proc.stderr.strip()}") from None
    return pw.pw_uid, pw.pw_gid


def _ancestors(path: Path) -> list[Path]:
    """path's proper ancestors, outermost first, without /."""
    return list(reversed(path.parents))[1:]


def needed_paths(argv: list[str], env: dict[str, str], cwd: Path) -> list[Path]:
    """What the runtime must reach: its working directory (the task root), the
    files its argv names (with the venv of a venv's interpreter), PYTHONPATH and
    DOTNET_ROOT, each also through symlinks."""
    found: list[Path] = [cwd]
    exe = shutil.which(argv[0], path=env.get("PATH")) if argv and "/" not in argv[0] else None
    for arg in ([exe] if exe else []) + argv:
        p = Path(arg) if os.path.isabs(arg) else cwd / arg
        if "/" in arg or p.exists():
            found.append(p)
            # A venv's interpreter finds its packages through the venv it stands in
            # (pyvenv.cfg beside bin/): the whole venv must be reachable, not just
            # the interpreter its symlink leads to.
            if (p.parent.parent / "pyvenv.cfg").is_file():
                found.append(p.parent.parent)
    for key in ("PYTHONPATH", "DOTNET_ROOT"):
        found += [Path(p) for p in env.get(key, "").split(os.pathsep) if os.path.isabs(p)]
    if root := env.get("DOTNET_ROOT"):  # a shimmed muxer links host/ and shared/ elsewhere
        found += [Path(root) / name for name in ("host", "shared")]
    out: list[Path] = []
    for p in found:
        for q in (Path(os.path.abspath(p)), Path(os.path.realpath(p))):
            if q.exists() and q not in out:
                out.append(q)
    return out


def _under(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


@dataclass(frozen=True)
class Plan:
    """The mounts for one runtime: overlays that let it pass blocked directories,
    host-/tmp paths to carry into its private /tmp, the task root made read-only."""

    reach: dict[Path, list[Path]]  # blocked dir -> blocked dirs below it (one overlay each key)
    carry: list[Path]  # directories under the host's /tmp the runtime needs
    task_root: Path


def plan(needed: list[Path], task_root: Path) -> Plan:
    blocked: list[Path] = []
    carry: list[Path] = []
    for p in needed:
        if _under(p, HOST_TMP):
            d = p if p.is_dir() else p.parent
            if d != HOST_TMP and d not in carry:
                carry.append(d)
            continue
        for a in _ancestors(p):
            if not os.stat(a).st_mode & 0o001 and a not in blocked:
                blocked.append(a)
    carry = [d for d in carry if not any(o != d and _under(d, o) for o in carry)]
    blocked.sort(key=lambda p: len(p.parts))
    reach: dict[Path, list[Path]] = {}
    for b in blocked:
        top = next((r for r in reach if _under(b, r)), None)
        if top is None:
            reach[b] = []
        else:
            reach[top].append(b)
    return Plan(reach, carry, Path(os.path.abspath(task_root)))


def _build_top(top: Path, root: Path, below: list[Path]) -> None:
    """The overlay's top layer for `root`: `root` and every directory on the way
    to the blocked ones below it, with their own mode plus o+x."""
    dirs = {root}
    for b in below:
        dirs.update(a for a in [*_ancestors(b), b] if _under(a, root))
    for d in sorted(dirs, key=lambda p: len(p.parts)):
        layer = top / d.relative_to(root)
        layer.mkdir(parents=True, exist_ok=True)
        st = os.stat(d)
        os.chmod(layer, (st.st_mode & 0o7777) | 0o001)
        os.chown(layer, st.st_uid, st.st_gid)


def _q(path: Path | str) -> str:
    text = str(path)
    if any(c in text for c in ",:\n"):
        # overlayfs's option string splits on those
        raise UserError(f"function.code: the path {text!r} contains ',' or ':', which a mount "
                        "option cannot carry; move the code elsewhere")
    return shlex.quote(text)


def script(p: Plan, state_dir: Path, uid: int | None, gid: int | None, wrap: Sequence[str] = ()) -> str:
    """The shell that makes the mounts, then execs "$@" as the runtime user.
    `state_dir` is the sandbox's own directory on the host (for the overlay
    layers and the mount points things are carried through). `wrap` runs as
    root between the mounts and the switch to the user (the pid namespace of
    snapstart.mode criu: harness/function/checkpoint.py)."""
    lines = ['umask 022', 'fail() { echo "enirace: $1" >&2; exit 125; }']
    for i, (root, below) in enumerate(p.reach.items()):
        top = state_dir / "reach" / str(i)
        _build_top(top, root, below)
        lines.append(f"mount -t overlay enirace-reach -o ro,lowerdir={_q(top)}:{_q(root)} {_q(root)} "
                     f"|| fail {shlex.quote(f'cannot make {root} reachable for the runtime user')}")
    ro_done: set[Path] = set()
    for i, d in enumerate(p.carry):
        aside = state_dir / "carry" / str(i)
        aside.mkdir(parents=True, exist_ok=True)
        lines.append(f"mount --bind {_q(d)} {_q(aside)} && mount -o remount,bind,ro {_q(aside)} "
                     f"|| fail {shlex.quote(f'cannot carry {d} into the private /tmp')}")
        ro_done.update(q for q in [p.task_root] if _under(q, d))
    lines.append(f"mount -t tmpfs -o size={TMP_SIZE_MB}m,mode=1777,nosuid,nodev enirace-tmp /tmp "
                 "|| fail 'cannot mount a private /tmp'")
    for i, d in enumerate(p.carry):
        aside = state_dir / "carry" / str(i)
        lines.append(f"mkdir -p {_q(d)} && mount --move {_q(aside)} {_q(d)} "
                     f"|| fail {shlex.quote(f'cannot carry {d} into the private /tmp')}")
    if p.task_root not in ro_done:
        t = _q(p.task_root)
        lines.append(f"mount --bind {t} {t} && mount -o remount,bind,ro {t} "
                     f"|| fail {shlex.quote(f'cannot make the task root {p.task_root} read-only')}")
    # Re-enter the working directory: the one inherited from the harness is the
    # host's, below the read-only bind and the tmpfs.
    lines.append(f"cd {_q(p.task_root)} || fail 'cannot enter the task root'")
    head = " ".join(["exec", *(shlex.quote(a) for a in wrap)])
    if uid is None:
        lines.append(f'{head} "$@"')
    else:
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        lines.append(f"{head} {setpriv} --reuid={uid} --regid={gid} --clear-groups --no-new-privs -- \"$@\"")
    return "\n".join(lines)


@dataclass(frozen=True)
class Containment:
    """What the process backend applies to every runtime it starts."""

    user: str = DEFAULT_USER
    memory_mb: int | None = 128  # None: no cgroup memory limit

    def ids(self) -> tuple[int, int] | None:
        return None if self.user == "root" else ensure_user(self.user)

    def prefix(self, argv: list[str], env: dict[str, str], cwd: Path, state_dir: Path,
               wrap: Sequence[str] = (), as_root: bool = False) -> list[str]:
        """argv prefix, run inside `ip netns exec`, that contains the runtime (`wrap`:
        see script; as_root: the mounts only, "$@" stays root, as CRIU's restore)."""
        if self.user != "root" and shutil.which("setpriv") is None:
            raise UserError("function.user: running as an unprivileged user needs setpriv "
                            "(apt-get install util-linux), or set function.user: root")
        ids = None if as_root else self.ids()
        uid, gid = ids if ids else (None, None)
        text = script(plan(needed_paths(argv, env, cwd), cwd), state_dir, uid, gid, wrap=wrap)
        return ["/bin/sh", "-c", text, "enirace-contain"]


def root_warning() -> str:
    return ("warning: function.user: root: the function runs as root (it can leave its "
            "namespace and change the machine); Lambda runs functions as an unprivileged user")


_warned = False


def warn_root_once() -> None:
    """One line on stderr per process, however many trials run as root."""
    global _warned
    if not _warned:
        _warned = True
        print(root_warning(), file=sys.stderr)
