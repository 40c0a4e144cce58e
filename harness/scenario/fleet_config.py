"""The `fleet:` block: many execution environments of one function behind an
event source (`enirace fleet`, docs/fleets.md). Pure data, validated when the
scenario loads; the engine is harness/fleet/."""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.scenario.limits import brief
from harness.scenario.triggers import MAX_DURATION_MS, DurationMs, format_ms, parse_duration_ms

MITIGATIONS = ("none", "retry", "wait_for_network", "queue")
# The sample handler each mitigation runs (containers/python/handlers/).
SAMPLES = {"none": "fleet_naive", "retry": "fleet_retry", "wait_for_network": "fleet_wait",
           "queue": "fleet_batch"}
# Lambda's own bounds for an SQS event source mapping (standard queue).
MAX_BATCH_SIZE = 10_000
MAX_RECEIVE_COUNT = 1000
MAX_VISIBILITY_MS = 12 * 3_600_000.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DelayRange(BaseModel):
    """`0ms..1500ms` (drawn uniformly per cold start) or one duration."""

    model_config = ConfigDict(frozen=True)
    lo_ms: float
    hi_ms: float

    def __str__(self) -> str:
        lo = format_ms(self.lo_ms)
        return lo if self.lo_ms == self.hi_ms else f"{lo}..{format_ms(self.hi_ms)}"


def parse_delay_range(value: Any) -> DelayRange:
    if isinstance(value, DelayRange):
        return value
    if isinstance(value, dict):
        return DelayRange.model_validate(value)
    if isinstance(value, str) and ".." in value:
        lo_text, hi_text = (part.strip() for part in value.split("..", 1))
        lo, hi = parse_duration_ms(lo_text), parse_duration_ms(hi_text)
        if hi < lo:
            raise ValueError(f"{brief(value)}: the range ends before it starts")
        return DelayRange(lo_ms=lo, hi_ms=hi)
    ms = parse_duration_ms(value)
    return DelayRange(lo_ms=ms, hi_ms=ms)


class EniLate(_Strict):
    """A cold start meets the race with this probability: it starts with no ENI,
    which is attached `delay` after its init began."""

    probability: float = Field(default=0.2, ge=0.0, le=1.0)
    delay: DelayRange = DelayRange(lo_ms=0.0, hi_ms=1500.0)

    @field_validator("delay", mode="before")
    @classmethod
    def _delay(cls, v: Any) -> Any:
        return parse_delay_range(v)


class ColdStart(_Strict):
    eni_late: EniLate | None = None


class Source(_Strict):
    """Who sends the messages. invoke: synchronous invocations (API Gateway-like),
    `rate` a second, `burst` at a time. sqs: the producer sends them to a queue at
    that rate and Lambda's event source mapping polls it."""

    type: Literal["invoke", "sqs"] = "invoke"
    rate: float = Field(default=100.0, gt=0, le=10_000)  # messages a second
    burst: int = Field(default=1, ge=1, le=10_000)  # messages sent together
    batch_size: int = Field(default=10, ge=1, le=MAX_BATCH_SIZE)
    pollers: int = Field(default=2, ge=1, le=1000)
    visibility_timeout: DurationMs = 3000.0
    max_receive_count: int = Field(default=3, ge=1, le=MAX_RECEIVE_COUNT)
    report_batch_item_failures: bool = True

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return {"type": v} if isinstance(v, str) else v

    @field_validator("visibility_timeout")
    @classmethod
    def _visibility(cls, v: float) -> float:
        if v < 1000 or v % 1000 or v > MAX_VISIBILITY_MS:
            raise ValueError("is whole seconds, from 1s to 12 hours (SQS's VisibilityTimeout), e.g. 3s")
        return v


class Bounds(_Strict):
    """What a mitigation's run must stay within for `enirace fleet` to exit 0."""

    lost: int | None = Field(default=None, ge=0)
    duplicated: int | None = Field(default=None, ge=0)
    dlq: int | None = Field(default=None, ge=0)
    error_rate: float | None = Field(default=None, ge=0.0, le=1.0)


class FleetConfig(_Strict):
    max_environments: int = Field(default=8, ge=1, le=100)  # one ENI slot each (.100-.199)
    idle_retire: DurationMs = 10_000.0
    messages: int = Field(default=200, ge=1, le=100_000)
    cold_start: ColdStart = Field(default_factory=ColdStart)
    source: Source = Field(default_factory=Source)
    mitigation: Literal["none", "retry", "wait_for_network", "queue"] = "none"
    # How long the run waits for every message to be delivered or dead-lettered.
    drain_timeout: DurationMs = 60_000.0
    expect: dict[str, Bounds] = Field(default_factory=dict)

    @field_validator("idle_retire", "drain_timeout")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be longer than 0ms")
        return v

    @field_validator("expect")
    @classmethod
    def _known_mitigations(cls, v: dict[str, Bounds]) -> dict[str, Bounds]:
        for name in v:
            if name not in MITIGATIONS:
                raise ValueError(f"{brief(name)} is not a mitigation; use one of {', '.join(MITIGATIONS)}")
        return v

    def for_mitigation(self, mitigation: str) -> FleetConfig:
        """This fleet under `mitigation`: queue always means the sqs source."""
        source = self.source.model_copy(update={"type": "sqs"}) if mitigation == "queue" else self.source
        return self.model_copy(update={"mitigation": mitigation, "source": source})


def parse_compare(text: str) -> list[str]:
    """--compare none,retry -> ['none', 'retry'] (a ValueError names the wrong one)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in MITIGATIONS:
            raise ValueError(f"{brief(name)} is not a mitigation; use one of {', '.join(MITIGATIONS)}")
    if not names:
        raise ValueError(f"name at least one mitigation: {', '.join(MITIGATIONS)}")
    return list(dict.fromkeys(names))


def draw_cold_start(cold: ColdStart, seed: int, n: int) -> dict[str, Any]:
    """The network timing of cold start `n` of a fleet with `seed`: the same seed
    and number always draw the same, whatever the mitigation (so --compare runs
    the same race under each)."""
    late = cold.eni_late
    if late is None:
        return {"eni_late": False}
    rng = random.Random(f"enirace-cold-start/{seed}/{n}")
    if rng.random() >= late.probability:
        return {"eni_late": False}
    delay = round(rng.uniform(late.delay.lo_ms, late.delay.hi_ms), 3)
    return {"eni_late": True, "delay_ms": min(delay, MAX_DURATION_MS)}


def dump_fleet(data: dict[str, Any], fleet: FleetConfig | None) -> None:
    """The scenario's dumped `data` without fleet: when there is none, else with
    its durations as the user writes them."""
    if fleet is None:
        data.pop("fleet", None)
        return
    out = data["fleet"]
    out["idle_retire"] = format_ms(fleet.idle_retire)
    out["drain_timeout"] = format_ms(fleet.drain_timeout)
    out["source"]["visibility_timeout"] = format_ms(fleet.source.visibility_timeout)
    if fleet.cold_start.eni_late is not None:
        out["cold_start"]["eni_late"]["delay"] = str(fleet.cold_start.eni_late.delay)
