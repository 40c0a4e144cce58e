"""A scenario's `function.extensions`: the extension programs the emulator starts
with each runtime generation, as Lambda starts every file in /opt/extensions.
Each one runs as the runtime does (same sandbox, environment, task root, user,
mounts and a cgroup of its own): the process backend spawns them with the
runtime's launcher."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UserError
from harness.function.spec import LaunchSpec

if TYPE_CHECKING:
    from harness.scenario.model import FunctionConfig


def paths(fn: FunctionConfig) -> list[Path]:
    """The extensions' absolute paths, each checked to be an executable file.
    Relative paths are relative to the current directory, as function.code is."""
    found: list[Path] = []
    for i, text in enumerate(fn.extensions):
        field = f"function.extensions[{i}]"
        path = Path(os.path.abspath(text)) if text else None
        if path is None or not path.is_file() or not os.access(path, os.X_OK):
            what = "is not an executable file" if path is None or path.exists() else "does not exist"
            raise UserError(f"{field}: {text!r} {what} (Lambda reports Extension.LaunchError); "
                            f"give the path of an extension program and chmod +x it")
        check_interpreter(field, path)
        found.append(path)
    return found


def check_interpreter(field: str, path: Path) -> None:
    """A `#!` script's interpreter exists here (for extensions and custom bootstraps)."""
    try:
        with path.open("rb") as f:
            first = f.readline(256)
    except OSError as exc:
        raise UserError(f"{field}: {path} cannot be read ({exc})") from None
    if first.startswith(b"#!"):
        words = first[2:].split()
        interp = Path(words[0].decode(errors="replace")) if words else None
        if interp is None or not os.access(interp, os.X_OK):
            raise UserError(f"{field}: {path}'s first line names the interpreter {interp or '(none)'}, "
                            "which is not an executable file here; fix the #! line")


def specs(fn: FunctionConfig, runtime: LaunchSpec) -> list[LaunchSpec]:
    """One LaunchSpec per extension, built like the runtime's: its environment
    (AWS_LAMBDA_RUNTIME_API and the rest) and its task root as working directory."""
    return [LaunchSpec([str(p)], dict(runtime.env), runtime.cwd, f"extension {p.name}") for p in paths(fn)]
