"""``gridplan edit``: redraw grids with live KPIs, locks, rebalancing, undo/redo and versions.

:mod:`gridplan.edit.ops` holds the operations on plans (each returns a new plan),
:mod:`gridplan.edit.session` the undo/redo history, recovery journal, saving and exporting,
:mod:`gridplan.edit.server` the ASGI app (Starlette) the command serves; docs/editor.md is the
HTTP contract of the page in :mod:`gridplan.edit` ``static/``.
"""

from .ops import EditContext, EditRefused, Rebalance, lock, reassign, rebalance, set_assignment

__all__ = ["EditContext", "EditRefused", "Rebalance", "lock", "reassign", "rebalance", "set_assignment"]
