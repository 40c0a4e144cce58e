"""moto's server (`python -m moto.server`), with its SQS queue made safe to use
from several threads at once: what MotoServer runs, as its own process.

moto's Queue appends a sent message under its `_messages_lock`, but DeleteMessage
rebuilds the message list without taking it, and ReceiveMessage picks visible
messages without it. On a threaded server a message sent while another is being
deleted can vanish, and two pollers can receive one message at once: a "lost"
message the fleet's account would blame on the function. (Read from moto 5.2's
source; not seen in our runs, where the window is short: this is a precaution,
and it costs nothing measurable.) Here both hold the
queue's lock. It is a Condition over an RLock, and a long poll waits on it, which
releases it, so a waiting ReceiveMessage never holds a SendMessage up.

Run as: python -m harness.fleet.moto_main -H 127.0.0.1 -p 0 (moto's own options).
Imports moto only: nothing of the harness runs in this process."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any


def _under_queue_lock(method: Callable[..., Any], queue_of: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        lock = getattr(queue_of(self, *args, **kwargs), "_messages_lock", None)
        if lock is None:
            return method(self, *args, **kwargs)
        with lock:
            return method(self, *args, **kwargs)
    return locked


def guard_sqs() -> bool:
    """Wrap moto's SQS mutations in the queue's lock; False if this moto's SQS
    no longer looks like the one this was written against (then it runs as is)."""
    from moto.sqs import models

    queue_cls, backend_cls = models.Queue, models.SQSBackend
    if not all(hasattr(queue_cls, m) for m in ("delete_message", "add_message")) or \
            not hasattr(backend_cls, "receive_message"):
        return False
    queue_cls.delete_message = _under_queue_lock(  # type: ignore[method-assign]
        queue_cls.delete_message, lambda q, *a, **k: q)
    backend_cls.receive_message = _under_queue_lock(  # type: ignore[method-assign]
        backend_cls.receive_message, lambda b, name, *a, **k: b.get_queue(name))
    return True


def main(argv: list[str] | None = None) -> int:
    if not guard_sqs():
        print("enirace: this moto's SQS is not the one enirace knows; running it unguarded", file=sys.stderr)
    from moto.server import main as moto_server_main

    moto_server_main(sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
