"""Implementation of :func:`gridplan.partition.plan_patches` (kept apart to stay readable)."""

from __future__ import annotations

import heapq
import logging
import math
import time

import numpy as np
import pandas as pd

from .county import County
from .graph import components, neighbour_edges
from .settings import Params

log = logging.getLogger(__name__)


def _points(transformers) -> np.ndarray:
    """``(n, 2)`` metric coordinates of the 台区 (representative point of non-point geometry)."""
    geom = transformers.geometry
    if len(geom) and not (geom.geom_type == "Point").all():
        geom = geom.representative_point()
    return np.column_stack([geom.x.to_numpy(float), geom.y.to_numpy(float)])


def _keys(series: pd.Series) -> np.ndarray:
    return series.astype(object).where(series.notna(), "").astype(str).to_numpy()


def dhondt(weights: list[float], seats: int) -> list[int]:
    """Seats per item: 1 each, then one at a time to the largest ``weight / seats`` (≥ 1 each)."""
    q = [1] * len(weights)
    heap = [(-w, i) for i, w in enumerate(weights)]
    heapq.heapify(heap)
    for _ in range(max(seats - len(weights), 0)):
        _, i = heapq.heappop(heap)
        q[i] += 1
        heapq.heappush(heap, (-weights[i] / q[i], i))
    return q


def _roster_quotas(county: County, scope_key: np.ndarray, station: np.ndarray, w: np.ndarray,
                   notes: list[str], label) -> dict[str, int]:
    """Grids per scope key from the manager roster (stations without managers are left out)."""
    if county.managers is None or not len(county.managers):
        notes.append("未提供台区经理名册,网格数按工作量上限(capacity)计算。")
        return {}
    counts = county.managers["station_id"].astype(str).value_counts()
    quotas: dict[str, int] = {}
    for st in sorted(set(station.tolist())):
        keys = sorted(set(scope_key[station == st].tolist()))
        m = int(counts.get(st, 0))
        if m == 0:
            notes.append(f"供电所{label('station', st)}在名册中没有台区经理,网格数按工作量上限计算。")
            continue
        loads = [float(w[scope_key == key].sum()) for key in keys]
        if m < len(keys):
            notes.append(f"供电所{label('station', st)}只有{m}名台区经理,少于其{len(keys)}个乡镇;"
                         "每个乡镇仍至少划1个网格,需由经理兼管多个网格。")
        for key, q in zip(keys, dhondt(loads, m)):
            quotas[key] = q
    return quotas


def plan_patches_impl(county: County, w: np.ndarray, params: Params):
    """See :func:`gridplan.partition.plan_patches`."""
    from .partition import HEAVY_FLAG, PatchResult, balanced_contiguous, grid_count

    tr = county.transformers
    n = len(tr)
    if len(w) != n:
        raise ValueError(f"workload has {len(w)} values for {n} transformers")
    notes: list[str] = []
    flags: dict[str, str] = {}
    grid_id = np.full(n, "", dtype=object)
    if n == 0:
        return PatchResult(grid_id.astype(str), notes, flags, 0)
    cap, tol = float(params.capacity), float(params.tolerance)
    xy = _points(tr)
    town = _keys(tr["township_id"])
    station = _keys(tr["station_id"]) if "station_id" in tr else np.full(n, "", dtype=object)
    key = town if params.scope == "township" else station
    label = _labeller(county)
    lower_bound = int(sum(math.ceil(float(w[town == t].sum()) / cap - 1e-9)
                          for t in sorted(set(town.tolist()))))
    edges = neighbour_edges(xy, groups=key, barriers=county.barriers)
    quotas = (_roster_quotas(county, key, station, w, notes, label)
              if params.grids_from_roster else {})
    deadline = None if params.time_limit is None else time.monotonic() + params.time_limit
    kind = "township" if params.scope == "township" else "station"
    heavy = w > cap
    edge_key = key[edges[:, 0]] if len(edges) else np.empty(0, dtype=object)
    for k_ in sorted(set(key.tolist())):
        idx = np.flatnonzero(key == k_)
        grids = [np.array([i]) for i in idx[heavy[idx]]]
        n_heavy = len(grids)
        if n_heavy:
            ids = "、".join(str(tr["transformer_id"].iloc[i]) if "transformer_id" in tr else str(i)
                           for i in idx[heavy[idx]])
            notes.append(f"{label(kind, k_)}有{n_heavy}个台区的工作量单独就超过上限{cap:g}({ids}),"
                         "各自单独成一个网格并标记为 heavy-unit。")
        rest = idx[~heavy[idx]]
        if len(rest):
            sub = edges[edge_key == k_] if len(edges) else edges
            grids += _plan_key(xy, w, rest, sub, quotas.get(k_), n_heavy, cap, tol, params.seed,
                               deadline, notes, label(kind, k_), grid_count, balanced_contiguous)
        _name_grids(grids, xy, k_, grid_id, heavy, flags, HEAVY_FLAG)
    return PatchResult(grid_id.astype(str), notes, flags, lower_bound)


def _plan_key(xy, w, rest, sub_edges, quota, n_heavy, cap, tol, seed, deadline, notes, name,
              grid_count, solve) -> list[np.ndarray]:
    """Grids (arrays of row indices) of one township/station's non-heavy 台区."""
    loc = np.full(len(xy), -1, dtype=np.int64)
    loc[rest] = np.arange(len(rest))
    e = loc[sub_edges] if len(sub_edges) else np.empty((0, 2), dtype=np.int64)
    e = e[(e >= 0).all(axis=1)] if len(e) else e
    comp = components(len(rest), e)
    ncomp = int(comp.max()) + 1
    cw = np.bincount(comp, w[rest], ncomp)
    csize = np.bincount(comp, minlength=ncomp)
    if quota is not None:
        total_k = max(quota - n_heavy, 1)
        ks = _dhondt_capped(cw, csize, total_k)
    else:
        ks = [grid_count(float(cw[c]), cap, tol, int(csize[c])) for c in range(ncomp)]
    if ncomp > 1:
        notes.append(f"{name}的台区邻接图分成{ncomp}个互不相连的部分(岛屿、飞地或被河流、道路等"
                     f"障碍隔开),各部分分别划分网格(共{sum(ks)}个)。")
    if quota is not None and sum(ks) > total_k:
        notes.append(f"{name}按名册应划{total_k}个网格,但有{ncomp}个互不相连的部分,"
                     f"实际划了{sum(ks)}个。")
    grids: list[np.ndarray] = []
    loads: list[float] = []
    for c in range(ncomp):
        members = np.flatnonzero(comp == c)
        ce = e[comp[e[:, 0]] == c] if len(e) else e
        remap = np.full(len(rest), -1, dtype=np.int64)
        remap[members] = np.arange(len(members))
        limit = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        lab = solve(xy[rest[members]], w[rest[members]], int(ks[c]), edges=remap[ce],
                    tolerance=tol, seed=seed, time_limit=limit)
        for j in range(int(ks[c])):
            rows = rest[members[lab == j]]
            grids.append(rows)
            loads.append(float(w[rows].sum()))
    _check_balance(np.array(loads), w[rest], ncomp, cap, tol, name, notes)
    return grids


def _dhondt_capped(cw: np.ndarray, csize: np.ndarray, total_k: int) -> list[int]:
    """D'Hondt seats over components, at most one grid per 台区."""
    ks = dhondt(cw.tolist(), total_k)
    return [min(k, int(s)) for k, s in zip(ks, csize)]


def _check_balance(loads: np.ndarray, unit_w: np.ndarray, ncomp: int, cap: float, tol: float,
                   name: str, notes: list[str]) -> None:
    """Add a note when a grid is off the mean by more than the tolerance, or over capacity."""
    if len(loads) > 1:
        mean = loads.mean()
        dev = np.abs(loads / mean - 1) if mean > 0 else np.zeros_like(loads)
        if dev.max() > tol + 1e-9:
            if ncomp > 1:
                why = "邻接图分成多个互不相连的部分,各部分的工作量不能在网格间调剂"
            elif unit_w.max() > tol * mean:
                why = (f"单个台区工作量(最大{unit_w.max():g})相对网格平均工作量({mean:.0f})过大,"
                       "无法进一步细分")
            else:
                why = "台区的相邻关系限制了连通网格之间的调剂"
            notes.append(f"{name}的网格工作量未能全部控制在平均值±{tol:.0%}以内"
                         f"(最大偏差{dev.max():.1%}),原因:{why}。")
    over = int((loads > cap * (1 + 1e-9)).sum())
    if over:
        notes.append(f"{name}有{over}个网格的工作量超过上限{cap:g}(在均衡容差范围内)。")


def _name_grids(grids, xy, key, grid_id, heavy, flags, heavy_flag) -> None:
    """Number grids by their westmost-then-southmost 台区 and write ``"<key>-<nn>"`` ids."""
    def anchor(rows: np.ndarray) -> tuple[float, float]:
        j = rows[np.lexsort((xy[rows, 1], xy[rows, 0]))[0]]
        return (float(xy[j, 0]), float(xy[j, 1]))

    for nn, rows in enumerate(sorted(grids, key=anchor), start=1):
        gid = f"{key}-{nn:02d}"
        grid_id[rows] = gid
        if len(rows) == 1 and heavy[rows[0]]:
            flags[gid] = heavy_flag


def _labeller(county: County):
    """``label(kind, id)`` -> "名称(id)" for townships and stations, for notes."""
    names = {}
    for kind, layer, col in (("township", county.townships, "township_id"),
                             ("station", county.stations, "station_id")):
        if layer is not None and col in layer and "name" in layer:
            names[kind] = dict(zip(layer[col].astype(str), layer["name"].astype(str)))

    def label(kind: str, ident: str) -> str:
        nm = names.get(kind, {}).get(ident)
        return f"{nm}({ident})" if nm and nm != ident else str(ident)

    return label
