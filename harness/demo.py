"""`enirace demo`: late-eni-attach for every sample handler, one verdict table."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import cleanup, functions
from harness import scenario as scenario_mod
from harness.ownership import Run
from harness.timeline import VERDICT_STYLE
from harness.trial import TrialResult, run_trial
from harness.verdict import headline


def demo_cases() -> tuple[list[tuple[str, str]], list[str]]:
    """(runtime, handler) pairs the demo runs, and what it skips and why."""
    cases = [("python", h) for h in functions.python_samples()]
    skipped = []
    from harness import dotnet

    if dotnet.locate_runtime() is None:
        skipped.append(f".NET samples: no .NET 8 runtime ({dotnet.runtime_fix_hint()})")
    elif dotnet.locate_compiler() is None:
        skipped.append(f".NET samples: no C# compiler ({dotnet.compiler_fix_hint()})")
    else:
        cases += [("dotnet", h) for h in functions.dotnet_samples()]
    return cases, skipped


def run_demo(console: Console, scenario_path: Path, out: Path) -> int:
    cleanup.cleanup()
    results: list[TrialResult] = []
    cases, skipped = demo_cases()
    for reason in skipped:
        console.print(f"[yellow]skipping[/] {reason}")
    with Run.register("demo") as run:
        for i, (runtime, handler) in enumerate(cases, 1):
            scenario = scenario_mod.load(scenario_path, [f"function.runtime={runtime}",
                                                         f"function.handler={handler}"])
            with console.status(f"[{i}/{len(cases)}] {scenario.name}: {runtime} {handler} ..."):
                result = run_trial(scenario, run, out)
            style = VERDICT_STYLE.get(result.verdict.verdict, "")
            console.print(f"[{i}/{len(cases)}] {runtime:<7} {handler:<18} [{style}]{result.verdict.verdict}[/]")
            results.append(result)
    console.print(verdict_table(results))
    console.print(f"trial folders: {out}/  (history.jsonl, function.log, verdict.json each)")
    return 2 if any(r.verdict.verdict == "harness_error" for r in results) else 0


def verdict_table(results: list[TrialResult]) -> Table:
    table = Table(title="late-eni-attach: ENI attached at init_start + 500ms", title_justify="left")
    for col in ("runtime", "handler", "verdict", "failed", "class", "recovery", "re-init", "last error"):
        table.add_column(col, no_wrap=col != "last error", overflow="fold")
    for r in results:
        v = r.verdict
        ttr = f"{v.time_to_recovery_ms:.0f} ms" if v.time_to_recovery_ms is not None else "-"
        table.add_row(r.scenario.function.runtime, r.scenario.function.handler,
                      f"[{VERDICT_STYLE.get(v.verdict, '')}]{v.verdict}[/]",
                      f"{v.failed_invocations}/{v.invocations}", ",".join(v.error_classes) or "-",
                      ttr if v.verdict == "recovered" else "-", "yes" if v.reinit_needed else "no",
                      headline(v.failures[-1].text) if v.failures else "-")
    return table
