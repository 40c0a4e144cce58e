"""Backends build a trial's lab and start its function's runtimes: `process` (a
child in the sandbox namespace) or `docker` (containers joining a sandbox
container's namespace). A trial picks its backend once, by scenario.backend, and
asks it for everything that differs (harness/backends/base.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.backends.base import Backend, Check, Remover, RuntimeAPILike
from harness.backends.docker.backend import DockerBackend
from harness.backends.process import ProcessBackend
from harness.errors import UserError

if TYPE_CHECKING:
    from harness.scenario.model import Scenario

__all__ = ["BACKENDS", "Backend", "Check", "RuntimeAPILike", "all_backends", "for_scenario", "removers"]

# scenario.backend -> a factory of its Backend
BACKENDS: dict[str, Callable[[], Backend]] = {
    "process": ProcessBackend,
    "docker": DockerBackend,
}


def for_scenario(scenario: Scenario) -> Backend:
    try:
        factory = BACKENDS[scenario.backend]
    except KeyError:
        raise UserError(f"backend: unknown backend {scenario.backend!r}; use one of "
                        f"{', '.join(BACKENDS)}") from None
    return factory()


def all_backends() -> list[Backend]:
    return [factory() for factory in BACKENDS.values()]


def removers() -> dict[str, Remover]:
    """Every backend's cleanup removers, by the kind of object they remove."""
    found: dict[str, Remover] = {}
    for backend in all_backends():
        found.update(backend.removers())
    return found
