"""Output that is not a terminal (CI logs, pipes): laid out wide, no line padded
with trailing spaces, long lines not cut at 80 columns."""

from __future__ import annotations

import os
import subprocess
import sys

from harness.cli.common import WIDE, _Trimmed
from tests.unit.test_judge import _folder, _history


def _judge_piped(folder, **env) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | env
    out = subprocess.run([sys.executable, "-m", "harness.cli.main", "judge", str(folder)],
                         capture_output=True, text=True, timeout=60, env=clean)
    assert out.returncode in (0, 1), out.stderr
    return out.stdout.splitlines()


def test_a_piped_timeline_is_neither_wrapped_nor_padded(tmp_path):
    lines = _judge_piped(_folder(tmp_path, _history(True, False, False)))
    assert lines and not [line for line in lines if line != line.rstrip()]
    # The stuck reason carries the whole error text on one line, past 80 columns.
    reason = [line for line in lines if "could not be resolved" in line]
    assert reason and max(map(len, reason)) > 80
    assert all(len(line) <= WIDE for line in lines)


def test_columns_sets_the_width_off_a_terminal(tmp_path):
    lines = _judge_piped(_folder(tmp_path, _history(True, False, False)), COLUMNS="60")
    assert lines and all(len(line) <= 60 for line in lines)


def test_trimmed_keeps_an_unfinished_line_until_flush():
    class Sink:
        text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    sink = Sink()
    t = _Trimmed(lambda: sink)
    t.write("a   \nb  ")
    assert sink.text == "a\n"
    t.write("c  \n")
    t.flush()
    assert sink.text == "a\nb  c\n"
