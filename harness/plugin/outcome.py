"""A finished trial as a test sees it, and the plain-text forms of it that go into
assertion messages, failure reports and JUnit XML."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from harness.checker.classify import headline
from harness.checker.recovery import Failure, invocation_ends
from harness.checker.verdict import Verdict
from harness.report.timeline import render, verdict_line

if TYPE_CHECKING:
    from harness.plugin.request import TrialRequest
    from harness.scenario.model import Scenario
    from harness.trial import TrialResult

TEXT_WIDTH = 110  # wide enough for a timeline row, narrow enough for a CI log pane
LOG_TAIL_BYTES = 64 * 1024  # function.log can be large; a tail never needs more


@dataclass(repr=False)
class TrialOutcome:
    """What `run_trial` returns: the verdict, the history, the classified errors
    and the trial folder, plus text renderings for reports."""

    trial: TrialResult
    request: TrialRequest | None = None

    def __repr__(self) -> str:
        # pytest prints fixture values in tracebacks; the full result would be pages.
        return f"<TrialOutcome {self.trial_id}: {self.verdict.verdict}>"

    @property
    def trial_id(self) -> str:
        return self.trial.trial_id

    @property
    def scenario(self) -> Scenario:
        return self.trial.scenario

    @property
    def verdict(self) -> Verdict:
        return self.trial.verdict

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every event of the trial on one clock (t_ms), as in history.jsonl."""
        return self.trial.events

    @property
    def errors(self) -> list[Failure]:
        """Failed inits and invocations, each with its error_class and text."""
        return self.verdict.failures

    @property
    def error_classes(self) -> list[str]:
        return self.verdict.error_classes

    @property
    def folder(self) -> Path:
        return self.trial.folder

    @property
    def function_log(self) -> Path:
        return self.folder / "function.log"

    @property
    def expected(self) -> bool | None:
        """Whether the verdict is one the scenario's `expect:` block allows (None: no block)."""
        return self.trial.expected

    def invocations(self) -> list[dict[str, Any]]:
        """The invoke_end events, in invocation order."""
        return invocation_ends(self.history)

    # -- text -------------------------------------------------------------------

    @property
    def title(self) -> str:
        fn = self.scenario.function
        return f"{self.scenario.name} · {fn.runtime} handler {fn.handler} · trial {self.trial_id}"

    def timeline(self, verbose: bool = False) -> str:
        """The rich timeline of the CLI, rendered as plain text."""
        console = _text_console()
        render(console, self.title, self.history, self.verdict, verbose=verbose)
        return _rstrip_lines(console.file.getvalue())  # type: ignore[attr-defined]

    def verdict_text(self) -> str:
        console = _text_console()
        console.print(verdict_line(self.verdict))
        return console.file.getvalue().strip()  # type: ignore[attr-defined]

    def errors_text(self) -> str:
        """The classified errors, one line each, with the full text when it says more."""
        v = self.verdict
        if not v.failures:
            return "classified errors: none"
        lines = [f"classified errors ({v.failed_invocations} of {v.invocations} invocations failed, "
                 f"{v.init_errors} init error(s)):"]
        for first, last in _same_error_runs(v.failures):
            where = _where(first)
            if last is not first:
                where += f"-{last.invocation}" if last.invocation is not None else f" to {_where(last)}"
            short = headline(first.text)
            lines.append(f"  {where:<11} [{first.error_class}] {short}")
            flat = " ".join(first.text.split())
            if flat != short:
                lines.append(f"  {'':<11} {_clip(flat, TEXT_WIDTH - 14)}")
        return "\n".join(lines)

    def function_log_tail(self, lines: int = 30) -> str:
        """The last `lines` lines of function.log (the runtime's output and the emulator's)."""
        try:
            with self.function_log.open("rb") as fh:
                fh.seek(0, io.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - LOG_TAIL_BYTES))
                data = fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no function.log)"
        tail = data.splitlines()[-lines:] if lines > 0 else []
        return "\n".join(tail) if tail else "(function.log is empty)"

    def summary(self) -> str:
        return f"{self.title}: {self.verdict.verdict} ({self.verdict.reason})"

    def report_text(self, timeline: bool = True, errors: bool = True, log_lines: int = 0) -> str:
        """What an assertion message, a failure report or JUnit system-out shows."""
        # The timeline ends with the verdict line; without it, the verdict stands alone.
        parts = [self.timeline() if timeline else self.verdict_text()]
        if errors and self.verdict.failures:
            parts += ["", self.errors_text()]
        parts += ["", f"trial folder: {self.folder}"]
        if log_lines > 0:
            parts += ["", f"function.log (last {log_lines} lines):", self.function_log_tail(log_lines)]
        return "\n".join(parts)

    def junit_properties(self) -> list[tuple[str, str]]:
        v = self.verdict
        props = [
            ("enirace_trial", self.trial_id),
            ("enirace_scenario", self.scenario.name),
            ("enirace_handler", f"{self.scenario.function.runtime}:{self.scenario.function.handler}"),
            ("enirace_verdict", v.verdict),
            ("enirace_reason", v.reason),
            ("enirace_error_classes", ",".join(v.error_classes)),
            ("enirace_failed_invocations", f"{v.failed_invocations}/{v.invocations}"),
            ("enirace_reinit_needed", str(v.reinit_needed).lower()),
        ]
        if v.time_to_recovery_ms is not None:
            props.append(("enirace_time_to_recovery_ms", f"{v.time_to_recovery_ms:.0f}"))
        props += [("enirace_folder", str(self.folder)), ("enirace_timeline", self.timeline())]
        return props


def _where(failure: Failure) -> str:
    return f"invoke {failure.invocation}" if failure.invocation is not None else failure.phase


def _same_error_runs(failures: list[Failure]) -> list[tuple[Failure, Failure]]:
    """Consecutive failures with the same class and text, as (first, last) pairs:
    five identical DNS errors read better as one line for invocations 1-5."""
    runs: list[tuple[Failure, Failure]] = []
    for failure in failures:
        if runs and (runs[-1][1].error_class, runs[-1][1].text, runs[-1][1].phase) == \
                (failure.error_class, failure.text, failure.phase):
            runs[-1] = (runs[-1][0], failure)
        else:
            runs.append((failure, failure))
    return runs


def _text_console() -> Console:
    return Console(file=io.StringIO(), width=TEXT_WIDTH, color_system=None, force_terminal=False,
                   highlight=False, emoji=False, soft_wrap=False)


def _rstrip_lines(text: str) -> str:
    # rich pads table cells to the column width; trailing blanks are noise in logs.
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
