"""signals.deferred: what arrives during the block waits for its end, then reaches
the handler that was there before (real signals, sent to this process)."""

from __future__ import annotations

import signal
import threading

import pytest

from harness import signals


class Stopped(BaseException):
    pass


@pytest.fixture
def sigterm_raises():
    def stop(signum, frame):
        raise Stopped()

    previous = signal.signal(signal.SIGTERM, stop)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_ctrl_c_waits_for_the_block_then_interrupts():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with signals.deferred():
            signal.raise_signal(signal.SIGINT)
            steps.append("after the signal")  # the block is not cut short
            signal.raise_signal(signal.SIGINT)  # a second one changes nothing
            steps.append("end")
    assert steps == ["after the signal", "end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_does_not_swallow_a_later_sigterm(sigterm_raises):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a sweep worker
    try:
        with pytest.raises(Stopped):
            with signals.deferred():
                signal.raise_signal(signal.SIGINT)
                signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_without_redeliver_signals_are_only_recorded(sigterm_raises):
    with signals.deferred(redeliver=False) as caught:
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
    assert caught == [signal.SIGTERM, signal.SIGINT]


def test_blocks_nest():
    with pytest.raises(KeyboardInterrupt):
        with signals.deferred():
            with signals.deferred():
                signal.raise_signal(signal.SIGINT)
            reached = True  # the inner block handed it to the outer one
    assert reached


def test_outside_the_main_thread_it_changes_no_handler():
    seen = []

    def worker():
        with signals.deferred() as caught:
            seen.append((caught, signal.getsignal(signal.SIGINT)))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [([], signal.default_int_handler)]
