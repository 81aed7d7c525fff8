"""The client's modules import each other in one direction, and import nothing heavy at once."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent

# The public face, and the modules the client was split into.
_CLIENT_MODULES = (
    "codex_telemetry._client",
    "codex_telemetry._telemetry",
    "codex_telemetry._gate",
    "codex_telemetry._worker",
    "codex_telemetry._lifecycle",
    "codex_telemetry._setup",
    "codex_telemetry._internal_errors",
    "codex_telemetry._stats",
    "codex_telemetry._runtime",
    "codex_telemetry.testing",
    "codex_telemetry._pytest_plugin",
)

# Imported by ``init()`` or a sink when needed, never when ``codex_telemetry`` is imported.
_HEAVY = (
    "pydantic_settings",
    "opentelemetry",
    "grpc",
    "google.protobuf",
    "codex_telemetry._settings",
)


def _modules(package: Path) -> dict[str, Path]:
    """Every module of ``package`` (a directory), by dotted name."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported_names(name: str, path: Path, *, at_import_only: bool) -> set[str]:
    """What the module imports: every ``import``, or (``at_import_only``) only those run
    when it is imported (not inside functions, not under ``TYPE_CHECKING``)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(nodes: Iterable[ast.stmt]) -> None:
        for node in nodes:
            if at_import_only and (
                _is_type_checking(node) or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            ):
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, *([base] if base else [])])
                found.update(f"{base}.{alias.name}" for alias in node.names)
                found.add(base)
            else:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        visit([child])
                    elif isinstance(child, ast.ExceptHandler):
                        visit(child.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


def _import_graph(package: Path, *, at_import_only: bool) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from p import m`` counts as ``p.m``
    when ``m`` is a module, else as ``p``)."""
    modules = _modules(package)
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imported_names(name, path, at_import_only=at_import_only):
            if imported in modules:
                targets.add(imported)
        # ``from p import m`` also lists ``p``: keep it only when nothing under it matched.
        graph[name] = {
            target
            for target in targets
            if not any(other.startswith(target + ".") for other in targets)
        } - {name}
    return graph


def _cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
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
            connect(node)
    return sorted(found)


@pytest.mark.parametrize("at_import_only", [True, False], ids=["at import", "any import"])
def test_no_client_module_is_in_an_import_cycle(at_import_only: bool) -> None:
    graph = _import_graph(_ROOT / "codex_telemetry", at_import_only=at_import_only)
    assert set(_CLIENT_MODULES) <= set(graph)
    involved = [cycle for cycle in _cycles(graph) if set(cycle) & set(_CLIENT_MODULES)]
    assert involved == []


def test_the_client_modules_import_nothing_heavy_when_imported() -> None:
    modules = _modules(_ROOT / "codex_telemetry")
    heavy = {
        module: sorted(
            imported
            for imported in _imported_names(module, modules[module], at_import_only=True)
            if imported.startswith(_HEAVY)
        )
        for module in _CLIENT_MODULES
        if module not in ("codex_telemetry.testing", "codex_telemetry._pytest_plugin")
    }
    assert heavy == {module: [] for module in heavy}


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import C\n"
    )
    (package / "c.py").write_text("def late():\n    from . import a\n")
    (package / "d.py").write_text("import pkg.a\n")
    assert _cycles(_import_graph(package, at_import_only=True)) == []
    assert _cycles(_import_graph(package, at_import_only=False)) == [["pkg.a", "pkg.b", "pkg.c"]]
