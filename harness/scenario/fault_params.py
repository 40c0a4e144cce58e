"""The `with:` parameters of each fault, as pydantic models.

Pure data (no netlink, no root): scenario loading validates a schedule entry's
`with:` against these, so a typo is a one-line error before any namespace exists.
The faults themselves (harness/nemesis/) read their parameters through the same models.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from harness.scenario.limits import brief
from harness.scenario.triggers import parse_duration_ms


def _percent(value: Any) -> float:
    """5, 5.0, '5%' or '0.5 %' -> percent."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a percentage")
    if isinstance(value, int | float):
        return float(value)
    # Only a short string is matched: str() of an arbitrary value could be huge.
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", value) if isinstance(value, str) and len(value) < 64 else None
    if not m:
        raise ValueError(f"{brief(value)} is not a percentage; write e.g. 5 or '5%'")
    return float(m.group(1))


Ms = Annotated[float, BeforeValidator(parse_duration_ms)]
Percent = Annotated[float, BeforeValidator(_percent), Field(ge=0, le=100)]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


class SwapParams(Params):
    ip: Literal["new", "same"] = "new"


class FlapParams(Params):
    period: Ms = 1000.0
    count: int = Field(default=3, ge=1, le=1000)
    down: Ms | None = None  # time down in each period; half the period by default

    @model_validator(mode="after")
    def _down_within_period(self) -> FlapParams:
        if self.period < 2:
            raise ValueError("period must be at least 2ms")
        if self.down is not None and not 0 < self.down < self.period:
            raise ValueError("down must be longer than 0 and shorter than the period")
        return self

    @property
    def down_ms(self) -> float:
        return self.down if self.down is not None else self.period / 2


class DnsParams(Params):
    mode: Literal["servfail", "nxdomain", "drop", "slow", "answer"]
    delay: Ms = 2000.0  # for slow: how late each answer comes

    @model_validator(mode="after")
    def _delay_positive(self) -> DnsParams:
        if self.mode == "slow" and self.delay <= 0:
            raise ValueError("slow needs a delay above 0, e.g. delay: 2s")
        return self


class ResolvConfParams(Params):
    content: Literal["filled", "empty", "absent"] = "filled"
    how: Literal["in_place", "rename"] = "in_place"


class NetemParams(Params):
    delay: Ms = 0.0
    jitter: Ms = 0.0
    loss: Percent = 0.0

    @model_validator(mode="after")
    def _jitter_needs_delay(self) -> NetemParams:
        if self.jitter > self.delay:
            raise ValueError("jitter must not exceed delay")
        return self


PARAMS: dict[str, type[Params]] = {
    "attach_eni": NoParams,
    "detach_eni": NoParams,
    "swap_eni": SwapParams,
    "link_down": NoParams,
    "link_up": NoParams,
    "flap": FlapParams,
    "blackhole": NoParams,
    "dns": DnsParams,
    "resolv_conf": ResolvConfParams,
    "netem": NetemParams,
}
FAULT_NAMES = tuple(PARAMS)
# Faults that end by themselves: a `for:` makes no sense on them.
SELF_ENDING = {"flap"}


def parse(fault: str, params: dict[str, Any]) -> Params:
    """Raises KeyError for an unknown fault, pydantic ValidationError for bad params."""
    return PARAMS[fault].model_validate(params or {})
