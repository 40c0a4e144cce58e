"""Test-only handler: a background thread notes CLOCK_MONOTONIC every 10 ms from
init on; each invocation returns the ticks since the previous one, so a test can
see whether the thread ran while the function was frozen between invocations."""

import threading
import time

_ticks: list[float] = []
_lock = threading.Lock()


def _tick() -> None:
    while True:
        with _lock:
            _ticks.append(time.monotonic())
        time.sleep(0.01)


threading.Thread(target=_tick, daemon=True).start()


def handler(event, context):
    with _lock:
        ticks, _ticks[:] = list(_ticks), []
    return {"now": time.monotonic(), "ticks": ticks}
