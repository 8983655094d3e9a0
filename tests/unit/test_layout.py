"""The package's layout rules, read from its imports (lazy ones inside functions included).

Each part of ``edge_daemon`` sits on one floor of ``LAYERS``; a module may import its own part and
any part on a lower floor, never one beside it or above it. docs/design/layout.md explains the floors.
"""

from __future__ import annotations

import ast

from tests.support.import_graph import cycles, import_graph, module_name
from tests.support.paths import ROOT

PACKAGE = ROOT / "edge_daemon"

# Lowest floor first. A part is a package or module under edge_daemon; the longest part that
# names a module is the one it belongs to (edge_daemon.models.prepare is not edge_daemon.models).
LAYERS: list[tuple[str, set[str]]] = [
    ("logging", {"logs"}),
    ("ground floor", {"messages", "counters", "progress", "clock", "config"}),
    ("model files and sample assets", {"models", "demo"}),
    ("plugins", {"detectors", "embedders", "sources"}),
    ("recognition", {"recognition"}),
    ("history and transports", {"history", "comms"}),
    ("pipeline", {"pipeline"}),
    ("service", {"service"}),
    ("offline tools", {"evaluation", "models.prepare"}),
    ("training", {"training"}),
    ("public API", {"api"}),
    ("command line", {"cli"}),
]


def part_of(module: str) -> str | None:
    """The part of ``LAYERS`` a module belongs to (None for the package's own ``__init__``)."""
    parts = module.split(".")[1:]
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if any(name in members for _, members in LAYERS):
            return name
    return None


def floor_of(part: str) -> int:
    return next(floor for floor, (_, members) in enumerate(LAYERS) if part in members)


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a part beside or above the importer's, as 'importer -> imported (why)'."""
    found = []
    for module, targets in sorted(graph.items()):
        part = part_of(module)
        if part is None:
            continue
        for target in sorted(targets):
            target_part = part_of(target)
            if target_part is None or target_part == part:
                continue
            if floor_of(target_part) >= floor_of(part):
                where = "beside" if floor_of(target_part) == floor_of(part) else "above"
                found.append(f"{module} -> {target} ({target_part} is {where} {part})")
    return found


# The service layer reads the daemon through its status snapshot; only the runner, which builds and
# runs the Daemon, holds the daemon itself.
SNAPSHOT = "edge_daemon.pipeline.status"
RUNNER, DAEMON = "edge_daemon.service.runner", "edge_daemon.pipeline.daemon"


def reaches_into_the_pipeline(graph: dict[str, set[str]]) -> list[str]:
    """Every pipeline module a service module imports besides the status snapshot (and the pipeline
    package, initialised on the way to it), as 'importer -> imported'."""
    found = []
    for module, targets in sorted(graph.items()):
        if part_of(module) != "service":
            continue
        allowed = {SNAPSHOT, "edge_daemon.pipeline"} | ({DAEMON} if module == RUNNER else set())
        found += [f"{module} -> {target}" for target in sorted(targets) if part_of(target) == "pipeline" and target not in allowed]
    return found


def daemon_handles(source: str) -> list[str]:
    """The parameters and attributes named ``daemon`` (or ``_daemon``) in a module: how a daemon
    would be handed to service code again."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.arg) and node.arg.lstrip("_") == "daemon":
            found.append(f"parameter {node.arg} (line {node.lineno})")
        elif isinstance(node, ast.Attribute) and node.attr.lstrip("_") == "daemon":
            found.append(f"attribute {node.attr} (line {node.lineno})")
    return sorted(found)


def test_no_import_cycle_in_the_package():
    assert cycles(import_graph(PACKAGE)) == []


def test_every_module_has_a_floor():
    unplaced = [module for module in import_graph(PACKAGE) if module != "edge_daemon" and part_of(module) is None]
    assert unplaced == []


def test_imports_go_down_the_floors():
    assert layering_violations(import_graph(PACKAGE)) == []


def test_the_layering_check_sees_an_upward_and_a_sideways_import():
    graph = {
        "edge_daemon.recognition.matcher": {"edge_daemon.pipeline.daemon", "edge_daemon.messages"},
        "edge_daemon.comms.mqtt": {"edge_daemon.history.store"},
        "edge_daemon.models.prepare.store": {"edge_daemon.models.files", "edge_daemon.detectors.yunet"},
    }
    assert layering_violations(graph) == [
        "edge_daemon.comms.mqtt -> edge_daemon.history.store (history is beside comms)",
        "edge_daemon.recognition.matcher -> edge_daemon.pipeline.daemon (pipeline is above recognition)",
    ]


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


def test_service_code_reads_the_daemon_only_through_its_status():
    assert reaches_into_the_pipeline(import_graph(PACKAGE)) == []
    handed = {
        module_name(PACKAGE, path): daemon_handles(path.read_text(encoding="utf-8"))
        for path in sorted((PACKAGE / "service").rglob("*.py"))
        if module_name(PACKAGE, path) != RUNNER
    }
    assert {module: names for module, names in handed.items() if names} == {}


def test_the_service_check_sees_the_daemon_imported_or_handed_in():
    graph = {
        "edge_daemon.service.health": {"edge_daemon.pipeline.status", "edge_daemon.pipeline", "edge_daemon.logs"},
        "edge_daemon.service.metrics": {"edge_daemon.pipeline.daemon", "edge_daemon.pipeline"},
        "edge_daemon.service.runner": {"edge_daemon.pipeline.daemon", "edge_daemon.pipeline.capture"},
    }
    assert reaches_into_the_pipeline(graph) == [
        "edge_daemon.service.metrics -> edge_daemon.pipeline.daemon",
        "edge_daemon.service.runner -> edge_daemon.pipeline.capture",
    ]
    source = "class Collector:\n    def __init__(self, daemon):\n        self._daemon = daemon\n"
    assert daemon_handles(source) == ["attribute _daemon (line 3)", "parameter daemon (line 2)"]
    assert daemon_handles("import threading\nthreading.Thread(target=print, daemon=True)\n") == []
