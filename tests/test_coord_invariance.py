"""The same geography in every supported input system gives the same plan (issue #16, part 3).

A real-shaped county (``tests/realcounty.py``: real township polygons of ../shared/data/townships,
seeded 台区 inside real villages) is written in WGS84, then converted to CGCS2000, GCJ-02, BD-09
and the Gauss-Krüger 3° zone with and without the zone prefix, at the precision ledgers carry
(7 decimals of a degree, 2 decimals of a metre: noise of up to a centimetre). Loaded, every
version must give the very same County coordinates (the fixed grid of ``gridplan.io.load``) and
the very same ``grid_id`` for every 台区.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from realcounty import TOWNS, make_real_county

from gridplan import coords
from gridplan.io.load import LINE_GRID_M, POINT_GRID_M, load_county, on_grid
from gridplan.pipeline import plan

CODE = "10002_宜蘭縣"
#: System -> (EPSG written in the GeoJSON headers of the converted layers, decimals in the ledger).
SYSTEMS = {"cgcs2000": (4490, 7), "gcj02": (4326, 7), "bd09": (4326, 7),
           "EPSG:4528": (4528, 2),  # GK zone 40, easting with the zone number in front
           "gk3:40": (4549, 2)}     # GK zone 40, easting without it


def _convert(base: Path, out: Path, system: str) -> Path:
    """Copy the WGS84 county folder ``base`` to ``out`` with every layer in ``system``."""
    epsg, decimals = SYSTEMS[system]
    shutil.copytree(base, out)

    def move(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(coords.from_wgs84(xy[:, 0], xy[:, 1], system))

    for layer in ("townships", "stations"):
        g = gpd.read_file(out / f"{layer}.geojson")
        g = g.set_geometry(shapely.transform(g.geometry.to_numpy(), move), crs=epsg)
        (out / f"{layer}.geojson").unlink()
        g.to_file(out / f"{layer}.geojson", driver="GeoJSON")
    ledger = pd.read_csv(out / "transformers.csv", encoding="utf-8-sig", dtype=str)
    x, y = coords.from_wgs84(ledger["经度"].astype(float), ledger["纬度"].astype(float), system)
    ledger["经度"] = [f"{v:.{decimals}f}" for v in x]
    ledger["纬度"] = [f"{v:.{decimals}f}" for v in y]
    ledger.to_csv(out / "transformers.csv", index=False, encoding="utf-8-sig")
    (out / "gridplan.toml").write_text(f'[input]\ncoords = "{system}"\n', encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not TOWNS.exists():
        pytest.skip("../shared/data/townships not present (only in the dev workspace)")
    tmp = tmp_path_factory.mktemp("systems")
    base, _ = make_real_county(tmp, CODE, variant="csv", seed=3)
    out = {"wgs84": base}
    for system in SYSTEMS:
        out[system] = _convert(base, tmp / system.replace(":", "_"), system)
    return out


def _xy(layer: gpd.GeoDataFrame) -> np.ndarray:
    return shapely.get_coordinates(layer.geometry.to_numpy())


def test_every_system_gives_the_same_plan(folders: dict[str, Path]) -> None:
    ref_county = load_county(folders["wgs84"])
    ref = plan(ref_county).transformers.set_index("transformer_id")["grid_id"]
    assert ref.str.len().gt(0).all()
    for system, folder in folders.items():
        if system == "wgs84":
            continue
        county = load_county(folder)
        assert county.crs == ref_county.crs, system
        tr = county.transformers.set_index("transformer_id").reindex(ref_county.transformers["transformer_id"])
        np.testing.assert_array_equal(_xy(tr), _xy(ref_county.transformers), err_msg=system)
        np.testing.assert_array_equal(_xy(county.townships), _xy(ref_county.townships),
                                      err_msg=system)
        got = plan(county).transformers.set_index("transformer_id")["grid_id"].reindex(ref.index)
        differ = ref.index[(got != ref).to_numpy()].tolist()
        assert not differ, f"{system}: {len(differ)} 台区 in another grid than in WGS84: {differ[:10]}"


def test_points_sit_on_the_grid_and_the_ledger_position_is_kept(folders: dict[str, Path]) -> None:
    county = load_county(folders["gcj02"])
    tr = county.transformers
    inside = tr["snapped_m"].isna().to_numpy()
    xy = _xy(tr)[inside]
    assert np.array_equal(xy, np.round(xy / POINT_GRID_M) * POINT_GRID_M)
    st = _xy(county.stations)
    assert np.array_equal(st, np.round(st / POINT_GRID_M) * POINT_GRID_M)
    ring = _xy(county.townships)
    assert np.array_equal(ring, np.round(ring / LINE_GRID_M) * LINE_GRID_M)
    # the ledger's own WGS84 position, before the grid: within half a grid diagonal of the point
    assert tr["ledger_lon"].notna().all() and tr["ledger_lat"].notna().all()
    led = gpd.GeoSeries(gpd.points_from_xy(tr["ledger_lon"], tr["ledger_lat"]), crs=4326)
    off = led.to_crs(county.crs).distance(tr.geometry.reset_index(drop=True)).to_numpy()
    assert (off[inside] <= POINT_GRID_M * np.sqrt(0.5) + 0.01).all()
    assert (off[inside] > 0).any()  # the grid did move them (and the ledger kept where from)


def test_on_grid_is_idempotent_and_keeps_missing_geometry() -> None:
    pts = [shapely.Point(1234.5678, 9876.54321), None, shapely.Point(), shapely.Point(15.0, 25.0)]
    poly = shapely.Polygon([(0.2, 0.3), (100.7, 0.1), (100.4, 80.6), (0.1, 80.2)])
    layer = gpd.GeoDataFrame({"i": range(5)}, geometry=[*pts, poly], crs=4547)
    once = on_grid(layer)
    assert once.geometry.iloc[0].equals(shapely.Point(1230, 9880))
    assert once.geometry.iloc[1] is None and once.geometry.iloc[2].is_empty
    assert once.geometry.iloc[3].equals(shapely.Point(20, 20))  # halves to even
    ring = shapely.get_coordinates(once.geometry.iloc[4])
    assert np.array_equal(ring, np.round(ring)) and once.geometry.iloc[4].is_valid
    twice = on_grid(once)
    assert all((a is None and b is None) or a.equals(b)
               for a, b in zip(once.geometry, twice.geometry))
    assert layer.geometry.iloc[0].x == 1234.5678  # a copy: the input is untouched
