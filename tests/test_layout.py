"""The shape of the product: no import cycles in pyworker/, no test code in it."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "pyworker"


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _all_imports(path: Path) -> set[str]:
    """Every absolute module a file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
    return found


def _imports(path: Path) -> set[str]:
    """pyworker modules imported anywhere in the file (in functions too), except under TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}  # fmt: skip
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("pyworker")}


def test_no_import_cycles() -> None:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    # A package's __init__ is imported on the way to its modules; only edges between modules count.
    graph = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in graph.items()}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        for dep in graph[node]:
            if dep in stack:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif len(stack) < len(graph):
                visit(dep, [*stack, dep])

    for name in graph:
        visit(name, [name])
    assert not cycles, sorted({" -> ".join(c) for c in cycles})


def test_no_test_or_research_code_in_the_product() -> None:
    assert not (PACKAGE / "faults.py").exists()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "PYWORKER_TEST_" not in text, path
        # Neither tests nor the development tools (tools/: `make contract`) are shipped.
        assert not {"tests", "tools", "testkit", "bench"} & {m.split(".")[0] for m in _all_imports(path)}, path
