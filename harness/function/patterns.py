"""The sample handlers by the pattern of code they share: the same logic in each
language, so a sweep can line them up and show which failure belongs to the
language and which to the pattern."""

from __future__ import annotations

from dataclasses import dataclass

RUNTIMES = ("python", "dotnet", "nodejs")


@dataclass(frozen=True)
class Pattern:
    name: str
    what: str  # one line: the code
    handlers: dict[str, str]  # runtime -> sample handler


PATTERNS = (
    Pattern("throws at init", "calls the service while the runtime inits, no try",
            {"python": "naive_crash", "dotnet": "ctor_throws", "nodejs": "init_throws"}),
    Pattern("cached failure", "looks the service up once and keeps the first outcome, failure included",
            {"python": "naive_cached", "dotnet": "lazy_cached", "nodejs": "cached_lookup"}),
    Pattern("static initializer", "a static field resolved in a type initializer (.NET only)",
            {"dotnet": "static_init"}),
    Pattern("pooled client", "one long-lived keep-alive client, default settings, no timeout",
            {"python": "naive_session", "dotnet": "static_httpclient", "nodejs": "keepalive_agent"}),
    Pattern("resilient", "timeouts from the remaining time, retry with backoff, fresh connection, no cache",
            {"python": "resilient", "dotnet": "resilient", "nodejs": "resilient"}),
)


def pattern_of(runtime: str, handler: str) -> Pattern | None:
    return next((p for p in PATTERNS if p.handlers.get(runtime) == handler), None)
