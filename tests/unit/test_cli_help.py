"""`-h` is `--help` on the group and every command; the group and `run` show
examples and exit codes, and `--set`'s help shows a list index."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from harness.cli.main import main


def _commands() -> list[list[str]]:
    out = [[]]
    for name, cmd in main.commands.items():
        out.append([name])
        out += [[name, sub] for sub in getattr(cmd, "commands", {})]
    return out


@pytest.mark.parametrize("args", _commands(), ids=lambda a: " ".join(a) or "enirace")
def test_dash_h_is_help(args):
    short = CliRunner().invoke(main, [*args, "-h"])
    assert short.exit_code == 0, short.output
    assert short.output == CliRunner().invoke(main, [*args, "--help"]).output
    assert "Usage:" in short.output


@pytest.mark.parametrize("args", [[], ["run"]])
def test_examples_and_exit_codes(args):
    text = CliRunner().invoke(main, [*args, "-h"], terminal_width=200).output
    assert "Examples:" in text and "enirace run scenarios/late-eni-attach.yaml" in text
    assert "Exit codes: 0" in text and "130 interrupted" in text and "broken" in text
    if args:
        assert "schedule[0].at=" in text
