"""The override language: one `KEY=VALUE` changes one field of a scenario document.

`enirace run --set`, the sweep's axes (`--axis`, a scenario's `sweep:` block) and
the pytest plugin's overrides (`set=` strings, and keywords such as
`function__runtime="nodejs"`, which the plugin spells as KEY=VALUE first) all go
through `apply`/`assign` here, so they mean the same thing.

KEY is a dotted path with list indices: `function.handler`, `schedule[0].at`.
Mappings missing on the way are created; a list item must exist. A path that ends
in a part of a trigger (`schedule[0].at.offset`, `.event`, `.occurrence`) changes
that part of the trigger string and keeps the rest.

VALUE is YAML, read by the bounded loader (harness.scenario.limits), so `7` is a
number and `{A: "1"}` a mapping; text that is not YAML is taken as it is
(`name=a: b`), and an empty value is the empty string.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from harness.errors import ScenarioError
from harness.scenario import limits
from harness.scenario.limits import brief
from harness.scenario.triggers import parse_duration_ms, parse_trigger

_KEY_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_TRIGGER_PART = re.compile(r"^(?P<at>.+\.at)\.(?P<part>offset|event|occurrence)$")


def split_key(key: str) -> list[str | int]:
    """`schedule[0].at` -> ['schedule', 0, 'at']; ValueError if it is no key path."""
    parts: list[str | int] = []
    pos = 0
    for m in _KEY_RE.finditer(key):
        between = key[pos:m.start()]
        if between not in ("", "."):
            raise ValueError(key)
        parts.append(int(m.group(2)) if m.group(2) is not None else m.group(1))
        pos = m.end()
    if pos != len(key) or not parts:
        raise ValueError(key)
    return parts


def apply(doc: dict[str, Any], assignment: str, where: str = "--set") -> None:
    """One `KEY=VALUE`: `function.handler=naive_cached`, `schedule[0].at=init_start + 1s`.
    Errors are one line starting with `where` and the assignment."""
    if "=" not in assignment:
        raise ScenarioError(f"{where} {brief(assignment)}: expected key=value, e.g. function.handler=resilient")
    key, raw = assignment.split("=", 1)
    assign(doc, key.strip(), raw, where)


def assign(doc: dict[str, Any], key: str, raw: str, where: str = "--set") -> None:
    """Set KEY to the YAML value `raw` (a trigger part when KEY ends in one)."""
    m = _TRIGGER_PART.match(key)
    if m:
        _assign_trigger_part(doc, key, m.group("at"), m.group("part"), raw, where)
        return
    shown = f"{where} {brief(f'{key}={raw}')}"
    try:
        parts = split_key(key)
    except ValueError:
        raise ScenarioError(f"{shown}: {brief(key)} is not a key path like a.b[0].c") from None
    _set(doc, parts, _value(raw, shown), key, shown)


def _value(raw: str, shown: str) -> Any:
    if len(raw) > limits.MAX_FILE_BYTES:
        raise ScenarioError(f"{shown}: the value is longer than {limits.MAX_FILE_BYTES} bytes")
    try:
        return limits.load_yaml(raw) if raw.strip() else ""
    except limits.LimitError as exc:
        raise ScenarioError(f"{shown}: {exc.problem}") from None
    except (yaml.YAMLError, ValueError):
        return raw  # not YAML: the text itself, e.g. --set 'name=a: b'


def _set(doc: dict[str, Any], parts: list[str | int], value: Any, key: str, shown: str) -> None:
    node: Any = doc
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ScenarioError(f"{shown}: {brief(key)} has no item [{part}]")
        elif not isinstance(node, dict):
            raise ScenarioError(f"{shown}: {brief(key)} does not name a mapping")
        if last:
            node[part] = value
            return
        if isinstance(part, str) and node.get(part) is None:
            node[part] = [] if isinstance(parts[i + 1], int) else {}
        node = node[part]


def _assign_trigger_part(doc: dict[str, Any], key: str, at: str, part: str, raw: str, where: str) -> None:
    node: Any = doc
    try:
        for step in split_key(at):
            node = node[step]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ScenarioError(f"{where} {key}: the scenario has no {at} to change") from None
    try:
        trigger = parse_trigger(node)
        if part == "offset":
            new = trigger.model_copy(update={"offset_ms": parse_duration_ms(raw)})
        elif part == "event":
            new = trigger.model_copy(update={"event": parse_trigger(raw).event})
        else:
            if not raw.isdigit() or int(raw) < 1:
                raise ValueError(f"occurrence {brief(raw)} must be 1 or more")
            new = trigger.model_copy(update={"occurrence": int(raw)})
    except ValueError as exc:
        cut = raw if len(raw) <= limits.BRIEF_CHARS else raw[:limits.BRIEF_CHARS - 1] + "…"
        raise ScenarioError(f"{where} {key}={cut}: {exc}") from None
    assign(doc, at, json.dumps(str(new)), where)
