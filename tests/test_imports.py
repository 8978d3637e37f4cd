"""The project's import graph, read from the source (ast, imports inside functions included):
no cycles, the layers' rules hold, nothing imports tests/conftest.py, the launcher client
starts on the standard library."""

from __future__ import annotations

import ast
import sys

import pytest

from launcher import REPO

PACKAGES = ("launcher", "trials", "models", "nas", "analysis", "experiments", "benchmarks", "tests")


def module_name(path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict[str, object]:
    files = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            files[module_name(path)] = path
    return files


def imported(tree: ast.AST, modules: dict) -> set[str]:
    """Project modules a file imports anywhere (top level or inside functions), with the
    packages whose __init__ the import runs."""
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if candidate in modules:
                    found.add(candidate)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[name] = imported(tree, modules) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_are_edges():
    tree = ast.parse("def f():\n    from experiments.run import main\n")
    assert imported(tree, {"experiments", "experiments.run"}) == {"experiments", "experiments.run"}


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_nothing_imports_conftest():
    graph = import_graph()
    assert not [m for m, deps in graph.items() if "tests.conftest" in deps]


@pytest.mark.parametrize(
    "layer, forbidden",
    [
        ("models", ("trials", "nas", "analysis", "experiments", "launcher", "benchmarks")),
        ("trials", ("nas", "analysis", "experiments", "launcher", "benchmarks")),
        ("launcher", ("nas", "analysis", "experiments", "benchmarks")),
        ("analysis", ("trials", "nas", "benchmarks")),
    ],
)
def test_layers(layer, forbidden):
    """models are pure; trials know nothing of how they are started or analysed; analysis
    reads what NNI stored (attention maps may build a model)."""
    allowed = {"analysis.attention": ("models", "trials")}
    bad = []
    for module, deps in import_graph().items():
        if module.split(".")[0] != layer:
            continue
        for dep in deps:
            top = dep.split(".")[0]
            if top in forbidden and top not in allowed.get(module, ()):
                bad.append(f"{module} -> {dep}")
    assert not bad


def test_the_launcher_client_needs_only_the_standard_library():
    graph = import_graph()
    reach, todo = set(), ["launcher.client"]
    while todo:
        module = todo.pop()
        if module not in reach:
            reach.add(module)
            todo += graph[module]
    assert reach == {"launcher", "launcher.client", "launcher.protocol", "launcher.nni_import"}
    for module in reach:
        path = project_modules()[module]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names += [node.module] if isinstance(node, ast.ImportFrom) else []
                for name in names:
                    top = (name or "").split(".")[0]
                    assert top in sys.stdlib_module_names or top in ("launcher", "__future__"), (
                        module,
                        name,
                    )
