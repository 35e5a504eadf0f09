"""The layout of ``dgpo`` (docs/design.md §6): no import loop among its modules, and an integration depends on the core
only — never on ``dgpo.train``, the comparisons or the CLI.

The import graph is read from the source with ``ast``, nothing is imported. Every import counts, at module level or
inside a function: a function-level import only defers a loop to call time, and both loops this test was written
against hid there (``train.rl`` → ``integrations.trl`` inside functions, ``compare`` → ``compare_report`` inside
``run_compare``). Two kinds of edge are left out, each for a reason:

* for the loop check, the parent packages Python runs before a submodule (``import dgpo.losses.core`` runs
  ``dgpo/losses/__init__.py`` first): a package's ``__init__`` importing its own submodules is how a package is
  made, and that edge would make every such package a loop. The integration rule counts them (and the objective
  modules ``dgpo.losses`` imports with ``importlib``): an integration must not reach ``train`` through a package;
* imports under ``if TYPE_CHECKING:`` for the loop check, since they never run (they still count as a dependency
  for the integration rule).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
#: What an integration must never import, directly or through another module.
ABOVE_INTEGRATIONS = ("dgpo.train", "dgpo.compare", "dgpo.compare_report", "dgpo.compare_spec", "dgpo.cli")


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` file of the packages under ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, typing_only: bool = False):
    """(import node, whether it runs only for type checkers) for every import in ``node``, at any depth."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, typing_only
    elif isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.body:
            yield from _imports(child, True)
        for child in node.orelse:
            yield from _imports(child, typing_only)
    else:
        for child in ast.iter_child_nodes(node):
            yield from _imports(child, typing_only)


def import_graph(root: Path, package: str = "dgpo") -> dict[str, dict[str, bool]]:
    """Module → {imported module of ``package``: whether every import of it is for type checkers only}.

    ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``; relative imports are
    resolved against the importing module's package.
    """
    modules = module_names(root)
    graph: dict[str, dict[str, bool]] = {}
    for name, path in modules.items():
        edges: dict[str, bool] = {}
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node, typing_only in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
                ]
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a name inside a module
                    target = target.rpartition(".")[0]
                if target.split(".")[0] == package and target != name:
                    edges[target] = edges.get(target, True) and typing_only
        graph[name] = edges
    return graph


def find_loop(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop as ``[a, b, ..., a]``, or None (depth-first search, grey/black marking)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (loop := visit(target)):
                return loop
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (loop := visit(node)):
            return loop
    return None


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, list[str]]:
    """Every module ``start`` imports, directly or not, with one import path to it."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph.get(node, ())):
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    return paths


def test_no_import_loop_among_dgpo_modules():
    edges = import_graph(SRC)
    graph = {
        module: {target for target, typing_only in out.items() if not typing_only} for module, out in edges.items()
    }
    assert len(graph) > 50  # the whole package was read
    loop = find_loop(graph)
    assert loop is None, "import loop: " + " → ".join(loop)


def with_packages_run_first(graph: dict[str, set[str]], root: Path) -> dict[str, set[str]]:
    """``graph`` plus what importing a module also runs: its parent packages' ``__init__`` (``import a.b.c`` runs
    ``a`` and ``a.b`` first), and every submodule of a package whose ``__init__`` imports them by name at run time
    (``dgpo.losses`` imports each objective module with ``importlib``)."""
    full = {module: set(targets) for module, targets in graph.items()}
    for targets in full.values():
        for target in list(targets):
            parts = target.split(".")
            targets.update(p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in full)
    for package, path in module_names(root).items():
        if path.name == "__init__.py" and "importlib.import_module" in path.read_text(encoding="utf-8"):
            full[package].update(module for module in full if module.startswith(package + "."))
    return full


def test_integrations_depend_on_the_core_only():
    graph = with_packages_run_first({module: set(edges) for module, edges in import_graph(SRC).items()}, SRC)
    integrations = [module for module in graph if module.startswith("dgpo.integrations")]
    assert {"dgpo.integrations.trl", "dgpo.integrations.verl"} <= set(integrations)
    for module in integrations:
        for target, path in reachable(graph, module).items():
            above = [name for name in ABOVE_INTEGRATIONS if target == name or target.startswith(name + ".")]
            assert not above, f"{module} imports {target}: " + " → ".join(path)


def test_the_checks_find_a_function_level_loop_and_a_forbidden_import(tmp_path):
    # A package shaped like the two loops the layout had: a function-level import back up, and an integration
    # reaching `train` through another module.
    files = {
        "dgpo/__init__.py": "",
        "dgpo/core.py": "import math\n",
        "dgpo/train/__init__.py": "",
        "dgpo/train/rl.py": "def build():\n    from dgpo.integrations.trl import Trainer\n    return Trainer\n",
        "dgpo/train/defaults.py": "from dgpo import core\n",
        "dgpo/integrations/__init__.py": "",
        "dgpo/integrations/trl.py": "from dgpo.integrations import helper\nfrom . import helper as again\n",
        "dgpo/integrations/helper.py": "from dgpo.train.defaults import core\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dgpo.train import rl\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    edges = import_graph(tmp_path)
    assert edges["dgpo.train.rl"] == {"dgpo.integrations.trl": False}  # found inside the function
    assert edges["dgpo.integrations.trl"] == {"dgpo.integrations.helper": False}  # absolute and relative alike
    assert edges["dgpo.integrations.helper"] == {"dgpo.train.defaults": False, "dgpo.train.rl": True}
    runtime = {module: {t for t, typing_only in out.items() if not typing_only} for module, out in edges.items()}
    assert find_loop(runtime) is None  # the TYPE_CHECKING edge back to train.rl never runs
    everything = {module: set(out) for module, out in edges.items()}
    assert find_loop(everything) == [
        "dgpo.integrations.helper", "dgpo.train.rl", "dgpo.integrations.trl", "dgpo.integrations.helper"
    ]  # fmt: skip
    assert reachable(everything, "dgpo.integrations.trl")["dgpo.train.defaults"] == [
        "dgpo.integrations.trl", "dgpo.integrations.helper", "dgpo.train.defaults"
    ]  # fmt: skip
    # Through a package: importing dgpo.train.defaults runs dgpo/train/__init__.py first.
    (tmp_path / "dgpo/train/__init__.py").write_text("from dgpo.train import rl\n")
    packaged = with_packages_run_first({m: set(out) for m, out in import_graph(tmp_path).items()}, tmp_path)
    assert "dgpo.train" in packaged["dgpo.integrations.helper"]
    assert "dgpo.train.rl" in reachable(packaged, "dgpo.integrations.trl")
