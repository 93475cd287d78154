"""The JSON the editor's page reads: full state, deltas after an edit, previews (WGS84 GeoJSON).

Every value is a plain JSON value (no NaN: missing numbers are null). Names from the data are sent
as JSON strings; the page inserts them as text, never as markup.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import ops

if TYPE_CHECKING:
    from ..pipeline import Plan
    from .session import EditSession

__all__ = ["delta", "grid_features", "kpi", "preview", "state"]

_DEG = 6  # decimals of WGS84 coordinates sent to the page (~0.1 m)


def _plain(v: Any) -> Any:
    """A JSON-ready scalar (numpy types unwrapped, NaN/NaT as None)."""
    if v is None:
        return None
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(v, str):
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def _geojson(geoms: np.ndarray, crs, transformer=None) -> list[dict[str, Any] | None]:
    """WGS84 GeoJSON geometries (coordinates rounded) of metric geometries."""
    if not len(geoms):
        return []
    if transformer is None:
        from pyproj import Transformer

        transformer = Transformer.from_crs(crs, 4326, always_xy=True)

    def to_wgs84(c: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(c[:, 0], c[:, 1])
        return np.round(np.column_stack([x, y]), _DEG)

    wgs = shapely.transform(np.asarray(geoms, dtype=object), to_wgs84)
    return [json.loads(t) if t is not None else None for t in shapely.to_geojson(wgs)]


def _collection(frame: gpd.GeoDataFrame, props: list[str]) -> dict[str, Any]:
    geoms = _geojson(frame.geometry.to_numpy(), frame.crs)
    cols = [c for c in props if c in frame.columns]
    records = frame[cols].to_dict("records")
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": g, "properties": {k: _plain(r.get(k)) for k in props}}
        for g, r in zip(geoms, records)]}


def grid_features(plan: Plan, ctx: ops.EditContext, grid_ids: list[str] | None = None) -> dict[str, Any]:
    """The grids (all, or ``grid_ids``) as a WGS84 FeatureCollection with the page's properties."""
    grids = plan.grids
    if grid_ids is not None:
        wanted_ids = set(grid_ids)
        grids = grids.iloc[[i for i, g in enumerate(grids["grid_id"].astype(str).tolist()) if g in wanted_ids]]
    gid = ctx.labels(plan.transformers)[0]
    wanted = set(grids["grid_id"].astype(str))
    if len(wanted) <= 20:
        codes, code_of = ctx.grid_codes(plan.transformers)
        rows_of = {k: np.flatnonzero(codes == code_of[k]) for k in wanted if k in code_of}
    else:
        order = np.argsort(gid, kind="stable")
        keys, starts = np.unique(gid[order], return_index=True)
        ends = np.r_[starts[1:], len(order)]
        rows_of = {k: order[s:e] for k, s, e in zip(keys, starts, ends) if k in wanted}
    caps = ops.grid_capacities(plan, grids)  # the rule of the KPI header's over-capacity count
    geoms = _geojson(grids.geometry.to_numpy(), grids.crs, ctx.to_wgs84())
    parts_of = _all_parts(ctx, gid) if len(wanted) > 20 else None
    feats = []
    for g, r, cap in zip(geoms, grids.to_dict("records"), caps.tolist()):
        k = str(r["grid_id"])
        rows = rows_of.get(k, np.empty(0, dtype=np.int64))
        mid = str(r.get("manager_id"))
        w = float(r.get("workload") or 0.0)
        parts = parts_of.get(k, 0) if parts_of is not None else ctx.parts(rows)
        props = {"grid_id": k, "manager_id": mid, "manager_name": _plain(r.get("manager_name")),
                 "phone": _plain(r.get("phone")) or "", "station_id": _plain(r.get("station_id")),
                 "township_id": _plain(r.get("township_id")), "workload": round(w, 2), "capacity": cap,
                 "customers": int(r.get("customers") or 0), "n_transformers": int(r.get("n_transformers") or 0),
                 "hv_km": _plain(r.get("hv_km")) or 0.0, "locked": bool(r.get("locked") or False),
                 "parts": int(parts), "contiguous": parts <= 1, "over_capacity": w > cap + 1e-9,
                 "beyond_commitment": int(ctx.beyond[rows].sum()) if len(rows) else 0,
                 "placeholder": bool(r.get("placeholder") or False)}
        feats.append({"type": "Feature", "id": k, "geometry": g, "properties": props})
    return {"type": "FeatureCollection", "features": feats}


def _all_parts(ctx: ops.EditContext, gid: np.ndarray) -> dict[str, int]:
    """Connected pieces of every grid's 台区 on the contiguity graph, in one pass."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    adj = ctx.adjacency.tocoo()
    same = gid[adj.row] == gid[adj.col]
    n = len(gid)
    sub = csr_matrix((np.ones(int(same.sum()), dtype=np.int8), (adj.row[same], adj.col[same])), shape=(n, n))
    _, comp = connected_components(sub, directed=False)
    return {str(k): int(v) for k, v in pd.DataFrame({"g": gid, "c": comp}).groupby("g")["c"].nunique().items()}


def kpi(plan: Plan, ctx: ops.EditContext) -> dict[str, Any]:
    """The KPI header."""
    return {k: _plain(v) for k, v in ops.api_kpi(plan, ctx).items()}


def _managers(plan: Plan, ids: set[str] | None = None) -> list[dict[str, Any]]:
    m = plan.managers
    if ids is not None:
        m = m[m["manager_id"].astype(str).isin(ids)]
    out = []
    for r in m.to_dict("records"):
        out.append({"manager_id": str(r.get("manager_id")), "name": _plain(r.get("name")),
                    "phone": _plain(r.get("phone")) or "", "station_id": _plain(r.get("station_id")),
                    "placeholder": bool(r.get("placeholder") or False), "role": _plain(r.get("role")) or "lv",
                    "grid_id": _plain(r.get("grid_id")), "workload": _plain(r.get("workload")),
                    "max_workload": _plain(r.get("max_workload"))})
    return out


def _static(session: EditSession) -> dict[str, Any]:
    """What never changes in a session (townships, villages, stations, 台区 points), computed once."""
    cache = session._static_json
    if cache is not None:
        return cache
    p = session.current
    c = p.county
    ctx = session.context
    assert ctx is not None  # set in EditSession.__post_init__
    st = c.stations.to_crs(4326)
    stations = [{"station_id": str(r.station_id), "name": _plain(getattr(r, "name", None)),
                 "kind": _plain(getattr(r, "kind", None)),
                 "lon": round(float(r.geometry.x), _DEG), "lat": round(float(r.geometry.y), _DEG)}
                for r in st.itertuples()]
    villages = None
    if c.villages is not None and len(c.villages):
        villages = _collection(c.villages, ["village_id", "name", "township_id"])
    tr = p.transformers
    cache = {
        "stations": stations,
        "townships": _collection(c.townships, ["township_id", "name", "station_id", "area_class"]),
        "villages": villages,
        "points": {"transformer_id": ctx.ids.tolist(),
                   "name": [_plain(v) for v in tr["name"].tolist()] if "name" in tr.columns else ctx.ids.tolist(),
                   "lon": ctx.lonlat[:, 0].tolist(), "lat": ctx.lonlat[:, 1].tolist(),
                   "township_id": ctx.township.tolist(), "station_id": ctx.station.tolist(),
                   "customers": [int(x) for x in ctx.customers], "workload": [float(x) for x in ctx.workload],
                   "beyond_commitment": [bool(x) for x in ctx.beyond]},
    }
    session._static_json = cache
    return cache


def state(session: EditSession) -> dict[str, Any]:
    """The full state of the session (``GET /api/state``)."""
    p = session.current
    ctx = session.context
    assert ctx is not None  # set in EditSession.__post_init__
    s = _static(session)
    prm = p.params
    tr = p.transformers
    points = dict(s["points"])
    points["grid_id"] = tr["grid_id"].astype(str).tolist()
    points["manager_id"] = tr["manager_id"].astype(str).tolist()
    rec = session.recovery
    return {"county_name": p.county.name,
            "params": {"capacity": float(prm.capacity), "tolerance": float(prm.tolerance), "scope": prm.scope,
                       "workload": prm.workload},
            "stations": s["stations"], "townships": s["townships"], "villages": s["villages"],
            "managers": _managers(p), "grids": grid_features(p, ctx), "transformers": points,
            "kpi": kpi(p, ctx), "history": session.history.summary(), "store": session.store_info(),
            "dirty": session.dirty,
            "recovery": None if not rec else {"steps": len(rec.get("ops", [])), "saved_at": rec.get("saved_at")}}


def delta(session: EditSession, before: Plan, after: Plan, *, warnings_for: set[str] | None = None
          ) -> dict[str, Any]:
    """What changed between two states (the answer to every edit, undo and redo)."""
    ctx = session.context
    assert ctx is not None  # set in EditSession.__post_init__
    changed, removed = ops.changed_grids(before, after)
    a = before.transformers
    b = after.transformers
    ga, ma = ctx.labels(a)
    gb, mb = ctx.labels(b)
    rows = np.flatnonzero((ga != gb) | (ma != mb))
    feats = grid_features(after, ctx, changed)
    warnings = []
    for f in feats["features"]:
        pr = f["properties"]
        if pr["parts"] > 1:
            warnings.append({"kind": "split", "grid_id": pr["grid_id"], "parts": pr["parts"],
                             "message": f"网格 {pr['grid_id']}({pr['manager_name']})被分成 {pr['parts']} 块,不再连成一片"})
        if pr["over_capacity"]:
            warnings.append({"kind": "over_capacity", "grid_id": pr["grid_id"], "workload": pr["workload"],
                             "capacity": pr["capacity"],
                             "message": f"网格 {pr['grid_id']}({pr['manager_name']})工作量 {pr['workload']:g} "
                                        f"超过上限 {pr['capacity']:g}"})
    mids = set(ma[rows].tolist()) | set(mb[rows].tolist())
    mids |= {f["properties"]["manager_id"] for f in feats["features"]}
    mids |= set(before.grids.loc[before.grids["grid_id"].astype(str).isin(removed), "manager_id"].astype(str))
    return {"grids": feats, "removed": removed,
            "transformers": {ctx.ids[i]: {"grid_id": gb[i], "manager_id": mb[i]} for i in rows.tolist()},
            "managers": _managers(after, mids), "kpi": kpi(after, ctx), "warnings": warnings,
            "history": session.history.summary(), "dirty": session.dirty}


def preview(session: EditSession, preview_id: str, result: ops.Rebalance) -> dict[str, Any]:
    """A rebalance preview: the changes, KPIs before and after, the area's grids after."""
    ctx = session.context
    assert ctx is not None  # set in EditSession.__post_init__
    ch = result.changes
    changed, removed = ops.changed_grids(session.current, result.plan)
    return {"preview_id": preview_id, "area": {"kind": result.area[0], "id": result.area[1]},
            "changes": [{k: _plain(v) for k, v in r.items()} for r in ch.to_dict("records")],
            "kpi_before": kpi(session.current, ctx), "kpi_after": kpi(result.plan, ctx),
            "grids": grid_features(result.plan, ctx, changed), "removed": removed}
