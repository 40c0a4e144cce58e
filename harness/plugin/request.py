"""What a test asks enirace to run: a scenario, its overrides and a label.

The pytest plugin accepts a scenario as a path, a built-in name or a dict, and
overrides as keyword arguments (`function__handler="resilient"`), as `set=`
strings (`"schedule[0].at=init_start + 1s"`) or as sweep axes. All of them are
turned into one ordered tuple of `key=value` assignments of the override language
(harness.scenario.overrides), which `enirace run --set` and `enirace sweep --axis`
speak too, so a test and the CLI mean the same.

Nothing here needs root: a bad scenario is reported before any lab exists.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness import paths
from harness.errors import ScenarioError
from harness.scenario import model as scenario_mod
from harness.scenario import overrides
from harness.sweep.axes import make_axis

REPO_ROOT = paths.REPO_ROOT
BUILTIN_SCENARIOS = REPO_ROOT / "scenarios"

ScenarioSource = str | Path | Mapping[str, Any]


def builtin_scenarios() -> list[str]:
    if not BUILTIN_SCENARIOS.is_dir():
        return []
    return sorted(p.stem for p in BUILTIN_SCENARIOS.glob("*.yaml"))


def builtin_scenario(name: str) -> Path:
    """The path of a scenario shipped with enirace (it may not exist yet)."""
    return BUILTIN_SCENARIOS / f"{name}.yaml"


# -- overrides ------------------------------------------------------------------------


def _plain(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """Paths and tuples become what YAML can represent. A value shared or cyclic
    stays so (YAML anchors), never expanded: the bounded loader that reads the
    text back judges its size."""
    memo = {} if memo is None else memo
    if isinstance(value, Path):
        return str(value)
    if not isinstance(value, Mapping | list | tuple):
        return value
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, Mapping):
        out: Any = memo.setdefault(id(value), {})
        out.update((str(k), _plain(v, memo)) for k, v in value.items())
    else:
        out = memo.setdefault(id(value), [])
        out.extend(_plain(v, memo) for v in value)
    return out


def yaml_value(value: Any) -> str:
    """A Python value as the YAML text the override language parses back to the same value."""
    text = yaml.safe_dump(_plain(value), default_flow_style=True, allow_unicode=True, width=1 << 30)
    # A bare scalar is dumped as a document with an explicit end marker.
    return text.removesuffix("\n").removesuffix("\n...").strip()


def keyword_key(name: str) -> str:
    """A keyword override's name as an override path: `function__handler` ->
    `function.handler`; `schedule__0__at` -> `schedule[0].at`."""
    parts = name.split("__")
    if not all(parts):
        raise ScenarioError(f"override {name}=...: empty key segment; write e.g. function__handler=...")
    key = parts[0]
    for part in parts[1:]:
        key += f"[{part}]" if part.isdigit() else f".{part}"
    return key


def keyword_assignments(overrides: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(f"{keyword_key(name)}={yaml_value(value)}" for name, value in overrides.items())


def set_assignments(assignments: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(assignments, str):
        # One string would otherwise be iterated character by character.
        assignments = [assignments]
    out = tuple(assignments)
    for item in out:
        if not isinstance(item, str) or "=" not in item:
            raise ScenarioError(f"set: {item!r} is not a 'key=value' string, e.g. 'function.handler=resilient'")
    return out


# -- the request --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialRequest:
    """A scenario source plus ordered overrides; resolved lazily, each time fresh.

    `base_dir` is where relative paths (the scenario file, function.code) are
    looked up first: the directory of the test module that asked.
    `error` carries a problem found at collection time, reported when the test runs.
    """

    source: ScenarioSource
    assignments: tuple[str, ...] = ()
    base_dir: Path | None = None
    label: str = ""
    error: str | None = field(default=None, compare=False)

    def with_overrides(self, set: str | Iterable[str] = (), **overrides: Any) -> TrialRequest:
        extra = set_assignments(set) + keyword_assignments(overrides)
        return TrialRequest(self.source, self.assignments + extra, self.base_dir, self.label, self.error)

    @property
    def name(self) -> str:
        """The scenario's name, for labels: the file stem or the dict's `name`."""
        if isinstance(self.source, Mapping):
            name = self.source.get("name", "scenario")
            return name if isinstance(name, str) else scenario_mod.brief(name)
        return Path(self.source).stem

    def path(self) -> Path:
        """The scenario file this request names (raises ScenarioError if none)."""
        if isinstance(self.source, Mapping):
            raise ScenarioError("this scenario is a dict, not a file")
        given = Path(self.source)
        candidates = [given] if given.is_absolute() else []
        if not given.is_absolute():
            if self.base_dir is not None:
                candidates.append(self.base_dir / given)
            candidates.append(Path.cwd() / given)
            if given.parent == Path(".") and not given.suffix:
                candidates.append(builtin_scenario(given.name))
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        known = ", ".join(builtin_scenarios()) or "none found"
        looked = ", ".join(dict.fromkeys(str(c) for c in candidates))
        raise ScenarioError(f"scenario {str(self.source)!r}: no such file (looked at {looked}); "
                            f"built-in scenarios: {known}")

    def raw_document(self) -> dict[str, Any]:
        """The scenario document before overrides, including any `sweep:` block."""
        if isinstance(self.source, Mapping):
            return copy.deepcopy(dict(self.source))
        return scenario_mod.load_document(self.path())

    def document(self) -> dict[str, Any]:
        """The document a trial runs: overrides applied, sweep block removed."""
        if self.error:
            raise ScenarioError(self.error)
        doc = self.raw_document()
        # A sweep block describes a grid, not one trial; the grid was expanded
        # into separate requests already.
        doc.pop("sweep", None)
        for assignment in self.assignments:
            overrides.apply(doc, assignment)
        self._anchor_code(doc)
        return doc

    def scenario(self) -> scenario_mod.Scenario:
        where = "dict scenario" if isinstance(self.source, Mapping) else str(self.source)
        return scenario_mod.validate(self.document(), where)

    def _anchor_code(self, doc: dict[str, Any]) -> None:
        """A relative function.code means "next to the test file" when it exists there."""
        fn = doc.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("code"), str) or self.base_dir is None:
            return
        code = Path(fn["code"])
        if not code.is_absolute() and (self.base_dir / code).exists():
            fn["code"] = str((self.base_dir / code).resolve())


def as_request(source: ScenarioSource | TrialRequest, base_dir: Path | None = None) -> TrialRequest:
    if isinstance(source, TrialRequest):
        return source
    if not isinstance(source, str | Path | Mapping):
        raise ScenarioError(f"scenario: expected a path, a built-in name or a dict, got {type(source).__name__}")
    return TrialRequest(source, base_dir=base_dir)


# -- grids ------------------------------------------------------------------------------

_ID_UNSAFE = re.compile(r"[^\w.=:+#\-]+")


def _id_part(value: Any) -> str:
    """A test-id-friendly form: `init_start + 0ms` -> `init_start+0ms`, `[0]` -> `.0`."""
    text = value if isinstance(value, str) else yaml_value(value)
    text = re.sub(r"\[(\d+)\]", r".\1", "".join(text.split()))
    return _ID_UNSAFE.sub("_", text).strip("_") or "_"


def _axis_points(key: str, values: Any) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """[(keys, raw values)] for one axis, parsed exactly as `enirace sweep --axis`
    parses it: lists, comma lists, ranges like `0ms..2000ms/100ms`, joint keys
    `a+b`, trigger parts like `schedule[0].at.offset`."""
    if isinstance(values, tuple):
        values = list(values)
    if isinstance(values, list):
        # Python values become YAML text; strings stay as written (ranges included).
        values = [v if isinstance(v, str) else yaml_value(v) for v in values]
    axis = make_axis(key, values, where="axes")
    return [(axis.keys, point) for point in axis.points]


def expand_axes(request: TrialRequest, axes: Mapping[str, Any], repeats: int = 1) -> list[TrialRequest]:
    """One request per point of the grid (axis key -> values) and per repeat,
    labelled `<scenario>-<key>=<value>-...[-r<n>]`."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ScenarioError(f"repeats: expected a whole number of 1 or more, got {repeats!r}")
    grid = [_axis_points(str(key), values) for key, values in axes.items()]
    base = request.label or request.name
    out = []
    for combo in itertools.product(*grid):
        assignments = tuple(f"{k}={raw}" for keys, raws in combo for k, raw in zip(keys, raws, strict=True))
        parts = [f"{_id_part('+'.join(keys))}={_id_part('+'.join(raws))}" for keys, raws in combo]
        for repeat in range(1, repeats + 1):
            label = "-".join([base, *parts, *([f"r{repeat}"] if repeats > 1 else [])])
            out.append(TrialRequest(request.source, request.assignments + assignments, request.base_dir, label))
    return out


def sweep_block(doc: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """(axes, repeats) from a scenario's `sweep:` block (`sweep: {axes: {...}, repeats: n}`)."""
    block = doc.get("sweep")
    if block is None:
        return {}, 1
    if not isinstance(block, Mapping) or not isinstance(block.get("axes", {}), Mapping):
        raise ScenarioError("sweep: expected a mapping with axes: {key: values} (see `enirace sweep`)")
    return dict(block.get("axes") or {}), int(block.get("repeats") or 1)
