"""The import graph of the gridplan package: no cycles, no gridplan imports hidden in functions.

Static: every ``*.py`` under ``gridplan/`` is parsed with :mod:`ast` (nothing is imported), and every
``import`` counts, at module level or inside a function, except those under ``if TYPE_CHECKING:``
(they never run). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else
to ``pkg`` itself. Old module paths kept as deprecated aliases (``gridplan/_compat.py``) are followed
to the module they stand for, so an alias cannot hide a cycle.
"""

from __future__ import annotations

import ast
import importlib
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gridplan"

# Optional heavy dependencies may be imported inside functions; gridplan modules may not.
LAZY_ALLOWED: frozenset[str] = frozenset()

@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``target`` at ``file:line`` (``lazy``: inside a function)."""

    source: str
    target: str
    file: str
    line: int
    lazy: bool


def module_name(root: Path, path: Path) -> str:
    """Dotted name of ``path`` (a file below the package folder ``root``)."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _aliases(root: Path) -> dict[str, str]:
    """Old path -> new path of the deprecated aliases, read from ``_compat.py`` without importing."""
    compat = root / "_compat.py"
    if not compat.exists():
        return {}
    for node in ast.parse(compat.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "MOVED" for t in targets):
                return ast.literal_eval(node.value)
    return {}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def _function_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for child in ast.iter_child_nodes(node):
                inside.update(id(n) for n in ast.walk(child))
    return inside


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    pkg = module.split(".") if is_package else module.split(".")[:-1]
    base = pkg[: len(pkg) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_edges(root: Path) -> list[Edge]:
    """Every import of a module of the package ``root`` by another (or the same) module of it."""
    files = {module_name(root, p): p for p in sorted(root.rglob("*.py"))
             if "_vendor" not in p.relative_to(root).parts}
    aliases = _aliases(root)

    def known(name: str) -> str | None:
        name = aliases.get(name, name)
        return name if name in files else None

    edges: list[Edge] = []
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skip, lazy = _type_checking_nodes(tree), _function_nodes(tree)
        rel = str(path.relative_to(root.parent))
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [known(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, module, path.name == "__init__.py")
                for a in node.names:
                    targets.append(known(f"{base}.{a.name}") or known(base))
            for t in targets:
                if t is not None:
                    edges.append(Edge(module, t, rel, node.lineno, id(node) in lazy))
    return edges


def cycles(edges: Iterable[Edge]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a self-import), sorted."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan, recursive: the package has a few dozen modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def describe(comp: list[str], edges: Iterable[Edge]) -> Iterator[str]:
    """The imports inside one cycle, one line each, for the failure message."""
    members = set(comp)
    for e in sorted(set(edges), key=lambda e: (e.source, e.target, e.line)):
        if e.source in members and e.target in members:
            where = "in a function" if e.lazy else "at module level"
            yield f"    {e.source} -> {e.target}  ({e.file}:{e.line}, {where})"


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_finder_sees_function_level_imports_and_skips_type_checking(tmp_path: Path) -> None:
    pkg = _write(tmp_path / "pkg", {
        "__init__.py": "",
        "a.py": "def f():\n    from .b import g\n    return g\n",
        "b.py": "from . import c\n",
        "c.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import x\n"
                 "from .sub import e\n"),
        "d.py": "import pkg.c\n",
        "sub/__init__.py": "",
        "sub/e.py": "from .. import a\n",
    })
    edges = import_edges(pkg)
    assert ("pkg.a", "pkg.b") in {(e.source, e.target) for e in edges if e.lazy}
    assert ("pkg.c", "pkg.d") not in {(e.source, e.target) for e in edges}
    assert cycles(edges) == [["pkg.a", "pkg.b", "pkg.c", "pkg.sub.e"]]


def test_finder_follows_deprecated_aliases(tmp_path: Path) -> None:
    pkg = _write(tmp_path / "pkg", {
        "__init__.py": "",
        "_compat.py": 'MOVED: dict[str, str] = {"pkg.old": "pkg.new.mod"}\n',
        "new/__init__.py": "",
        "new/mod.py": "def f():\n    from pkg import user\n",
        "user.py": "from pkg.old import f\n",
    })
    assert cycles(import_edges(pkg)) == [["pkg.new.mod", "pkg.user"]]


def test_the_package_is_parsed() -> None:
    edges = import_edges(PACKAGE)
    sources = {e.source for e in edges}
    assert "gridplan" in sources and "gridplan.cli" in sources
    assert len(edges) > 100


def test_no_import_cycles_between_gridplan_modules() -> None:
    edges = import_edges(PACKAGE)
    found = cycles(edges)
    lines = [f"cycle {i + 1}: {' , '.join(c)}\n" + "\n".join(describe(c, edges))
             for i, c in enumerate(found)]
    assert not found, f"{len(found)} import cycle(s) between gridplan modules:\n" + "\n".join(lines)


def test_no_gridplan_import_inside_a_function() -> None:
    lazy = sorted({(e.file, e.line, e.target) for e in import_edges(PACKAGE)
                   if e.lazy and e.target not in LAZY_ALLOWED})
    assert not lazy, (f"{len(lazy)} imports of gridplan modules inside functions (import at module "
                      "level; optional heavy dependencies only may be imported lazily):\n"
                      + "\n".join(f"    {f}:{n} imports {t}" for f, n, t in lazy))


# The public paths of #12 (old ones included: they must keep working, with a DeprecationWarning
# once their module has moved).
PUBLIC = [
    ("gridplan", "load_county"),
    ("gridplan", "plan"),
    ("gridplan.load", "load_county"),
    ("gridplan.plan", "read_plan"),
    ("gridplan.plan", "Plan"),
    ("gridplan.io", "read_table"),
    ("gridplan.io", "from_pandapower"),
    ("gridplan.io", "from_network_geojson"),
    ("gridplan.settings", "read_params"),
]


@pytest.mark.parametrize(("module", "name"), PUBLIC)
def test_public_paths_keep_working(module: str, name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mod = importlib.import_module(module)
    assert callable(getattr(mod, name))


def test_plan_is_still_the_function_once_the_module_path_is_imported() -> None:
    import gridplan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        plans = importlib.import_module("gridplan.plan")
    assert callable(gridplan.plan)
    assert plans.Plan is gridplan.Plan and callable(gridplan.Plan.to_file)
