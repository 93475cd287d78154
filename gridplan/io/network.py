"""Import a pandapower medium-voltage network (with geodata) as a :class:`~gridplan.model.County`.

``from_pandapower(net)`` is re-exported as ``gridplan.io.from_pandapower``; pandapower itself is an
optional extra (``pip install gridplan[pandapower]``). ``from_network_geojson(folder)`` reads the
same network exported as GeoJSON layers (``buses``, ``lines``, ``hvmv_substations``,
``mvlv_transformers``, ``loads``; the layout of ``../shared/data/networks/mv_oberrhein``).

What becomes what:

* MV/LV transformers (``vn_lv_kv < 1``) are the 台区, placed at their LV bus (else the MV bus);
  ``capacity_kva = sn_mva * 1000``; ``customers`` from the loads on the LV bus (one household per
  :data:`KW_PER_HOUSEHOLD` kW), else estimated from the capacity (:data:`HOUSEHOLDS_PER_KVA`).
  A network without MV/LV transformers (pandapower's ``mv_oberrhein()`` default) uses its loads on
  MV buses as the 台区.
* HV/MV transformers and external grids on MV buses are the substations.
* Line switches: ``closed=False`` gives a normally-open switch placed 25 m (at most half the line)
  into the line from its bus, so that it cuts exactly that line; closed ones sit on their bus.
* Feeders: one ``feeder_id`` per line leaving a substation, holding every line reached from it
  without passing an open switch or another substation.
* One township (``T1``, a 1 km buffer of the convex hull of everything) and one station (``S1``, at
  the first substation) are derived, since a network model has neither.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, Point

from ..coords import metric_crs_for
from ..model import County
from ..settings import Params

__all__ = ["HOUSEHOLDS_PER_KVA", "KW_PER_HOUSEHOLD", "from_network_geojson", "from_pandapower"]

log = logging.getLogger(__name__)

#: Peak load per household used to turn a load's ``p_mw`` into a household count.
KW_PER_HOUSEHOLD = 2.0
#: Households per kVA of transformer capacity when no load is given (0.4 load factor, 2 kW each).
HOUSEHOLDS_PER_KVA = 0.2
#: How far into a line an open switch is placed (metres; at most half the line).
OPEN_SWITCH_OFFSET_M = 25.0


def from_pandapower(net: Any, *, name: str | None = None) -> County:
    """Turn a pandapower network with geodata into a :class:`~gridplan.model.County`.

    Parameters
    ----------
    net
        A ``pandapowerNet`` whose buses and lines carry geodata (pandapower 3: ``net.bus.geo`` /
        ``net.line.geo`` GeoJSON strings; older versions: ``net.bus_geodata`` / ``net.line_geodata``).
    name
        County name (default: ``net.name`` or ``"pandapower"``).

    Returns
    -------
    County
        ``transformers``, ``feeders``, ``switches``, ``substations``, one derived township and
        station, all in the metric CRS chosen by :func:`gridplan.coords.metric_crs_for`.
    """
    try:
        import pandapower  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("from_pandapower needs pandapower: pip install gridplan[pandapower]") from exc
    buses = _bus_xy(net)
    lines = _line_coords(net, buses)
    trafo = net.trafo[net.trafo["in_service"].astype(bool)] if len(net.trafo) else net.trafo
    hv = trafo[(trafo["vn_hv_kv"] > 35) & (trafo["vn_lv_kv"] >= 1)]
    subs = [(f"SS{i}", str(r["name"]) if pd.notna(r["name"]) else f"HV/MV {i}", int(r["lv_bus"]))
            for i, r in hv.iterrows()]
    for i, r in net.ext_grid.iterrows():
        if 1 <= float(net.bus.at[r["bus"], "vn_kv"]) <= 35:
            subs.append((f"EG{i}", str(r["name"]) if pd.notna(r["name"]) else f"ext_grid {i}", int(r["bus"])))
    loads = net.load[net.load["in_service"].astype(bool)] if len(net.load) else net.load
    mvlv = trafo[trafo["vn_lv_kv"] < 1]
    report = []
    if len(mvlv):
        kw = loads.groupby("bus")["p_mw"].sum() * 1000.0
        tr = [{"transformer_id": f"TR{i}", "name": str(r["name"]), "bus": int(r["hv_bus"]),
                   "at": int(r["lv_bus"]) if int(r["lv_bus"]) in buses.index else int(r["hv_bus"]),
                   "capacity_kva": float(r["sn_mva"]) * 1000.0, "kw": float(kw.get(r["lv_bus"], np.nan))}
              for i, r in mvlv.iterrows()]
    else:
        mv_bus = net.bus.index[net.bus["vn_kv"] >= 1]
        lo = loads[loads["bus"].isin(mv_bus)]
        tr = [{"transformer_id": f"LD{i}", "name": str(r["name"]), "bus": int(r["bus"]), "at": int(r["bus"]),
                   "capacity_kva": (float(r["sn_mva"]) if pd.notna(r.get("sn_mva")) else float(r["p_mw"])) * 1000.0,
                   "kw": float(r["p_mw"]) * 1000.0}
              for i, r in lo.iterrows()]
        report.append(f"网络中没有配电变压器（MV/LV），以 {len(tr)} 个中压负荷点作为台区。")
    sw = net.switch[net.switch["et"] == "l"] if len(net.switch) else net.switch
    switches = [{"switch_id": f"SW{i}", "line": int(r["element"]), "bus": int(r["bus"]), "closed": bool(r["closed"])}
                for i, r in sw.iterrows() if int(r["element"]) in lines]
    return _build(buses, lines, subs, tr, switches, name or getattr(net, "name", None) or "pandapower", report)


def from_network_geojson(folder: str | Path, *, name: str | None = None) -> County:
    """Read a network exported as GeoJSON layers (the ``mv_oberrhein`` layout) as a County.

    Lines carry an ``open_switch`` flag but not which end is open: the open switch is placed at
    the line's midpoint. No closed switch positions are given, so segments may be cut anywhere.
    """
    folder = Path(folder)

    def rd(layer: str) -> gpd.GeoDataFrame:
        return gpd.read_file(folder / f"{layer}.geojson")

    b = rd("buses")
    buses = pd.DataFrame({"x": b.geometry.x.to_numpy(), "y": b.geometry.y.to_numpy()},
                         index=b["bus_id"].astype(int).to_numpy())
    ln = rd("lines")
    ln = ln[ln["in_service"].astype(bool)] if "in_service" in ln.columns else ln
    lines = {int(r["line_id"]): (int(r["from_bus"]), int(r["to_bus"]), np.asarray(r.geometry.coords)[:, :2])
             for _, r in ln.iterrows()}
    hv = rd("hvmv_substations")
    subs = [(f"SS{int(r['trafo_id'])}", str(r["name"]), int(r["lv_bus"])) for _, r in hv.iterrows()]
    mv = rd("mvlv_transformers")
    loads = rd("loads") if (folder / "loads.geojson").exists() else None
    kw = loads.groupby("bus")["p_mw"].sum() * 1000.0 if loads is not None else pd.Series(dtype=float)
    tr = [{"transformer_id": f"TR{int(r['trafo_id'])}", "name": str(r["name"]), "bus": int(r["hv_bus"]),
               "xy": (r.geometry.x, r.geometry.y), "capacity_kva": float(r["sn_mva"]) * 1000.0,
               "kw": float(kw.get(r["lv_bus"], np.nan))}
          for _, r in mv.iterrows()]
    switches = [{"switch_id": f"OPEN{int(r['line_id'])}", "line": int(r["line_id"]), "bus": None, "closed": False}
                for _, r in ln.iterrows() if bool(r.get("open_switch", False))]
    return _build(buses, lines, subs, tr, switches, name or folder.name, [])


# ----------------------------------------------------------------------------- pandapower geodata
def _geo(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        return json.loads(value)
    if isinstance(value, dict):
        return value
    return None


def _bus_xy(net: Any) -> pd.DataFrame:
    if "geo" in net.bus.columns and net.bus["geo"].notna().any():
        xy = {i: geo["coordinates"][:2] for i, g in net.bus["geo"].items() if (geo := _geo(g))}
        return pd.DataFrame.from_dict(xy, orient="index", columns=["x", "y"])
    gd = getattr(net, "bus_geodata", None)
    if gd is not None and len(gd):
        return gd[["x", "y"]].astype(float)
    raise ValueError("the pandapower network has no bus geodata (net.bus.geo or net.bus_geodata)")


def _line_coords(net: Any, buses: pd.DataFrame) -> dict[int, tuple[int, int, np.ndarray]]:
    out = {}
    old = getattr(net, "line_geodata", None)
    for i, r in net.line.iterrows():
        if not bool(r["in_service"]):
            continue
        coords = None
        g = _geo(r["geo"]) if "geo" in net.line.columns else None
        if g:
            coords = np.asarray(g["coordinates"], dtype=float)[:, :2]
        elif old is not None and i in old.index:
            coords = np.asarray(old.at[i, "coords"], dtype=float)[:, :2]
        fb, tb = int(r["from_bus"]), int(r["to_bus"])
        if coords is None or len(coords) < 2:
            if fb in buses.index and tb in buses.index:
                coords = buses.loc[[fb, tb], ["x", "y"]].to_numpy(float)
            else:
                continue
        out[int(i)] = (fb, tb, coords)
    return out


# ----------------------------------------------------------------------------- common builder
def _feeders(lines: dict, subs: list, opens: dict[int, int | None]) -> tuple[dict[int, str], dict[int, str], list]:
    """Assign a feeder id per line (one per line leaving a substation) and per bus reached."""
    at_bus: dict[int, list[int]] = {}
    for lid in sorted(lines):
        fb, tb, _ = lines[lid]
        at_bus.setdefault(fb, []).append(lid)
        at_bus.setdefault(tb, []).append(lid)
    sub_bus = {b for _, _, b in subs}
    line_f: dict[int, str] = {}
    bus_f: dict[int, str] = {}
    feeders = []  # (feeder_id, substation_id, name)

    def far(lid: int, b: int) -> int | None:
        fb, tb, _ = lines[lid]
        other = tb if b == fb else fb
        if lid in opens and (opens[lid] is None or opens[lid] in (b, other)):
            return None  # an open point on this line: do not pass through it
        return other

    k = 0
    for sid, sname, sb in subs:
        for lid in at_bus.get(sb, []):
            if lid in line_f:
                continue
            k += 1
            fid = f"F{k:02d}"
            feeders.append((fid, sid, f"{sname} 出线 {k}"))
            line_f[lid] = fid
            queue = deque([(lid, sb)])
            while queue:
                cur, frm = queue.popleft()
                nb = far(cur, frm)
                if nb is None or nb in sub_bus:
                    continue
                bus_f.setdefault(nb, fid)
                for nxt in at_bus.get(nb, []):
                    if nxt not in line_f:
                        line_f[nxt] = fid
                        queue.append((nxt, nb))
    for lid in sorted(set(lines) - set(line_f)):  # not reached from any substation
        k += 1
        fid = f"F{k:02d}"
        feeders.append((fid, None, f"未接入变电站的线路 {k}"))
        line_f[lid] = fid
        pending = deque([lid])
        while pending:
            cur = pending.popleft()
            for b in lines[cur][:2]:
                bus_f.setdefault(b, fid)
                for nxt in at_bus.get(b, []):
                    if nxt not in line_f:
                        line_f[nxt] = fid
                        pending.append(nxt)
    for _sid, _, sb in subs:
        for lid in at_bus.get(sb, []):
            bus_f.setdefault(sb, line_f[lid])
    return line_f, bus_f, feeders


def _build(buses: pd.DataFrame, lines: dict, subs: list, tr: list[dict], switches: list[dict],
           name: str, report: list[str]) -> County:
    crs = metric_crs_for(buses["x"].to_numpy(), buses["y"].to_numpy())
    opens = {s["line"]: s["bus"] for s in switches if not s["closed"]}
    line_f, bus_f, feeders = _feeders(lines, subs, opens)
    fmeta = {f: (s, n) for f, s, n in feeders}
    lids = sorted(lines)
    fl = gpd.GeoDataFrame({
        "feeder_id": [line_f[i] for i in lids],
        "name": [fmeta[line_f[i]][1] for i in lids],
        "substation_id": [fmeta[line_f[i]][0] for i in lids],
        "line_id": lids,
    }, geometry=[LineString(lines[i][2]) for i in lids], crs=4326).to_crs(crs)
    geom_of = dict(zip(lids, fl.geometry.values, strict=True))
    bxy = gpd.GeoSeries(gpd.points_from_xy(buses["x"], buses["y"]), index=buses.index, crs=4326).to_crs(crs)
    # switches
    sp, sid, sopen = [], [], []
    for s in switches:
        g = geom_of[s["line"]]
        if s["bus"] is None:
            p = g.interpolate(0.5, normalized=True)
        elif s["closed"]:
            p = bxy.get(s["bus"], g.interpolate(0.0))
        else:
            fb = lines[s["line"]][0]
            d = min(OPEN_SWITCH_OFFSET_M, g.length / 2)
            p = g.interpolate(d if s["bus"] == fb else g.length - d)
        sp.append(p)
        sid.append(s["switch_id"])
        sopen.append(not s["closed"])
    sw = gpd.GeoDataFrame({"switch_id": sid, "normally_open": np.array(sopen, dtype=bool)}, geometry=sp, crs=crs)
    sub = gpd.GeoDataFrame({"substation_id": [s for s, _, _ in subs], "name": [n for _, n, _ in subs]},
                           geometry=[bxy[b] for _, _, b in subs], crs=crs)
    # 台区
    txy = []
    for t in tr:
        if "xy" in t:
            txy.append(shapely.points(*t["xy"]))
        else:
            txy.append(Point(buses.at[t["at"], "x"], buses.at[t["at"], "y"]))
    cap = np.array([t["capacity_kva"] for t in tr], dtype=float)
    kw = np.array([t["kw"] for t in tr], dtype=float)
    cust = np.where(np.isfinite(kw), kw / KW_PER_HOUSEHOLD, cap * HOUSEHOLDS_PER_KVA)
    trg = gpd.GeoDataFrame({
        "transformer_id": [t["transformer_id"] for t in tr],
        "name": [t["name"] for t in tr],
        "customers": np.maximum(1, np.round(cust)).astype(np.int64),
        "capacity_kva": cap,
        "feeder_id": pd.array([bus_f.get(t["bus"]) for t in tr], dtype="string"),
        "status": "运行",
        "township_id": "T1",
        "station_id": "S1",
        "village": None,
    }, geometry=txy, crs=4326).to_crs(crs)
    everything = shapely.union_all(np.r_[fl.geometry.values, trg.geometry.values, sub.geometry.values])
    town = gpd.GeoDataFrame({"township_id": ["T1"], "name": [name], "station_id": ["S1"], "area_class": ["农村"]},
                            geometry=[shapely.convex_hull(everything).buffer(1000.0)], crs=crs)
    st_pt = sub.geometry.iloc[0] if len(sub) else town.geometry.iloc[0].centroid
    station = gpd.GeoDataFrame({"station_id": ["S1"], "name": [f"{name} 供电所"], "kind": ["供电所"],
                                "parent_id": [None]}, geometry=[st_pt], crs=crs)
    if not len(sub):
        report.append("网络中没有找到高压/中压变电站或外部电网接入点，馈线无法定根。")
    report.append(f"由 pandapower 网络 {name} 导入：{len(fl)} 条线路、{len(feeders)} 条馈线、{len(trg)} 个台区、"
                  f"{len(sw)} 个开关（其中常开 {int(sw['normally_open'].sum())} 个）；乡镇与供电所为自动生成。")
    log.info(report[-1])
    return County(name=name, crs=crs, townships=town, stations=station, transformers=trg, params=Params(),
                  feeders=fl, switches=sw, substations=sub, report=report)
