"""The package's layout rules, read from its imports (lazy ones inside functions included)."""

from __future__ import annotations

from pathlib import Path

from import_graph import cycles, import_graph

PACKAGE = Path(__file__).resolve().parents[1] / "edge_daemon"
GROUND_FLOOR = {"edge_daemon.config", "edge_daemon.messages", "edge_daemon.logs"}
TOP_FLOOR = "edge_daemon.api", "edge_daemon.cli"


def test_no_import_cycle_in_the_package():
    assert cycles(import_graph(PACKAGE)) == []


def test_the_checker_sees_a_cycle_closed_by_a_lazy_import(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub import leaf\n")
    (package / "sub" / "leaf.py").write_text("def f():\n    from ..top import helper\n    return helper\n")
    (package / "top.py").write_text("from pkg.sub.leaf import f\nhelper = 1\n")
    (package / "alone.py").write_text("import pkg.top\n")
    assert cycles(import_graph(package)) == [["pkg.sub", "pkg.sub.leaf", "pkg.top"]]


def test_the_checker_sees_a_cycle_through_a_package_initialised_on_the_way(tmp_path):
    """Importing ``pkg.registry.base`` runs ``pkg/registry/__init__.py`` first, and a registry there
    imports its backends: a backend that needs the importer closes a cycle Python trips over."""
    package = tmp_path / "pkg"
    (package / "registry").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "registry" / "__init__.py").write_text("from pkg.registry import backend\n")
    (package / "registry" / "base.py").write_text("class Base: ...\n")
    (package / "registry" / "backend.py").write_text("from pkg.registry.base import Base\nfrom pkg.store import load\n")
    (package / "store.py").write_text("from pkg.registry.base import Base\ndef load(): ...\n")
    assert cycles(import_graph(package)) == [["pkg.registry", "pkg.registry.backend", "pkg.store"]]


def test_ground_floor_imports_nothing_of_the_package():
    graph = import_graph(PACKAGE)
    assert {module: graph[module] for module in GROUND_FLOOR} == {module: set() for module in GROUND_FLOOR}


def test_nothing_below_the_top_floor_imports_it():
    graph = import_graph(PACKAGE)
    upward = {
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if target.startswith(TOP_FLOOR) and not module.startswith("edge_daemon.cli")
    }
    assert upward == set()
