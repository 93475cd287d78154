"""Every map, popup and print of gridplan.

- :mod:`.map`: the interactive ``map.html`` of a plan (Folium/Leaflet, offline); its layers in
  :mod:`._layers`, controls in :mod:`._controls`, page script in :mod:`._ui`;
- :mod:`.popups`: the one popup/tooltip builder every page uses;
- :mod:`.compare`: the merge scenario's report, before | after map and candidates pages;
- :mod:`.diff_map`: the map of a plan diff; :mod:`.province_map`: the province overview;
- :mod:`.wallmap` (+ ``_wall_*``, :mod:`.fonts`): print wall maps; :mod:`.board`: notice boards;
- :mod:`.assets`: the vendored web assets pages embed.

Importing this package registers the pages that stage outputs hold (:mod:`gridplan.pages`).
"""

from __future__ import annotations

from . import compare, diff_map, province_map  # noqa: F401 - register their pages
from .map import make_map, map_html, save_map
from .wallmap import render_wallmap

__all__ = ["make_map", "map_html", "render_wallmap", "save_map"]
