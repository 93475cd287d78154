"""Response times: how long a repair crew needs from the nearest station or service point to each 台区.

State Grid's commitments bound them: 45 minutes in cities (城区), 90 in rural areas (农村) and 120 in
special remote areas (特殊边远); the class of a 台区 is its township's ``area_class``, the minutes come
from ``params.commitments``. Where a township has no ``area_class``, the **default rule**
(:data:`URBAN_NAME_PATTERNS`) decides: a township whose name contains 街道, 城关, 城区 or 镇区 is
城区, any other is ``params.area_class`` (农村 unless set). Every township's ``class_source`` says
where its class came from: ``"data"`` (the township file), ``"rule:<pattern>"`` (the name rule,
e.g. ``rule:街道``) or ``"default"`` (``params.area_class``).

Two ways to travel, both in the county's metric CRS:

* **over roads** (``county.roads``, LineStrings with an optional ``speed_kmh``): every vertex is a
  node, vertices closer than ``snap_m`` are merged (so lines that end on each other connect), each
  edge costs ``length / speed``. Every 台区 and every service point walks to its nearest road node
  at straight-line distance × ``detour_factor`` / ``speed_kmh``; a multi-source Dijkstra
  (:func:`scipy.sparse.csgraph.dijkstra`) gives the time from every point to every node. A 台区 that
  no road path reaches falls back to the straight line (``via_road`` = False);
* **straight line** (no roads): metres × ``detour_factor`` at ``speed_kmh``.

::

    tt = travel_times(county, county.stations, params=county.params)   # 台区 × points matrix
    rt = response_times(county, params=county.params, travel=tt)        # nearest point per 台区
    response_kpis(rt)["county"]["p95_minutes"]

:func:`travel_times` keeps the whole 台区 × point matrix, so scenarios that remove points (station
merges) take the minimum over the remaining columns without another shortest-path run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from ..errors import Problems
from ..lv.graph import group_members, label_codes
from ..model import County
from ..settings import Params

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "SNAP_M",
    "URBAN_NAME_PATTERNS",
    "RoadNetwork",
    "TravelTimes",
    "classify_townships",
    "response_kpis",
    "response_times",
    "road_network",
    "township_classes",
    "travel_times",
]

log = logging.getLogger(__name__)

#: Road vertices closer than this (metres) are one node.
SNAP_M = 5.0
#: The default rule: a township without ``area_class`` whose name contains one of these is 城区.
URBAN_NAME_PATTERNS: tuple[str, ...] = ("街道", "城关", "城区", "镇区")
_EPS_MIN = 1e-9  # scipy's csgraph drops explicit zeros in some paths: keep every edge positive


def _metres_per_minute(speed_kmh: Any) -> Any:
    return np.asarray(speed_kmh, dtype=float) * 1000.0 / 60.0


# --------------------------------------------------------------------------- road network

@dataclass
class RoadNetwork:
    """A road graph: node coordinates and symmetric edge matrices (minutes and metres)."""

    xy: np.ndarray
    minutes: sparse.csr_matrix
    metres: sparse.csr_matrix

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.xy)

    def to_networkx(self) -> nx.Graph:
        """Return the network as an undirected :class:`networkx.Graph`.

        Nodes carry ``x`` and ``y``; edges ``minutes`` and ``length_m``.
        """
        import networkx as nx

        g = nx.Graph()
        for i, (x, y) in enumerate(self.xy):
            g.add_node(i, x=float(x), y=float(y))
        coo = sparse.triu(self.minutes).tocoo()
        length = self.metres
        for a, b, w in zip(coo.row, coo.col, coo.data, strict=True):
            g.add_edge(int(a), int(b), minutes=float(w), length_m=float(length[a, b]))
        return g


def road_network(roads: gpd.GeoDataFrame, *, params: Params, snap_m: float = SNAP_M) -> RoadNetwork:
    """Build the road graph of ``roads`` (metric CRS).

    Parameters
    ----------
    roads
        LineStrings or MultiLineStrings; an optional ``speed_kmh`` column (NaN or missing: the
        default ``params.speed_kmh``).
    params
        ``speed_kmh`` is the default speed.
    snap_m
        Vertices closer than this are merged into one node.

    Returns
    -------
    RoadNetwork
    """
    lines = roads.explode(index_parts=False)
    lines = lines[~(lines.geometry.is_empty | lines.geometry.isna())]
    speed = pd.to_numeric(lines["speed_kmh"], errors="coerce") if "speed_kmh" in lines.columns \
        else pd.Series(np.nan, index=lines.index)
    speed = speed.where(speed > 0, params.speed_kmh).to_numpy(dtype=float)
    coords, part = shapely.get_coordinates(lines.geometry.values, return_index=True)
    if len(coords) == 0:
        empty = sparse.csr_matrix((0, 0))
        return RoadNetwork(np.zeros((0, 2)), empty, empty)
    node = _snap(coords, snap_m)
    same_line = part[:-1] == part[1:]
    a, b = node[:-1][same_line], node[1:][same_line]
    length = np.hypot(*(coords[1:][same_line] - coords[:-1][same_line]).T)
    minutes = length / _metres_per_minute(speed[part[:-1][same_line]])
    keep = a != b
    edges = pd.DataFrame({"a": np.r_[a[keep], b[keep]], "b": np.r_[b[keep], a[keep]],
                          "min": np.r_[minutes[keep], minutes[keep]],
                          "m": np.r_[length[keep], length[keep]]})
    edges = edges.sort_values(["a", "b", "min"]).drop_duplicates(["a", "b"])  # fastest parallel edge
    n = int(node.max()) + 1
    xy = np.zeros((n, 2))
    xy[node] = coords  # last vertex wins; snapped vertices are within snap_m of each other
    shape = (n, n)
    mins = sparse.csr_matrix((np.maximum(edges["min"].to_numpy(), _EPS_MIN),
                              (edges["a"].to_numpy(), edges["b"].to_numpy())), shape=shape)
    metres = sparse.csr_matrix((edges["m"].to_numpy(), (edges["a"].to_numpy(), edges["b"].to_numpy())),
                               shape=shape)
    log.debug("road network: %d nodes, %d edges", n, len(edges) // 2)
    return RoadNetwork(xy, mins, metres)


def _snap(coords: np.ndarray, snap_m: float) -> np.ndarray:
    """Node number of every vertex: vertices within ``snap_m`` (transitively) share a node."""
    n = len(coords)
    if snap_m <= 0 or n < 2:
        _, inv = np.unique(np.round(coords, 3), axis=0, return_inverse=True)
        return inv.ravel()
    pairs = cKDTree(coords).query_pairs(snap_m, output_type="ndarray")
    adj = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) \
        if len(pairs) else sparse.coo_matrix((n, n))
    label: np.ndarray
    _, label = csgraph.connected_components(adj, directed=False)
    return label


# --------------------------------------------------------------------------- travel times

@dataclass
class TravelTimes:
    """Travel from every service point to every 台区.

    Attributes
    ----------
    points
        The service points (``point_id``, ``name``, ``kind``), in column order.
    transformer_id
        The 台区, in row order.
    minutes, metres
        ``(n_transformers, n_points)`` arrays: travel time and route length.
    via_road
        ``(n_transformers, n_points)`` bool: the road network reached the 台区 from the point.
    method
        ``"road"`` or ``"straight"``.
    """

    points: pd.DataFrame
    transformer_id: np.ndarray
    minutes: np.ndarray
    metres: np.ndarray
    via_road: np.ndarray
    method: str

    def subset(self, point_ids: Iterable[str]) -> TravelTimes:
        """Return the same matrices restricted to ``point_ids`` (in that order)."""
        ids = [str(p) for p in point_ids]
        pos = {p: i for i, p in enumerate(self.points["point_id"])}
        missing = [p for p in ids if p not in pos]
        if missing:
            raise KeyError(f"unknown service point(s): {', '.join(missing)}")
        cols = [pos[p] for p in ids]
        return TravelTimes(self.points.iloc[cols].reset_index(drop=True), self.transformer_id,
                           self.minutes[:, cols], self.metres[:, cols], self.via_road[:, cols],
                           self.method)


def _points_table(points: gpd.GeoDataFrame) -> pd.DataFrame:
    pid = points["point_id"] if "point_id" in points.columns else points["station_id"]
    return pd.DataFrame({"point_id": pid.astype(str).to_numpy(),
                         "name": points["name"].astype(str).to_numpy() if "name" in points.columns
                         else pid.astype(str).to_numpy(),
                         "kind": points["kind"].astype(str).to_numpy() if "kind" in points.columns
                         else "供电所"})


def _coordinates(county: County, points: gpd.GeoDataFrame | None
                 ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The service points' table and coordinates, and the 台区' coordinates (county's CRS)."""
    points = county.stations if points is None else points
    if points.crs is not None and county.crs is not None and not points.crs.equals(county.crs):
        points = points.to_crs(county.crs)
    pxy = shapely.get_coordinates(points.geometry.representative_point().values)
    return _points_table(points), pxy, shapely.get_coordinates(county.transformers.geometry.values)


def travel_times(county: County, points: gpd.GeoDataFrame | None = None, *,
                 params: Params | None = None, roads: bool = True,
                 snap_m: float = SNAP_M) -> TravelTimes:
    """Travel time and distance from every service point to every 台区.

    Parameters
    ----------
    county
        The county (its ``transformers`` and, when present and ``roads``, its ``roads``).
    points
        Service points: ``station_id`` (or ``point_id``), ``name``, ``kind``; Points in the county's
        CRS. Default: ``county.stations``.
    params
        ``speed_kmh`` and ``detour_factor`` (default ``county.params``).
    roads
        Use ``county.roads`` when there are any (else straight lines).
    snap_m
        Road vertices closer than this are one node.

    Returns
    -------
    TravelTimes
    """
    params = params or county.params
    table, pxy, txy = _coordinates(county, points)
    tid = county.transformers["transformer_id"].astype(str).to_numpy()
    speed = _metres_per_minute(params.speed_kmh)
    straight = np.hypot(txy[:, None, 0] - pxy[None, :, 0], txy[:, None, 1] - pxy[None, :, 1])
    metres = straight * params.detour_factor
    minutes = metres / speed
    via = np.zeros(metres.shape, dtype=bool)
    use_roads = roads and county.roads is not None and len(county.roads) > 0
    if use_roads and len(pxy) and len(txy):
        net = road_network(county.roads, params=params, snap_m=snap_m)
        if net.n_nodes:
            rmin, rm = _road_matrix(net, pxy, txy, params)
            via = np.isfinite(rmin)
            minutes = np.where(via, rmin, minutes)
            metres = np.where(via, rm, metres)
            if (~via.any(axis=1)).any():
                log.info("%d 台区 are not reached over roads from any point; straight line used",
                         int((~via.any(axis=1)).sum()))
    return TravelTimes(table, tid, minutes, metres, via, "road" if use_roads else "straight")


@dataclass(frozen=True)
class _Nearest:
    """The nearest service point of every 台区 in straight-line time (:func:`nearest_straight`)."""

    points: pd.DataFrame
    best: np.ndarray
    minutes: np.ndarray
    metres: np.ndarray


#: Candidate points per 台区 that :func:`nearest_straight` compares exactly: the nearest and the
#: second nearest (when that one is (nearly) as near, every point is compared: see there).
_NEAREST_CANDIDATES = 2


def nearest_straight(county: County, points: gpd.GeoDataFrame | None = None, *,
                     params: Params | None = None) -> _Nearest:
    """The nearest service point of every 台区 in straight-line travel time, without a matrix.

    The same point, minutes and metres as the argmin over the rows of :func:`travel_times`
    with ``roads=False`` (the same arithmetic on the same numbers, the lowest point index on
    ties), in O(n log p) time and O(n) memory instead of the (n × p) matrices: the candidates
    are the :data:`_NEAREST_CANDIDATES` nearest points of a k-d tree, compared exactly; a 台区
    whose farthest candidate is (nearly) as near as its nearest (points at the same distance
    beyond the candidates) is compared against every point.
    """
    params = params or county.params
    table, pxy, txy = _coordinates(county, points)
    n, p = len(txy), len(pxy)
    if p == 0 or n == 0:
        empty = np.zeros(n, dtype=np.int64)
        return _Nearest(table, empty, np.full(n, np.inf), np.full(n, np.inf))
    speed = _metres_per_minute(params.speed_kmh)
    k = min(_NEAREST_CANDIDATES, p)
    tree_d, cand = cKDTree(pxy).query(txy, k=k)
    tree_d, cand = tree_d.reshape(n, k), np.sort(cand.reshape(n, k), axis=1)
    if k < p:  # ties beyond the candidates: every point for those 台区
        loose = np.flatnonzero(tree_d[:, -1] <= tree_d[:, 0] * (1 + 1e-9) + 1e-9)
    else:
        loose = np.zeros(0, dtype=np.int64)

    def nearest(xy: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        straight = np.hypot(xy[:, None, 0] - pxy[cols, 0], xy[:, None, 1] - pxy[cols, 1])
        minutes = straight * params.detour_factor / speed
        pick = np.argmin(minutes, axis=1)
        rows = np.arange(len(xy))
        best = cols[rows, pick] if cols.ndim == 2 else cols[pick]
        return best, minutes[rows, pick], straight[rows, pick] * params.detour_factor

    best, minutes, metres = nearest(txy, cand)
    if len(loose):
        best[loose], minutes[loose], metres[loose] = nearest(txy[loose], np.arange(p))
    return _Nearest(table, best.astype(np.int64), minutes, metres)


def _road_matrix(net: RoadNetwork, pxy: np.ndarray, txy: np.ndarray,
                 params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Minutes and metres (n_transformers, n_points) over the road network (inf: unreachable)."""
    tree = cKDTree(net.xy)
    p_d, p_node = tree.query(pxy)
    t_d, t_node = tree.query(txy)
    speed = _metres_per_minute(params.speed_kmh)
    p_m, t_m = p_d * params.detour_factor, t_d * params.detour_factor
    n, k = net.n_nodes, len(pxy)
    # one virtual node per point, joined to its road node by the access leg (directed: out only)
    virt = np.arange(n, n + k)
    mins = sparse.vstack([sparse.hstack([net.minutes, sparse.csr_matrix((n, k))]),
                          sparse.csr_matrix((np.maximum(p_m / speed, _EPS_MIN), (np.arange(k), p_node)),
                                            shape=(k, n + k))]).tocsr()
    dist, pred = csgraph.dijkstra(mins, directed=True, indices=virt, return_predecessors=True)
    leg = sparse.vstack([sparse.hstack([net.metres, sparse.csr_matrix((n, k))]),
                         sparse.csr_matrix((p_m, (np.arange(k), p_node)), shape=(k, n + k))]).tocsr()
    length = np.vstack([_path_lengths(pred[i], leg) for i in range(k)])
    rmin = dist[:, t_node].T + (t_m / speed)[:, None]
    rm = length[:, t_node].T + t_m[:, None]
    return rmin, rm


def _path_lengths(pred: np.ndarray, leg: sparse.csr_matrix) -> np.ndarray:
    """Length of the shortest-time path to every node, from a predecessor array (pointer jumping)."""
    n = len(pred)
    has = pred >= 0
    anc = np.where(has, pred, np.arange(n))
    acc = np.zeros(n)
    idx = np.flatnonzero(has)
    acc[idx] = np.asarray(leg[pred[idx], idx]).ravel()
    while True:
        nxt = anc[anc]
        if np.array_equal(nxt, anc):
            break
        acc = acc + acc[anc]
        anc = nxt
    return acc


# --------------------------------------------------------------------------- response times

def classify_townships(names: pd.Series, given: pd.Series, *, default: str = "农村",
                       patterns: tuple[str, ...] = URBAN_NAME_PATTERNS) -> tuple[list[str], list[str]]:
    """Area class and its source for townships (the given class, else the default rule).

    Parameters
    ----------
    names
        Township names.
    given
        Their ``area_class`` from the data (None/NaN/empty: not given).
    default
        The class of a township the rule does not make 城区 (``params.area_class``).
    patterns
        A name containing one of these makes the township 城区.

    Returns
    -------
    classes, sources
        Per township: 城区/农村/特殊边远, and ``"data"``, ``"rule:<pattern>"`` or ``"default"``.

    Examples
    --------
    >>> classify_townships(pd.Series(["城关镇", "石门乡"]), pd.Series([None, None]))
    (['城区', '农村'], ['rule:城关', 'default'])
    """
    classes, sources = [], []
    for name, cls in zip(names.tolist(), given.tolist(), strict=True):
        if cls is not None and not (isinstance(cls, float) and np.isnan(cls)) and str(cls).strip():
            classes.append(str(cls).strip())
            sources.append("data")
            continue
        hit = next((p for p in patterns if p in str(name or "")), None)
        classes.append("城区" if hit else default)
        sources.append(f"rule:{hit}" if hit else "default")
    return classes, sources


def township_classes(townships: pd.DataFrame, params: Params) -> pd.DataFrame:
    """``township_id``, ``area_class`` and ``class_source`` of every township.

    A township file read by :func:`gridplan.load_county` already carries both columns; for frames
    built otherwise a present ``area_class`` counts as ``"data"`` and the rule fills the rest.
    """
    tid = townships["township_id"].astype(str)
    names = townships["name"] if "name" in townships.columns else tid
    given = townships["area_class"] if "area_class" in townships.columns \
        else pd.Series(None, index=townships.index, dtype=object)
    cls, src = classify_townships(names, given, default=params.area_class)
    if "class_source" in townships.columns:
        known = townships["class_source"].notna().to_numpy()
        src = np.where(known, townships["class_source"].astype(str), np.asarray(src, dtype=object)).tolist()
    return pd.DataFrame({"township_id": tid.to_numpy(), "area_class": cls, "class_source": src})


def _area_class(county: County, params: Params) -> tuple[pd.Series, pd.Series]:
    """Area class and class source of every 台区 (by its township; see :func:`township_classes`)."""
    tc = township_classes(county.townships, params).drop_duplicates("township_id").set_index("township_id")
    tid = county.transformers["township_id"].astype(str)
    if not len(tc):
        return (tid.map(tc["area_class"]).fillna(params.area_class).astype(str),
                tid.map(tc["class_source"]).fillna("default").astype(str))
    pos = tc.index.get_indexer(tid)  # as tid.map(column) for both columns: one lookup
    missing = pos < 0

    def looked_up(col: str, default: str) -> pd.Series:
        values = pd.Series(tc[col].to_numpy(dtype=object)[pos], index=tid.index, dtype=object)
        return values.mask(missing).fillna(default).astype(str)

    return looked_up("area_class", params.area_class), looked_up("class_source", "default")


def response_times(county: County, service_points: gpd.GeoDataFrame | None = None, *,
                   params: Params | None = None, travel: TravelTimes | None = None) -> pd.DataFrame:
    """Travel time from the nearest station or service point to each 台区, against its commitment.

    Parameters
    ----------
    county
        The county (``transformers``, ``townships.area_class``, optional ``roads``).
    service_points
        Stations and service points (``station_id``/``point_id``, ``name``, ``kind``; Points).
        Default: ``county.stations``. Ignored when ``travel`` is given.
    params
        ``speed_kmh``, ``detour_factor``, ``area_class``, ``commitments`` (default ``county.params``).
    travel
        A precomputed :class:`TravelTimes` (e.g. ``full.subset(ids)``) over the same 台区.

    Returns
    -------
    pandas.DataFrame
        One row per 台区: ``transformer_id``, ``name``, ``township_id``, ``station_id``,
        ``customers``, ``point_id``, ``point_name``, ``point_kind`` (the nearest point in time),
        ``distance_m`` (route length), ``minutes``, ``via_road``, ``area_class``, ``class_source``,
        ``commitment`` (minutes), ``beyond`` (bool: minutes > commitment).
    """
    params = params or county.params
    if travel is None and (county.roads is None or not len(county.roads)):
        tt: TravelTimes | _Nearest = nearest_straight(county, service_points, params=params)
    else:
        tt = travel if travel is not None else travel_times(county, service_points, params=params)
    tr = county.transformers
    cls, src = _area_class(county, params)
    unknown = sorted(set(cls) - set(params.commitments))
    if unknown:
        p = Problems()
        p.add("townships", f"area_class {', '.join(unknown)} has no response commitment",
              f"use one of {', '.join(params.commitments)} or add it under [response] commitments "
              "in gridplan.toml", rows=sorted(county.townships.loc[
                  county.townships.get("area_class", pd.Series(dtype=object)).isin(unknown),
                  "township_id"].astype(str)))
        p.raise_if_any()
    out = pd.DataFrame({
        "transformer_id": tr["transformer_id"].astype(str).to_numpy(),
        "name": tr["name"].to_numpy() if "name" in tr.columns else None,
        "township_id": tr["township_id"].astype(str).to_numpy(),
        "station_id": tr["station_id"].astype(str).to_numpy(),
        "customers": pd.to_numeric(tr["customers"], errors="coerce").fillna(0).astype(int).to_numpy()})
    if len(tt.points) == 0:
        best = np.zeros(len(out), dtype=int)
        minutes = np.full(len(out), np.inf)
        metres = np.full(len(out), np.inf)
        via = np.zeros(len(out), dtype=bool)
        out["point_id"] = out["point_name"] = out["point_kind"] = None
    else:
        if isinstance(tt, _Nearest):
            best, minutes, metres = tt.best, tt.minutes, tt.metres
            via = np.zeros(len(out), dtype=bool)
        else:
            best = np.argmin(tt.minutes, axis=1)
            rows = np.arange(len(out))
            minutes, metres, via = tt.minutes[rows, best], tt.metres[rows, best], tt.via_road[rows, best]
        out["point_id"] = tt.points["point_id"].to_numpy()[best]
        out["point_name"] = tt.points["name"].to_numpy()[best]
        out["point_kind"] = tt.points["kind"].to_numpy()[best]
    out["distance_m"] = np.round(metres, 1)
    out["minutes"] = np.round(minutes, 2)
    out["via_road"] = via
    out["area_class"] = cls.to_numpy()
    out["class_source"] = src.to_numpy()
    out["commitment"] = out["area_class"].map(params.commitments).astype(float)
    out["beyond"] = minutes > out["commitment"].to_numpy() + 1e-9
    return out


def _summary(minutes: np.ndarray, customers: np.ndarray, beyond: np.ndarray) -> dict[str, Any]:
    """The figures of :func:`response_kpis` over some 台区 (their minutes, households, beyond)."""
    finite = minutes[np.isfinite(minutes)]
    return {
        "transformers": len(minutes),
        "households": int(customers.sum()),
        "transformers_beyond": int(beyond.sum()),
        "households_beyond": int(customers[beyond].sum()),
        "mean_minutes": round(float(finite.mean()), 2) if len(finite) else None,
        "p95_minutes": round(float(np.percentile(finite, 95)), 2) if len(finite) else None,
        "max_minutes": round(float(finite.max()), 2) if len(finite) else None,
    }


def response_kpis(rt: pd.DataFrame) -> dict[str, Any]:
    """Headline figures of :func:`response_times`: for the county and per station.

    Mean, p95 (linear interpolation, over 台区) and max minutes; 台区 and households beyond their
    commitment.

    Returns
    -------
    dict
        ``{"county": {...}, "stations": {station_id: {...}}}``.
    """
    m = rt["minutes"].to_numpy(dtype=float)
    cust = rt["customers"].to_numpy()
    beyond = rt["beyond"].to_numpy(dtype=bool)
    sids, code = label_codes(rt["station_id"].to_numpy())  # as groupby(sort=True)
    named = np.flatnonzero(code >= 0)  # a 台区 without a station (NaN) counts for the county only
    stations = {str(sid): _summary(m[rows], cust[rows], beyond[rows])
                for sid, rows in zip(sids.tolist(), (named[g] for g in group_members(code[named])))}
    return {"county": _summary(m, cust, beyond), "stations": stations}
