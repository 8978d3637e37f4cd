"""The project's import graph, read from the source (ast, imports inside functions included):
no cycles, the layers' rules hold, nothing imports tests/conftest.py, the launcher client
starts on the standard library."""

from __future__ import annotations

import ast
import sys

from tests.helpers.paths import REPO

# nnisuite's packages, lowest layer first: a module may import its own package and those before
# it, never one after it (no arrow runs back up). nni_patches and launcher are process plumbing
# that trials may not see; analysis reads NNI's records; study runs experiments on NNI, nas runs
# NAS studies through study's session; deploy hands over the best model; benchmarks measure all.
LAYERS = (
    "base",  # nnisuite.runtime, outputs, flags: the standard library only
    "nni_patches",
    "models",
    "trials",
    "launcher",
    "config",
    "analysis",
    "study",
    "nas",
    "deploy",
    "benchmarks",
    "nnisuite",  # the package itself: cli, shipped, runtime
)
# the one arrow back up, inside a function: a repeated study's plan may be a NAS study, whose
# experiments nas.study builds
UPWARD = {
    ("nnisuite.study.repeat", "nnisuite.nas.study"),
    ("nnisuite.study.repeat", "nnisuite.nas"),
}
BASE = {"nnisuite.runtime", "nnisuite.outputs", "nnisuite.flags", "nnisuite.signals"}
# modules of the package itself that sit in a lower layer: the shipped files are read as
# experiment files (config.validate finds them by name)
PLACED = {"nnisuite.shipped": "config"}
FOLDERS = [layer for layer in LAYERS if layer not in ("base", "nnisuite")] + ["nnisuite"]


def module_name(path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if parts[0] == "tests":
        return ".".join(parts)
    return ".".join(["nnisuite", *parts[1 if parts[0] == "nnisuite" else 0 :]])


def project_modules() -> dict[str, object]:
    files = {}
    for folder in [*FOLDERS, "tests"]:
        for path in sorted((REPO / folder).rglob("*.py")):
            files[module_name(path)] = path
    return files


def layer(module: str) -> str:
    """The layer a module belongs to: nnisuite.trials.mlp -> trials; nnisuite.cli -> nnisuite."""
    parts = module.split(".")
    if module in BASE:
        return "base"
    if module in PLACED:
        return PLACED[module]
    if parts[0] != "nnisuite":
        return parts[0]
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "nnisuite"


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
    tree = ast.parse("def f():\n    from nnisuite.study.run import main\n")
    modules = {"nnisuite.study", "nnisuite.study.run"}
    assert imported(tree, modules) == {"nnisuite.study", "nnisuite.study.run"}


def test_every_module_is_in_a_layer():
    assert {layer(m) for m in project_modules() if m.startswith("nnisuite")} <= set(LAYERS)


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_nothing_imports_conftest():
    graph = import_graph()
    assert not [m for m, deps in graph.items() if "tests.conftest" in deps]


def back_arrows(graph: dict[str, set[str]]) -> list[str]:
    """Imports of a later layer than the importer's (LAYERS), UPWARD aside; the package itself
    (nnisuite/__init__: its lazy import of nni) is below everything."""
    order = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    for module, deps in graph.items():
        if not module.startswith("nnisuite"):
            continue
        for dep in deps:
            if dep == "nnisuite" or (module, dep) in UPWARD:
                continue
            if order[layer(dep)] > order[layer(module)]:
                bad.append(f"{module} -> {dep}")
    return sorted(bad)


def test_no_arrow_runs_back_up():
    assert back_arrows(import_graph()) == []


def test_the_checker_sees_an_arrow_back_up():
    graph = {"nnisuite.trials.mlp": {"nnisuite", "nnisuite.study.run", "nnisuite.models.mlp"}}
    assert back_arrows(graph) == ["nnisuite.trials.mlp -> nnisuite.study.run"]


def test_analysis_reads_records_and_models_stay_pure():
    """models import nothing of nnisuite; analysis never runs trial code (attention maps aside:
    they load a trained model and its data)."""
    allowed = {"nnisuite.analysis.attention"}
    bad = []
    for module, deps in import_graph().items():
        for dep in deps - {"nnisuite"}:
            if layer(module) == "models" and layer(dep) != "models":
                bad.append(f"{module} -> {dep}")
            if layer(module) == "analysis" and module not in allowed:
                if layer(dep) == "trials":
                    bad.append(f"{module} -> {dep}")
    assert not bad


def test_the_launcher_client_needs_only_the_standard_library():
    graph = import_graph()
    reach, todo = set(), ["nnisuite.launcher.client"]
    while todo:
        module = todo.pop()
        if module not in reach:
            reach.add(module)
            todo += graph[module]
    assert reach == {
        "nnisuite",
        "nnisuite.launcher",
        "nnisuite.launcher.client",
        "nnisuite.launcher.protocol",
        "nnisuite.nni_patches",
        "nnisuite.nni_patches.lazy_import",
    }
    for module in reach:
        path = project_modules()[module]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names += [node.module] if isinstance(node, ast.ImportFrom) else []
                for name in names:
                    top = (name or "").split(".")[0]
                    assert top in sys.stdlib_module_names or top in ("nnisuite", "__future__"), (
                        module,
                        name,
                    )
