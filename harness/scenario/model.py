"""Scenarios: pydantic models, YAML loading (with --set overrides), one-line errors."""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core.core_schema import ValidationInfo

from harness.errors import PoolError, ScenarioError
from harness.scenario import fault_params, fleet_config, handlers, lab_config, limits, overrides, pool, snap_config
from harness.scenario.limits import brief
from harness.scenario.messages import first_error
from harness.scenario.triggers import (  # noqa: F401  (re-exported: callers use scenario.Trigger etc.)
    LIFECYCLE_EVENTS,
    MAX_DURATION_MS,
    DurationMs,
    Trigger,
    format_ms,
    parse_duration_ms,
    parse_trigger,
)

FAULTS = fault_params.FAULT_NAMES
VERDICTS = ("healthy", "recovered", "stuck", "not_exercised", "fault_not_armed", "harness_error")
# Names become folder names (the trial folder under --out): a slug, never a path.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FunctionConfig(_Strict):
    runtime: Literal["python", "dotnet", "nodejs", "command"] = "python"
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
    # Extension programs started with each runtime, as Lambda starts /opt/extensions/*.
    extensions: list[str] = Field(default_factory=list)
    # Lambda SnapStart (snapshot after init, restore per environment).
    snapstart: bool = False

    @model_validator(mode="after")
    def _snapstart_runtime(self) -> FunctionConfig:
        if self.snapstart and self.runtime == "nodejs":
            raise ValueError("snapstart: Lambda does not offer SnapStart for Node.js functions "
                             "(only Java, Python and .NET); drop function.snapstart")
        return self

    @field_validator("handler")
    @classmethod
    def _handler(cls, v: str, info: ValidationInfo) -> str:
        # runtime is declared before handler, so it is validated first.
        problem = handlers.problem(info.data.get("runtime"), v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("name")
    @classmethod
    def _function_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v):
            raise ValueError(f"{brief(v)}: a Lambda function name is 1 to 64 letters, digits, '-' or '_'")
        return v

    @field_validator("env", "command", "extensions")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        texts = [] if v is None else list(v.items()) if isinstance(v, dict) else [v]
        if any("\0" in t for pair in texts for t in pair):
            raise ValueError("contains a NUL character, which no process argument or environment can hold")
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", v):
            raise ValueError(f"{brief(v)} is not a user name; use sbx_user1051 (the default) or root")
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
    # The lifecycle network (harness/scenario/lab_config.py): none of it by default.
    nat: lab_config.NatConfig | None = None
    service: lab_config.ServiceConfig = Field(default_factory=lab_config.ServiceConfig)
    dns: lab_config.DnsConfig = Field(default_factory=lab_config.DnsConfig)

    @field_validator("pool", mode="before")
    @classmethod
    def _pool(cls, v: Any) -> Any:
        try:
            return pool.parse_pool(str(v))
        except PoolError as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None

    @field_validator("pool")
    @classmethod
    def _private_pool(cls, v: IPv4Network) -> IPv4Network:
        problem = pool.private_problem(v)
        if problem:
            raise ValueError(problem)
        return v


class ScheduleEntry(_Strict):
    at: Annotated[Trigger, BeforeValidator(parse_trigger)]
    do: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    for_: DurationMs | None = Field(default=None, alias="for")  # revert after this long

    @field_validator("do")
    @classmethod
    def _known_fault(cls, v: str) -> str:
        if v not in FAULTS:
            raise ValueError(f"unknown fault {brief(v)}; use one of {', '.join(FAULTS)}")
        return v

    @model_validator(mode="after")
    def _params(self) -> ScheduleEntry:
        try:
            fault_params.parse(self.do, self.with_)
        except ValidationError as exc:
            errors = exc.errors()
            # A misspelt parameter also makes its real name "missing": name the typo.
            err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
            where = ".".join(brief(p, 30) if isinstance(p, str) else str(p) for p in err["loc"]).replace("'", "")
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                known = ", ".join(fault_params.PARAMS[self.do].model_fields) or "none"
                msg = f"{self.do} has no parameter {where!r} (it takes: {known})"
            elif where:
                msg = f"{where}: {msg}"
            raise ValueError(f"with: {msg}") from None
        if self.for_ is not None and self.for_ <= 0:
            raise ValueError("for: must be longer than 0ms (drop for: to leave the fault in place)")
        if self.for_ is not None and self.do in fault_params.SELF_ENDING:
            raise ValueError(f"for: {self.do} ends by itself (period x count); drop the for:")
        return self


class Workload(_Strict):
    invocations: int = Field(default=5, ge=1, le=10_000)
    interval: DurationMs = 200.0
    # Lambda freezes the runtime between invocations (false: the RIE's behaviour).
    freeze: bool = True
    # Instead of interval and invocations: the wait between one invocation's start
    # and the next (gaps: [200ms, 30s] is 3 invocations), or each one's start time.
    gaps: list[DurationMs] | None = Field(default=None, min_length=1, max_length=10_000)
    starts: list[DurationMs] | None = Field(default=None, min_length=1, max_length=10_000)
    init: Literal["eager", "lazy"] = "eager"
    init_timeout: DurationMs = 10_000.0
    payload: Any = Field(default_factory=dict)

    @field_validator("init_timeout")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be longer than 0ms (Lambda's is 10s)")
        return v

    @field_validator("starts")
    @classmethod
    def _ascending(cls, v: list[float] | None) -> list[float] | None:
        if v and any(b < a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("start times must not go backwards")
        return v

    @model_validator(mode="after")
    def _count(self) -> Workload:
        if self.gaps is not None and self.starts is not None:
            raise ValueError("gaps and starts: give one of them (both say when each invocation starts)")
        given = self.gaps or self.starts
        if given is None:
            return self
        # They say how many invocations there are, over a scenario's invocations:
        # `--set workload.gaps=[...]` on any scenario.
        self.invocations = len(given) + (1 if self.gaps is not None else 0)
        return self

    def start_offsets_ms(self) -> list[float]:
        """When each invocation starts, from the first one's start."""
        if self.starts is not None:
            return [t - self.starts[0] for t in self.starts]
        if self.gaps is not None:
            out = [0.0]
            for gap in self.gaps:
                out.append(out[-1] + gap)
            return out
        return [i * self.interval for i in range(self.invocations)]

    @field_validator("payload")
    @classmethod
    def _bounded_payload(cls, v: Any) -> Any:
        size = limits.payload_size(v)  # never serialized whole: it may be an alias bomb
        if size > limits.MAX_PAYLOAD_BYTES:
            raise ValueError(f"more than {limits.MAX_PAYLOAD_BYTES} bytes as JSON (Lambda's synchronous "
                             "invoke limit, 6 MiB)")
        return v


class Expect(_Strict):
    verdict: list[Literal["healthy", "recovered", "stuck", "not_exercised", "fault_not_armed", "harness_error"]]
    # The last N invocations after the last fault cleared must all succeed, else stuck:
    # a handler that heals once and fails again has not recovered.
    healthy_after: int | None = Field(default=None, ge=1, le=10_000)

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

    @field_validator("axes")
    @classmethod
    def _bounded_axes(cls, v: dict[str, Any]) -> dict[str, Any]:
        # Sweep code turns axis values into text; a dict scenario could hold a bomb.
        if limits.payload_size(v, limit=limits.MAX_FILE_BYTES) > limits.MAX_FILE_BYTES:
            raise ValueError(f"more than {limits.MAX_FILE_BYTES} bytes of values")
        return v


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
    fleet: fleet_config.FleetConfig | None = None  # `enirace fleet` reads it; a trial ignores it
    snapstart: snap_config.SnapStartConfig | None = None  # set when function.snapstart is

    @model_validator(mode="after")
    def _snapstart(self) -> Scenario:
        return snap_config.check(self)  # type: ignore[no-any-return]

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not NAME_RE.fullmatch(v):
            raise ValueError(f"{brief(v)} is not a name: use {NAME_RULE}")
        return v


# -- loading -----------------------------------------------------------------------

def validate(doc: Any, source: str) -> Scenario:
    if not isinstance(doc, dict):
        raise ScenarioError(f"{source}: (top level): expected a mapping of fields, got {type(doc).__name__}")
    try:
        return Scenario.model_validate(doc)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {first_error(exc)}") from None


def _read_bounded(path: Path) -> str:
    """The file's text; its size is checked before reading, and the read itself is
    bounded too, for files whose size stat does not tell (/dev/zero, /proc)."""
    try:
        if path.stat().st_size > limits.MAX_FILE_BYTES:
            raise ScenarioError(f"{path}: larger than {limits.MAX_FILE_BYTES} bytes; a scenario is a few KiB")
        with path.open("rb") as f:
            data = f.read(limits.MAX_FILE_BYTES + 1)
        if len(data) > limits.MAX_FILE_BYTES:
            raise ScenarioError(f"{path}: larger than {limits.MAX_FILE_BYTES} bytes; a scenario is a few KiB")
        return data.decode("utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file (see scenarios/ for examples)") from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        raise ScenarioError(f"{path}: cannot read it as a scenario ({exc.__class__.__name__})") from None


def load_document(path: Path) -> dict[str, Any]:
    text = _read_bounded(path)
    try:
        doc = limits.load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = "line" if isinstance(exc, limits.LimitError) else "invalid YAML at line"
        where = f"{what} {mark.line + 1}" if mark else "invalid YAML"
        raise ScenarioError(f"{path}: {where}: {getattr(exc, 'problem', exc)}") from None
    except ValueError as exc:  # from int() of a huge number, or a date like 2024-13-45
        what = "a number longer than 4300 digits" if "digits" in str(exc) else brief(str(exc), 80).strip("'")
        raise ScenarioError(f"{path}: invalid YAML: {what}; quote the value if it is text") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ScenarioError(f"{path}: (top level): expected a mapping of fields, got {type(doc).__name__}")
    # The file's name, made a slug: "my scenario.yaml" is a fine file name.
    doc.setdefault("name", re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).lstrip(".-_")[:64] or "scenario")
    return doc


def load(path: Path | str, sets: list[str] | tuple[str, ...] = ()) -> Scenario:
    """The scenario file at `path`, with `sets` (`KEY=VALUE`, as --set) applied."""
    path = Path(path)
    doc = load_document(path)
    for assignment in sets:
        overrides.apply(doc, assignment)
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
    for key in ("gaps", "starts"):
        values = getattr(scenario.workload, key)
        if values is None:
            data["workload"].pop(key)
        else:
            data["workload"][key] = [format_ms(v) for v in values]
    fleet_config.dump_fleet(data, scenario.fleet)
    snap_config.dump(data, scenario.snapstart)
    if scenario.sweep is None:
        data.pop("sweep", None)
    elif scenario.sweep.jitter is not None:
        data["sweep"]["jitter"] = format_ms(scenario.sweep.jitter)
    return yaml.safe_dump(data, sort_keys=False)
