"""Deprecated aliases of the modules that moved into stage subpackages (issue #12).

Importing an old path (``gridplan.load``, ``gridplan.partition``, ...) warns with a ``DeprecationWarning`` and yields an alias of the new
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
    "gridplan._errors": "gridplan.errors",
    "gridplan._files": "gridplan.files",
    "gridplan._cells": "gridplan.cells",
    "gridplan.county": "gridplan.model",
    "gridplan.plan": "gridplan.pipeline",
    "gridplan._gcj": "gridplan.coords.gcj",
    "gridplan._aliases": "gridplan.io.aliases",
    "gridplan._specs": "gridplan.io.schema",
    "gridplan._validate": "gridplan.io.validate",
    "gridplan.load": "gridplan.io.load",
    "gridplan._pandapower": "gridplan.io.network",
    "gridplan.workload": "gridplan.lv.workload",
    "gridplan.graph": "gridplan.lv.graph",
    "gridplan.territory": "gridplan.lv.territory",
    "gridplan.partition": "gridplan.lv.partition",
    "gridplan._solver": "gridplan.lv.solver",
    "gridplan._patches": "gridplan.lv.patches",
    "gridplan.feeders": "gridplan.hv.feeders",
    "gridplan.segments": "gridplan.hv.segments",
    "gridplan._owners": "gridplan.hv.owners",
    "gridplan.assign": "gridplan.people.assign",
    "gridplan.roster": "gridplan.people.roster",
    "gridplan._staff": "gridplan.people.staff",
    "gridplan.pins": "gridplan.replan.pins",
    "gridplan.store": "gridplan.replan.store",
    "gridplan.diff": "gridplan.replan.diff",
    "gridplan.kpi": "gridplan.metrics.kpi",
    "gridplan.response": "gridplan.metrics.response",
    "gridplan._compare": "gridplan.scenarios.comparison",
    "gridplan._coverage": "gridplan.scenarios.coverage",
    "gridplan.many": "gridplan.scale.many",
    "gridplan._province": "gridplan.scale.province",
}


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
