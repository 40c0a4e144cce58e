"""A Python handler's configuration, checked before any lab is built and without
running the user's code (importing would run it outside the sandbox): the module
compiles, and its top level binds the handler's name. What these checks cannot
see (a dependency that is missing, a name bound dynamically) the runtime reports
and the checker turns into a `broken` verdict (harness/checker/config.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

from harness.errors import UserError

# Names whose use at module level may bind the handler in a way the AST does not show.
_DYNAMIC = {"globals", "setattr", "exec", "vars", "locals", "__getattr__"}
SHOWN = 8


def _bound(tree: ast.Module) -> tuple[set[str], bool]:
    """(names the module binds at its top level, or perhaps binds: a name bound in
    an if or a try counts; whether a binding may hide from the AST)."""
    names: set[str] = set()
    dynamic = any(isinstance(n, ast.Name) and n.id in _DYNAMIC for n in ast.walk(tree))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            dynamic |= node.name == "__getattr__"
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(sub.name)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                for alias in sub.names:
                    dynamic |= alias.name == "*"
                    names.add(alias.asname or alias.name.split(".")[0])
    return names, dynamic


def parse(module_file: Path, module: str) -> ast.Module:
    """The module's AST; a syntax error is the user's, as Lambda's UserCodeSyntaxError."""
    try:
        return ast.parse(module_file.read_bytes(), str(module_file))
    except SyntaxError as exc:
        where = f"{module_file}:{exc.lineno}" if exc.lineno else str(module_file)
        raise UserError(f"function.code: {where}: SyntaxError: {exc.msg} in module {module!r} "
                        "(Lambda fails the init with Runtime.UserCodeSyntaxError); fix the source") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"function.code: {module_file} cannot be read ({exc})") from None


def check_handler(module_file: Path, module: str, fname: str) -> None:
    """UserError when the module does not compile or surely has no `fname`."""
    tree = parse(module_file, module)
    names, dynamic = _bound(tree)
    if fname in names or dynamic:
        return
    functions = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and not n.name.startswith("_")][:SHOWN]
    shown = f"; it defines: {', '.join(functions)}" if functions else ""
    raise UserError(f"function.handler: module {module!r} ({module_file}) has no {fname!r} "
                    f"(Lambda reports Runtime.HandlerNotFound){shown}")


def candidates(code: Path) -> list[str]:
    """module.function handler strings the folder's top-level modules offer."""
    out = []
    for path in sorted(code.glob("*.py")):
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, OSError, ValueError):
            continue
        out += [f"{path.stem}.{n.name}" for n in tree.body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")]
        if len(out) >= SHOWN:
            break
    return out[:SHOWN]
