"""The package's import graph has no cycle: every module imports the package's own modules at its top, so a cycle
would be an import error (or a half-initialised module) waiting for the right import order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import airflow_provider_sesexport

PACKAGE = "airflow_provider_sesexport"
#: Not part of the provider: its own distribution (it imports nothing of the provider).
EXCLUDED = (f"{PACKAGE}.emulator",)


def _excluded(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in EXCLUDED)


def package_modules(root: Path, package: str) -> dict[str, Path]:
    """
    Every module of ``package`` by dotted name (a package by its name, for its ``__init__.py``).

    :param root: the package's directory.
    :param package: its dotted name.
    """
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join((package, *parts[:-1])) if parts[-1] == "__init__" else ".".join((package, *parts))
        if not _excluded(name):
            modules[name] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _run_at_import(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of ``body`` that run when the module is imported (not function bodies, not TYPE_CHECKING)."""
    run: list[ast.stmt] = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        run.append(node)
        if isinstance(node, ast.If):
            run += _run_at_import(node.orelse if _is_type_checking(node.test) else node.body + node.orelse)
        elif isinstance(node, ast.Try):
            blocks = node.body + node.orelse + node.finalbody
            run += _run_at_import(blocks + [stmt for handler in node.handlers for stmt in handler.body])
        elif isinstance(node, (ast.ClassDef, ast.With)):
            run += _run_at_import(node.body)
    return run


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """
    The modules of ``package`` each module imports when it is imported (its module-level imports).

    :param root: the package's directory.
    :param package: its dotted name.
    """
    modules = package_modules(root, package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in _run_at_import(ast.parse(path.read_text(), str(path)).body):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = ".".join(filter(None, (base if node.level else "", node.module or "")))
                targets.add(source)
                targets.update(f"{source}.{alias.name}" for alias in node.names)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """
    Cycles of ``graph``, each as the modules along it with the first repeated at the end (at least one per cycle
    a depth-first walk meets; none when the graph has no cycle).

    :param graph: each node's successors.
    """
    cycles: list[list[str]] = []
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> None:
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target)
        path.pop()
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node)
    return cycles


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(Path(airflow_provider_sesexport.__file__).parent, PACKAGE)
    assert f"{PACKAGE}.hooks._download" in graph[f"{PACKAGE}.hooks.ses_export"]  # the walk sees real edges
    assert sum(map(len, graph.values())) > 50
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_job_status_module_and_the_download_machinery_import_no_hook() -> None:
    graph = import_graph(Path(airflow_provider_sesexport.__file__).parent, PACKAGE)
    for leaf in ("utils.export_job", "hooks._download"):
        assert not {m for m in graph[f"{PACKAGE}.{leaf}"] if m.startswith(f"{PACKAGE}.hooks.ses_export")}, leaf
    assert f"{PACKAGE}.utils.export_job" in graph[f"{PACKAGE}.hooks.ses_export"]


def test_find_cycles_names_each_cycle() -> None:
    acyclic = {"a": {"b", "c"}, "b": {"c"}, "c": set()}
    assert find_cycles(acyclic) == []
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": {"b"}}) == [["b", "b"]]


@pytest.fixture
def toy_package(tmp_path: Path) -> Path:
    root = tmp_path / "toy"
    (root / "sub").mkdir(parents=True)
    for init in (root / "__init__.py", root / "sub" / "__init__.py"):
        init.write_text("")
    return root


def test_a_module_level_cycle_is_found_through_every_import_form(toy_package: Path) -> None:
    (toy_package / "a.py").write_text("from toy.sub import b\n")
    (toy_package / "sub" / "b.py").write_text("try:\n    from .. import c\nexcept ImportError:\n    pass\n")
    (toy_package / "c.py").write_text("class C:\n    import toy.a\n")
    assert find_cycles(import_graph(toy_package, "toy")) == [["toy.a", "toy.sub.b", "toy.c", "toy.a"]]


def test_imports_inside_functions_and_for_type_checking_only_make_no_cycle(toy_package: Path) -> None:
    (toy_package / "a.py").write_text("from toy import b\n")
    (toy_package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy import a\ndef f():\n    from toy import a\n"
    )
    graph = import_graph(toy_package, "toy")
    assert graph["toy.a"] == {"toy", "toy.b"} and graph["toy.b"] == set()
    assert find_cycles(graph) == []
