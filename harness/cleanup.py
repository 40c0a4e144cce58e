"""Remove what dead runs left behind, and nothing else.

An object is ours when its name carries PREFIX and a run id; it is removable when
that run no longer holds its lock (ownership.is_alive). A live run's objects and
anything without our prefix are never touched.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness import docker_cleanup, ownership
from harness.lab import netns

_TMP_RE = re.compile(r"^enirace-(?P<run>[0-9a-f]{6})-")


@dataclass
class CleanupReport:
    removed: list[str] = field(default_factory=list)
    kept_live: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _dead(run_id: str, cache: dict[str, bool]) -> bool:
    if run_id not in cache:
        cache[run_id] = not ownership.is_alive(run_id)
    return cache[run_id]


def host_links() -> list[str]:
    """Names of links in the host namespace (read only)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return [link.get("IFLA_IFNAME") for link in ipr.get_links()]


def find_leftovers(cache: dict[str, bool] | None = None) -> dict[str, list[tuple[str, str]]]:
    """(kind -> [(name, run id)]) of every object that carries our prefix."""
    # Docker objects first: removing a run's network also removes its host bridge.
    found: dict[str, list[tuple[str, str]]] = docker_cleanup.leftovers()
    found.update({"netns": [], "etc": [], "sandbox": [], "link": [], "tmp": [], "run": []})
    for name in netns.list_names():
        run = ownership.run_of_netns(name)
        if run:
            found["netns"].append((name, run))
    if netns.ETC_NETNS.is_dir():
        for d in netns.ETC_NETNS.iterdir():
            run = ownership.run_of_netns(d.name)
            if run and not netns.exists(d.name):
                found["etc"].append((d.name, run))
    sandboxes = ownership.STATE_DIR / "sandboxes"  # each sandbox's /etc overlay (lab/sandbox_etc.py)
    if sandboxes.is_dir():
        for d in sandboxes.iterdir():
            run = ownership.run_of_netns(d.name)
            if run:
                found["sandbox"].append((str(d), run))
    for name in host_links():
        m = ownership.LINK_RE.match(name or "")
        if m:
            found["link"].append((name, m.group("run")))
    for d in Path(tempfile.gettempdir()).iterdir():
        m = _TMP_RE.match(d.name)
        if m:
            found["tmp"].append((str(d), m.group("run")))
    if ownership.runs_dir().is_dir():
        for f in ownership.runs_dir().glob("*.lock"):
            found["run"].append((f.name, f.stem))
    return found


def _remove_host_link(name: str) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if idx:
            ipr.link("del", index=idx[0])


def cleanup(dry_run: bool = False) -> CleanupReport:
    report = CleanupReport()
    cache: dict[str, bool] = {}
    for kind, items in find_leftovers(cache).items():
        for name, run in items:
            label = f"{kind} {name}"
            if not _dead(run, cache):
                report.kept_live.append(label)
                continue
            if dry_run:
                report.removed.append(label)
                continue
            try:
                if kind in ("container", "network"):
                    docker_cleanup.remove(kind, name)
                elif kind == "netns":
                    netns.remove(name)
                elif kind == "etc":
                    netns.remove_etc(name)
                elif kind == "link":
                    _remove_host_link(name)
                elif kind in ("tmp", "sandbox"):
                    shutil.rmtree(name, ignore_errors=True)
                elif kind == "run":
                    (ownership.runs_dir() / name).unlink(missing_ok=True)
                report.removed.append(label)
            except Exception as exc:
                report.failed.append(f"{label}: {exc}")
    return report
