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


def _host_address(value: Any) -> Any:
    """`move_to`: an IPv4 address, or `.N` for host N of the trial's /24 (which a
    scenario cannot know in advance); checked against the /24 when the lab is up."""
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else None
    if text is None or not re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}|\.\d{1,3}", text):
        raise ValueError(f"{brief(value)} is not an address; write .11 (host 11 of the lab's /24) or a full one")
    if not 0 <= int(text.rsplit(".", 1)[1]) <= 255:
        raise ValueError(f"{text}: a host number is 0 to 255")
    return text


class DnsParams(Params):
    # Without move_to a mode is required; with it the resolver goes on answering.
    mode: Literal["servfail", "nxdomain", "drop", "slow", "answer"] | None = None
    delay: Ms = 2000.0  # for slow: how late each answer comes
    # The service moves to this address (the resolver answers it); the old address
    # then refuses connections and packets (old: rst) or ignores them (old: drop).
    move_to: Annotated[str, BeforeValidator(_host_address)] | None = None
    old: Literal["rst", "drop"] = "rst"

    @model_validator(mode="after")
    def _delay_positive(self) -> DnsParams:
        if self.mode is None and self.move_to is None:
            raise ValueError("mode: required (servfail, nxdomain, drop, slow or answer), or give move_to")
        if self.mode == "slow" and self.delay <= 0:
            raise ValueError("slow needs a delay above 0, e.g. delay: 2s")
        return self

    @property
    def resolver_mode(self) -> str:
        return self.mode or "answer"


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


class ReapIdleParams(Params):
    min_idle: Ms = Field(default=0.0, ge=0)  # forget flows idle at least this long (to the second)


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
    "reap_idle": ReapIdleParams,
    "reset_flows": NoParams,
}
FAULT_NAMES = tuple(PARAMS)
# Faults that end by themselves: a `for:` makes no sense on them.
SELF_ENDING = {"flap"}


def parse(fault: str, params: dict[str, Any]) -> Params:
    """Raises KeyError for an unknown fault, pydantic ValidationError for bad params."""
    return PARAMS[fault].model_validate(params or {})
