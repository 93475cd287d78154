"""Packaging: where the map assets are looked up and written, the wheel's build step, the lower
bounds CI installs. No network: npm is replaced by a function that fails the test if called."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from gridplan.render import assets

ROOT = Path(__file__).resolve().parents[1]


def _fake_complete(root: Path) -> None:
    """A complete-looking vendor folder (stamps and one file per package)."""
    for name, (ver, _) in assets.PACKAGES.items():
        d = root / f"{name}@{ver}"
        d.mkdir(parents=True)
        (d / ".complete").write_text(assets._signature(name))
        (d / "marker.txt").write_text(name)


@pytest.fixture
def no_npm(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("npm must not run")

    monkeypatch.setattr(assets, "_npm_pack", fail)


def test_lookup_order_env_then_package_then_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("GRIDPLAN_VENDOR_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(assets, "VENDOR_DIR", tmp_path / "pkg" / "_vendor")
    assert assets.user_cache_dir() == tmp_path / "xdg" / "gridplan" / "assets"
    assert assets.vendor_dir() == assets.user_cache_dir()  # no complete copy in the package
    _fake_complete(tmp_path / "pkg" / "_vendor")
    assert assets.vendor_dir() == tmp_path / "pkg" / "_vendor"  # a wheel's copy wins
    monkeypatch.setenv("GRIDPLAN_VENDOR_DIR", str(tmp_path / "mine"))
    assert assets.vendor_dir() == tmp_path / "mine"


def test_home_cache_when_xdg_is_unset(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert assets.user_cache_dir() == tmp_path / ".cache" / "gridplan" / "assets"


def test_fetch_never_writes_into_the_package(tmp_path, monkeypatch, no_npm):
    """The default fetch target is the user cache, even when the package folder is incomplete."""
    monkeypatch.delenv("GRIDPLAN_VENDOR_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    pkg = tmp_path / "pkg" / "_vendor"
    monkeypatch.setattr(assets, "VENDOR_DIR", pkg)
    assert assets.fetch_dir() == assets.user_cache_dir()
    _fake_complete(assets.user_cache_dir())
    assert assets.fetch_assets() == []
    assert not pkg.exists()
    assert assets.main([]) == 0 and not pkg.exists()


def test_copy_assets_fills_a_build_folder_from_the_cache(tmp_path, monkeypatch, no_npm):
    """The wheel build step: every package copied from a complete source, no npm."""
    src = tmp_path / "cache"
    _fake_complete(src)
    dest = tmp_path / "build" / "gridplan" / "_vendor"
    assert assets.copy_assets(dest, sources=[tmp_path / "nothing", src], cache=tmp_path / "npm") == []
    assert assets.missing_assets(dest) == []
    assert all((dest / f"{n}@{v}" / "marker.txt").read_text() == n
               for n, (v, _) in assets.PACKAGES.items())


def test_setup_py_build_step_copies_assets_into_build_lib(tmp_path, monkeypatch, no_npm):
    """``build_py`` of setup.py puts a complete ``gridplan/_vendor`` into the build folder."""
    src = tmp_path / "cache"
    _fake_complete(src)
    monkeypatch.setenv("GRIDPLAN_VENDOR_DIR", str(src))
    spec = importlib.util.spec_from_file_location("_setup_under_test", ROOT / "setup.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setattr("setuptools.setup", lambda **kw: None)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "_assets_module", lambda: assets)
    cmd = mod.BuildPyWithAssets.__new__(mod.BuildPyWithAssets)
    cmd.build_lib, cmd.dry_run, cmd.editable_mode = str(tmp_path / "lib"), False, False
    cmd.announce = lambda *a, **k: None
    monkeypatch.setattr(mod.build_py, "run", lambda self: None)
    cmd.run()
    assert assets.missing_assets(tmp_path / "lib" / "gridplan" / "_vendor") == []


def test_package_data_ships_the_vendor_folder():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    assert "_vendor/**/*" in cfg["options.package_data"]["gridplan"]
    assert "_vendor/**/.complete" in cfg["options.package_data"]["gridplan"]


def test_lower_bounds_constraints_match_setup_cfg():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "lower_bounds.py"),
                          "--extras", "dask,test"], capture_output=True, text=True, check=True).stdout
    pins = dict(line.split("==") for line in out.splitlines())
    assert {"numpy", "pandas", "geopandas", "shapely", "scipy", "dask", "pytest"} <= set(pins)
    assert "folium" in pins and pins["folium"].startswith("0.20")
    setup_cfg = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    for name, ver in pins.items():
        assert f"{name}>={ver}" in setup_cfg.replace("dask[distributed]", "dask")
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "lower_bounds.py"), "--extras", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "nope" in bad.stderr
