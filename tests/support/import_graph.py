"""Reads the imports of every module in a package, lazy ones inside functions included (they are
dependencies too), and finds the cycles among them.

    python -m tests.support.import_graph edge_daemon     # prints each cycle; exit 1 if there is one
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_name(package_dir: Path, path: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imported_names(importer: str, path: Path, modules: set[str]) -> set[str]:
    """Every module of ``modules`` that ``importer`` names in an import statement, anywhere in it,
    with the packages that importing it initialises. ``from pkg import name`` counts as importing
    ``pkg.name`` when that is a module, else ``pkg``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(importer, path.name == "__init__.py", node)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            found.update(_initialised_with(target, importer))
    return found


def _initialised_with(target: str, importer: str) -> set[str]:
    """``target`` and the packages Python initialises before it (their ``__init__`` runs first),
    less the importer's own packages, which are initialised already when it runs."""
    own = _ancestors(importer)
    return {module for module in {target, *_ancestors(target)} if module and module != importer and module not in own}


def _ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts))}


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module name -> the package's modules it imports."""
    paths = {module_name(package_dir, path): path for path in sorted(package_dir.rglob("*.py"))}
    return {name: _imported_names(name, path, set(paths)) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main(argv: list[str]) -> int:
    graph = import_graph(Path(argv[0] if argv else "edge_daemon"))
    for component in cycles(graph):
        print("cycle:", " <-> ".join(component))
        for module in component:
            print(f"  {module} imports {', '.join(sorted(graph[module] & set(component)))}")
    return 1 if cycles(graph) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
