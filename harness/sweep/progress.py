"""What a running sweep shows: a rich progress bar with the ETA and running verdict
counts on a terminal, one line per finished trial elsewhere (CI logs)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness.report.timeline import VERDICT_STYLE

ORDER = ("healthy", "recovered", "stuck", "fault_not_armed", "harness_error", "worker_died")


def _style(verdict: str) -> str:
    return VERDICT_STYLE.get(verdict) or "bold red"  # worker_died has no trial verdict style


class SweepProgress:
    def __init__(self, console: Console, total: int, resumed: int, label: str) -> None:
        self.console = console
        self.total = total
        self.resumed = resumed
        self.label = label
        self.counts: Counter[str] = Counter()
        self.failed_controls = 0
        self.finished = 0
        self._live = console.is_terminal
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> SweepProgress:
        if self.resumed:
            self.console.print(f"resuming: {self.resumed} trials already in results.jsonl, {self.total} to go")
        if self._live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("eta"), TimeRemainingColumn(), TextColumn("elapsed"), TimeElapsedColumn(),
                TextColumn("{task.fields[counts]}"), console=self.console, transient=False)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total, counts="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def counts_text(self) -> str:
        parts = [f"[{_style(v)}]{v} {self.counts[v]}[/]" for v in ORDER if self.counts[v]]
        if self.failed_controls:
            parts.append(f"[bold magenta]failed controls {self.failed_controls}[/]")
        return " · ".join(parts)

    def update(self, record: dict[str, Any]) -> None:
        verdict = record["verdict"]["verdict"]
        self.finished += 1
        if record["kind"] == "control":
            if verdict != "healthy":
                self.failed_controls += 1
        else:
            self.counts[verdict] += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, counts=self.counts_text())
        else:
            style = _style(verdict)
            tag = " (control)" if record["kind"] == "control" else ""
            self.console.print(f"[{self.finished}/{self.total}] {record['trial']}{tag} [{style}]{verdict}[/]",
                               soft_wrap=True)
