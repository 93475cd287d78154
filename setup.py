"""Build step: put the offline map assets into the wheel (everything else is in setup.cfg).

``python -m build`` (or ``pip wheel .``) runs ``build_py``; after the usual copy of the package,
:func:`gridplan.render.assets.copy_assets` fills ``gridplan/_vendor`` in the build folder with the
Leaflet/Bootstrap/plugin files the interactive map embeds: copied from a complete copy that is
already there (``$GRIDPLAN_VENDOR_DIR``, the source tree's ``gridplan/_vendor``, or the user cache
``${XDG_CACHE_HOME:-~/.cache}/gridplan/assets`` that ``scripts/fetch_assets.sh`` fills), else
unpacked from the npm tarball cache, else fetched with npm. So ``pip install gridplan-*.whl``
plans and draws maps with no npm and no network. Editable installs skip the step: they read the
assets from the source tree or the user cache.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _assets_module():
    """gridplan/render/assets.py, loaded by path (it needs only the standard library)."""
    spec = importlib.util.spec_from_file_location("_gridplan_build_assets",
                                                  HERE / "gridplan" / "render" / "assets.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


class BuildPyWithAssets(build_py):
    """``build_py`` that also copies the offline map assets into the built package."""

    def run(self) -> None:
        super().run()
        if self.dry_run or getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "gridplan" / "_vendor"
        fetched = _assets_module().copy_assets(dest)
        self.announce(f"map assets in {dest}" + (f" (fetched {', '.join(fetched)})" if fetched else ""),
                      level=2)


setup(cmdclass={"build_py": BuildPyWithAssets})
