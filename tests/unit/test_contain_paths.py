"""What the contained runtime must reach, worked out from its launch spec."""

from __future__ import annotations

from pathlib import Path

from harness.function.contain import needed_paths


def test_a_venv_interpreter_brings_its_whole_venv(tmp_path: Path) -> None:
    # The venv under the host's /tmp (a CI checkout there) must be carried into the
    # runtime's private /tmp whole: bin/python alone finds no packages.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / "site-packages").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    python = venv / "bin" / "python"
    python.symlink_to("/usr/bin/python3")
    found = needed_paths([str(python), "-m", "awslambdaric", "h.handler"], {}, tmp_path)
    assert venv in found


def test_a_plain_interpreter_brings_no_parent_directory(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    exe = tmp_path / "bin" / "tool"
    exe.write_text("#!/bin/sh\n")
    assert tmp_path / "bin" / ".." not in needed_paths([str(exe)], {}, tmp_path / "bin")
    assert tmp_path not in needed_paths([str(exe)], {}, tmp_path / "bin")
