"""The benchmarks are a package run from the repository root as ``python -m bench.NAME``: every module
imports without running, none edits ``sys.path``, and the imports inside their functions (run only
in some modes) name modules that exist."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import pkgutil
from unittest import mock

import pytest

import bench
from tests.support.paths import ROOT

BENCH = ROOT / "bench"
MODULES = sorted(info.name for info in pkgutil.iter_modules(bench.__path__))
FIRST_PARTY = ("bench", "edge_daemon", "tests")
# Modules beside a benchmark or a test helper, which a bare ``import walking`` once reached through sys.path.
SIBLINGS = set(MODULES) | {info.name for info in pkgutil.iter_modules([str(ROOT / "tests" / "support")])}


def imported_modules(path) -> list[str]:
    """Every absolute import in the file, at the top or inside a function."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("name", MODULES)
def test_imports_without_running(name):
    # bench.detect and bench.embed set thread and log variables for their own process: not this one's.
    with mock.patch.dict(os.environ):
        module = importlib.import_module(f"bench.{name}")
    assert name == "common" or callable(module.main)


def test_no_benchmark_edits_sys_path():
    assert [path.name for path in sorted(BENCH.glob("*.py")) if "sys.path" in path.read_text()] == []


@pytest.mark.parametrize("name", MODULES)
def test_imports_inside_functions_exist(name):
    imported = imported_modules(BENCH / f"{name}.py")
    assert [module for module in imported if module.split(".")[0] in SIBLINGS] == []
    first_party = [module for module in imported if module.split(".")[0] in FIRST_PARTY]
    assert [module for module in first_party if importlib.util.find_spec(module) is None] == []
