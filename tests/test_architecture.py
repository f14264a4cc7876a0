"""The package's layout holds (README "Code map"): no import circles, and the engine stays pure.

Read from the source with ``ast``, imports inside functions included (a deferred import
hides a circle, it does not remove it); nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "engscore"

#: What the engine may import from engscore: itself, and the modules that describe data
#: and configuration without touching files (column names, errors, durations, instants,
#: the rules and RFM-map models, the presets' value parsers).
ENGINE_MAY_IMPORT = (
    "engscore.engine",
    "engscore.schema",
    "engscore.errors",
    "engscore.durations",
    "engscore.timestamps",
    "engscore.rules",
    "engscore.rfm_map",
    "engscore.presets.base",
)
#: The edges and use cases: they read and write files, and call the engine.
EDGES = (
    "engscore.io",
    "engscore.cli",
    "engscore.score",
    "engscore.explain",
    "engscore.segments",
    "engscore.report",
    "engscore.run",
    "engscore.health",
    "engscore.providers",
    "engscore.config",
    "engscore.mapping",
    "engscore.ui",
)
#: Standard-library modules that reach the file system or the process: edge business.
IO_MODULES = {"os", "io", "pathlib", "shutil", "glob", "tempfile", "gzip", "subprocess", "sys"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """Every module ``name`` imports (engscore's resolved to modules; others by top name)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                # ``from engscore.io import outputs`` imports the module engscore.io.outputs.
                submodule = f"{module}.{alias.name}"
                found.add(submodule if submodule in MODULES else module)
    return found


GRAPH = {name: {m for m in _imports(name) if m in MODULES} for name in MODULES}


def _cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), and self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node]):
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
            if len(component) > 1 or node in GRAPH[node]:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_circles() -> None:
    assert _cycles() == []


def test_the_engine_imports_no_edge_module() -> None:
    engine = [name for name in MODULES if name.startswith("engscore.engine")]
    assert engine, "no engine modules found"
    wrong = {
        name: sorted(
            m
            for m in _imports(name)
            if (m.startswith("engscore") and not m.startswith(ENGINE_MAY_IMPORT))
            or m.split(".")[0] in IO_MODULES
        )
        for name in engine
    }
    assert {name: bad for name, bad in wrong.items() if bad} == {}


def _reached(name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        for target in GRAPH[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_the_engine_reaches_no_edge_module_through_another() -> None:
    """Nothing the engine imports brings the file readers, the outputs, the use cases or the
    command line in through the back door."""
    engine = [name for name in MODULES if name.startswith("engscore.engine")]
    reached = {name: sorted(m for m in _reached(name) if m.startswith(EDGES)) for name in engine}
    assert {name: bad for name, bad in reached.items() if bad} == {}


@pytest.mark.parametrize("name", ["CONTACT", "EVENT_TYPE", "TIMESTAMP"])
def test_column_names_have_one_home(name: str) -> None:
    homes = [
        module
        for module, path in MODULES.items()
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    ]
    assert homes == ["engscore.schema"]


def test_the_checks_see_a_circle_and_an_edge_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph is real: a planted circle is found."""
    planted = {**GRAPH, "engscore.schema": {*GRAPH["engscore.schema"], "engscore.engine.exprs"}}
    monkeypatch.setattr(f"{__name__}.GRAPH", planted)
    assert ["engscore.engine.exprs", "engscore.schema"] in _cycles()
