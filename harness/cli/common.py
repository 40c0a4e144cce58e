"""What every `enirace` command shares: the consoles, the exit codes, the
privilege check and the interrupt report."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO, cast

from rich.console import Console

from harness import ownership, privileges, signals
from harness.errors import PrivilegeError
from harness.history import schema
from harness.lab import netns
from harness.ownership import Run

EXIT_OK, EXIT_MISMATCH, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
# Rich lays out for 80 columns when it has no terminal to ask: CI logs and pipes got
# timelines and image refs wrapped at 80, padded with spaces. Off a terminal, lay out
# wide ($COLUMNS if set) and trim each line's padding instead.
WIDE = 250


class _Trimmed(io.TextIOBase):
    """A text stream that drops the trailing spaces of every line it passes on."""

    def __init__(self, stream: Callable[[], TextIO]) -> None:
        self._stream = stream  # looked up at each write: tests swap sys.stdout
        self._rest = ""

    def write(self, text: str) -> int:
        *lines, self._rest = (self._rest + text).split("\n")
        if lines:
            self._stream().write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self._rest:
            self._stream().write(self._rest)
            self._rest = ""
        self._stream().flush()

    def isatty(self) -> bool:
        return False


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, highlight=False)
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() and int(columns) > 0 else WIDE
    # rich types `file` as IO[str] but only writes, flushes and asks isatty and
    # encoding; a TextIOBase is not an IO[str] to mypy (IO is a class, not a protocol).
    trimmed = cast(TextIO, _Trimmed(lambda: sys.stderr if stderr else sys.stdout))
    return Console(file=trimmed, width=width, highlight=False)


console = _console(stderr=False)
err_console = _console(stderr=True)


class Terminated(BaseException):
    """SIGTERM, turned into an exception so every finally block runs."""


class Interrupted(BaseException):
    """An interrupt of a command that builds labs, with what it really left behind."""

    def __init__(self, summary: str) -> None:
        super().__init__(summary)
        self.summary = summary


def require_privileges() -> None:
    if not privileges.has_privileges():
        raise PrivilegeError(f"enirace needs root; {privileges.PRIVILEGE_FIX}")


def fail(message: str, code: int = EXIT_ERROR) -> None:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    sys.exit(code)


def left_behind(run: Run) -> list[str]:
    """What `run` still owns: its manifest, and any namespace named after it."""
    owned = [f"{o.kind} {o.ident}" for o in run.owned()]
    named = [f"netns {n}" for n in netns.list_names() if ownership.run_of_netns(n) == run.run_id]
    return owned + [n for n in named if n not in owned]


def interrupt_summary(run: Run, folder: Path | None) -> str:
    left = left_behind(run)
    verdict = folder / "verdict.json" if folder is not None else None
    saved = f"; the trial so far is in {folder} (verdict.json)" if verdict and verdict.exists() else ""
    if left:
        shown = ", ".join(left[:4]) + (f" and {len(left) - 4} more" if len(left) > 4 else "")
        return f"teardown did not finish: left behind {shown}; `enirace cleanup` removes it{saved}"
    history = folder / "history.jsonl" if folder is not None else None
    if history is None or not history.exists() or f'"{schema.TRIAL_START}"' not in history.read_text():
        return "before the lab was built; nothing was left behind"
    return f"the lab was torn down{saved}"


@contextmanager
def reporting_interrupts(run: Run) -> Iterator[None]:
    """Turn an interrupt of the block (trials of `run`) into Interrupted, which says
    whether the lab really went and where the verdict is."""
    try:
        yield
    except (KeyboardInterrupt, Terminated) as exc:
        with signals.deferred(redeliver=False):  # one more Ctrl-C must not cut the report short
            summary = interrupt_summary(run, getattr(exc, "trial_folder", None))
        raise Interrupted(summary) from None
