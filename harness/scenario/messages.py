"""A pydantic validation error as the one line a user reads: where (the field's path
as the scenario file spells it) and why, with the fix where one can be named."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from harness.scenario.limits import brief


def field_path(loc: tuple[Any, ...]) -> str:
    """('schedule', 0, 'with_', 'ip') -> 'schedule[0].with.ip'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = "with" if part == "with_" else brief(str(part), 30).strip("'")
            out += f".{name}" if out else name
    return out or "(top level)"


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    # pydantic's own steps in a union's path (`function-after[...]`, `literal[...]`) are not fields.
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal"))))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling; see the scenario reference in README.md)"
    elif err["type"] == "literal_error":
        msg = f"{brief(err.get('input'))} is not allowed: {msg}"
    elif err["type"] in ("model_type", "dict_type"):
        where = field_path(loc)
        msg = (f"expected a mapping of fields, got {brief(err.get('input'))}; write it as `{where}: {{key: value}}` "
               "or as an indented block (see the scenario reference in README.md)")
    return f"{field_path(loc)}: {msg}"
