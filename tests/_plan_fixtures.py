"""Small hand-built counties for unit tests of the later pipeline stages (no loader needed)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gridplan.model import County
from gridplan.settings import Params

CRS_M = CRS.from_epsg(4547)  # CGCS2000 3-degree GK, CM 114E: metres
X0, Y0 = 500_000.0, 3_700_000.0


def small_county(*, n: int = 120, seed: int = 0, with_empty: bool = True, ushape: bool = True,
                 managers: bool = True) -> County:
    """Three or four townships (one U-shaped, one empty), two stations, ``n`` 台区."""
    rng = np.random.default_rng(seed)
    sq = lambda x, y, w, h: shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)
    t1 = sq(0, 0, 10_000, 10_000)
    t2 = sq(10_000, 0, 10_000, 10_000)
    if ushape:
        t2 = shapely.difference(t2, sq(13_000, 3_000, 4_000, 7_000))  # a bay from the north
    polys = [t1, t2]
    ids, names, stations = ["T1", "T2"], ["东镇", "西乡"], ["S1", "S1"]
    if with_empty:
        polys.append(sq(0, 10_000, 20_000, 5_000))
        ids.append("T3"), names.append("空乡"), stations.append("S1")
    polys.append(sq(20_000, 0, 10_000, 15_000))
    ids.append("T4"), names.append("北镇"), stations.append("S2")
    towns = gpd.GeoDataFrame({"township_id": ids, "name": names, "station_id": stations,
                              "area_class": "农村"}, geometry=polys, crs=CRS_M)
    st = gpd.GeoDataFrame({"station_id": ["S1", "S2"], "name": ["东镇供电所", "北镇供电所"],
                           "kind": ["供电所", "供电所"], "parent_id": [None, None]},
                          geometry=shapely.points([(X0 + 5_000, Y0 + 5_000), (X0 + 25_000, Y0 + 7_000)]),
                          crs=CRS_M)
    filled = towns[towns["township_id"] != "T3"]
    pts, tids = [], []
    while len(pts) < n:
        x, y = rng.uniform(0, 30_000), rng.uniform(0, 15_000)
        p = shapely.Point(X0 + x, Y0 + y)
        hit = filled[filled.contains(p)]
        if len(hit):
            pts.append(p)
            tids.append(hit["township_id"].iloc[0])
    tr = gpd.GeoDataFrame({
        "transformer_id": [f"TQ{i:04d}" for i in range(n)], "name": [f"台区{i}" for i in range(n)],
        "customers": rng.integers(20, 200, n), "capacity_kva": 200.0, "feeder_id": None,
        "status": "运行", "township_id": tids, "village": None}, geometry=pts, crs=CRS_M)
    tr["station_id"] = tr["township_id"].map(towns.set_index("township_id")["station_id"])
    roster = None
    if managers:
        roster = gpd.GeoDataFrame({
            "manager_id": ["M1", "M2", "M3"], "name": ["示例甲", "示例乙", "示例丙"],
            "phone": ["138-0000-0001", "138-0000-0002", "138-0000-0003"],
            "station_id": ["S1", "S1", "S2"], "max_workload": [np.nan, np.nan, np.nan]},
            geometry=shapely.points([(X0 + 1_000, Y0 + 1_000), (X0 + 19_000, Y0 + 1_000),
                                     (X0 + 25_000, Y0 + 2_000)]), crs=CRS_M)
    return County(name="测试县", crs=CRS_M, townships=towns, stations=st, transformers=tr,
                  params=Params(capacity=3000), managers=roster)


def split_grids(county: County, per_township: int = 2) -> pd.Series:
    """A simple valid partition: each township's 台区 split by x into ``per_township`` grids."""
    tr = county.transformers
    out = pd.Series(index=tr.index, dtype=object)
    for tid, grp in tr.groupby("township_id"):
        x = grp.geometry.x.rank(method="first").to_numpy()
        k = min(per_township, len(grp))
        lab = np.minimum((x - 1) * k // len(grp), k - 1).astype(int)
        out.loc[grp.index] = [f"{tid}-{j + 1:02d}" for j in lab]
    return out


def add_transformers(src, dst, poly, n: int, *, seed: int = 1, decimals: int = 6,
                     households: tuple[int, int] = (30, 120), extra: dict[str, str] | None = None) -> None:
    """Copy the county folder ``src`` to ``dst`` with ``n`` new 台区 (``NEW0000`` …) added to its
    ledger at random points (seeded) of ``poly`` (WGS84), written with ``decimals`` decimals."""
    import shutil
    from pathlib import Path

    src, dst = Path(src), Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = poly.bounds
    rows = []
    while len(rows) < n:
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if poly.contains(shapely.Point(x, y)):
            k = len(rows)
            rows.append({"台区编号": f"NEW{k:04d}", "台区名称": f"新增{k}号台区", "经度": f"{x:.{decimals}f}",
                         "纬度": f"{y:.{decimals}f}", "容量(kVA)": "200",
                         "户数": str(int(rng.integers(*households))), **(extra or {})})
    ledger = pd.read_csv(src / "transformers.csv", dtype=str, encoding="utf-8-sig")
    pd.concat([ledger, pd.DataFrame(rows)]).to_csv(dst / "transformers.csv", index=False,
                                                   encoding="utf-8-sig")


def plan_written(folder, out):
    """Load and plan the county ``folder`` and write the plan to ``out`` (no map, no roster).

    Returns (County, Plan).
    """
    import gridplan

    c = gridplan.load_county(folder)
    p = gridplan.plan(c)
    p.to_file(out, map_html=False, roster=False)
    return c, p
