"""The sweep's progress on a terminal: a rich bar with the ETA and the running
verdict counts, coloured as the timeline colours verdicts. Elsewhere (CI logs)
one line per finished trial, as harness.sweep.progress prints it."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness.report.timeline import VERDICT_STYLE
from harness.sweep.progress import ORDER, LineProgress


def _style(verdict: str) -> str:
    return VERDICT_STYLE.get(verdict) or "bold red"  # worker_died has no trial verdict style


class SweepProgress(LineProgress):
    def __init__(self, console: Console, total: int, resumed: int, label: str) -> None:
        super().__init__(console, total, resumed, label)
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> SweepProgress:
        super().__enter__()
        if self.console.is_terminal:
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

    def styled(self, verdict: str) -> str:
        return f"[{_style(verdict)}]{verdict}[/]"

    def counts_text(self) -> str:
        parts = [f"[{_style(v)}]{v} {self.counts[v]}[/]" for v in ORDER if self.counts[v]]
        if self.failed_controls:
            parts.append(f"[bold magenta]failed controls {self.failed_controls}[/]")
        return " · ".join(parts)

    def show(self, record: dict[str, Any], verdict: str) -> None:
        if self._progress is None:
            super().show(record, verdict)
        else:
            self._progress.update(self._task, advance=1, counts=self.counts_text())
