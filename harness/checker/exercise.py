"""Did the function meet the fault at all? A trial that reads `absorbed` because
the fault came and went while the function never tried the network (a slow
start: .NET from a cold page cache, an init that sleeps past the attach) tests
nothing. The function's own attempts (net_attempt, from the kernel probe of its
cgroup: connects and sendmsgs, seen even when no packet can leave) must fall
inside an impaired window for the trial to count. An invocation in flight
during a window counts too: a send on a connection that is already open (the
pooled connection an ENI swap strands) passes no hook the probe sees, so the
probe alone cannot tell that such a handler met the fault.

Only absorbed trials (recovered, nothing failed) are judged this way: a failed
invocation already says the function met something. Histories without a working
probe (net_probe) are left as they were judged."""

from __future__ import annotations

from harness.checker import windows as win
from harness.history import schema
from harness.history.recorder import Event


def probed(events: list[Event]) -> bool:
    """Whether every runtime's network attempts were watched."""
    probes = [e for e in events if e["kind"] == schema.NET_PROBE]
    return bool(probes) and all(e.get("method") != "none" for e in probes)


def exposure_spans(events: list[Event]) -> list[win.Window]:
    """Where an attempt meets the fault: the impaired windows, and from an
    instantaneous fault (a window of no length: a reset, a reap) or a transient
    one (a swap, a failover) to the end."""
    spans = [(s, None if e is not None and e <= s else e) for s, e in win.impaired_windows(events)]
    for e in events:
        if e["kind"] not in (schema.FAULT, schema.RESTORE) or not e.get("verified"):
            continue
        if "blip_ms" in e:
            # A transient fault (a swap, a failover) leaves its mark after its blip: a
            # connection opened before it is stranded until the function next uses it.
            spans.append((e["t_ms"], None))
        elif e.get("impairs") and not any(s <= e["t_ms"] and (end is None or e["t_ms"] <= end) for s, end in spans):
            spans.append((e["t_ms"], None))
    return spans


def attempts_in(events: list[Event], spans: list[win.Window]) -> list[Event]:
    return [e for e in events if e["kind"] == schema.NET_ATTEMPT
            and any(s <= e["t_ms"] and (end is None or e["t_ms"] <= end) for s, end in spans)]


def invocations_in(events: list[Event], spans: list[win.Window]) -> list[int]:
    """The invocations that were running at some moment of a span."""
    starts = {e["n"]: e["t_ms"] for e in events if e["kind"] == schema.INVOKE_START}
    ends = {e["n"]: e["t_ms"] for e in events if e["kind"] == schema.INVOKE_END}
    return [n for n, t0 in starts.items()
            if any(t0 <= (end if end is not None else float("inf")) and ends.get(n, float("inf")) >= s
                   for s, end in spans)]


def unexercised(events: list[Event]) -> str | None:
    """Why the fault never met the function, or None when it did (or cannot be told)."""
    if not probed(events):
        return None
    spans = exposure_spans(events)
    if not spans or attempts_in(events, spans) or invocations_in(events, spans):
        return None
    return f"it made no network attempt while the network was impaired ({_spans(spans)}); {instead(events, spans)}"


def instead(events: list[Event], spans: list[win.Window]) -> str:
    """What the function was doing meanwhile, for the reason and the timeline."""
    start, end = spans[0][0], spans[-1][1]
    ready = [e["t_ms"] for e in events if e["kind"] == schema.RUNTIME_READY]
    inits = [e["t_ms"] for e in events if e["kind"] == schema.INIT_START]
    attempts = sorted(e["t_ms"] for e in events if e["kind"] == schema.NET_ATTEMPT)
    first_after = next((t for t in attempts if end is not None and t > end), None)
    if inits and (not ready or (end is not None and min(ready) > end)) and min(inits) <= (end or start):
        doing = f"it was still in its init (runtime_ready at {min(ready):.0f} ms)" if ready else \
            "its init never finished"
    else:
        running = [e for e in events if e["kind"] == schema.INVOKE_START
                   and e["t_ms"] <= (end if end is not None else float("inf"))]
        doing = (f"invocations {', '.join(str(e['n']) for e in running)} ran meanwhile without touching the network"
                 if running else "no invocation ran meanwhile")
    if first_after is not None:
        doing += f"; its first attempt came at {first_after:.0f} ms, after the fault cleared"
    elif not attempts:
        doing += "; it never tried the network at all"
    return doing


def _spans(spans: list[win.Window]) -> str:
    return ", ".join(f"{s:.0f}-{e:.0f} ms" if e is not None else f"from {s:.0f} ms" for s, e in spans)
