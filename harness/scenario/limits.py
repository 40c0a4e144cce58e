"""Bounds on what a scenario may cost before anything expands it.

A scenario file, a `--set` value or a pytest-plugin dict is hostile input as far
as memory and time go: a 400-byte YAML alias bomb expands to gigabytes once
something walks it (pydantic's serializer, yaml.dump, an error message's repr),
and a deep list overflows the recursion limit. So the YAML loader refuses
duplicate keys, counts what aliases expand to and limits nesting while it
composes; the payload is measured without being serialized; and error messages
quote at most a few dozen characters of any value.
"""

from __future__ import annotations

import json
import math
from typing import Any, cast

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import Mark
from yaml.resolver import Resolver

try:
    # libyaml scans and parses ~10x faster than PyYAML's Python parser; composing
    # stays in Python (below) because CParser's own composer has no hooks.
    from yaml._yaml import CParser as _Parser

except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)

MAX_FILE_BYTES = 1 << 20  # a scenario file; the shipped ones are under 2 KiB
MAX_DEPTH = 64  # nesting of the whole document (payload included)
MAX_NODES = 20_000  # YAML values in a document; composing costs ~10 µs and ~700 bytes each
MAX_ALIAS_EXPANSION = 100_000  # nodes plus scalar characters that aliases add
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invoke payload limit (6291456)
BRIEF_CHARS = 60

_MERGE_TAG = "tag:yaml.org,2002:merge"


class LimitError(yaml.MarkedYAMLError):
    """The YAML is well formed but over a limit (or has a duplicate key): refused,
    never read as a plain string the way a `--set` value that is not YAML is."""


def _mark(event: yaml.Event | None) -> Mark | None:
    """Where `event` starts. The composer only composes a node for an event it has
    peeked, so None is not expected; then the error just has no position. The cast:
    with libyaml the marks are yaml._yaml.Mark, which MarkedYAMLError prints the
    same way, but types-PyYAML admits only yaml.error.Mark there."""
    return None if event is None else cast("Mark | None", event.start_mark)


class BoundedLoader(_Parser, Composer, SafeConstructor, Resolver):  # type: ignore[misc,valid-type]
    """A safe loader that refuses duplicate keys, more than MAX_NODES values,
    aliases that expand past MAX_ALIAS_EXPANSION or refer to themselves, and
    nesting past MAX_DEPTH, while it composes: before anything is expanded."""

    # The Python composer, fed by the parser's events (CParser defines these too).
    check_node = Composer.check_node
    get_node = Composer.get_node
    get_single_node = Composer.get_single_node

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._nodes = 0
        self._depth = 0
        self._expanded = 0
        self._open_anchors: list[str] = []
        self._cost: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise LimitError(None, None, f"more than {MAX_NODES} values; a scenario needs a few dozen",
                             _mark(event))
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise LimitError(None, None, f"nested deeper than {MAX_DEPTH} levels", _mark(event))
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    # types-PyYAML types `anchor` as a dict; PyYAML passes the event's anchor name.
    def compose_sequence_node(self, anchor: str | None) -> Any:  # type: ignore[override]
        return self._open(anchor, super().compose_sequence_node)

    def compose_mapping_node(self, anchor: str | None) -> Any:  # type: ignore[override]
        return self._open(anchor, super().compose_mapping_node)

    def _open(self, anchor: str | None, compose: Any) -> Any:
        self._open_anchors.append(anchor or "")
        try:
            return compose(anchor)
        finally:
            self._open_anchors.pop()

    def _count_alias(self, event: yaml.AliasEvent) -> None:
        target = self.anchors.get(event.anchor)
        if target is None:
            return  # the composer reports the undefined alias
        if event.anchor in self._open_anchors:
            raise LimitError(None, None, f"alias *{event.anchor} refers to the value that contains it",
                             _mark(event))
        size, height = self._measure(target)
        self._expanded += size
        if self._expanded > MAX_ALIAS_EXPANSION:
            raise LimitError(None, None, f"aliases expand to more than {MAX_ALIAS_EXPANSION} nodes and "
                             "characters; write the value out once", _mark(event))
        if self._depth + height > MAX_DEPTH:
            raise LimitError(None, None, f"alias *{event.anchor} nests the document deeper than "
                             f"{MAX_DEPTH} levels", _mark(event))

    def _measure(self, node: Any) -> tuple[int, int]:
        """(nodes + scalar characters, height) of a composed node, aliases expanded.
        Memoised: a chain of aliases costs its length to measure, not its expansion.
        Recursion is bounded: every composed node is within MAX_DEPTH."""
        known = self._cost.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.ScalarNode):
            cost = (1 + len(node.value), 1)
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
            measured = [self._measure(child) for child in children]
            cost = (1 + sum(m[0] for m in measured), 1 + max((m[1] for m in measured), default=0))
        self._cost[id(node)] = cost
        return cost

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise LimitError("while reading a mapping", seen[key], f"duplicate key {brief(key)}: "
                                     "YAML would keep only the last one; merge them", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """YAML text -> Python value, within the limits. Raises yaml.YAMLError
    (LimitError when a limit was hit) and ValueError (an integer too long)."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


# -- quoting values in messages --------------------------------------------------------


def brief(value: Any, width: int = BRIEF_CHARS) -> str:
    """repr(value), cut to `width` characters with an ellipsis, in time and memory
    bounded by `width` whatever the value is (shared or cyclic structures included)."""
    text = _brief(value, width + 1, 3)
    return text if len(text) <= width else text[:width - 1] + "…"


def _brief(value: Any, budget: int, depth: int) -> str:
    if isinstance(value, str):
        return repr(value[:budget])
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        digits = math.ceil(value.bit_length() * 0.302)
        return repr(value) if digits < budget else f"<a {digits}-digit number>"
    if isinstance(value, list | tuple | dict):
        if depth == 0:
            return "[...]" if not isinstance(value, dict) else "{...}"
        items = iter(value.items()) if isinstance(value, dict) else iter(value)
        opener, closer = ("{", "}") if isinstance(value, dict) else ("[", "]")
        out = opener
        for item in items:
            if len(out) > budget:
                return out + "..."
            part = (f"{_brief(item[0], budget, depth - 1)}: {_brief(item[1], budget, depth - 1)}"
                    if isinstance(value, dict) else _brief(item, budget, depth - 1))
            out += (", " if len(out) > 1 else "") + part
        return out + closer
    return f"<{type(value).__name__}>"


# -- the payload ------------------------------------------------------------------------


def payload_size(value: Any, limit: int = MAX_PAYLOAD_BYTES, max_depth: int = MAX_DEPTH) -> int:
    """The bytes of the payload as a trial sends it (a string as is, anything else
    as json.dumps), counted without building that text. The count stops soon after
    it passes `limit`, and a list or dict shared many times over (an alias bomb) is
    measured once. A value nested deeper than `max_depth` (a self-reference is
    infinitely deep) raises ValueError, as does a value JSON cannot hold."""
    if isinstance(value, str):
        return len(value) if len(value) > limit else len(value.encode())
    return _json_size(value, 1, "payload", limit, max_depth, {})[0]


def _json_size(value: Any, depth: int, where: str, limit: int, max_depth: int,
               memo: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(bytes, height) of `value` placed at `depth`."""
    if not isinstance(value, list | dict):
        return _scalar_size(value, limit, where), 0
    too_deep = f"nested deeper than {max_depth} levels (or it refers to itself)"
    if depth > max_depth:
        raise ValueError(too_deep)
    known = memo.get(id(value))
    if known is not None:
        # Measured once, but placed here it must still fit within max_depth.
        if depth + known[1] - 1 > max_depth:
            raise ValueError(too_deep)
        return known
    # Brackets and the ", " between items; a dict adds ": " per item.
    total, height = 2 + 2 * max(len(value) - 1, 0), 1
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        if isinstance(value, dict):
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise ValueError(f"{where} has a key {brief(key)} that JSON cannot hold")
            # json.dumps quotes a non-string key's JSON text: {1: 2} -> {"1": 2}
            total += 2 + _scalar_size(key, limit, where) + (0 if isinstance(key, str) else 2)
            inner = f"{where}.{brief(key, 20).strip(chr(39))}"
        else:
            inner = f"{where}[{key}]"
        size, child_height = _json_size(child, depth + 1, inner, limit, max_depth, memo)
        total, height = total + size, max(height, child_height + 1)
        if total > limit:
            return total, height
    memo[id(value)] = (total, height)
    return total, height


def _scalar_size(value: Any, room: int, where: str = "payload") -> int:
    if isinstance(value, str):
        return len(value) + 2 if len(value) + 2 > room else len(json.dumps(value))
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        try:
            return len(json.dumps(value))
        except ValueError:  # an int past Python's 4300-digit conversion limit
            raise ValueError(f"the number at {where} is too long to send") from None
    raise ValueError(f"{where} is a {type(value).__name__}, not a JSON value; quote it to send it as text")
