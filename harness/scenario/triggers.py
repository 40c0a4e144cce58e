"""Durations and fault triggers: their text forms (`500ms`, `init_start#2 + 100ms..1s`)."""

from __future__ import annotations

import random
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from harness.history import schema
from harness.scenario.limits import brief

MAX_DURATION_MS = 3_600_000.0  # an hour: anything longer is a typo, not a trial
_UNITS_MS = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_DURATION_RE = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>us|µs|ms|s|m)\s*$")

# What a trigger may name: the history's lifecycle events.
LIFECYCLE_EVENTS = schema.LIFECYCLE

# Checked before a regex sees the text: a trigger regex backtracks quadratically on long input.
_MAX_TEXT = 200


def parse_duration_ms(value: Any) -> float:
    """'500ms', '2s', '1.5 s', '250us', '1m' -> milliseconds."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"{brief(value)} has no unit; write e.g. '500ms' or '2s'")
    m = _DURATION_RE.match(value) if len(value) <= _MAX_TEXT else None
    if not m:
        raise ValueError(_why_not_a_duration(value))
    ms = float(m.group("num")) * _UNITS_MS[m.group("unit")]
    if ms > MAX_DURATION_MS:
        raise ValueError(f"{brief(value)} is over the limit of an hour (60m)")
    return ms


def _why_not_a_duration(value: str) -> str:
    """The reason a text is no duration, where one can be told."""
    text = value.strip() if len(value) <= _MAX_TEXT else ""
    if text.startswith("-") and _DURATION_RE.match(text[1:]):
        return f"{brief(value)} is negative; a duration is 0 or more, e.g. '500ms'"
    hours = re.match(r"^(\d+(?:\.\d+)?)\s*h$", text)
    if hours:
        return f"{brief(value)} is over the limit of an hour (60m) (hours are not a unit here)"
    return f"{brief(value)} is not a duration; write e.g. '500ms', '2s' or '250us'"


def format_ms(ms: float) -> str:
    if ms >= 1000 and ms % 1000 == 0:
        return f"{ms / 1000:g}s"
    return f"{ms:g}ms"


DurationMs = Annotated[float, BeforeValidator(parse_duration_ms)]


class Trigger(BaseModel):
    """`<event>[#n] + <offset>`: the n-th occurrence of a lifecycle event, plus an
    offset, or a random offset within `<lo>..<hi>` drawn from the trial's seed."""

    model_config = ConfigDict(frozen=True)
    event: str
    occurrence: int = 1
    offset_ms: float = 0.0
    offset_max_ms: float | None = None  # set: the offset is drawn from [offset_ms, offset_max_ms]

    def __str__(self) -> str:
        occ = f"#{self.occurrence}" if self.occurrence != 1 else ""
        offset = format_ms(self.offset_ms)
        if self.offset_max_ms is not None:
            offset += f"..{format_ms(self.offset_max_ms)}"
        return f"{self.event}{occ} + {offset}"

    @property
    def is_random(self) -> bool:
        return self.offset_max_ms is not None

    def draw_offset_ms(self, seed: int, index: int) -> float:
        """The offset for schedule entry `index` of a trial with `seed`: the same
        seed and entry always give the same offset, independent of other entries."""
        if self.offset_max_ms is None:
            return self.offset_ms
        rng = random.Random(f"enirace-offset/{seed}/{index}")
        return round(rng.uniform(self.offset_ms, self.offset_max_ms), 3)


_TRIGGER_RE = re.compile(
    r"^\s*(?P<event>[a-z_]+)(?:#(?P<n>\d+))?\s*(?:(?P<sign>[+-])\s*(?P<offset>.+?))?\s*$")


def parse_trigger(value: Any) -> Trigger:
    if isinstance(value, Trigger):
        return value
    m = _TRIGGER_RE.match(value) if isinstance(value, str) and len(value) <= _MAX_TEXT else None
    if not m:
        raise ValueError(f"{brief(value)} is not a trigger; write e.g. 'init_start + 500ms'")
    event = m.group("event")
    if event not in LIFECYCLE_EVENTS:
        raise ValueError(f"unknown event {event!r}; use one of {', '.join(LIFECYCLE_EVENTS)}")
    n = int(m.group("n") or 1)
    if n < 1:
        raise ValueError(f"occurrence #{n} must be 1 or more")
    if m.group("sign") == "-":
        raise ValueError(f"{brief(value)}: negative offset; a fault fires at or after its event, "
                         "e.g. 'init_start + 0ms'")
    text = m.group("offset")
    if not text:
        return Trigger(event=event, occurrence=n)
    if ".." in text:
        lo_text, hi_text = (part.strip() for part in text.split("..", 1))
        lo, hi = parse_duration_ms(lo_text), parse_duration_ms(hi_text)
        if hi < lo:
            raise ValueError(f"{brief(value)}: the range ends before it starts")
        return Trigger(event=event, occurrence=n, offset_ms=lo, offset_max_ms=hi)
    return Trigger(event=event, occurrence=n, offset_ms=parse_duration_ms(text))
