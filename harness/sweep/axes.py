"""Sweep axes: which scenario fields vary, and over which values.

`--axis KEY=VALUES`. VALUES is a comma list (`naive_cached,resilient`) or a range
`start..stop/step`, stop included: durations (`0ms..2000ms/100ms`) or plain numbers
(`1..5`, step 1 by default). KEY is a path of the override language
(harness.scenario.overrides), as `--set` takes it, trigger parts included:
`schedule[0].at.offset`, `schedule[0].at.event`, `schedule[0].at.occurrence`.
Keys joined with `+` vary together, one value per key joined with `+` as well:
`function.runtime+function.handler=python+resilient,dotnet+resilient`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.errors import ScenarioError
from harness.scenario import overrides
from harness.scenario.triggers import format_ms, parse_duration_ms

MAX_VALUES = 10_000
_RANGE = re.compile(r"^\s*(?P<start>[^.]+?)\s*\.\.\s*(?P<stop>[^/]+?)\s*(?:/\s*(?P<step>.+?))?\s*$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
FAULT_KEY_PREFIXES = ("schedule", "lab.eni")


@dataclass(frozen=True)
class Axis:
    """One dimension of the grid: `keys` vary together; each point sets one raw
    value per key (a YAML value, as `--set` takes it)."""

    keys: tuple[str, ...]
    points: tuple[tuple[str, ...], ...]

    @property
    def name(self) -> str:
        return "+".join(self.keys)

    def label(self, point: tuple[str, ...]) -> str:
        return " ".join(point)

    @property
    def labels(self) -> list[str]:
        return [self.label(p) for p in self.points]

    @property
    def is_fault_axis(self) -> bool:
        """Does it only shape the fault? Control trials (no fault) then ignore it."""
        return all(k.startswith(FAULT_KEY_PREFIXES) for k in self.keys)

    def to_json(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "points": [list(p) for p in self.points]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Axis:
        return cls(tuple(data["keys"]), tuple(tuple(p) for p in data["points"]))


def split_list(text: str) -> list[str]:
    """Split on commas that are not inside brackets, braces or quotes."""
    out, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    out.append(cur.strip())
    return out


def _fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def expand_range(text: str) -> list[str] | None:
    """`0ms..2000ms/100ms` -> ['0ms', '100ms', ..., '2s']; None if it is no range."""
    # Length first: the range regex backtracks quadratically on a long value.
    m = _RANGE.match(text) if len(text) <= 200 and text.count("..") == 1 else None
    if not m:
        return None
    start, stop, step = m.group("start"), m.group("stop"), m.group("step")
    if all(_NUMBER.match(x) for x in (start, stop, step or "1")):
        a, b, s = float(start), float(stop), float(step or 1)
        fmt: Callable[[float], str] = _fmt_number
    else:
        unit = re.sub(r"^[\d.\s]+", "", stop)
        if _NUMBER.match(start):  # `0..2s/250ms`: a bare start takes the stop's unit
            start += unit
        if step is None:
            raise ValueError(f"{text!r}: a duration range needs a step, e.g. 0ms..2000ms/100ms")
        a, b, s = (parse_duration_ms(x) for x in (start, stop, step))
        fmt = format_ms
    if s <= 0:
        raise ValueError(f"{text!r}: the step must be positive")
    if b < a:
        raise ValueError(f"{text!r}: stop is before start")
    n = math.floor((b - a) / s + 1e-9) + 1
    if n > MAX_VALUES:
        raise ValueError(f"{text!r}: {n} values is more than {MAX_VALUES}")
    return [fmt(round(a + i * s, 6)) for i in range(n)]


def _raw(value: Any) -> str:
    """A YAML value from a scenario's sweep block, as the text --set would take."""
    return value if isinstance(value, str) else json.dumps(value)


def parse_values(spec: Any) -> list[str]:
    """A comma list, a range, or (from YAML) a list whose items may be ranges."""
    items = spec if isinstance(spec, list) else split_list(_raw(spec))
    out: list[str] = []
    for item in items:
        raw = _raw(item)
        expanded = expand_range(raw) if isinstance(item, str) else None
        out.extend(expanded if expanded is not None else [raw])
    if not out or any(v == "" for v in out):
        raise ValueError("empty value in the list")
    if len(out) > MAX_VALUES:
        raise ValueError(f"more than {MAX_VALUES} values")
    return out


def make_axis(key: str, values: Any, where: str = "--axis") -> Axis:
    keys = tuple(k.strip() for k in key.split("+"))
    try:
        for k in keys:
            overrides.split_key(k)
    except ValueError:
        raise ScenarioError(f"{where} {key!r}: {key!r} is not a key path like a.b[0].c") from None
    try:
        points = parse_values(values)
    except ValueError as exc:
        raise ScenarioError(f"{where} {key!r}: {exc}") from None
    parsed: list[tuple[str, ...]]
    if len(keys) == 1:
        parsed = [(p,) for p in points]
    else:
        parsed = [tuple(part.strip() for part in p.split("+")) for p in points]
        bad = [p for p in parsed if len(p) != len(keys)]
        if bad:
            raise ScenarioError(f"{where} {key!r}: {'+'.join(bad[0])!r} has {len(bad[0])} parts, "
                                f"the key names {len(keys)} (join one value per key with +)")
    if len(set(parsed)) != len(parsed):
        raise ScenarioError(f"{where} {key!r}: a value is listed twice")
    return Axis(keys, tuple(parsed))


def parse_axis_option(text: str) -> Axis:
    """`--axis KEY=VALUES`."""
    if "=" not in text:
        raise ScenarioError(f"--axis {text!r}: expected KEY=VALUES, e.g. function.handler=naive_cached,resilient")
    key, values = text.split("=", 1)
    return make_axis(key.strip(), values)
