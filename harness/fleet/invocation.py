"""What one synchronous invoke of a fleet returned: the seam between the engine
(which environments run it) and the event sources (who asks for it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Invocation:
    ok: bool                 # the function returned a response (not an error, not a timeout)
    body: bytes              # the response body, or the error body
    error_type: str | None   # the error type as the emulator reports it, e.g. "Runtime.Timeout"
    environment: str         # which execution environment ran it, e.g. "env-3"
    cold: bool               # this invoke started that environment
    duration_ms: float


# The engine's Fleet.invoke: thread-safe, blocks until the invocation is done.
Invoke = Callable[[bytes], Invocation]
