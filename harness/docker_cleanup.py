"""Containers and networks that dead runs left behind, found by their labels.

Images are a cache shared by all runs, not a run's leftovers: `enirace images
prune` removes the outdated ones.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness import docker_engine as de


def engine_configured() -> bool:
    """Is there an engine to ask? (Cheap: cleanup runs before every trial.)"""
    return bool(os.environ.get("DOCKER_HOST")) or Path("/var/run/docker.sock").exists()


def leftovers() -> dict[str, list[tuple[str, str]]]:
    """{"container": [(name, run id)], "network": [...]} of every labelled object,
    containers first: a network can only go once its containers are gone."""
    found: dict[str, list[tuple[str, str]]] = {"container": [], "network": []}
    if not engine_configured():
        return found
    try:
        api = de.client().api
        for c in api.containers(all=True, filters=de.owned_filter()):
            run = (c.get("Labels") or {}).get(de.RUN_LABEL)
            if run:
                found["container"].append((c["Names"][0].lstrip("/"), run))
        for n in api.networks(filters=de.owned_filter()):
            run = (n.get("Labels") or {}).get(de.RUN_LABEL)
            if run:
                found["network"].append((n["Name"], run))
    except de.DockerUnavailable:
        pass  # no engine: nothing of ours can be running in it either
    return found


def remove(kind: str, name: str) -> None:
    api = de.client().api
    if kind == "container":
        api.remove_container(name, force=True)
    else:
        api.remove_network(name)
