"""The layout's contracts, read from the source with `ast`: one-way subpackages, no import
circle, no private name across modules, the dashboard and benchmarks on public names only."""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CORE = "pneumonet_core"
# Lowest first: a subpackage may import only itself and those before it (docs/ARCHITECTURE.md).
LAYERS = (
    "utils",
    "storage",
    "metrics",
    "imaging",
    "data",
    "models",
    "inference",
    "governance",
    "training",
    "pacs",
    "cli",
)
MAX_MODULE_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(package: str) -> dict[str, Path]:
    return {module_name(path): path for path in sorted((PROJECT_ROOT / package).rglob("*.py"))}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every module of `known` that `path` imports, lazily inside functions too.

    `from package import submodule` is an edge to the submodule, not to the package.
    """
    own = module_name(path)
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                anchor = own.split(".") if is_package else own.split(".")[:-1]
                base = ".".join(anchor[: len(anchor) - node.level + 1] + [node.module])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else base)
    return {name for name in found if name in known and name != own}


def import_graph(*packages: str) -> dict[str, set[str]]:
    modules = {}
    for package in packages:
        modules.update(package_modules(package))
    known = set(modules)
    return {name: imported_modules(path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state[target] == 1:
                return stack[stack.index(target) :] + [target]
            if state[target] == 0 and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state[node] == 0 and (cycle := visit(node)):
            return cycle
    return None


def subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == CORE and parts[1] in LAYERS else None


def test_find_cycle_reports_a_circle_and_accepts_a_chain():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_every_core_subpackage_is_in_the_layer_order():
    folders = {path.parent.name for path in (PROJECT_ROOT / CORE).glob("*/__init__.py")}
    assert folders <= set(LAYERS), folders - set(LAYERS)


@pytest.mark.parametrize("packages", [(CORE,), ("dashboard",), (CORE, "dashboard")])
def test_no_import_circle(packages):
    cycle = find_cycle(import_graph(*packages))
    assert cycle is None, " -> ".join(cycle)


def test_subpackages_depend_one_way():
    wrong = []
    for module, targets in import_graph(CORE).items():
        source = subpackage(module)
        for target in targets:
            goal = subpackage(target)
            if source and goal and LAYERS.index(goal) > LAYERS.index(source):
                wrong.append(f"{module} imports {target}")
            if source is None and module != CORE and goal:
                wrong.append(f"{module} (outside the subpackages) imports {target}")
    assert not wrong, wrong


def test_core_never_imports_the_dashboard_or_test_support():
    for path in package_modules(CORE).values():
        text = path.read_text()
        assert "import dashboard" not in text and "from dashboard" not in text, path
        assert "pneumonet_testing" not in text, path


def private_names_across_modules(path: Path) -> list[str]:
    """`from X import _name` or `module._name` where X is another pneumonet or dashboard module."""
    own = module_name(path)
    tree = ast.parse(path.read_text())
    imported_aliases = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if not node.module.startswith((CORE, "dashboard")) or node.module == own:
                continue
            for alias in node.names:
                imported_aliases.add(alias.asname or alias.name)
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{own}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported_aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{own}: {node.value.id}.{node.attr}")
    return found


def test_no_private_name_crosses_a_module_line():
    found = []
    for package in (CORE, "dashboard", "bench"):
        for path in package_modules(package).values():
            found += private_names_across_modules(path)
    assert not found, found


def public_api_violations(path: Path) -> list[str]:
    """Imports from `pneumonet_core` that reach past a subpackage's `__init__` names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.ImportFrom) and node.module):
            continue
        parts = node.module.split(".")
        if parts[0] != CORE:
            continue
        if len(parts) > 2:
            found.append(f"{module_name(path)}: from {node.module} import ...")
            continue
        public = set(getattr(importlib.import_module(node.module), "__all__", ()))
        if len(parts) == 1:
            public |= set(LAYERS) | {"CLASS_NAMES", "INTENDED_USE", "__version__"}
        found += [
            f"{module_name(path)}: {node.module}.{alias.name} is not public"
            for alias in node.names
            if alias.name not in public
        ]
    return found


def test_dashboard_and_benchmarks_use_only_public_names():
    found = []
    for package in ("dashboard", "bench"):
        for path in package_modules(package).values():
            found += public_api_violations(path)
    assert not found, found


def test_every_subpackage_names_its_public_api():
    for layer in LAYERS:
        if not (PROJECT_ROOT / CORE / layer / "__init__.py").exists():
            continue
        package = importlib.import_module(f"{CORE}.{layer}")
        assert package.__doc__, layer
        names = getattr(package, "__all__", None)
        assert names, f"{layer} has no __all__"
        missing = [name for name in names if not hasattr(package, name)]
        assert not missing, f"{layer}.__all__ names what it lacks: {missing}"


@pytest.mark.parametrize("package", [CORE, "dashboard"])
def test_no_module_over_the_line_limit(package):
    long = {
        name: lines
        for name, path in package_modules(package).items()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_a_circle_or_a_wrong_direction_is_caught(tmp_path, monkeypatch):
    """The checks above fail on a real violation (a module importing upwards)."""
    fake = tmp_path / CORE
    for layer in ("utils", "cli"):
        (fake / layer).mkdir(parents=True)
        (fake / layer / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "utils" / "low.py").write_text("from pneumonet_core.cli import high\n")
    (fake / "cli" / "high.py").write_text("from pneumonet_core.utils import low\n")
    monkeypatch.setattr(f"{__name__}.PROJECT_ROOT", tmp_path)
    graph = import_graph(CORE)
    assert find_cycle(graph)
    with pytest.raises(AssertionError, match="imports"):
        test_subpackages_depend_one_way()
