"""When the network was impaired, from the fault and initial_state events: which
aspects at a given moment, the intervals of impairment, when the fault cleared
and whether it touched the function at all."""

from __future__ import annotations

from harness.history import schema
from harness.history.recorder import Event

Window = tuple[float, float | None]  # (start, end); end None: still impaired at the end


def _network_changes(events: list[Event]) -> list[Event]:
    # A SnapStart restore changes the network as a transient fault does (a swap).
    return sorted((e for e in events if (e["kind"] in (schema.FAULT, schema.RESTORE) and e.get("verified"))
                   or e["kind"] == schema.INITIAL_STATE), key=lambda e: e["t_ms"])


def _apply_change(state: dict[str, bool], event: Event) -> None:
    """A change sets the aspects it names (eni, link, dns, ...; see nemesis/fault.py).
    An event without aspects (older histories) sets the whole network at once."""
    aspects = event.get("aspects")
    if aspects is None:
        state.clear()
        state["network"] = bool(event.get("impairs"))
    else:
        state.update(aspects)


def aspects_at(events: list[Event], t_ms: float) -> dict[str, bool]:
    """Which aspects of the network were impaired at `t_ms`."""
    state: dict[str, bool] = {}
    for e in _network_changes(events):
        if e["t_ms"] > t_ms:
            break
        _apply_change(state, e)
    return {k: v for k, v in state.items() if v}


def impaired_windows(events: list[Event]) -> list[Window]:
    """Intervals during which the network was impaired (None: still at the end):
    while any aspect is impaired, plus the blip of a transient fault (a swap)."""
    windows: list[Window] = []
    opened: float | None = None
    state: dict[str, bool] = {}
    for e in _network_changes(events):
        _apply_change(state, e)
        if any(state.values()) and opened is None:
            opened = e["t_ms"]
        elif not any(state.values()) and opened is not None:
            windows.append((opened, e["t_ms"]))
            opened = None
        if e.get("blip_ms"):
            windows.append((float(e["blip_ms"][0]), float(e["blip_ms"][1])))
    if opened is not None:
        windows.append((opened, None))
    return _merged(windows)


def _merged(windows: list[Window]) -> list[Window]:
    out: list[Window] = []
    for start, end in sorted(windows, key=lambda w: w[0]):
        if out and (out[-1][1] is None or start <= out[-1][1]):
            last_end = out[-1][1]
            out[-1] = (out[-1][0], None if last_end is None or end is None else max(last_end, end))
        else:
            out.append((start, end))
    return out


def cleared_at(windows: list[Window]) -> float | None:
    """When the last impairment that ended ended (None: none ended)."""
    return max((end for _, end in windows if end is not None), default=None)


def still_impaired(windows: list[Window]) -> bool:
    return any(end is None for _, end in windows)


def touches(windows: list[Window], start: float, end: float) -> bool:
    """Whether any window overlaps [start, end] (the span the function was active)."""
    return any(w_start <= end and (w_end is None or w_end >= start) for w_start, w_end in windows)
