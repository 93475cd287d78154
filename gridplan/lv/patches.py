"""LV patches as the planner sees them (低压到片): :func:`plan_patches` and :class:`PatchResult`.

Grids per township (or per station), their number from the capacity or the manager roster, heavy
台区 and disconnected parts handled, warm starts, pins and locks, stable grid names, notes in
Chinese. The solver itself is :func:`gridplan.lv.partition.balanced_contiguous`.
"""

from __future__ import annotations

import functools
import heapq
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import InfeasibleError, natural_key
from ..model import County
from ..settings import Params
from .graph import code_order, components
from .measures import LABELS, add_measure_columns, measure_matrix
from .partition import HEAVY_FLAG, balanced_contiguous, grid_count
from .territory import contiguity_edges

__all__ = ["PatchResult", "plan_patches"]

log = logging.getLogger(__name__)


@dataclass
class PatchResult:
    """LV patches of a county.

    Attributes
    ----------
    grid_id
        Grid id of every row of ``county.transformers`` (same order; str values).
    notes
        Sentences for the user (Chinese): components, heavy 台区, tolerance not met, roster.
    flags
        ``grid_id -> flag`` (e.g. ``"heavy-unit"``).
    lower_bound
        Σ over townships of ceil(W_t / capacity): no plan inside townships has fewer grids.
    """

    grid_id: np.ndarray
    notes: list[str] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)
    lower_bound: int = 0
    #: Measures of ``also_balance`` not met within their tolerance: ``{"key", "name",
    #: "measure", "tolerance", "max_deviation", "why"}`` per township (or station) and measure.
    also_unmet: list[dict[str, Any]] = field(default_factory=list)


def plan_patches(county: County, workload: Any, *, params: Params | None = None,
                 edges: np.ndarray | None = None, also: Any = None,
                 pool: Executor | None = None) -> PatchResult:
    """Cut every township's (or station's) 台区 into contiguous, balanced grids.

    Parameters
    ----------
    county
        The county; ``transformers`` (points), ``townships``, optional ``managers`` and
        ``barriers`` are used.
    workload
        Workload of every transformer row (see :func:`gridplan.lv.workload.workload`).
    params
        ``capacity``, ``tolerance``, ``scope``, ``grids_from_roster``, ``seed``, ``time_limit``.
    edges
        The contiguity graph, (m, 2) row positions; default
        :func:`gridplan.lv.territory.contiguity_edges` (territory cells that share a border).
    also
        ``(n, m)`` measures of ``params.also_balance`` (in its key order) per transformer row,
        from :func:`gridplan.lv.measures.measure_matrix`; default: computed from the county.
    pool
        Optional executor (e.g. a ``ProcessPoolExecutor``) the connected parts of the townships
        are solved in, each township's as soon as it is prepared here; the result is the same
        with or without it (every part is solved on its own, from its own arrays, and the
        results are used in township order).

    Returns
    -------
    PatchResult
    """
    params = params if params is not None else county.params
    if also is None and params.also_balance:
        tr = add_measure_columns(county, county.transformers, params.also_balance, params=params)
        also = measure_matrix(tr, params.also_balance)
    return _plan_patches(county, np.asarray(workload, dtype=float), params, edges,
                         also=None if also is None else np.asarray(also, dtype=float), pool=pool)


def _points(transformers: gpd.GeoDataFrame) -> np.ndarray:
    """``(n, 2)`` metric coordinates of the 台区 (representative point of non-point geometry)."""
    geom = transformers.geometry.values
    if len(geom) and not (shapely.get_type_id(geom) == 0).all():  # not all Points
        geom = shapely.point_on_surface(geom)
    xy: np.ndarray = np.column_stack([shapely.get_x(geom), shapely.get_y(geom)])
    return xy


def _keys(series: pd.Series) -> np.ndarray:
    keys: np.ndarray = series.astype(object).where(series.notna(), "").astype(str).to_numpy()
    return keys


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
                   notes: list[str], label: Callable[[str, str], str]) -> dict[str, int]:
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


def _groups(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Rows of every code ``0 .. n_groups - 1``, each in ascending order (one sort, not a scan per code)."""
    order = code_order(codes)
    ends = np.cumsum(np.bincount(codes, minlength=n_groups)).tolist()
    # slices of the order (views, as np.split gives them, without its per-piece overhead)
    return [order[a:b] for a, b in zip([0, *ends[:-1]], ends)]


def _plan_patches(county: County, w: np.ndarray, params: Params,
                  edges: np.ndarray | None = None, also: np.ndarray | None = None,
                  pool: Executor | None = None) -> PatchResult:
    """See :func:`plan_patches`."""
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
    kcode, keys = pd.factorize(key, sort=True)
    rows_of = _groups(kcode, len(keys))
    if key is town:  # scope "township": the townships' rows are the keys' rows
        town_rows = rows_of
    else:
        tcode, towns = pd.factorize(town, sort=True)
        town_rows = _groups(tcode, len(towns))
    lower_bound = int(sum(math.ceil(float(w[rows].sum()) / cap - 1e-9) for rows in town_rows))
    if edges is None:
        edges = contiguity_edges(county, tr, scope=params.scope)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    quotas = (_roster_quotas(county, key, station, w, notes, label)
              if params.grids_from_roster else {})
    deadline = None if params.time_limit is None else time.monotonic() + params.time_limit
    kind = "township" if params.scope == "township" else "station"
    heavy = w > cap
    warm = _Warm.from_transformers(tr, params)
    edges_of = ([edges[i] for i in _groups(kcode[edges[:, 0]], len(keys))] if len(edges)
                else [edges] * len(keys))
    bands = _AlsoBands.of(params, also, notes)
    setting = _Setting(cap, tol, params.seed, deadline)
    # 1. every township (station) up to its solves, in order, each one's parts sent to the pool
    # (when given) as soon as it is prepared, so that the workers solve while the townships after
    # it are prepared here; 2. every township from its solves' results on, in order (notes, names).
    prepared: list[_Key] = []
    failed: InfeasibleError | None = None
    results = _Solves(pool)
    for t, k_ in enumerate(keys.tolist()):
        try:
            prepared.append(_prepare_key(xy, w, rows_of[t], edges_of[t], k_, heavy, tr, warm,
                                         quotas, setting, bands, label(kind, k_)))
        except InfeasibleError as exc:  # raised once the townships before it are done
            failed = exc
            break
        results.add(prepared[-1].parts)
    for job in prepared:
        grids = job.grids + _finish_key(job, results, w, bands, setting, warm)
        notes.extend(job.notes)
        if warm.has_current:
            _name_grids_stable(grids, job.locked, xy, w, job.key, warm, grid_id, heavy, flags,
                               HEAVY_FLAG)
        else:
            _name_grids(grids, xy, job.key, grid_id, heavy, flags, HEAVY_FLAG)
    if failed is not None:
        raise failed
    if warm.kept:
        notes.append(f"台区与现有网格相同、无需调整,保持现有网格不变的有{len(warm.kept)}处:"
                     f"{'、'.join(warm.kept)}。")
    # every value a str already: kept as str objects (a unicode array would be turned back into
    # a million str objects by the frame it is put in)
    return PatchResult(grid_id, notes, flags, lower_bound, also_unmet=bands.unmet)


@dataclass(frozen=True)
class _Setting:
    """What every solve of a county shares: capacity, tolerance, seed, deadline (``time.monotonic``)."""

    cap: float
    tol: float
    seed: int
    deadline: float | None


@dataclass(frozen=True)
class _Part:
    """One connected part of a township's free 台区, as the solver gets it (a picklable task).

    ``rows``: the part's 台区 (row positions in the county); ``warm``: their current grid,
    pinned manager and current manager (``None`` without a current plan or pins); ``grow``: add
    a grid while the heaviest is over capacity (not with a roster quota).
    """

    rows: np.ndarray
    xy: np.ndarray
    w: np.ndarray
    k: int
    edges: np.ndarray
    setting: _Setting
    grow: bool
    warm: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None
    also: dict[str, Any]


@dataclass
class _Key:
    """One township (station) between its preparation and its solves' results."""

    key: str
    name: str
    notes: list[str]
    locked: dict[str, np.ndarray]
    grids: list[np.ndarray]
    rest: np.ndarray
    ncomp: int = 0
    ks: list[int] = field(default_factory=list)
    parts: list[_Part] = field(default_factory=list)
    kept: list[np.ndarray] | None = None
    total_k: int = 0
    quota: int | None = None


def _prepare_key(xy: np.ndarray, w: np.ndarray, idx: np.ndarray, sub: np.ndarray, k_: str,
                 heavy: np.ndarray, tr: gpd.GeoDataFrame, warm: _Warm, quotas: dict[str, int],
                 setting: _Setting, bands: _AlsoBands, name: str) -> _Key:
    """A township's (station's) heavy and locked grids, notes, and the parts to solve."""
    notes: list[str] = []
    locked = warm.locked_grids(idx)
    free = idx[warm.lock[idx] == ""]
    grids = [np.array([i]) for i in free[heavy[free]]]
    n_heavy = len(grids)
    if n_heavy:
        ids = "、".join(str(tr["transformer_id"].iloc[i]) if "transformer_id" in tr else str(i)
                       for i in free[heavy[free]])
        notes.append(f"{name}有{n_heavy}个台区的工作量单独就超过上限{setting.cap:g}({ids}),"
                     "各自单独成一个网格并标记为 heavy-unit。")
    rest = free[~heavy[free]]
    job = _Key(k_, name, notes, locked, grids, rest)
    if len(rest):
        _prepare_parts(job, xy, w, sub, quotas.get(k_), n_heavy + len(locked), setting, warm,
                       bands.at(k_, name))
    return job


def _prepare_parts(job: _Key, xy: np.ndarray, w: np.ndarray, sub_edges: np.ndarray,
                   quota: int | None, n_heavy: int, setting: _Setting, warm: _Warm,
                   also: _AlsoBands | None) -> None:
    """The connected parts of one township's non-heavy, unlocked 台区, their grid counts and notes."""
    rest, notes, name = job.rest, job.notes, job.name
    e = _local(rest, sub_edges) if len(sub_edges) else np.empty((0, 2), dtype=np.int64)
    e = e[(e >= 0).all(axis=1)] if len(e) else e
    comp = components(len(rest), e)
    ncomp = int(comp.max()) + 1
    cw = np.bincount(comp, w[rest], ncomp)
    csize = np.bincount(comp, minlength=ncomp)
    total_k = 0
    if quota is not None:
        total_k = max(quota - n_heavy, 1)
        ks = _dhondt_capped(cw, csize, total_k)
    else:
        ks = [grid_count(float(cw[c]), setting.cap, setting.tol, int(csize[c])) for c in range(ncomp)]
    if warm.active:
        warm.check_components(rest, comp, name)
        kept = warm.keep_current(rest, comp, ks, e, w, setting.cap)
        if kept is not None:
            warm.kept.append(f"{name}{len(kept)}个")
            job.kept = kept
            return
        ks = warm.more_grids_for_pins(rest, comp, ks, notes, name)
    if ncomp > 1:
        notes.append(f"{name}的台区邻接图分成{ncomp}个互不相连的部分(岛屿、飞地或被河流、道路等"
                     f"障碍隔开),各部分分别划分网格(共{sum(ks)}个)。")
    if quota is not None and sum(ks) > total_k:
        notes.append(f"{name}按名册应划{total_k}个网格,但有{ncomp}个互不相连的部分,"
                     f"实际划了{sum(ks)}个。")
    job.ncomp, job.ks, job.total_k, job.quota = ncomp, [int(k) for k in ks], total_k, quota
    for c in range(ncomp):
        members = np.flatnonzero(comp == c)
        ce = e[comp[e[:, 0]] == c] if len(e) else e
        remap = np.full(len(rest), -1, dtype=np.int64)
        remap[members] = np.arange(len(members))
        rows = rest[members]
        job.parts.append(_Part(
            rows=rows, xy=xy[rows], w=w[rows], k=int(ks[c]), edges=remap[ce], setting=setting,
            grow=quota is None, warm=warm.rows(rows) if warm.active else None,
            also={} if also is None else also.solver_args(rows)))


def _local(rows: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``edges`` (row positions) as positions in ``rows``: -1 where an end is not in ``rows``.

    ``rows`` ascending (one township's rows): found by binary search, not through an array the
    size of the county (which, one per township, would cost O(n × townships)).
    """
    if len(rows) == 0:
        return np.full(edges.shape, -1, dtype=np.int64)
    if len(rows) > 1 and not (np.diff(rows) > 0).all():
        loc = np.full(int(max(rows.max(), edges.max())) + 1, -1, dtype=np.int64)
        loc[rows] = np.arange(len(rows))
        local: np.ndarray = loc[edges]
        return local
    pos = np.minimum(np.searchsorted(rows, edges), len(rows) - 1)
    out: np.ndarray = np.where(rows[pos] == edges, pos, -1).astype(np.int64)
    return out


def _solve_part(part: _Part) -> tuple[np.ndarray, int]:
    """Labels and grid count of one part.

    Solved with its ``k``, then with one grid more while the heaviest is over capacity (coarse
    台区 can defeat the balance), unless a roster quota fixes ``k``.
    """
    st = part.setting
    limit = None if st.deadline is None else max(st.deadline - time.monotonic(), 0.0)
    extra = {} if part.warm is None else _warm_solver_args(*part.warm, part.xy, part.k)
    k_c = part.k
    last: tuple[np.ndarray, float] | None = None
    while True:
        lab = balanced_contiguous(part.xy, part.w, k_c, edges=part.edges, tolerance=st.tol,
                                  seed=st.seed, time_limit=limit, **extra, **part.also)
        heaviest = np.bincount(lab, part.w, k_c).max()
        if last is not None and heaviest >= last[1] - 1e-9:
            lab, k_c = last[0], k_c - 1  # pins hold the heaviest grid: one more grid cannot help
            break
        # Coarse 台区 can defeat the balance: never keep a grid over capacity, add one instead.
        if heaviest <= st.cap * (1 + 1e-9) or k_c >= len(part.w) or not part.grow:
            break
        if extra.get("fixed") is not None:
            last = (lab, float(heaviest))
        k_c += 1
        extra = {} if part.warm is None else _warm_solver_args(*part.warm, part.xy, k_c)
    return lab, k_c


class _Solves:
    """The solves of every part: in the pool when given (each as soon as it is added, once there
    are two), else here when asked for.

    A single part of the whole county is solved here: sending it to a worker would only add
    the round trip.
    """

    def __init__(self, pool: Executor | None):
        self.pool = pool
        self.index: dict[int, int] = {}
        self.parts: list[_Part] = []
        self.futures: dict[int, Future[tuple[np.ndarray, int]]] = {}

    def add(self, parts: list[_Part]) -> None:
        """Take ``parts``; submit them (and a first part held back) once there are two."""
        for part in parts:
            self.index[id(part)] = len(self.parts)
            self.parts.append(part)
        if self.pool is not None and len(self.parts) > 1:
            for i in range(len(self.futures), len(self.parts)):
                self.futures[i] = self.pool.submit(_solve_part, self.parts[i])

    def result(self, part: _Part) -> tuple[np.ndarray, int]:
        i = self.index[id(part)]
        return self.futures[i].result() if i in self.futures else _solve_part(part)


def _finish_key(job: _Key, results: _Solves, w: np.ndarray, bands: _AlsoBands,
                setting: _Setting, warm: _Warm) -> list[np.ndarray]:
    """The grids of one township's free 台区 from its parts' labels; notes on balance."""
    if job.kept is not None:
        return job.kept
    if not len(job.rest):
        return []
    grids: list[np.ndarray] = []
    loads: list[float] = []
    for c, part in enumerate(job.parts):
        try:
            lab, k_c = results.result(part)
        except InfeasibleError as exc:
            raise warm.explain(exc, part.rows, {})
        if k_c > job.ks[c]:
            job.notes.append(f"{job.name}:台区工作量粒度较粗,{job.ks[c]}个网格无法都不超过上限"
                             f"{setting.cap:g},改为{k_c}个网格。")
        sizes = np.bincount(lab, minlength=k_c)
        ranked = part.rows[np.argsort(lab, kind="stable")]  # by grid, each one's rows ascending
        ends = np.cumsum(sizes)
        grids.extend(ranked[a:b] for a, b in zip((ends - sizes).tolist(), ends.tolist()))
        loads.extend(_group_sums(w[ranked], ends - sizes, sizes).tolist())
    _check_balance(np.array(loads), w[job.rest], job.ncomp, setting.cap, setting.tol, job.name,
                   job.notes)
    also = bands.at(job.key, job.name)
    if also is not None:
        also.check(grids, job.ncomp, job.notes)
    return grids


def _group_sums(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``values[start:start + size].sum()`` of every group, bit for bit, groups of one size at once.

    A C-contiguous ``(groups, size)`` block summed along its rows takes numpy's pairwise sum
    row by row, as the sum of each group's own array does.
    """
    out = np.zeros(len(sizes))
    for size in np.unique(sizes[sizes > 0]).tolist():
        g = np.flatnonzero(sizes == size)
        out[g] = values[starts[g][:, None] + np.arange(size)].sum(axis=1)
    return out


class _AlsoBands:
    """``also_balance`` as the patch planner uses it: measures per row, tolerances, the check.

    :meth:`at` selects one township (or station) for :func:`_prepare_parts`; :meth:`check` compares
    every grid's sum of each measure with the mean over the grids of that township and records
    (``unmet``) and explains (a note naming the measure) every band not met.
    """

    def __init__(self, names: list[str], tol: np.ndarray, values: np.ndarray):
        self.names, self.tol, self.values = names, tol, values
        self.unmet: list[dict[str, Any]] = []
        self.key, self.name = "", ""

    @classmethod
    def of(cls, params: Params, also: np.ndarray | None, notes: list[str]) -> _AlsoBands:
        names = list(params.also_balance)
        tol = np.array([float(params.also_balance[n]) for n in names])
        if also is None or not names:
            return cls([], np.zeros(0), np.zeros((0, 0)))
        also = np.asarray(also, dtype=float).reshape(len(also), -1)
        if also.shape[1] != len(names):
            raise ValueError(f"also has {also.shape[1]} columns for {len(names)} measures")
        return cls(names, tol, also)

    def at(self, key: str, name: str) -> _AlsoBands | None:
        """Set to township/station ``key`` and return self (``None`` without measures)."""
        if not self.names:
            return None
        self.key, self.name = str(key), name
        return self

    def solver_args(self, rows: np.ndarray) -> dict[str, Any]:
        """``also`` and ``also_tolerance`` of :func:`~gridplan.lv.partition.balanced_contiguous`."""
        return {"also": self.values[rows], "also_tolerance": self.tol}

    def check(self, grids: list[np.ndarray], ncomp: int, notes: list[str]) -> None:
        """Name every measure some grid of this township holds outside its band."""
        if len(grids) < 2:
            return
        loads = np.array([self.values[g].sum(axis=0) for g in grids])
        mean = loads.mean(axis=0)
        for c, nm in enumerate(self.names):
            if mean[c] <= 0:
                continue
            dev = np.abs(loads[:, c] / mean[c] - 1)
            if dev.max() <= self.tol[c] + 1e-9:
                continue
            unit_max = max(float(self.values[g, c].max()) for g in grids)
            if ncomp > 1:
                why = "邻接图分成多个互不相连的部分,各部分之间不能调剂"
            elif unit_max > self.tol[c] * mean[c]:
                why = (f"单个台区的{LABELS[nm]}(最大{unit_max:g})相对网格平均值({mean[c]:.4g})过大")
            else:
                why = "与工作量及其他指标的均衡要求无法同时满足,已取找到的最接近方案"
            self.unmet.append({"key": self.key, "name": self.name, "measure": nm,
                               "tolerance": float(self.tol[c]),
                               "max_deviation": round(float(dev.max()), 4), "why": why})
            notes.append(f"{self.name}的网格{LABELS[nm]}未能全部控制在平均值±{self.tol[c]:.0%}以内"
                         f"(最大偏差{dev.max():.1%}),原因:{why}。")


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


def _name_grids(grids: list[np.ndarray], xy: np.ndarray, key: str, grid_id: np.ndarray,
                heavy: np.ndarray, flags: dict[str, str], heavy_flag: str) -> None:
    """Number grids by their westmost-then-southmost 台区 and write ``"<key>-<nn>"`` ids."""
    if not grids:
        return
    # every grid's anchor (its westmost, then southmost 台区) in one lexsort over all their rows
    member = np.concatenate(grids)
    owner = np.repeat(np.arange(len(grids)), [len(g) for g in grids])
    first = np.lexsort((xy[member, 1], xy[member, 0], owner))
    start = np.searchsorted(owner[first], np.arange(len(grids)))
    ax, ay = xy[member[first[start]], 0], xy[member[first[start]], 1]
    order = np.lexsort((np.arange(len(grids)), ay, ax))  # as sorted() by (x, y): ties stay in order
    names = np.array([f"{key}-{nn:02d}" for nn in range(1, len(grids) + 1)], dtype=object)
    sizes = np.array([len(g) for g in grids], dtype=np.int64)
    number = np.empty(len(grids), dtype=np.int64)
    number[order] = np.arange(len(grids))  # each grid's place in the numbering
    grid_id[member] = names[np.repeat(number, sizes)]  # the grids are disjoint
    alone = (sizes == 1) & heavy[member[np.cumsum(sizes) - 1]]  # a heavy 台区 on its own
    for nn in np.flatnonzero(alone[order]).tolist():  # in the numbering's order
        flags[names[nn]] = heavy_flag


def _labeller(county: County) -> Callable[[str, str], str]:
    """``label(kind, id)`` -> "名称(id)" for townships and stations, for notes."""
    names: dict[str, dict[str, str]] = {}
    for kind, layer, col in (("township", county.townships, "township_id"),
                             ("station", county.stations, "station_id")):
        if layer is not None and col in layer and "name" in layer:
            names[kind] = dict(zip(layer[col].astype(str), layer["name"].astype(str)))

    def label(kind: str, ident: str) -> str:
        nm = names.get(kind, {}).get(ident)
        return f"{nm}({ident})" if nm and nm != ident else str(ident)

    return label


# --------------------------------------------------------------------------------------------
# Replanning: the current plan (warm start, stability), pins and locks
# --------------------------------------------------------------------------------------------

class _Warm:
    """The current plan and the pins of every 台区 row, as the patch planner uses them.

    Read from the columns :func:`gridplan.replan.pins.prepare` (or the ledger) puts on the 台区:
    ``current_grid_id`` / ``current_manager_id``, ``pin_manager_id``, ``pin_grid_id``,
    ``pin_source``. Missing columns mean "none".

    Stability: a township (or station) whose 台区 are exactly those of its current grids, whose
    current grids are contiguous, within capacity, as many as the planner would draw now and
    consistent with the pins is kept as it is. Any other is re-solved from a warm start (its
    current grids) with a move cost of ``stability`` × the typical radius of one of its grids
    (½·√(hull area / k)) per 台区 moved: at ``stability = 1`` a move must shorten the travel
    of a 台区 by about a grid radius to pay, so in practice 台区 move for balance and contiguity
    only; ``0`` re-optimises freely (and keeps nothing as it is).
    """

    def __init__(self, tr: gpd.GeoDataFrame, params: Params):
        n = len(tr)

        def col(name: str) -> np.ndarray:
            return _keys(tr[name]) if name in tr.columns else np.full(n, "", dtype=object)

        self._ids: Callable[[], np.ndarray] = lambda: col("transformer_id")  # for messages only
        self.cur_man = col("current_manager_id")
        grid = col("current_grid_id")
        has_man = self.cur_man != ""
        self.cur = (np.where(grid != "", grid, np.where(has_man, "经理:" + self.cur_man, ""))
                    if has_man.any() else grid)  # no current manager: the current grids as they are
        self.pin = col("pin_manager_id")
        self.lock = col("pin_grid_id")
        self.src = col("pin_source")
        self.stability = float(params.stability)
        self.has_current = bool((self.cur != "").any())
        self.active = self.has_current or bool((self.pin != "").any())
        #: Grid ids given so far (county-wide), and every id of the current plan (never reused).
        self.used: set[str] = set()
        #: Townships/stations kept exactly as in the current plan (for one note).
        self.kept: list[str] = []
        self.old: set[str] = set(grid[grid != ""].tolist())
        #: Highest number issued per key (the current plan's record): new ids go above it.
        self.issued: dict[str, int] = dict(getattr(tr, "attrs", {}).get("grid_numbers") or {})

    @functools.cached_property
    def ids(self) -> np.ndarray:
        """The 台区' ids (for messages: read when one is written)."""
        return self._ids()

    @classmethod
    def from_transformers(cls, tr: gpd.GeoDataFrame, params: Params) -> _Warm:
        return cls(tr, params)

    def locked_grids(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Locked grid id -> its rows, among ``idx``."""
        lk = self.lock[idx]
        return {g: idx[lk == g] for g in sorted(set(lk.tolist()) - {""})}

    def _name(self, rows: np.ndarray) -> str:
        rows = np.sort(rows)
        srcs = sorted(set("、".join(self.src[rows]).split("、")) - {""}, key=natural_key)
        shown = "、".join(self.ids[rows[:10]]) + (f" 等{len(rows)}个" if len(rows) > 10 else "")
        return f"{'、'.join(srcs[:6])}{' 等' if len(srcs) > 6 else ''}(台区 {shown})"

    def check_components(self, rest: np.ndarray, comp: np.ndarray, name: str) -> None:
        """Raise InfeasibleError when one manager's pins lie in unconnected parts."""
        lines = []
        pin = self.pin[rest]
        for m in sorted(set(pin.tolist()) - {""}):
            parts = sorted(set(comp[pin == m].tolist()))
            if len(parts) > 1:
                lines.append(f"台区经理 {m} 的固定台区位于{name}互不相连的{len(parts)}个部分"
                             f"(岛屿、飞地或被障碍、锁定网格隔开),一个网格无法连成一片:"
                             f"{self._name(rest[pin == m])}")
        if lines:
            raise InfeasibleError("固定(pins)无法满足:\n" + "\n".join(f"  {t}" for t in lines))

    def more_grids_for_pins(self, rest: np.ndarray, comp: np.ndarray, ks: list[int],
                            notes: list[str], name: str) -> list[int]:
        """At least one grid per pinned manager in each connected part."""
        out = list(ks)
        for c in range(len(out)):
            n_pinned = len(set(self.pin[rest[comp == c]].tolist()) - {""})
            if n_pinned > out[c]:
                notes.append(f"{name}固定了{n_pinned}名台区经理的台区,网格数由{out[c]}增至{n_pinned}。")
                out[c] = n_pinned
        return out

    def keep_current(self, rest: np.ndarray, comp: np.ndarray, ks: list[int], e: np.ndarray,
                     w: np.ndarray, cap: float) -> list[np.ndarray] | None:
        """The current grids of these 台区 when nothing requires a change, else None."""
        if not self.has_current or self.stability <= 0:
            return None
        cur = self.cur[rest]
        if (cur == "").any():
            return None
        groups = sorted(set(cur.tolist()))
        per_comp: dict[int, int] = {}
        for g in groups:
            mask = cur == g
            if int((self.cur == g).sum()) != int(mask.sum()):
                return None  # the grid has 台区 elsewhere (locked, heavy, other township)
            parts = set(comp[mask].tolist())
            if len(parts) != 1:
                return None
            c = parts.pop()
            per_comp[c] = per_comp.get(c, 0) + 1
            rows = rest[mask]
            if len(rows) > 1 and float(w[rows].sum()) > cap * (1 + 1e-9):
                return None
            if len(set(self.pin[rows].tolist()) - {""}) > 1 or not _connected(mask, e):
                return None
        if any(per_comp.get(c, 0) != int(k) for c, k in enumerate(ks)):
            return None
        pin = self.pin[rest]
        for m in set(pin.tolist()) - {""}:
            if len(set(cur[pin == m].tolist())) > 1:
                return None
            # A pin to a manager other than the one who holds that grid now moves the pinned 台区;
            # keeping the grids would honour it by handing the whole grid to the pinned manager.
            rows = rest[cur == cur[pin == m][0]]
            mans = [x for x in self.cur_man[rows].tolist() if x]
            if not mans or max(sorted(set(mans)), key=mans.count) != m:
                return None
        return [rest[cur == g] for g in groups]

    def rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Current grid, pinned manager and current manager of ``rows``, and the stability."""
        return self.cur[rows], self.pin[rows], self.cur_man[rows], self.stability

    def solver_args(self, xy: np.ndarray, rows: np.ndarray, k: int) -> dict[str, Any]:
        """``initial``, ``fixed`` and ``move_cost`` for the solver ({} for a plain solve)."""
        return _warm_solver_args(*self.rows(rows), xy[rows], k)

    def explain(self, exc: InfeasibleError, rows: np.ndarray,
                extra: dict[str, Any]) -> InfeasibleError:
        """The solver's infeasibility in terms of pins, pin files and 台区 ids."""
        lines = []
        for _, units in getattr(exc, "pins", []) or []:
            units = rows[np.asarray(units, dtype=np.int64)]
            m = self.pin[units[0]] if len(units) else ""
            lines.append(f"台区经理 {m} 的固定台区无法连成一片(相互之间的每条路径都经过固定给其他经理"
                         f"或锁定的台区):{self._name(units)}")
        if not lines:
            return exc
        err = InfeasibleError("固定(pins)无法满足:\n" + "\n".join(f"  {t}" for t in lines))
        err.__cause__ = exc
        return err


def _warm_solver_args(cur: np.ndarray, pin: np.ndarray, cur_man: np.ndarray, stability: float,
                      xy: np.ndarray, k: int) -> dict[str, Any]:
    """``initial``, ``fixed`` and ``move_cost`` for the solver from the warm start of some 台区.

    ``cur``, ``pin``, ``cur_man``: their current grid, pinned manager and current manager ("" for
    none); ``xy`` their coordinates; ``k`` the number of grids. ``{}`` for a plain solve.
    """
    if not ((cur != "").any() or (pin != "").any()):
        return {}
    pinned = sorted(set(pin.tolist()) - {""})
    label = {m: i for i, m in enumerate(pinned)}
    init = np.full(len(cur), -1, dtype=np.int64)
    nxt = len(pinned)
    sizes = {g: int((cur == g).sum()) for g in set(cur.tolist()) - {""}}
    for g in sorted(sizes, key=lambda g: (-sizes[g], g)):
        mask = cur == g
        mans = [m for m in cur_man[mask].tolist() if m]
        m = max(sorted(set(mans)), key=mans.count) if mans else ""
        if m in label:
            init[mask] = label[m]
        elif nxt < k:
            init[mask] = nxt
            nxt += 1
    fixed = pin != ""
    init[fixed] = [label[m] for m in pin[fixed]]
    if not (init >= 0).any():
        return {}
    move_cost = 0.0
    if (cur != "").any() and stability > 0:
        move_cost = stability * _grid_radius(xy, k)
    return {"initial": init, "fixed": fixed if fixed.any() else None, "move_cost": move_cost}


def _connected(mask: np.ndarray, e: np.ndarray) -> bool:
    """Whether the units of ``mask`` form one connected part on local edges ``e``."""
    rows = np.flatnonzero(mask)
    if len(rows) <= 1:
        return True
    loc = np.full(len(mask), -1, dtype=np.int64)
    loc[rows] = np.arange(len(rows))
    sub = loc[e] if len(e) else np.empty((0, 2), dtype=np.int64)
    sub = sub[(sub >= 0).all(axis=1)] if len(sub) else sub
    return int(components(len(rows), sub).max()) == 0


def _grid_radius(xy: np.ndarray, k: int) -> float:
    """½·√(convex hull area / k): the typical radius of one of ``k`` grids over ``xy`` (metres)."""
    area = shapely.MultiPoint(xy).convex_hull.area if len(xy) >= 3 else 0.0
    return max(0.5 * math.sqrt(area / max(k, 1)), 1.0)


def _name_grids_stable(grids: list[np.ndarray], locked: dict[str, np.ndarray], xy: np.ndarray,
                       w: np.ndarray, key: str, warm: _Warm, grid_id: np.ndarray,
                       heavy: np.ndarray, flags: dict[str, str], heavy_flag: str) -> None:
    """Name grids after the current grid they overlap most (by workload); new ones get fresh ids.

    Locked grids keep their id. A fresh id is ``"<key>-<nn>"`` with the lowest ``nn`` above the
    highest number the current plan records as issued (its ``grid_numbers``) used by no grid of the
    current plan nor of this plan: an id is never reused for a different grid.
    """
    from scipy.optimize import linear_sum_assignment

    for gid, rows in locked.items():
        grid_id[rows] = gid
        warm.used.add(gid)
    cands = sorted({c for rows in grids for c in warm.cur[rows].tolist()}
                   - {""} - warm.used)
    cands = [c for c in cands if c in warm.old]
    names: list[str | None] = [None] * len(grids)
    if grids and cands:
        col = {c: j for j, c in enumerate(cands)}
        overlap = np.zeros((len(grids), len(cands)))
        for i, rows in enumerate(grids):
            for c, wt in zip(warm.cur[rows].tolist(), (w[rows] + 1.0).tolist()):
                if c in col:
                    overlap[i, col[c]] += wt
        ri, ci = linear_sum_assignment(-overlap)
        for i, j in zip(ri, ci):
            if overlap[i, j] > 0:
                names[i] = cands[j]
                warm.used.add(cands[j])

    def anchor(i: int) -> tuple[float, float]:
        rows = grids[i]
        j = rows[np.lexsort((xy[rows, 1], xy[rows, 0]))[0]]
        return (float(xy[j, 0]), float(xy[j, 1]))

    nn = int(warm.issued.get(str(key), 0))
    for i in sorted((i for i in range(len(grids)) if names[i] is None), key=anchor):
        while True:
            nn += 1
            gid = f"{key}-{nn:02d}"
            if gid not in warm.used and gid not in warm.old:
                break
        names[i] = gid
        warm.used.add(gid)
    for rows, name in zip(grids, names):
        assert name is not None  # every grid was named above
        grid_id[rows] = name
        if len(rows) == 1 and heavy[rows[0]]:
            flags[name] = heavy_flag
