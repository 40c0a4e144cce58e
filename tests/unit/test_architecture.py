"""The house's shape: no import cycles, imports only point down the layers, and
modules and functions stay small. Read from the source with ast, so an import
inside a function counts as much as one at the top; imports under
`if TYPE_CHECKING:` are left out (they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"

# Lowest first. A module may import from its own layer's package or from any layer below.
LAYERS = [
    ["errors", "paths", "privileges", "signals"],
    ["ownership"],
    ["history"],  # below scenario: a trigger names a history event kind
    ["scenario"],
    ["lab"],
    ["nemesis"],
    ["function"],
    ["emulator"],
    ["checker"],
    ["capture"],
    ["backends"],
    ["cleanup"],
    ["trial"],
    ["sweep"],
    ["fleet"],
    ["report"],
    ["plugin"],
    ["cli"],
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_TOP_LEVEL_MODULES = 12


def module_name(path: Path) -> str:
    parts = list(path.relative_to(HARNESS.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(HARNESS.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """Every harness module that `path` imports, at any depth of its code."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("harness"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, known) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found


def _layer(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_imports_point_down_the_layers():
    upward = []
    for module, targets in graph().items():
        for target in targets:
            if module == "harness" or target == "harness":
                continue
            src, dst = _layer(module), _layer(target)
            if RANK[dst] > RANK[src]:
                upward.append(f"{module} -> {target}")
    assert sorted(upward) == []


def test_every_package_has_a_layer():
    assert sorted({_layer(m) for m in modules() if m != "harness"} - set(RANK)) == []


def test_at_most_twelve_top_level_modules():
    top = [p.name for p in HARNESS.glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_modules_stay_small():
    big = {module_name(p): n for p in HARNESS.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert big == {}


def test_functions_stay_small():
    long = []
    for path in HARNESS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{module_name(path)}.{node.name}: {length}")
    assert long == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("source", ["shared/DESIGN.md", "research/"])
def test_no_docstring_cites_a_file_outside_the_repository(source):
    citing = [module_name(p) for p in HARNESS.rglob("*.py") if source in p.read_text()]
    assert citing == []
