"""Maps of a plan: the interactive ``map.html`` (:mod:`.map`) and print wall maps (:mod:`.wallmap`).

``make_map`` and ``save_map`` are imported lazily so that importing :mod:`gridplan.render` (for the
wall map, say) does not load folium.
"""

from __future__ import annotations

from typing import Any

__all__ = ["make_map", "map_html", "render_wallmap", "save_map"]


def __getattr__(name: str) -> Any:
    if name == "render_wallmap":
        from .wallmap import render_wallmap

        return render_wallmap
    if name in __all__:
        from . import map as _map

        return getattr(_map, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
