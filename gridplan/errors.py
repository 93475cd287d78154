"""Errors raised by gridplan, and the collected-problems report behind them.

Validation never stops at the first problem: every check appends a :class:`Problem` to a
:class:`Problems` collector, and the collector raises one :class:`InputError` at the end that lists
them all (file, rows, what is wrong, how to fix it). The CLI prints it and exits with status 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["GridplanError", "InfeasibleError", "InputError", "Problem", "Problems", "natural_key"]

#: How many row ids a message lists before it says "and N more".
MAX_ROWS_SHOWN = 20


class GridplanError(Exception):
    """Base class of every error gridplan raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem found in the input.

    Parameters
    ----------
    file
        The file (or layer) the problem is in, as the user named it.
    what
        What is wrong, in one sentence.
    fix
        How to fix it, in one sentence.
    rows
        The ids (or 1-based row numbers when there is no id) of the offending rows.
    """

    file: str
    what: str
    fix: str = ""
    rows: tuple[str, ...] = ()

    def format(self) -> str:
        """Return the problem as a few human-readable lines."""
        text = f"{self.file}: {self.what}"
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:MAX_ROWS_SHOWN])
            more = len(self.rows) - MAX_ROWS_SHOWN
            if more > 0:
                shown += f" … and {more} more"
            text += f"\n    rows: {shown}"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text


class InputError(GridplanError):
    """The input folder has one or more problems; ``problems`` lists every one."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__(self.format())

    def format(self) -> str:
        """Return every problem, numbered, as one message."""
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the input:"
        body = "\n".join(f"{i}. {p.format()}" for i, p in enumerate(self.problems, 1))
        return f"{head}\n{body}"


class InfeasibleError(GridplanError):
    """The constraints (pins, locks, capacities) cannot all hold; the message says which."""


@dataclass
class Problems:
    """Collector of problems; call :meth:`raise_if_any` once every check has run."""

    items: list[Problem] = field(default_factory=list)
    #: Repairs that are not problems on their own (swapped lon/lat rows) but are listed with the
    #: problems when the load fails for another reason, so that one round of fixes is enough.
    notes: list[Problem] = field(default_factory=list)

    def note(self, file: str, what: str, fix: str = "", rows: Iterable[object] = ()) -> None:
        """Record a repair to list too, after the problems, if :meth:`raise_if_any` raises."""
        self.notes.append(Problem(str(file), what, fix, tuple(str(r) for r in rows)))

    def add(self, file: str, what: str, fix: str = "", rows: Iterable[object] = ()) -> None:
        """Record one problem."""
        self.items.append(Problem(str(file), what, fix, tuple(str(r) for r in rows)))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_any(self) -> None:
        """Raise :class:`InputError` listing every problem collected so far, if any."""
        if self.items:
            raise InputError(self.items + self.notes)


def natural_key(text: str) -> list[int | str]:
    """Sort key putting "第2行" before "第10行" (messages list rows and edits in this order)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]
