"""The same geography in every supported input system gives the same plan (issue #16, part 3).

A real-shaped county (../shared/data townships, 台区 inside real villages) is written once in
WGS84; its ledger is then rewritten in each input system gridplan reads (CGCS2000, GK 3° with
and without the zone prefix, GCJ-02, BD-09), declared in ``gridplan.toml``. After projection
the coordinates differ by millimetres (as
written in the files) and float noise; 台区 are rounded to a 10 m grid before solving
(:data:`gridplan.partition.SNAP_M`), so every assignment must be identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridplan import coords, load_county, plan
from gridplan.partition import snap_points

from realcounty import TOWNS, make_real_county

pytestmark = pytest.mark.skipif(not TOWNS.exists(),
                                reason="../shared/data/townships not present (only in the dev "
                                       "workspace)")

CODE = "10002_宜蘭縣"


def _rewrite(folder: Path, system: str) -> None:
    """Rewrite the ledger's coordinates in ``system`` and declare it for that layer."""
    path = folder / "transformers.csv"
    df = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    lon = df["经度"].astype(float).to_numpy()
    lat = df["纬度"].astype(float).to_numpy()
    x, y = coords.from_wgs84(lon, lat, system)
    fmt = "{:.3f}" if system.startswith("gk3") else "{:.8f}"  # millimetres, as files hold them
    df["经度"] = [fmt.format(v) for v in x]
    df["纬度"] = [fmt.format(v) for v in y]
    df.to_csv(path, index=False, encoding="utf-8-sig")
    (folder / "gridplan.toml").write_text(
        f'[input.coords_by_layer]\ntransformers = "{system}"\n', encoding="utf-8")


def _assignment(folder: Path) -> pd.Series:
    p = plan(load_county(folder))
    tr = p.transformers
    return pd.Series(tr["grid_id"].astype(str).to_numpy(),
                     index=tr["transformer_id"].astype(str).to_numpy()).sort_index()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.Series]:
    parent = tmp_path_factory.mktemp("wgs84")
    folder, _ = make_real_county(parent, CODE, variant="csv")
    return parent, _assignment(folder)


def _gk_zone() -> int:
    """The GK 3° zone of the county (Yilan, about 121.75° E)."""
    return int(coords.gk_zone_of(np.array([121.75]))[0])


@pytest.mark.parametrize("system", ["cgcs2000", "gk3", "gk3:zone", "gcj02", "bd09"])
def test_same_assignment_in_every_input_system(system: str, reference, tmp_path: Path) -> None:
    _, ref = reference
    if system == "gk3:zone":
        system = f"gk3:{_gk_zone()}"
    folder, _ = make_real_county(tmp_path, CODE, variant="csv")
    _rewrite(folder, system)
    got = _assignment(folder)
    assert got.index.equals(ref.index)
    differ = got.index[got.to_numpy() != ref.to_numpy()]
    assert len(differ) == 0, f"{system}: {len(differ)} 台区 in other grids: {list(differ[:10])}"


def test_snap_points_rounds_only_points_and_copies() -> None:
    import geopandas as gpd
    import shapely

    g = gpd.GeoDataFrame({"a": [1, 2, 3]}, geometry=[shapely.Point(10.4, 20.6),
                                                     shapely.Point(-0.5000001, 3.49),
                                                     shapely.box(0.3, 0.3, 1.7, 1.7)],
                         crs=32651)
    out = snap_points(g, grid_m=1.0)
    assert shapely.get_coordinates(out.geometry.values[:2]).tolist() == [[10.0, 21.0],
                                                                         [-1.0, 3.0]]
    assert out.geometry.iloc[2].equals(g.geometry.iloc[2])
    assert g.geometry.iloc[0].x == 10.4  # input untouched
    assert out.crs == g.crs
    coarse = snap_points(g)  # default SNAP_M = 10 m
    assert shapely.get_coordinates(coarse.geometry.values[:2]).tolist() == [[10.0, 20.0],
                                                                            [-0.0, 0.0]]
    with pytest.raises(ValueError):
        snap_points(g, grid_m=0)
