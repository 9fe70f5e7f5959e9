"""The apps' import graph keeps its layers (STYLE.md « Layout »).

pvd (kernel) < communes < conventions, postes, actions < gouvernance, rappels, tableaux, carte,
club < portail
(shell). An app imports the layers below it; an import the other way (« up ») needs a
reason written in UPWARD below. Every ``import``/``from … import`` counts, at module level
or inside a function: a function-level import still ties the two apps together. Only the
blocks under ``if TYPE_CHECKING:`` are left out (they never run: type hints only).
Migrations are left out too (frozen history).

Run it as a script to print the graph: ``python -m tests.test_architecture``.
"""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "pvd": 0,
    "communes": 1,
    "conventions": 2,
    "postes": 2,
    "actions": 2,
    # Instances, meetings and decisions link conventions and fiches; reminders and
    # dashboards read them.
    "gouvernance": 3,
    "rappels": 3,
    "tableaux": 3,
    "carte": 3,
    "club": 3,
    "portail": 4,
    # Open data and the API read the apps above; only portail/urls.py imports them.
    "opendata": 4,
    "api": 4,
}
FEATURE_APPS = set(LAYERS) - {"pvd"}

# The imports allowed to run back up the layers, each with its reason: (importer, imported).
UPWARD: dict[tuple[str, str], str] = {}


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(tree: ast.AST):
    """(line, module) of every import in the tree, except under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        stack.extend(ast.iter_child_nodes(node))


def app_files(app: str, root: Path = ROOT):
    for path in sorted((root / app).rglob("*.py")):
        if "migrations" not in path.relative_to(root).parts:
            yield path


def import_graph(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """{(importer app, imported app): ["file:line module", …]} between the project's apps."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for app in LAYERS:
        for path in app_files(app, root):
            for line, module in _imports(ast.parse(path.read_text(), str(path))):
                target = module.split(".")[0]
                if target in LAYERS and target != app:
                    edges[app, target].append(f"{path.relative_to(root)}:{line} {module}")
    return dict(edges)


def cycles(edges) -> list[list[str]]:
    """The strongly connected components of more than one app (Tarjan)."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for app in LAYERS:
        if app not in index:
            visit(app)
    return components


def upward(edges) -> dict[tuple[str, str], list[str]]:
    return {(a, b): where for (a, b), where in edges.items() if LAYERS[b] > LAYERS[a]}


def views_importing_views(root: Path = ROOT) -> list[str]:
    """A views module importing another app's views module."""
    found = []
    for app in LAYERS:
        for path in app_files(app, root):
            if not (path.name == "views.py" or path.name.endswith("_views.py")):
                continue
            for line, module in _imports(ast.parse(path.read_text(), str(path))):
                parts = module.split(".")
                if parts[0] in LAYERS and parts[0] != app and "views" in parts[1:]:
                    found.append(f"{path.relative_to(root)}:{line} {module}")
    return found


def modules_importing_template_tags(root: Path = ROOT) -> list[str]:
    """Code (not a template tag library) importing a template tag library: the filter's
    work belongs in a plain module both can import."""
    found = []
    for app in LAYERS:
        for path in app_files(app, root):
            if "templatetags" in path.relative_to(root).parts:
                continue
            for line, module in _imports(ast.parse(path.read_text(), str(path))):
                if module.split(".")[0] in LAYERS and "templatetags" in module.split("."):
                    found.append(f"{path.relative_to(root)}:{line} {module}")
    return found


def test_no_import_cycle_between_the_apps():
    assert cycles(import_graph()) == []


def test_the_kernel_imports_no_feature_app():
    edges = import_graph()
    assert {(a, b): w for (a, b), w in edges.items() if a == "pvd"} == {}


def test_imports_running_back_up_the_layers_are_few_and_explained():
    found = upward(import_graph())
    assert set(found) <= set(UPWARD), {k: v for k, v in found.items() if k not in UPWARD}
    assert len(found) <= 3


def test_no_views_module_imports_another_apps_views():
    assert views_importing_views() == []


def test_only_template_tags_import_template_tags():
    assert modules_importing_template_tags() == []


def test_the_graph_sees_function_level_imports(tmp_path):
    """The checks above cannot pass by missing an import hidden in a function."""
    (tmp_path / "pvd").mkdir()
    (tmp_path / "pvd" / "x.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from actions.models import Axe\n"
        "def f():\n    from communes import models\n"
    )
    (tmp_path / "communes").mkdir()
    (tmp_path / "communes" / "y.py").write_text("import pvd.models\n")
    edges = import_graph(tmp_path)
    assert edges == {
        ("pvd", "communes"): ["pvd/x.py:5 communes"],
        ("communes", "pvd"): ["communes/y.py:1 pvd.models"],
    }
    assert cycles(edges) == [["communes", "pvd"]]
    assert list(upward(edges)) == [("pvd", "communes")]


if __name__ == "__main__":
    graph = import_graph()
    for (a, b), where in sorted(graph.items()):
        mark = "  (up)" if LAYERS[b] > LAYERS[a] else ""
        print(f"{a} -> {b}: {len(where)}{mark}")
    print("cycles:", cycles(graph))
    for edge, where in sorted(upward(graph).items()):
        print("up:", edge, *where, sep="\n  ")
    print("views importing views:", views_importing_views())
    print("modules importing template tags:", modules_importing_template_tags())
