"""The package's shape: what each package exports, which errors the root exports, what ``lagoa --help``
loads, and the import-linter contracts in pyproject.toml (layers, independence, no cycles)."""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import pkgutil
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from types import ModuleType

import grimp

import lagoa
from lagoa.core.errors import LagoaError

ROOT = Path(__file__).resolve().parents[1]


def _raise(name: str) -> None:
    raise ImportError(f"could not import {name} while walking lagoa")


RUNS_ELSEWHERE = {"lagoa.deploy.airflow.lagoa_airflow"}
"""Modules Lagoa ships for another program to import (Airflow), never imported by Lagoa."""


@cache
def _all_modules() -> tuple[ModuleType, ...]:
    """Every module of lagoa, imported (pkgutil imports the packages, this the rest)."""
    modules = [lagoa]
    for info in pkgutil.walk_packages(lagoa.__path__, "lagoa.", onerror=_raise):
        if info.name in RUNS_ELSEWHERE:
            continue
        modules.append(importlib.import_module(info.name))
    return tuple(modules)


def _public_names(module: ModuleType) -> set[str]:
    """The names a package's ``__init__`` defines or imports, less private names, modules and
    ``from __future__ import annotations``."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and name != "annotations" and not inspect.ismodule(value)
    }


def _submodules(module: ModuleType) -> set[str]:
    """The package's own submodules bound as attributes (``__all__`` may list them, need not)."""
    return {
        name
        for name, value in vars(module).items()
        if inspect.ismodule(value) and value.__name__ == f"{module.__name__}.{name}"
    }


def test_every_module_imports() -> None:
    names = [module.__name__ for module in _all_modules()]
    assert "lagoa.core.errors" in names
    assert len(names) == len(set(names))


def test_each_package_exports_exactly_its_public_names() -> None:
    wrong = {}
    for module in _all_modules():
        if module is lagoa or not hasattr(module, "__path__") or "__all__" not in vars(module):
            continue
        exported = list(module.__all__)
        public = _public_names(module)
        duplicated = sorted({name for name in exported if exported.count(name) > 1})
        missing = sorted(public - set(exported))
        unknown = sorted(set(exported) - public - _submodules(module))
        if duplicated or missing or unknown:
            wrong[module.__name__] = {
                "not in __all__": missing,
                "in __all__, not defined": unknown,
                "repeated in __all__": duplicated,
            }
    assert not wrong, wrong


def test_root_exports_its_lazy_names_and_version() -> None:
    assert len(lagoa.__all__) == len(set(lagoa.__all__))
    assert set(lagoa.__all__) == set(lagoa._EXPORTS) | {"__version__"}
    for name in lagoa.__all__:
        value = getattr(lagoa, name)
        if name in lagoa._EXPORTS:
            assert value is getattr(importlib.import_module(lagoa._EXPORTS[name]), name), name


def test_root_type_checking_imports_match_the_lazy_names() -> None:
    """What mypy sees (the ``if TYPE_CHECKING:`` block) is what ``__getattr__`` gives."""
    assert lagoa.__file__ is not None
    tree = ast.parse(Path(lagoa.__file__).read_text())
    seen: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.dump(statement)
                assert statement.module is not None
                for alias in statement.names:
                    seen[alias.asname or alias.name] = statement.module
    assert seen == lagoa._EXPORTS


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def test_every_lagoa_error_is_exported_from_the_root() -> None:
    _all_modules()
    errors = {
        cls
        for cls in _subclasses(LagoaError) | {LagoaError}
        if cls.__module__ == "lagoa" or cls.__module__.startswith("lagoa.")
    }
    assert len(errors) > 1
    missing = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in errors
        if cls.__name__ not in lagoa.__all__ or getattr(lagoa, cls.__name__, None) is not cls
    )
    assert not missing, f"not exported from lagoa: {missing}"


HELP_PROBE = """
import sys
from lagoa.cli import main
main(["--help"], standalone_mode=False)
heavy = sorted(
    name for name in sys.modules if name.partition(".")[0] in {"duckdb", "pyiceberg", "dbt"}
)
print("HEAVY:", heavy, file=sys.stderr)
sys.exit(1 if heavy else 0)
"""


def test_help_loads_neither_duckdb_pyiceberg_nor_dbt() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert probe.returncode == 0, probe.stderr
    assert "Usage:" in probe.stdout


LOAD_PROBE = """
import sys
from lagoa.orchestrate.project import Project
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"pyarrow", "dbt", "great_expectations", "psycopg"})
stages = sorted(m for m in sys.modules if m.split(".")[:2] in (
    ["lagoa", "sources"], ["lagoa", "silver"], ["lagoa", "quality"], ["lagoa", "transform"], ["lagoa", "publish"]))
print(heavy[:5], stages)
"""


def test_loading_a_project_defers_the_stages_and_their_heavy_imports() -> None:
    """Every command loads the project first: what it imports is every command's start-up time
    (pyarrow.parquet alone is 0.45 s here). Stages are imported by the methods that use them."""
    probe = subprocess.run(
        [sys.executable, "-c", LOAD_PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[] []", probe.stdout


def test_every_top_level_module_is_in_a_layer() -> None:
    """The layers contract only checks the modules it names: a new top-level module would slip past
    it, so each must be given a layer (or be the root's ``__main__``)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layered = {
        module.strip().strip("()")
        for contract in config["contracts"]
        if contract["type"] == "layers"
        for layer in contract["layers"]
        for module in layer.split("|")
    }
    top_level = {info.name for info in pkgutil.iter_modules(lagoa.__path__, "lagoa.")} - {"lagoa.__main__"}
    stray = sorted(top_level - layered)
    assert not stray, f"top-level modules in no layer of pyproject.toml: {stray}"


def test_import_contracts_hold() -> None:
    """The import-linter contracts of pyproject.toml, so that `pytest` alone catches a broken one."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports"
    )
    assert lint_imports is not None, "lint-imports is not installed (pip install -e '.[dev]')"
    result = subprocess.run(
        [lint_imports, "--no-logo", "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import graph's cycles, as its strongly connected components of two or more modules
    (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
            elif child in on_stack:
                low[module] = min(low[module], index[child])
    return sorted(components)


def _line_numbers(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    return ", ".join(
        str(detail["line_number"])
        for detail in graph.get_import_details(importer=importer, imported=imported)
    )


def test_no_module_is_in_an_import_cycle() -> None:
    """No two modules anywhere form a cycle, imports under ``if TYPE_CHECKING:`` included (grimp
    counts them). The ``acyclic_siblings`` contract checks siblings only; this also catches a
    package's ``__init__`` in a cycle with its own submodules (``lagoa.cli -> lagoa.cli.app ->
    lagoa.cli``), which that contract does not."""
    graph = grimp.build_graph("lagoa", cache_dir=None)
    report = []
    for component in _strongly_connected(graph):
        first = component[0]
        # One cycle through the component's first module, to show where to cut.
        example = min(
            (
                (first, *chain)
                for imported in graph.find_modules_directly_imported_by(first)
                if imported in component
                and (chain := graph.find_shortest_chain(importer=imported, imported=first)) is not None
            ),
            key=len,
        )
        lines = "\n".join(
            f"    {importer} -> {imported} (line {_line_numbers(graph, importer, imported)})"
            for importer, imported in itertools.pairwise(example)
        )
        report.append(f"{len(component)} modules in a cycle: {', '.join(component)}\n  e.g.\n{lines}")
    assert not report, "import cycles:\n" + "\n".join(report)
