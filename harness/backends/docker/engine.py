"""The Docker engine as the harness uses it: one client, and the labels that say
which run owns a container, a network or an image (cleanup finds them by label)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from harness.errors import UserError

if TYPE_CHECKING:
    import docker

OWNER_LABEL = "org.enirace.owner"
OWNER = "enirace"
RUN_LABEL = "org.enirace.run"
ROLE_LABEL = "org.enirace.role"
KIND_LABEL = "org.enirace.image"
HASH_LABEL = "org.enirace.content-hash"
ENGINE_FIX = ("install and start the engine: apt-get install -y docker.io, then "
              "dockerd >/var/log/dockerd.log 2>&1 & (or systemctl start docker)")


class DockerUnavailable(UserError):
    """The docker backend was asked for but the engine cannot be used; says how to fix it."""


def labels(run_id: str, role: str, **extra: str) -> dict[str, str]:
    return {OWNER_LABEL: OWNER, RUN_LABEL: run_id, ROLE_LABEL: role, **extra}


def owned_filter(run_id: str | None = None) -> dict[str, Any]:
    """A `filters=` argument matching the harness's objects (of one run)."""
    wanted = [f"{OWNER_LABEL}={OWNER}"]
    if run_id:
        wanted.append(f"{RUN_LABEL}={run_id}")
    return {"label": wanted}


@lru_cache(maxsize=1)
def client() -> docker.DockerClient:
    """A client for the local engine (DOCKER_HOST respected); raises DockerUnavailable."""
    try:
        import docker
    except ImportError:
        raise DockerUnavailable("the docker backend needs the docker Python package: "
                                "pip install 'enirace[docker]'") from None
    try:
        c = docker.from_env(timeout=int(os.environ.get("ENIRACE_DOCKER_TIMEOUT", "60")))
        c.ping()
    except Exception as exc:
        raise DockerUnavailable(f"the Docker engine is not reachable ({_short(exc)}); {ENGINE_FIX}") from None
    return c


@lru_cache(maxsize=1)
def stream_client() -> docker.DockerClient:
    """A client for long-lived streams (log follows, waits): docker-py applies its
    timeout as the socket read timeout, which would cut a quiet container's log."""
    import docker

    client()  # the same checks and error message
    return docker.from_env(timeout=7 * 24 * 3600)


def reachable() -> tuple[bool, str]:
    """(engine usable?, what was found) without raising; for doctor and test skips."""
    try:
        info = client().version()
    except DockerUnavailable as exc:
        return False, str(exc)
    except Exception as exc:  # the engine went away after the client was made
        client.cache_clear()
        return False, f"the Docker engine is not reachable ({_short(exc)}); {ENGINE_FIX}"
    return True, f"engine {info.get('Version', '?')} (API {info.get('ApiVersion', '?')})"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
