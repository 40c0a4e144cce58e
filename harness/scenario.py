"""Scenarios: pydantic models, YAML loading, --set overrides, one-line errors."""

from __future__ import annotations

import random
import re
from ipaddress import IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import ScenarioError
from harness.lab import fault_params

MAX_DURATION_MS = 3_600_000.0  # an hour: anything longer is a typo, not a trial
_UNITS_MS = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_DURATION_RE = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>us|µs|ms|s|m)\s*$")

LIFECYCLE_EVENTS = (
    "trial_start", "sandbox_ready", "init_start", "runtime_ready", "invoke_start",
    "invoke_end", "init_error", "runtime_exit", "timeout", "reset",
)
FAULTS = fault_params.FAULT_NAMES
VERDICTS = ("healthy", "recovered", "stuck", "fault_not_armed", "harness_error")


def parse_duration_ms(value: Any) -> float:
    """'500ms', '2s', '1.5 s', '250us', '1m' -> milliseconds."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"{value!r} has no unit; write e.g. '500ms' or '2s'")
    m = _DURATION_RE.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a duration; write e.g. '500ms', '2s' or '250us'")
    ms = float(m.group("num")) * _UNITS_MS[m.group("unit")]
    if ms > MAX_DURATION_MS:
        raise ValueError(f"{value!r} is longer than an hour")
    return ms


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
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a trigger; write e.g. 'init_start + 500ms'")
    m = _TRIGGER_RE.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a trigger; write e.g. 'init_start + 500ms'")
    event = m.group("event")
    if event not in LIFECYCLE_EVENTS:
        raise ValueError(f"unknown event {event!r}; use one of {', '.join(LIFECYCLE_EVENTS)}")
    n = int(m.group("n") or 1)
    if n < 1:
        raise ValueError(f"occurrence #{n} must be 1 or more")
    if m.group("sign") == "-":
        raise ValueError(f"{value!r}: negative offset; a fault fires at or after its event, "
                         "e.g. 'init_start + 0ms'")
    text = m.group("offset")
    if not text:
        return Trigger(event=event, occurrence=n)
    if ".." in text:
        lo_text, hi_text = (part.strip() for part in text.split("..", 1))
        lo, hi = parse_duration_ms(lo_text), parse_duration_ms(hi_text)
        if hi < lo:
            raise ValueError(f"{value!r}: the range {lo_text}..{hi_text} ends before it starts")
        return Trigger(event=event, occurrence=n, offset_ms=lo, offset_max_ms=hi)
    return Trigger(event=event, occurrence=n, offset_ms=parse_duration_ms(text))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FunctionConfig(_Strict):
    runtime: Literal["python", "dotnet", "command"] = "python"
    handler: str = "resilient"
    code: str | None = None
    command: list[str] | None = None
    name: str = "test_function"
    timeout: DurationMs = 3000.0
    memory_mb: int = Field(default=128, ge=128, le=10240)
    # The runtime's user: Lambda's unprivileged sandbox user (created once), or
    # root for functions that need it (a warning is printed).
    user: str = "sbx_user1051"
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("handler")
    @classmethod
    def _handler(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.:]*", v):
            raise ValueError(f"{v!r} is not a handler name (module.function or a sample name)")
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", v):
            raise ValueError(f"{v!r} is not a user name; use sbx_user1051 (the default) or root")
        return v

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: float) -> float:
        if v < 100:
            raise ValueError("must be at least 100ms")
        return v


class LabConfig(_Strict):
    pool: IPv4Network = IPv4Network("198.18.0.0/15")
    eni: Literal["absent", "present"] = "present"
    # The sandbox's /etc/resolv.conf when the trial starts (resolv_conf faults change it).
    resolv_conf: Literal["present", "empty", "absent"] = "present"

    @field_validator("pool", mode="before")
    @classmethod
    def _pool(cls, v: Any) -> Any:
        from harness.lab.addressing import parse_pool

        try:
            return parse_pool(str(v))
        except Exception as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None


class ScheduleEntry(_Strict):
    at: Annotated[Trigger, BeforeValidator(parse_trigger)]
    do: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    for_: DurationMs | None = Field(default=None, alias="for")  # revert after this long

    @field_validator("do")
    @classmethod
    def _known_fault(cls, v: str) -> str:
        if v not in FAULTS:
            raise ValueError(f"unknown fault {v!r}; use one of {', '.join(FAULTS)}")
        return v

    @model_validator(mode="after")
    def _params(self) -> ScheduleEntry:
        try:
            fault_params.parse(self.do, self.with_)
        except ValidationError as exc:
            errors = exc.errors()
            # A misspelt parameter also makes its real name "missing": name the typo.
            err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
            where = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                known = ", ".join(fault_params.PARAMS[self.do].model_fields) or "none"
                msg = f"{self.do} has no parameter {where!r} (it takes: {known})"
            elif where:
                msg = f"{where}: {msg}"
            raise ValueError(f"with: {msg}") from None
        if self.for_ is not None and self.do in fault_params.SELF_ENDING:
            raise ValueError(f"for: {self.do} ends by itself (period x count); drop the for:")
        return self


class Workload(_Strict):
    invocations: int = Field(default=5, ge=1, le=10_000)
    interval: DurationMs = 200.0
    init: Literal["eager", "lazy"] = "eager"
    init_timeout: DurationMs = 10_000.0
    payload: Any = Field(default_factory=dict)


class Expect(_Strict):
    verdict: list[Literal["healthy", "recovered", "stuck", "fault_not_armed", "harness_error"]]

    @field_validator("verdict", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class SweepConfig(_Strict):
    """The scenario's own sweep grid (`enirace sweep`; axes as in --axis, see harness/sweep/axes.py)."""

    axes: dict[str, Any] = Field(default_factory=dict)
    repeats: int = Field(default=1, ge=1, le=1000)
    controls: int | None = Field(default=None, ge=0, le=1000)
    seed: int | None = None
    jitter: DurationMs | None = None


class DockerConfig(_Strict):
    """How the `docker` backend runs the function (docs/docker.md)."""

    # An image kind of containers/ (python, dotnet, python-rie; built when missing) or
    # any local image; default: the kind matching function.runtime.
    image: str | None = None
    # netlink: the lab's veth moved into the container's namespace (precise);
    # network: `docker network connect/disconnect` (Docker API only, no netlink).
    eni: Literal["netlink", "network"] = "netlink"
    # emulator: the harness's Runtime API; image: the image's own
    # /usr/local/bin/aws-lambda-rie, lifecycle events read from its log lines.
    rie: Literal["emulator", "image"] = "emulator"


class Scenario(_Strict):
    name: str = "scenario"
    description: str = ""
    function: FunctionConfig = Field(default_factory=lambda: FunctionConfig())
    lab: LabConfig = Field(default_factory=lambda: LabConfig())
    schedule: list[ScheduleEntry] = Field(default_factory=list)
    workload: Workload = Field(default_factory=lambda: Workload())
    expect: Expect | None = None
    seed: int | None = None
    backend: Literal["process", "docker"] = "process"
    docker: DockerConfig = Field(default_factory=lambda: DockerConfig())
    # `enirace sweep` reads it; a trial ignores it (sweep trials' scenario.yaml has none).
    sweep: SweepConfig | None = None


# -- loading -----------------------------------------------------------------------

_KEY_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _split_key(key: str) -> list[str | int]:
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


def apply_override(doc: dict[str, Any], assignment: str) -> None:
    """`function.handler=naive_cached`, `schedule[0].at=init_start + 1s` (YAML values)."""
    if "=" not in assignment:
        raise ScenarioError(f"--set {assignment!r}: expected key=value, e.g. function.handler=resilient")
    key, raw = assignment.split("=", 1)
    try:
        parts = _split_key(key.strip())
    except ValueError:
        raise ScenarioError(f"--set {assignment!r}: {key!r} is not a key path like a.b[0].c") from None
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node: Any = doc
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ScenarioError(f"--set {assignment!r}: {key} has no item [{part}]")
            if last:
                node[part] = value
            else:
                node = node[part]
        else:
            if not isinstance(node, dict):
                raise ScenarioError(f"--set {assignment!r}: {key} does not name a mapping")
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = [] if isinstance(parts[i + 1], int) else {}
                node = node[part]


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = "with" if part == "with_" else str(part)
            out += f".{name}" if out else name
    return out or "(top level)"


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal"))))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling; see the scenario reference in README.md)"
    elif err["type"] == "literal_error":
        msg = f"{err.get('input')!r} is not allowed: {msg}"
    return f"{_loc(loc)}: {msg}"


def validate(doc: Any, source: str) -> Scenario:
    if not isinstance(doc, dict):
        raise ScenarioError(f"{source}: (top level): expected a mapping of fields, got {type(doc).__name__}")
    try:
        return Scenario.model_validate(doc)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {_first_error(exc)}") from None


def load_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file (see scenarios/ for examples)") from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        raise ScenarioError(f"{path}: cannot read it as a scenario ({exc.__class__.__name__})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ScenarioError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ScenarioError(f"{path}: (top level): expected a mapping of fields, got {type(doc).__name__}")
    doc.setdefault("name", path.stem)
    return doc


def load(path: Path | str, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    path = Path(path)
    doc = load_document(path)
    for assignment in overrides:
        apply_override(doc, assignment)
    return validate(doc, str(path))


def dump(scenario: Scenario) -> str:
    data = scenario.model_dump(mode="json", by_alias=True)
    for entry, model in zip(data["schedule"], scenario.schedule, strict=True):
        entry["at"] = str(model.at)
        if model.for_ is None:
            entry.pop("for", None)
        else:
            entry["for"] = format_ms(model.for_)
    for key in ("timeout",):
        data["function"][key] = format_ms(getattr(scenario.function, key))
    data["workload"]["interval"] = format_ms(scenario.workload.interval)
    data["workload"]["init_timeout"] = format_ms(scenario.workload.init_timeout)
    if scenario.sweep is None:
        data.pop("sweep", None)
    elif scenario.sweep.jitter is not None:
        data["sweep"]["jitter"] = format_ms(scenario.sweep.jitter)
    return yaml.safe_dump(data, sort_keys=False)
