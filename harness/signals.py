"""SIGINT and SIGTERM held back while a block that must finish runs: a trial's
teardown, and what the CLI then reports about it.

A Ctrl-C (or a SIGTERM) that lands inside teardown used to raise there and
abandon the rest of it: both namespaces and the sandbox's directory stayed and
no verdict.json was written. Inside `deferred()` the two signals are only
recorded; when the block is done, the handlers that were installed before it get
them (so the interrupt still ends the run, just after the cleanup).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def deferred(signums: tuple[signal.Signals, ...] = DEFERRED, redeliver: bool = True) -> Iterator[list[int]]:
    """Hold `signums` back for the block; yields the list of those that arrived.
    Without `redeliver` they are only recorded (for a block that already handles
    an interrupt, where another one would change nothing).

    Python runs signal handlers in the main thread only (and only there may they
    be changed), so in any other thread no signal can interrupt the block and it
    runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous: dict[int, object] = {}
    try:
        for signum in signums:
            previous[signum] = signal.signal(signum, hold)
        yield caught
    finally:
        for held, handler in previous.items():
            signal.signal(held, handler)  # type: ignore[arg-type]
        if redeliver:
            # Each kind once, in order of arrival: an ignored SIGINT (a sweep
            # worker's) must not swallow the SIGTERM that came after it.
            for arrived in dict.fromkeys(caught):
                deliver(arrived, previous.get(arrived))


def deliver(signum: int, handler: object) -> None:
    """Do now what `handler` (a value signal.signal returned) would have done."""
    if callable(handler):
        handler(signum, None)  # default_int_handler raises KeyboardInterrupt, the CLI's raises Terminated
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)
    # SIG_IGN (a sweep worker's SIGINT), or a handler not set from Python: nothing to run.
