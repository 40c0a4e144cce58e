"""Reading a history: from history.jsonl, or the events a History holds."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.history.schema import FREEZE, INVOKE_START, THAW

Event = dict[str, Any]


def load(path: Path) -> list[Event]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def of_kind(events: Iterable[Event], *kinds: str) -> list[Event]:
    return [e for e in events if e["kind"] in kinds]


def invoke_starts(events: Iterable[Event]) -> dict[int, float]:
    """When each invocation started, by its number n."""
    return {e["n"]: e["t_ms"] for e in events if e["kind"] == INVOKE_START}


def frozen_spans(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Each freeze with the thaw that ended it: n and thaw_n (which freeze#n and
    thaw#n they are), start and end (t_ms; end None when the trial ended
    frozen), frozen_ms (the emulator's own monotonic measure when thawed), the
    generation, the method, whether both changes were verified, and why it was
    thawed (invoke or shutdown)."""
    spans: list[dict[str, Any]] = []
    open_span: dict[str, Any] | None = None
    freezes = thaws = 0  # occurrences, as the triggers freeze#n and thaw#n count them
    for e in sorted(events, key=lambda e: e["t_ms"]):
        if e["kind"] == FREEZE:
            freezes += 1
            if open_span is not None:  # a freeze with no thaw before it: its runtime is gone
                spans.append(open_span)
            open_span = {"n": freezes, "thaw_n": None, "start": e["t_ms"], "end": None, "frozen_ms": None,
                         "generation": e.get("generation"), "method": e.get("method", ""),
                         "verified": bool(e.get("verified")), "reason": "", "state": e.get("state", ""),
                         "detail": e.get("detail", "")}
        elif e["kind"] == THAW:
            thaws += 1
            if open_span is None:
                continue
            open_span.update(thaw_n=thaws, end=e["t_ms"],
                             frozen_ms=e.get("frozen_ms", e["t_ms"] - open_span["start"]),
                             reason=e.get("reason", ""), thaw_verified=bool(e.get("verified")))
            spans.append(open_span)
            open_span = None
    if open_span is not None:
        spans.append(open_span)
    return spans
