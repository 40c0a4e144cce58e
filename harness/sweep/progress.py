"""What a running sweep tells as it goes: one line per finished trial, and the
counts of verdicts so far. The CLI draws a progress bar over the same counts
(harness/cli/progress.py); benchmarks and tests get these plain lines."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console

from harness.checker.verdict import ABSORBED, shown

ORDER = ("healthy", ABSORBED, "recovered", "stuck", "broken", "not_exercised", "fault_not_armed", "harness_error",
         "worker_died")


class LineProgress:
    """A context manager the runner feeds each finished trial's results line."""

    def __init__(self, console: Console, total: int, resumed: int, label: str) -> None:
        self.console = console
        self.total = total
        self.resumed = resumed
        self.label = label
        self.counts: Counter[str] = Counter()
        self.failed_controls = 0
        self.finished = 0

    def __enter__(self) -> LineProgress:
        if self.resumed:
            self.console.print(f"resuming: {self.resumed} trials already in results.jsonl, {self.total} to go")
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def styled(self, verdict: str) -> str:
        return verdict

    def update(self, record: dict[str, Any]) -> None:
        verdict = shown(record["verdict"])
        self.finished += 1
        if record["kind"] == "control":
            if verdict != "healthy":
                self.failed_controls += 1
        else:
            self.counts[verdict] += 1
        self.show(record, verdict)

    def show(self, record: dict[str, Any], verdict: str) -> None:
        tag = " (control)" if record["kind"] == "control" else ""
        self.console.print(f"[{self.finished}/{self.total}] {record['trial']}{tag} {self.styled(verdict)}",
                           soft_wrap=True)
