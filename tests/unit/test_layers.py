"""The package's layers: imports point down (tools -> domain -> engine) and never loop."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vdata"

# Top-level parts of vdata, by layer. A module may import from its own layer
# and the layers below, never above.
ENGINE = {"engine", "queries", "settings", "dsn", "errors", "security", "_resources", "_version"}
DOMAIN = {"repositories", "models", "database"}
TOOLS = {"cli", "check", "bench", "testing", "migrations", "exporters"}
LAYER = {**dict.fromkeys(ENGINE, 0), **dict.fromkeys(DOMAIN, 1), **dict.fromkeys(TOOLS, 2)}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every vdata module *path* imports, at any depth (TYPE_CHECKING and local imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("vdata"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vdata"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def graph() -> dict[str, set[str]]:
    """Module -> the vdata modules it imports (names that are not modules are dropped)."""
    return {
        name: {i for i in imports(path) if i in MODULES and i != name}
        for name, path in MODULES.items()
    }


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


@pytest.mark.parametrize("module", sorted(m for m in MODULES if part(m) in LAYER))
def test_imports_point_down(module: str) -> None:
    mine = LAYER[part(module)]
    upward = sorted(i for i in graph()[module] if part(i) in LAYER and LAYER[part(i)] > mine)
    assert upward == [], f"{module} imports a higher layer"


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {part(m) for m in MODULES} - {""}
    assert parts <= set(LAYER), sorted(parts - set(LAYER))


def test_no_import_cycle() -> None:
    edges = graph()
    # Cycles inside a package's __init__ and its own modules are what Python
    # resolves by import order; none is allowed here either.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt.startswith(node + "."):
                continue  # a package importing its own submodule is not a loop
            if state.get(nxt) == 1:
                loop = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(loop))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
