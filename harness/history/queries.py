"""Reading a history: from history.jsonl, or the events a History holds."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.history.schema import INVOKE_START

Event = dict[str, Any]


def load(path: Path) -> list[Event]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def of_kind(events: Iterable[Event], *kinds: str) -> list[Event]:
    return [e for e in events if e["kind"] in kinds]


def invoke_starts(events: Iterable[Event]) -> dict[int, float]:
    """When each invocation started, by its number n."""
    return {e["n"]: e["t_ms"] for e in events if e["kind"] == INVOKE_START}
