"""The `enirace` command line: the group, and how it ends on errors and signals.
Each command lives in a module of its own (run, judge, sweep, replay, demo, doctor,
cleanup, images); this one assembles them.

Exit codes: 0 the verdict matches the scenario's expect block (or there is none);
1 it does not; 2 a usage error, a bad scenario or a harness error; 130 interrupted
(the message says whether the lab was torn down, or what is left for `enirace cleanup`).
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType
from typing import Any

import click

from harness import signals
from harness.cli import cleanup, demo, doctor, fleet, images, judge, replay, run, sweep
from harness.cli.common import EXIT_INTERRUPTED, Interrupted, Terminated, err_console, fail
from harness.errors import UserError


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _ignore_interrupts() -> None:
    """Exiting on an interrupt: one more Ctrl-C must not turn the message into a traceback."""
    for signum in signals.DEFERRED:
        signal.signal(signum, signal.SIG_IGN)


class _Group(click.Group):
    """Turns user errors into one line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        signal.signal(signal.SIGTERM, _on_sigterm)
        # A signal can land inside pyroute2's asyncio netlink code; asyncio then logs
        # "error during closing of asynchronous generator" with a traceback while the
        # lab is being torn down. Nothing a user can act on, so keep it off the console.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        try:
            return super().invoke(ctx)
        except UserError as exc:
            fail(str(exc), exc.exit_code)
        except Interrupted as exc:
            _ignore_interrupts()
            err_console.print(f"[bold red]interrupted[/]: {exc.summary}", soft_wrap=True)
            sys.exit(EXIT_INTERRUPTED)
        except (KeyboardInterrupt, Terminated):
            _ignore_interrupts()
            err_console.print("[bold red]interrupted[/]")
            sys.exit(EXIT_INTERRUPTED)


EPILOG = """\b
Examples:
  sudo enirace demo
  sudo enirace run scenarios/late-eni-attach.yaml --set function.handler=naive_cached
  sudo enirace sweep scenarios/late-eni-attach.yaml --workers 2
  enirace judge runs/<trial folder>

\b
Exit codes: 0 the verdict is one the scenario expects (or it expects none); 1 it is not;
2 a usage error, a bad scenario, a misconfigured function (broken), missing privileges
or a harness error; 130 interrupted. `enirace COMMAND -h` shows a command's options."""


@click.group(cls=_Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="enirace")
def main() -> None:
    """Reproduce the AWS Lambda late-ENI race on one Linux machine."""


for command in (run.run, doctor.doctor, cleanup.cleanup, demo.demo, sweep.sweep, sweep.report, sweep.merge,
                replay.replay_command, judge.judge_command, images.images, fleet.fleet):
    main.add_command(command)

if __name__ == "__main__":
    main()
