"""Has this process what network namespaces need (CAP_NET_ADMIN and CAP_SYS_ADMIN)?
Asked before anything is built, by the CLI, the pytest plugin and doctor."""

from __future__ import annotations

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21

PRIVILEGE_FIX = ("network namespaces need CAP_NET_ADMIN and CAP_SYS_ADMIN: run it with sudo, "
                 "or through the privileged compose service (docker compose run harness ...)")


def effective_caps() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def has_privileges() -> bool:
    caps = effective_caps()
    return bool(caps & (1 << CAP_NET_ADMIN)) and bool(caps & (1 << CAP_SYS_ADMIN))
