"""`-h` is `--help` on the group and every command, subcommands of groups included;
every help ends with examples of that very command and its exit codes, and `--set`'s
help shows a list index."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from harness.cli.main import main


def _commands(group: click.Group = main, path: tuple[str, ...] = ()) -> list[list[str]]:
    out = [list(path)]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*path, name))
        else:
            out.append([*path, name])
    return out


def _help(args: list[str]) -> str:
    result = CliRunner().invoke(main, [*args, "-h"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_walk_reaches_subcommands():
    found = {" ".join(a) for a in _commands()}
    assert {"images", "images build", "images list", "images prune", "images rie-dropin", "sweep",
            "report", "merge", "replay", "judge", "demo", "doctor", "cleanup", "run"} <= found


@pytest.mark.parametrize("args", _commands(), ids=lambda a: " ".join(a) or "enirace")
def test_dash_h_is_help(args):
    short = _help(args)
    assert short == CliRunner().invoke(main, [*args, "--help"], terminal_width=200).output
    assert "Usage:" in short


@pytest.mark.parametrize("args", _commands(), ids=lambda a: " ".join(a) or "enirace")
def test_examples_and_exit_codes(args):
    text = _help(args)
    assert "Examples:" in text and "Exit codes: 0 " in text, text
    examples = text.split("Examples:", 1)[1].split("Exit codes:", 1)[0]
    lines = [ln.strip() for ln in examples.splitlines() if ln.strip().startswith(("enirace", "sudo "))]
    assert lines, examples
    # A group's examples may show its subcommands; a command's show that command.
    want = "enirace " + " ".join(args)
    for line in lines:
        assert re.sub(r"^sudo (\w+=\S+ )*", "", line).startswith(want.rstrip()), line
    # The codes are the README's table's: 0, 1, 2, 130.
    codes = re.findall(r"(?:^|; )(\d+) ", re.sub(r"\s+", " ", text.split("Exit codes:", 1)[1]).strip())
    assert "0" in codes and set(codes) <= {"0", "1", "2", "130"}, codes
    if args in ([], ["run"]):
        assert "130 interrupted" in text and "broken" in text


def test_run_help_shows_a_list_index():
    assert "schedule[0].at=" in _help(["run"])


def test_rie_dropin_to_an_unwritable_place_is_one_line(tmp_path):
    target = tmp_path / "missing-dir" / "aws-lambda-rie"
    result = CliRunner().invoke(main, ["images", "rie-dropin", str(target)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and str(target) in result.output
    assert len(result.output.strip().splitlines()) == 1
