"""function.extensions through a real trial: a real extension process
(tests/conformance/extensions/gate.py, busy 300 ms after each INVOKE event) is
started with the runtime, contained as it is, and the environment freezes only
once the runtime and the extension both wait on next."""

from __future__ import annotations

import json

import pytest

from harness.history import schema
from tests.integration.conftest import LATE_ENI, REPO

GATE = REPO / "tests" / "conformance" / "extensions" / "gate.py"
TICKER_CODE = REPO / "tests" / "integration" / "handlers"
DELAY_MS = 300

pytestmark = pytest.mark.root


def _first(events, kind, after):
    return next(e for e in events if e["kind"] == kind and e["t_ms"] >= after)


def test_the_freeze_waits_for_the_extensions_next(trial):
    result = trial(LATE_ENI, "schedule=[]", "lab.eni=present", "workload.gaps=[800ms]",
                   f"function.code={TICKER_CODE}", "function.handler=ticker.handler",
                   f"function.extensions=[{GATE}]", f"function.env={{GATE_DELAY_MS: '{DELAY_MS}'}}")
    events = result.events
    nexts = [e for e in events if e["kind"] == schema.EXTENSION_NEXT]
    assert nexts and {e["name"] for e in nexts} == {"gate.py"}, "the extension never asked for an event"
    starts = [e for e in events if e["kind"] == schema.INVOKE_START]
    assert len(starts) == 2
    for start in starts:
        ext_next = _first(events, schema.EXTENSION_NEXT, start["t_ms"])
        end = _first(events, schema.INVOKE_END, start["t_ms"])
        assert end["status"] == "ok"
        # The extension comes back DELAY_MS after its INVOKE event; only then is the
        # invoke answered and the environment frozen (the first freeze after the start).
        assert ext_next["t_ms"] - start["t_ms"] >= DELAY_MS * 0.9
        assert end["t_ms"] >= ext_next["t_ms"]
        if start is not starts[-1]:  # after the last one the trial ends before any freeze
            freeze = _first(events, schema.FREEZE, start["t_ms"])
            assert freeze["t_ms"] >= ext_next["t_ms"] and freeze["verified"]
    # The runtime itself: its thread kept ticking after its response (awslambdaric is
    # on /next by then) for about DELAY_MS, then stopped for the frozen rest of the gap.
    first, second = (json.loads(e["body"]) for e in events if e["kind"] == schema.INVOKE_END)
    ticks = [first["now"], *(t for t in second["ticks"] if t > first["now"]), second["now"]]
    pause_from, pause = max(((a, b - a) for a, b in zip(ticks, ticks[1:], strict=False)), key=lambda g: g[1])
    assert pause >= 0.3, f"the runtime ran through the gap (longest pause {pause:.3f} s)"
    assert pause_from - first["now"] >= DELAY_MS / 1000 * 0.8, "frozen at the runtime's /next"
    # The thaw for invocation 2 ends the gap's frozen span (the one for invocation 1
    # may be recorded just after its start, and ends the short span after init).
    thaw = max((e for e in events if e["kind"] == schema.THAW and e["t_ms"] >= starts[0]["t_ms"]),
               key=lambda e: e["frozen_ms"])
    assert thaw["reason"] == "invoke" and thaw["frozen_ms"] >= 300
    assert result.verdict.verdict == "healthy"
