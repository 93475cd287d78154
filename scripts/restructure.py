"""Restructure gridplan into subpackages by stage (issue #12), mechanically and reproducibly.

Run on a clean checkout (after merging the branches of the round), from anywhere::

    python scripts/restructure.py            # apply: git mv, rewrite imports, aliases, verify
    python scripts/restructure.py --dry-run  # say what would move and which files would change

What it does, in order:

1. **Moves** every module of :data:`MOVES` with ``git mv`` (whole files, so that git's rename
   detection carries edits made on other branches across). A flat module that becomes a package
   keeps its code as the package's ``__init__.py`` (``coords.py`` -> ``coords/__init__.py``), so its
   import path does not change; its private halves become modules of the package
   (``_gcj.py`` -> ``coords/gcj.py``).
2. **Rewrites** every reference to a moved module in ``gridplan/``, ``tests/``, ``scripts/``
   (``*.py``) and the Markdown docs: ``from gridplan.x import``, ``import gridplan.x``,
   ``from .x import``, ``from ..x import`` (recomputed from the file's new place, so imports of
   unmoved modules in moved files are fixed too), ``from . import _x`` (rebinding the old local name
   with ``as``), ``gridplan.x.y`` attribute chains, and dotted names in strings and comments
   (``monkeypatch.setattr("gridplan.x.y", ...)``, ``mock.patch``, logger names, docstring
   cross-references). Imports are found with :mod:`ast`, strings and comments with
   :mod:`tokenize`: nothing depends on the exact lines other branches will have written. A line
   that holds the words ``restructure: keep`` is left as it is (a test of the old paths, say), and
   so is a file with ``restructure: keep-file`` in its first five lines.
3. **Keeps every old module path working** (``gridplan.load``, ``gridplan.plan``,
   ``gridplan.partition``, ...) through deprecation aliases in ``gridplan/_compat.py`` (generated
   from :data:`MOVES`, installed by one line in ``gridplan/__init__.py``): importing an old path
   warns (``DeprecationWarning``) and yields an alias whose attributes (monkeypatching included) are
   those of the new module. No file is left at an old path, so git records every move as a rename
   and later merges carry edits across. ``gridplan.plan``, also the public function, stays callable.
4. **Verifies**: no reference to an old module is left, every module compiles and imports, every
   alias warns and resolves. Anything it could not rewrite is listed and the exit status is 1.

Idempotent: a second run finds nothing to move and nothing to rewrite. It refuses to run on a
dirty work tree (``--force`` overrides), so ``git reset --hard`` always undoes it.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import io
import os
import re
import subprocess
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

# old path -> new path, relative to the repository root. Whole-file moves only.
MOVES: dict[str, str] = {
    # cross-cutting concerns stay at the top
    "gridplan/_errors.py": "gridplan/errors.py",
    "gridplan/_files.py": "gridplan/files.py",
    "gridplan/_cells.py": "gridplan/cells.py",
    "gridplan/county.py": "gridplan/model.py",
    "gridplan/plan.py": "gridplan/pipeline.py",
    "gridplan/coords.py": "gridplan/coords/__init__.py",
    "gridplan/_gcj.py": "gridplan/coords/gcj.py",
    # io/: schema, readers, validation, loading, network import
    "gridplan/io.py": "gridplan/io/__init__.py",
    "gridplan/_aliases.py": "gridplan/io/aliases.py",
    "gridplan/_specs.py": "gridplan/io/schema.py",
    "gridplan/_validate.py": "gridplan/io/validate.py",
    "gridplan/load.py": "gridplan/io/load.py",
    "gridplan/_pandapower.py": "gridplan/io/network.py",
    # lv/ (低压到片): workload, graph, solver, patches, territory
    "gridplan/workload.py": "gridplan/lv/workload.py",
    "gridplan/graph.py": "gridplan/lv/graph.py",
    "gridplan/territory.py": "gridplan/lv/territory.py",
    "gridplan/partition.py": "gridplan/lv/partition.py",
    "gridplan/_solver.py": "gridplan/lv/solver.py",
    "gridplan/_patches.py": "gridplan/lv/patches.py",
    # hv/ (高压到段): feeders, segments, owners
    "gridplan/feeders.py": "gridplan/hv/feeders.py",
    "gridplan/segments.py": "gridplan/hv/segments.py",
    "gridplan/_owners.py": "gridplan/hv/owners.py",
    # people/: assignment, roster
    "gridplan/assign.py": "gridplan/people/assign.py",
    "gridplan/roster.py": "gridplan/people/roster.py",
    "gridplan/_staff.py": "gridplan/people/staff.py",
    # replan/: pins, store, diff
    "gridplan/pins.py": "gridplan/replan/pins.py",
    "gridplan/store.py": "gridplan/replan/store.py",
    "gridplan/diff.py": "gridplan/replan/diff.py",
    # metrics/: KPIs, response times
    "gridplan/kpi.py": "gridplan/metrics/kpi.py",
    "gridplan/response.py": "gridplan/metrics/response.py",
    # scenarios/: merges (the package), before/after comparison
    "gridplan/scenarios.py": "gridplan/scenarios/__init__.py",
    "gridplan/_compare.py": "gridplan/scenarios/comparison.py",
    "gridplan/_coverage.py": "gridplan/scenarios/coverage.py",
    # scale/ (Dask): many counties, the province summary
    "gridplan/many.py": "gridplan/scale/many.py",
    "gridplan/_province.py": "gridplan/scale/province.py",
}

# Modules and packages that stay where they are (anything else at the top level is unplaced).
KEEP_TOP = {"gridplan/__init__.py", "gridplan/settings.py", "gridplan/py.typed", "gridplan/_compat.py"}
KEEP_PACKAGES = {"gridplan/cli", "gridplan/render", "gridplan/edit", "gridplan/_vendor"}

PACKAGE_DOCS: dict[str, str] = {
    "gridplan/lv": "低压到片: workload, the neighbour graph, the balanced contiguous partition, grids.",
    "gridplan/hv": "高压到段: the feeder graph, its segments and their owners.",
    "gridplan/people": "People: managers assigned to grids, the roster workbook.",
    "gridplan/replan": "Redrawing: pins and locks, the version store, plan differences.",
    "gridplan/metrics": "Figures of a plan: KPIs and response times.",
    "gridplan/scale": "Many counties at once on Dask: the runs and the province summary.",
}

SEARCH_DIRS = ("gridplan", "tests", "scripts")
KEEP = "restructure: keep"  # a line holding this is left as it is (tests of the old paths, say)
KEEP_FILE = "restructure: keep-file"  # ... and a file with this in its first lines


def kept_file(text: str) -> bool:
    """Whether a file asks to be left as it is (``restructure: keep-file`` in its first 5 lines)."""
    return any(KEEP_FILE in line for line in text.splitlines()[:5])
DOC_GLOBS = ("*.md", "docs/**/*.md")
SKIP_PARTS = {"_vendor", "__pycache__"}
THIS = "scripts/restructure.py"


# ----------------------------------------------------------------------------- module names
def module_of(path: str) -> str:
    """Dotted module name of a repository path (``gridplan/io/__init__.py`` -> ``gridplan.io``)."""
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_of(path: str) -> list[str]:
    """The package a relative import in ``path`` is resolved against."""
    parts = module_of(path).split(".")
    return parts if path.endswith("__init__.py") else parts[:-1]


MODMAP: dict[str, str] = {module_of(o): module_of(n) for o, n in MOVES.items()}
NEW_MODULES = {module_of(n) for n in MOVES.values()} | {m.replace("/", ".") for m in PACKAGE_DOCS}
OLD_ONLY = {o for o, n in MODMAP.items() if o != n and o not in NEW_MODULES}
_OLD_RE = re.compile(r"\bgridplan(?:\.[A-Za-z_]\w*)+")


def new_module(name: str) -> str:
    """Where module ``name`` lives after the move (itself when it does not move)."""
    return MODMAP.get(name, name)


def map_dotted(dotted: str, *, bare_ok: set[str]) -> str:
    """Map the longest old-module prefix of a dotted name; names in ``bare_ok`` stay as they are.

    ``bare_ok`` holds names such as ``gridplan.plan`` that are also attributes of their parent
    package (the function): written alone they mean the attribute, so only ``gridplan.plan.x``
    is a module path.
    """
    parts = dotted.split(".")
    for k in range(len(parts), 1, -1):
        head = ".".join(parts[:k])
        if head in OLD_ONLY:
            if k == len(parts) and head in bare_ok:
                return dotted
            return ".".join([MODMAP[head], *parts[k:]])
    return dotted


# ----------------------------------------------------------------------------- python rewriting
@dataclass
class Report:
    """What the run did and what it could not do."""

    moved: list[tuple[str, str]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _line_offsets(text: str) -> list[int]:
    offs, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        offs.append(pos)
    return offs


def _char_offset(lines: list[str], offs: list[int], lineno: int, byte_col: int) -> int:
    """Character offset of an ast (line, UTF-8 byte column) position."""
    line = lines[lineno - 1]
    return offs[lineno - 1] + len(line.encode("utf-8")[:byte_col].decode("utf-8", "replace"))


def _relative(target: list[str], pkg: list[str]) -> str:
    """``target`` (a module) written relative to package ``pkg``: ``..lv.partition``."""
    common = 0
    while common < min(len(target), len(pkg)) and target[common] == pkg[common]:
        common += 1
    return "." * (len(pkg) - common + 1) + ".".join(target[common:])


def _names_bound_by(init: Path) -> set[str]:
    """Top-level names a package ``__init__`` binds itself (so ``from pkg import n`` is not a module)."""
    if not init.exists():
        return set()
    tree = ast.parse(init.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


@dataclass
class Ctx:
    """What rewriting one file needs to know."""

    old_path: str
    new_path: str
    modules: set[str]  # every module name that exists (old and new layout)
    bound: dict[str, set[str]]  # package -> names its __init__ binds


def _absolute_base(node: ast.ImportFrom, ctx: Ctx) -> str | None:
    if not node.level:
        return node.module
    if not ctx.old_path.startswith("gridplan/"):
        return None  # tests and scripts are not in a package
    pkg = package_of(ctx.old_path)
    if node.level - 1 > len(pkg) - 1:
        return None
    base = pkg[: len(pkg) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _render_from(module: str, names: list[tuple[str, str | None]], *, relative: bool,
                 ctx: Ctx, indent: str) -> str:
    mod = _relative(module.split("."), package_of(ctx.new_path)) if relative else module
    items = [n if a is None or a == n else f"{n} as {a}" for n, a in names]
    one = f"from {mod} import {', '.join(items)}"
    if len(indent) + len(one) <= 100:
        return one
    lines, cur = [f"from {mod} import ("], indent + "    "
    for it in items:
        if len(cur) + len(it) + 2 > 100 and cur.strip():
            lines.append(cur.rstrip())
            cur = indent + "    "
        cur += it + ", "
    lines.append(cur.rstrip().rstrip(",") + ",")
    lines.append(indent + ")")
    return "\n".join(lines)


def _from_groups(node: ast.ImportFrom, base: str, ctx: Ctx) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """The statements one ``from base import ...`` becomes: [(module, [(name, asname)])]."""
    groups: list[tuple[str, list[tuple[str, str | None]]]] = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        is_module = (alias.name != "*" and sub in ctx.modules
                     and alias.name not in ctx.bound.get(base, set()))
        if is_module:
            parent, _, last = new_module(sub).rpartition(".")
            bind = alias.asname or alias.name
            item = (last, None if bind == last else bind)
        else:
            parent, item = new_module(base), (alias.name, alias.asname)
        if groups and groups[-1][0] == parent:
            groups[-1][1].append(item)
        else:
            groups.append((parent, [item]))
    return groups


def _rewrite_from(node: ast.ImportFrom, ctx: Ctx, text: str, span: tuple[int, int],
                  report: Report) -> str | None:
    base = _absolute_base(node, ctx)
    if base is None or not (base == "gridplan" or base.startswith("gridplan.")):
        return None
    groups = _from_groups(node, base, ctx)
    relative = node.level > 0
    segment = text[span[0]:span[1]]
    same_names = len(groups) == 1 and groups[0][1] == [(a.name, a.asname) for a in node.names]
    if same_names:
        target = groups[0][0]
        new_mod = _relative(target.split("."), package_of(ctx.new_path)) if relative else target
        m = re.match(r"from\s+(\.+\s*[\w.]*|[A-Za-z_][\w.]*)\s*import\b", segment)
        if m is None:
            report.errors.append(f"{ctx.old_path}:{node.lineno}: cannot parse import {segment!r}")
            return None
        if m.group(1).replace(" ", "") == new_mod:
            return None
        return f"from {new_mod} import" + segment[m.end():]
    line_start = text.rfind("\n", 0, span[0]) + 1
    indent = text[line_start:span[0]]
    if indent.strip():
        report.errors.append(f"{ctx.old_path}:{node.lineno}: an import that must be split shares "
                             f"its line with other code; split it by hand: {segment!r}")
        return None
    parts = [_render_from(mod, names, relative=relative, ctx=ctx, indent=indent)
             for mod, names in groups]
    return ("\n" + indent).join(parts)


def _rewrite_import(node: ast.Import, ctx: Ctx, report: Report) -> str | None:
    changed, items = False, []
    for alias in node.names:
        new = map_dotted(alias.name, bare_ok=set())
        changed |= new != alias.name
        items.append(new if alias.asname is None else f"{new} as {alias.asname}")
    return f"import {', '.join(items)}" if changed else None


def _attribute_chain(node: ast.Attribute) -> str | None:
    parts: list[str] = []
    cur: ast.AST = node
    while isinstance(cur, ast.Attribute):
        parts.append(cur.attr)
        cur = cur.value
    if isinstance(cur, ast.Name) and cur.id == "gridplan":
        return ".".join(["gridplan", *reversed(parts)])
    return None


def _type_checking_ranges(tree: ast.AST) -> list[tuple[int, int]]:
    return [(n.lineno, n.end_lineno or n.lineno) for n in ast.walk(tree) if isinstance(n, ast.If)
            and "TYPE_CHECKING" in ast.unparse(n.test)]


def _bare_ok(ctx: Ctx) -> set[str]:
    return {f"{pkg}.{n}" for pkg, names in ctx.bound.items() for n in names}


def rewrite_python(text: str, ctx: Ctx, report: Report) -> str:
    """Rewrite every reference to a moved module in one Python source."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        report.errors.append(f"{ctx.old_path}: does not parse ({exc}); rewrite it by hand")
        return text
    lines = text.splitlines(keepends=True)
    offs = _line_offsets(text)
    edits: list[tuple[int, int, str]] = []
    bare_ok = _bare_ok(ctx)

    def span(n: ast.AST) -> tuple[int, int]:
        return (_char_offset(lines, offs, n.lineno, n.col_offset),  # type: ignore[attr-defined]
                _char_offset(lines, offs, n.end_lineno, n.end_col_offset))  # type: ignore[attr-defined]

    chains_done: set[int] = set()
    kept = {i + 1 for i, line in enumerate(lines) if KEEP in line}
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in kept:
            continue
        if isinstance(node, ast.ImportFrom):
            sp = span(node)
            new = _rewrite_from(node, ctx, text, sp, report)
            if new is not None:
                edits.append((*sp, new))
        elif isinstance(node, ast.Import):
            new = _rewrite_import(node, ctx, report)
            if new is not None:
                edits.append((*span(node), new))
        elif isinstance(node, ast.Attribute) and id(node) not in chains_done:
            chain = _attribute_chain(node)
            if chain is None:
                continue
            for sub in ast.walk(node):
                chains_done.add(id(sub))
            new = map_dotted(chain, bare_ok=bare_ok)
            if new != chain:
                edits.append((*span(node), new))
    edits += _string_edits(text, lines, offs, bare_ok, kept)
    return _apply(text, edits, ctx, report)


def _string_edits(text: str, lines: list[str], offs: list[int], bare_ok: set[str],
                  kept: set[int]) -> list[tuple[int, int, str]]:
    """Dotted old-module names inside strings and comments."""
    edits = []
    kinds = {tokenize.STRING, tokenize.COMMENT}
    kinds |= {tokenize.FSTRING_MIDDLE} if hasattr(tokenize, "FSTRING_MIDDLE") else set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type not in kinds or "gridplan." not in tok.string or tok.start[0] in kept:
            continue
        start = offs[tok.start[0] - 1] + tok.start[1]
        for m in _OLD_RE.finditer(tok.string):
            new = map_dotted(m.group(0), bare_ok=bare_ok)
            if new != m.group(0):
                edits.append((start + m.start(), start + m.end(), new))
    return edits


def _apply(text: str, edits: list[tuple[int, int, str]], ctx: Ctx, report: Report) -> str:
    edits.sort()
    for a, b in zip(edits, edits[1:]):
        if b[0] < a[1]:
            report.errors.append(f"{ctx.old_path}: overlapping rewrites at {a[:2]} and {b[:2]}")
            return text
    for start, end, new in reversed(edits):
        text = text[:start] + new + text[end:]
    return text


# ----------------------------------------------------------------------------- markdown rewriting
_MD_PATH_RE = re.compile(r"\bgridplan/[\w/]+\.py\b")


def rewrite_markdown(text: str, bare_ok: set[str]) -> str:
    """Dotted module names (``gridplan.load.load_county``) and file paths (``gridplan/load.py``)."""
    out = []
    for line in text.splitlines(keepends=True):
        if KEEP not in line:
            line = _OLD_RE.sub(lambda m: map_dotted(m.group(0), bare_ok=bare_ok), line)
            line = _MD_PATH_RE.sub(lambda m: MOVES.get(m.group(0), m.group(0)), line)
        out.append(line)
    return "".join(out)


# ----------------------------------------------------------------------------- aliases
COMPAT = "gridplan/_compat.py"
COMPAT_LINE = "from . import _compat  # noqa: E402,F401 - deprecated aliases of the old module paths"

COMPAT_TEXT = '''"""Deprecated aliases of the modules that moved into stage subpackages (issue #12).

Written by ``scripts/restructure.py``. Importing an old path (``gridplan.load``,
``gridplan.partition``, ...) warns with a ``DeprecationWarning`` and yields an alias of the new
module: reading and setting attributes through it (monkeypatching included) reach the new module.
No file sits at an old path, so git still sees every move as a rename. ``gridplan.plan`` is also
the public function: its alias is callable and plans. Only the standard library is imported here.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from typing import Any

__all__ = ["MOVED"]

#: old module path -> new module path
MOVED: dict[str, str] = {
__MOVED__}


class _Alias(types.ModuleType):
    """A module that forwards every non-dunder attribute to the module it stands for."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(MOVED[self.__name__]), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("__"):
            super().__setattr__(name, value)
        else:
            setattr(importlib.import_module(MOVED[self.__name__]), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(importlib.import_module(MOVED[self.__name__]), name)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(MOVED[self.__name__]))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        target = importlib.import_module(MOVED[self.__name__])
        func = getattr(target, self.__name__.rpartition(".")[2], None)
        if not callable(func):
            raise TypeError(f"module {self.__name__!r} is not callable")
        return func(*args, **kwargs)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths of :data:`MOVED` and loads them as :class:`_Alias` modules."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there (the old path will be "
                      "removed)", DeprecationWarning, stacklevel=2)
        target = importlib.import_module(new)
        alias = _Alias(spec.name, target.__doc__)
        alias.__all__ = list(getattr(target, "__all__", [n for n in vars(target)
                                                          if not n.startswith("_")]))
        return alias

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the alias forwards to the new module."""


if not any(isinstance(f, _Finder) for f in sys.meta_path):
    sys.meta_path.insert(0, _Finder())
'''


def compat_text() -> str:
    """The text of ``gridplan/_compat.py`` for :data:`MOVES`."""
    rows = "".join(f'    "{module_of(o)}": "{module_of(n)}",\n' for o, n in MOVES.items()
                   if module_of(o) != module_of(n))
    return COMPAT_TEXT.replace("__MOVED__", rows)


def install_compat(init_text: str) -> str:
    """``gridplan/__init__.py`` with the line that installs the aliases (after ``__version__``)."""
    if "import _compat" in init_text:
        return init_text
    m = re.search(r"^__version__\s*=.*$", init_text, re.MULTILINE)
    if m is None:
        raise SystemExit("gridplan/__init__.py has no __version__ line to put the alias import after")
    return init_text[:m.end()] + "\n\n" + COMPAT_LINE + init_text[m.end():]


# ----------------------------------------------------------------------------- the run
def git(root: Path, *args: str) -> str:
    """Run git in ``root``; its output."""
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout


def tracked_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files (what a checkout holds)."""
    out = git(root, "ls-files", "-co", "--exclude-standard")
    return sorted({p for p in out.splitlines() if (root / p).is_file()})


def check_placement(root: Path, files: list[str], report: Report) -> None:
    """Every module under gridplan/ has a place: moved, kept, or in a kept package."""
    for f in files:
        if not f.startswith("gridplan/") or not f.endswith(".py"):
            continue
        if f in MOVES or f in MOVES.values() or f in KEEP_TOP:
            continue
        if any(f.startswith(p + "/") for p in KEEP_PACKAGES | set(PACKAGE_DOCS)):
            continue
        if any(f.startswith(str(Path(n).parent) + "/") for n in MOVES.values()
               if n.endswith("__init__.py")):
            continue
        report.errors.append(f"{f}: not placed in the new tree; add it to MOVES (or KEEP_TOP)")


def check_collisions(root: Path, report: Report) -> None:
    """A module becoming a package must not define a name equal to one of its new submodules."""
    for old, new in MOVES.items():
        if not new.endswith("/__init__.py") or not (root / old).exists():
            continue
        pkg = str(Path(new).parent)
        subs = {Path(n).stem for n in MOVES.values() if str(Path(n).parent) == pkg}
        clash = _names_bound_by(root / old) & subs
        if clash:
            report.errors.append(f"{old}: defines {sorted(clash)}, the name of a new submodule of "
                                 f"{pkg}; rename the submodule in MOVES")


def plan_moves(root: Path, report: Report) -> list[tuple[str, str]]:
    """The moves still to do; errors where both the old and the new file exist."""
    todo = []
    for old, new in MOVES.items():
        o, n = root / old, root / new
        if o.exists():
            if n.exists():
                report.errors.append(f"{old} and {new} both exist; merge them by hand")
            else:
                todo.append((old, new))
        elif not n.exists():
            report.errors.append(f"{old}: neither it nor {new} exists")
    return todo


def rewrite_all(root: Path, files: list[str], report: Report) -> dict[str, str]:
    """New text of every file that changes, keyed by its new path."""
    modules = {module_of(f) for f in files if f.startswith("gridplan/") and f.endswith(".py")}
    modules |= set(MODMAP) | NEW_MODULES
    bound = {"gridplan": _names_bound_by(root / "gridplan/__init__.py")}
    out: dict[str, str] = {}
    for f in files:
        path = root / f
        if any(p in SKIP_PARTS for p in Path(f).parts) or f in (THIS, COMPAT):
            continue
        new_path = MOVES.get(f, f)
        if f.endswith(".py") and f.split("/")[0] in SEARCH_DIRS:
            text = path.read_text(encoding="utf-8")
            if kept_file(text):
                continue
            new = rewrite_python(text, Ctx(f, new_path, modules, bound), report)
        elif f.endswith(".md"):
            text = path.read_text(encoding="utf-8")
            new = rewrite_markdown(text, _bare_ok(Ctx(f, new_path, modules, bound)))
        elif f.endswith((".toml", ".cfg")):  # configuration names modules only
            text = path.read_text(encoding="utf-8")
            new = rewrite_markdown(text, set())
        else:
            continue
        if new != text or new_path != f:
            out[new_path] = new
            if new != text:
                report.changed.append(f)
        if f != new_path and "__file__" in text and Path(f).parent != Path(new_path).parent:
            report.notes.append(f"{new_path}: uses __file__ and moved a level; check its paths")
    return out


def apply(root: Path, todo: list[tuple[str, str]], texts: dict[str, str], report: Report) -> None:
    """Move with git, write the rewritten texts, the package docstrings and the old-path aliases."""
    for old, new in todo:
        (root / new).parent.mkdir(parents=True, exist_ok=True)
        git(root, "mv", old, new)
        report.moved.append((old, new))
    written = list(texts)
    for pkg, doc in PACKAGE_DOCS.items():
        init = root / pkg / "__init__.py"
        if not init.exists():
            init.parent.mkdir(parents=True, exist_ok=True)
            init.write_text(f'"""{doc}"""\n', encoding="utf-8")
            written.append(f"{pkg}/__init__.py")
    for path, text in texts.items():
        (root / path).write_text(text, encoding="utf-8")
    (root / COMPAT).write_text(compat_text(), encoding="utf-8")
    init = root / "gridplan/__init__.py"
    init.write_text(install_compat(init.read_text(encoding="utf-8")), encoding="utf-8")
    written += [COMPAT, "gridplan/__init__.py"]
    sort_imports(root, [p for p in texts if p.endswith(".py")], report)
    git(root, "add", "--", *sorted(set(written)))


def sort_imports(root: Path, paths: list[str], report: Report) -> None:
    """Re-sort the import blocks the rewrite touched (ruff's I001 fix), when ruff is installed."""
    if not paths:
        return
    if importlib.util.find_spec("ruff") is None:
        report.notes.append("ruff is not installed: run `ruff check --fix --select I001` yourself")
        return
    subprocess.run([sys.executable, "-m", "ruff", "check", "--fix", "--quiet", "--select", "I001",
                    "--exit-zero", *paths], cwd=root, check=True)


def _old_imports(text: str, path: str, bare: set[str]) -> list[tuple[int, str]]:
    """(line, name) of every import of an old module path left in one Python file."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return [(0, "does not parse")]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name in OLD_ONLY]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute_base(node, Ctx(path, path, set(), {}))
            if base is None:
                continue
            if base in OLD_ONLY:
                found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names
                      if f"{base}.{a.name}" in OLD_ONLY and f"{base}.{a.name}" not in bare]
    return found


def leftovers(root: Path, report: Report) -> None:
    """References to old modules that survived (in forms this script does not understand)."""
    bare = {f"gridplan.{n}" for n in _names_bound_by(root / "gridplan/__init__.py")}
    for f in tracked_files(root):
        p = root / f
        if (any(s in SKIP_PARTS for s in Path(f).parts) or f in (THIS, COMPAT)
                or p.suffix not in {".py", ".md", ".cfg", ".toml", ".sh", ".txt", ".ini"}):
            continue
        text = p.read_text(encoding="utf-8", errors="replace")
        if kept_file(text):
            continue
        kept = {i + 1 for i, line in enumerate(text.splitlines()) if KEEP in line}
        if p.suffix == ".py":
            for line, name in _old_imports(text, f, bare):
                if line not in kept:
                    report.errors.append(f"{f}:{line}: still imports the old module {name}")
        for m in _OLD_RE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            if map_dotted(m.group(0), bare_ok=bare) != m.group(0) and line not in kept:
                report.errors.append(f"{f}:{line}: still refers to {m.group(0)}")


VERIFY = r"""
import importlib, pkgutil, sys, warnings
import gridplan
from gridplan import _compat
bad = []
for m in pkgutil.walk_packages(gridplan.__path__, "gridplan."):
    if m.name.startswith("gridplan._vendor"):
        continue
    try:
        importlib.import_module(m.name)
    except ImportError as exc:
        if getattr(exc, "name", "") in {"distributed", "dask", "pandapower", "playwright"}:
            continue
        bad.append(f"{m.name}: {type(exc).__name__}: {exc}")
    except Exception as exc:
        bad.append(f"{m.name}: {type(exc).__name__}: {exc}")
for old, new in _compat.MOVED.items():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        mod = importlib.import_module(old)
    if not any(issubclass(x.category, DeprecationWarning) for x in w):
        bad.append(f"{old}: no DeprecationWarning")
    target = importlib.import_module(new)
    names = [n for n in vars(target) if not n.startswith("__")]
    if any(getattr(mod, n) is not getattr(target, n) for n in names):
        bad.append(f"{old}: does not resolve to {new}")
import gridplan.plan
if not callable(gridplan.plan) or not hasattr(gridplan, "load_county"):
    bad.append("gridplan.plan / gridplan.load_county lost")
from gridplan.plan import Plan, read_plan  # noqa: F401
from gridplan.load import load_county  # noqa: F401
from gridplan.io import from_pandapower, from_network_geojson, read_table  # noqa: F401
if not hasattr(Plan, "to_file"):
    bad.append("Plan.to_file lost")
print("\n".join(bad))
sys.exit(1 if bad else 0)
"""


def verify(root: Path, report: Report) -> None:
    """Compile everything, import every module, and check every alias of an old path."""
    res = subprocess.run([sys.executable, "-m", "compileall", "-q", "gridplan", "tests", "scripts"],
                         cwd=root, capture_output=True, text=True)
    if res.returncode:
        report.errors.append("compileall failed:\n" + res.stdout + res.stderr)
    env = {**os.environ, "PYTHONPATH": str(root)}
    res = subprocess.run([sys.executable, "-c", VERIFY], cwd=root, capture_output=True, text=True,
                         env=env)
    if res.returncode:
        report.errors.append("import check failed:\n" + (res.stdout + res.stderr).strip())


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; the exit status is 1 when anything is left to do by hand."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    ap.add_argument("--force", action="store_true", help="run on a dirty work tree")
    ap.add_argument("--no-verify", action="store_true", help="skip the compile/import check")
    args = ap.parse_args(argv)
    root = args.repo.resolve()
    report = Report()
    if not args.dry_run and not args.force and git(root, "status", "--porcelain",
                                                   "--untracked-files=no").strip():
        print("the work tree has uncommitted changes: commit or stash them first (or --force)")
        return 1
    files = tracked_files(root)
    check_placement(root, files, report)
    check_collisions(root, report)
    todo = plan_moves(root, report)
    texts = rewrite_all(root, files, report)
    if report.errors:
        print("nothing changed; fix these first:\n  " + "\n  ".join(report.errors))
        return 1
    if args.dry_run:
        print("\n".join([f"move {o} -> {n}" for o, n in todo]
                        + [f"rewrite {f}" for f in report.changed] + report.notes))
        return 0
    apply(root, todo, texts, report)
    leftovers(root, report)
    if not args.no_verify:
        verify(root, report)
    print(f"moved {len(report.moved)} modules, rewrote {len(report.changed)} files")
    for n in report.notes:
        print("note:", n)
    if report.errors:
        print("left to do by hand:\n  " + "\n  ".join(report.errors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
