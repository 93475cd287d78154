"""Editing operations on plans: reassign 台区, lock grids, rebalance. Each returns a new Plan.

The input plan is never mutated: frames that change are copied, unchanged ones are shared. Undo is
keeping the previous plans (:class:`gridplan.edit.session.History`).

::

    from gridplan.edit import ops
    p1 = ops.reassign(p0, ["TQ000101"], "M0007")
    p2 = ops.lock(p1, ["T01-03"])
    p3 = ops.rebalance(p2, township_id="T01").plan

An edit re-dissolves only the grids that change: each 台区's territory cell (its Voronoi cell
clipped to its township, as :func:`gridplan.lv.territory.all_cells` draws it) is cached once per
session in an :class:`EditContext`; moving 台区 subtracts their cells from the grids that held them
and adds them to the grid that receives them, so grids keep tiling every township exactly. Only
the changed grids' statistics are recomputed; county KPIs come from per-grid sums.

Refusals raise :class:`EditRefused` with the reason in Chinese (``message``) and English
(``detail``), and the HTTP status the editor's server answers with.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

import gridplan

from ..errors import GridplanError, InfeasibleError, InputError
from ..lv.territory import cells_and_edges
from ..metrics.kpi import balance_stats, group_medoids
from ..replan.pins import Pin, Pins

if TYPE_CHECKING:
    from ..pipeline import Plan

__all__ = [
    "EditContext",
    "EditRefused",
    "Rebalance",
    "api_kpi",
    "changed_grids",
    "grid_capacities",
    "grid_numbers",
    "lock",
    "manager_capacities",
    "reassign",
    "rebalance",
    "set_assignment",
]

log = logging.getLogger(__name__)

_GRID_M = 0.001  # grid polygons are snapped to 1 mm, as gridplan.lv.territory draws them
HEAVY_FLAG = "heavy-unit"
#: Time limit (s) of the planner's improvement rounds in 自动平衡 (a plan's own time_limit wins).
REBALANCE_SECONDS = 2.0


class EditRefused(GridplanError):  # noqa: N818
    """An edit that cannot be made; nothing changed.

    Attributes
    ----------
    message
        The reason, in Chinese, for the planner.
    detail
        The same in English (ids listed).
    status
        The HTTP status the editor's server answers with (400, 404 or 409).
    code
        A machine-readable reason: ``unknown_transformer``, ``unknown_manager``, ``unknown_grid``,
        ``cross_township``, ``cross_station``, ``locked``, ``hv_staff``, ``no_change``,
        ``infeasible``, ``bad_request``.
    items
        The offending ids.
    """

    def __init__(self, message: str, *, detail: str = "", status: int = 409, code: str = "refused",
                 items: Iterable[str] = ()):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.status = status
        self.code = code
        self.items = [str(i) for i in items]


def _shown(items: Sequence[str], limit: int = 10) -> str:
    items = list(items)
    return "、".join(items[:limit]) + (f" 等{len(items)}个" if len(items) > limit else "")


# --------------------------------------------------------------------------- the session cache

@dataclass
class EditContext:
    """What an editing session computes once: 台区 cells, contiguity graph, points, static values.

    Valid for every plan derived from the one it was built from (same county, same 台区 rows).
    """

    county: Any
    ids: np.ndarray
    row_of: dict[str, int]
    cells: np.ndarray
    adjacency: csr_matrix
    xy: np.ndarray
    lonlat: np.ndarray
    workload: np.ndarray
    customers: np.ndarray
    township: np.ndarray
    station: np.ndarray
    village: np.ndarray | None
    beyond: np.ndarray
    town_names: dict[str, str]
    base_manager: np.ndarray
    town_code: np.ndarray
    village_code: np.ndarray | None
    segments: Any = None
    segment_tree: Any = None
    _local: Any = field(default_factory=threading.local, repr=False)
    _parts_memo: dict[bytes, int] = field(default_factory=dict, repr=False)
    _labels: dict[int, list[Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, plan: Plan) -> EditContext:
        """Compute the cache for ``plan`` (cells and graph: the slow part, once per session)."""
        tr = plan.transformers
        county = plan.county
        cells, edges = cells_and_edges(county, tr, scope=plan.params.scope)
        snapped = shapely.set_precision(np.asarray(cells, dtype=object), _GRID_M)
        n = len(tr)
        e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        adj = csr_matrix((np.ones(2 * len(e), dtype=np.int8),
                          (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n))
        xy = shapely.get_coordinates(tr.geometry.values)
        ll = shapely.get_coordinates(tr.geometry.to_crs(4326).values)
        ids = tr["transformer_id"].astype(str).to_numpy()
        village = tr["village"].astype(object).where(tr["village"].notna(), None).to_numpy() \
            if "village" in tr.columns else None
        beyond = (tr["beyond_commitment"].fillna(False).astype(bool).to_numpy()
                  if "beyond_commitment" in tr.columns else np.zeros(n, dtype=bool))
        towns = county.townships
        town_code = pd.factorize(tr["township_id"].astype(str))[0]
        village_code = None
        if village is not None and any(v is not None for v in village):
            key = pd.Series([f"{a}|{b}" if b is not None else None for a, b in
                             zip(tr["township_id"].astype(str), village)], dtype=object)
            village_code = pd.factorize(key)[0]  # -1 for 台区 without a village
        segs, tree = plan.segments, None
        if segs is not None and len(segs):
            tree = shapely.STRtree(segs.geometry.values)
        return cls(county=county, ids=ids, row_of={t: i for i, t in enumerate(ids)}, cells=snapped,
                   adjacency=adj, xy=xy, lonlat=np.round(ll, 6),
                   workload=tr["workload"].to_numpy(dtype=float),
                   customers=tr["customers"].to_numpy(dtype=float),
                   township=tr["township_id"].astype(str).to_numpy(),
                   station=tr["station_id"].astype(str).to_numpy(), village=village, beyond=beyond,
                   town_names=dict(zip(towns["township_id"].astype(str), towns["name"].astype(str))),
                   base_manager=tr["manager_id"].astype(str).to_numpy(), town_code=town_code,
                   village_code=village_code, segments=segs,
                   segment_tree=tree)

    def to_wgs84(self) -> Transformer:
        """A metric -> WGS84 transformer for the calling thread (pyproj's are per thread)."""
        tf = getattr(self._local, "wgs84", None)
        if tf is None:
            tf = self._local.wgs84 = Transformer.from_crs(self.county.crs, 4326, always_xy=True)
        return tf

    def fits(self, plan: Plan) -> bool:
        """Whether this cache belongs to ``plan`` (same county object and 台区 rows)."""
        return plan.county is self.county and len(plan.transformers) == len(self.ids)

    def rows(self, transformer_ids: Iterable[str]) -> np.ndarray:
        """Row numbers of 台区 ids; :class:`EditRefused` (404) naming every unknown one."""
        ids = [str(t) for t in transformer_ids]
        unknown = [t for t in ids if t not in self.row_of]
        if unknown:
            raise EditRefused(f"台区不存在:{_shown(unknown)}", status=404, code="unknown_transformer",
                              detail=f"unknown transformer ids: {', '.join(unknown[:50])}", items=unknown)
        return np.array([self.row_of[t] for t in ids], dtype=np.int64)

    def labels(self, transformers: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each 台区 row's grid id and manager id as strings (read-only arrays), cached per frame.

        A plan's frames are never mutated (every edit builds new ones), so the text of the
        grid and manager columns is computed once per plan, not once per use in an edit, its
        delta and its KPIs. The cache keeps a weak reference to the frame and drops the entry
        when the frame goes.
        """
        key = id(transformers)
        hit = self._labels.get(key)
        if hit is not None and hit[0]() is transformers:
            return hit[1], hit[2]
        gid = transformers["grid_id"].astype(str).to_numpy()
        man = transformers["manager_id"].astype(str).to_numpy()
        gid.flags.writeable = False
        man.flags.writeable = False
        labels = self._labels
        if len(labels) > 64:  # frames are freed with their plans; this only bounds a leak
            labels.clear()

        def forget(_: object, k: int = key) -> None:
            labels.pop(k, None)

        labels[key] = [weakref.ref(transformers, forget), gid, man, None, None]
        return gid, man

    def grid_codes(self, transformers: pd.DataFrame, *, known: tuple[np.ndarray, dict[str, int]] | None = None
                   ) -> tuple[np.ndarray, dict[str, int]]:
        """Each 台区 row's grid as an integer code and the code of each grid id, cached per frame.

        ``known``: the factorisation of this frame's grid ids, already computed (it is kept).
        """
        gid, _ = self.labels(transformers)
        entry = self._labels[id(transformers)]
        if known is not None:
            entry[3], entry[4] = known
        if entry[3] is None:
            codes, uniq = pd.factorize(gid)
            entry[3], entry[4] = codes, {g: i for i, g in enumerate(uniq.tolist())}
        entry[3].flags.writeable = False
        return entry[3], entry[4]

    def parts(self, rows: np.ndarray) -> int:
        """Connected pieces of these 台区 on the contiguity graph (memoised: an edit asks twice)."""
        if len(rows) <= 1:
            return len(rows)
        key = np.ascontiguousarray(rows, dtype=np.int64).tobytes()
        memo = self._parts_memo
        if key not in memo:
            if len(memo) > 256:
                memo.clear()
            memo[key] = self._count_parts(rows)
        return memo[key]

    def main_neighbour(self, grid_ids: np.ndarray, grid: str) -> str | None:
        """The grid of the same township that borders ``grid`` on most 台区 edges (None: none).

        ``grid_ids`` is the grid of every 台区 row (the plan being edited); ties go to the
        smallest id.
        """
        rows = np.flatnonzero(grid_ids == grid)
        ix, ip = self.adjacency.indices, self.adjacency.indptr
        nb = [str(grid_ids[j]) for i in rows for j in ix[ip[i]:ip[i + 1]]
              if grid_ids[j] != grid and self.township[j] == self.township[i]]
        return max(sorted(set(nb)), key=nb.count) if nb else None

    def _count_parts(self, rows: np.ndarray) -> int:
        ip, ix = self.adjacency.indptr, self.adjacency.indices
        local = np.full(len(self.ids), -1, dtype=np.int64)
        local[rows] = np.arange(len(rows))
        starts = ip[rows]
        lens = ip[rows + 1] - starts
        offset = np.repeat(starts - (np.cumsum(lens) - lens), lens)
        dst = local[ix[np.arange(int(lens.sum())) + offset]]
        src = np.repeat(np.arange(len(rows)), lens)
        keep = dst >= 0
        k = len(rows)
        sub = csr_matrix((np.ones(int(keep.sum()), dtype=np.int8), (src[keep], dst[keep])), shape=(k, k))
        return int(connected_components(sub, directed=False)[0])


def _context(plan: Plan, context: EditContext | None) -> EditContext:
    if context is not None and context.fits(plan):
        return context
    return EditContext.build(plan)


# --------------------------------------------------------------------------- grid numbers

_NUM = re.compile(r"^(.*)-(\d+)$")


def grid_numbers(plan: Plan) -> dict[str, int]:
    """Highest grid number issued per township (or station) key: the plan's record and its ids."""
    out = {str(k): int(v) for k, v in (getattr(plan, "grid_numbers", None) or {}).items()}
    for gid in plan.grids["grid_id"].astype(str):
        m = _NUM.match(gid)
        if m:
            out[m.group(1)] = max(out.get(m.group(1), 0), int(m.group(2)))
    return out


def _fresh_id(numbers: dict[str, int], key: str) -> str:
    numbers[key] = numbers.get(key, 0) + 1
    return f"{key}-{numbers[key]:02d}"


# --------------------------------------------------------------------------- applying an assignment

def set_assignment(plan: Plan, grid_of: dict[str, str], manager_of_grid: dict[str, str] | None = None,
                   *, context: EditContext | None = None) -> Plan:
    """Return a plan where the given 台区 lie in the given grids (the common step of every edit).

    Parameters
    ----------
    plan
        The plan to start from (not modified).
    grid_of
        ``{transformer_id: grid_id}`` for the 台区 that move; a grid id that does not exist yet
        makes a new grid.
    manager_of_grid
        ``{grid_id: manager_id}`` for new grids and grids that change manager (a manager id from
        ``plan.managers``); other grids keep theirs.
    context
        The session cache (built when omitted).

    Returns
    -------
    Plan
        A new plan with the changed grids re-dissolved and re-counted, and the KPIs updated.
    """
    ctx = _context(plan, context)
    rows = ctx.rows(grid_of)
    old = ctx.labels(plan.transformers)[0]
    new = old.copy()
    new[rows] = [str(g) for g in grid_of.values()]
    return _apply(plan, ctx, new, dict(manager_of_grid or {}))


def _manager_table(plan: Plan) -> pd.DataFrame:
    return pd.DataFrame(plan.managers)


def _union_cells(cells: np.ndarray) -> Any:
    """Union of 台区 cells: a coverage union (they tile, snapped alike), checked, else a plain one."""
    if len(cells) == 1:
        return cells[0]
    out = shapely.coverage_union_all(cells)
    if shapely.is_valid(out) and abs(shapely.area(out) - float(shapely.area(cells).sum())) < 1.0:
        return out
    return shapely.union_all(cells, grid_size=_GRID_M)


def _apply(plan: Plan, ctx: EditContext, new: np.ndarray, manager_of_grid: dict[str, str]) -> Plan:
    """Build the plan whose 台区 grid ids are ``new``; see :func:`set_assignment`."""
    tr0 = plan.transformers
    old = ctx.labels(tr0)[0]
    moved = np.flatnonzero(old != new)
    grids0 = plan.grids if "locked" in plan.grids.columns else plan.grids.assign(locked=False)
    gids0 = grids0["grid_id"].astype(str).to_numpy()
    mans0 = grids0["manager_id"].astype(str).to_numpy()
    stations0 = grids0["station_id"].astype(str).to_numpy()
    geoms0 = np.asarray(grids0.geometry.values, dtype=object)
    gpos = {g: i for i, g in enumerate(gids0)}
    changed_managers = {g for g, m in manager_of_grid.items() if g not in gpos or mans0[gpos[g]] != str(m)}
    if not len(moved) and not changed_managers:
        return plan
    affected = set(old[moved].tolist()) | set(new[moved].tolist()) | changed_managers
    geoms = {g: geoms0[gpos[g]] for g in affected if g in gpos}
    # Territory: cells of moved 台区 leave every grid that holds part of them, join their new grid.
    tree = None
    for t in sorted(set(ctx.township[moved].tolist())):
        rws = moved[ctx.township[moved] == t]
        out_cells = _union_cells(ctx.cells[rws])
        if tree is None:
            tree = shapely.STRtree(geoms0)
        for j in tree.query(out_cells, predicate="intersects"):
            g = gids0[j]
            base = geoms.get(g, geoms0[j])
            if g not in affected and shapely.area(shapely.intersection(base, out_cells)) < 1.0:
                continue  # a neighbour that only touches the moved cells
            affected.add(g)
            geoms[g] = shapely.difference(base, out_cells, grid_size=_GRID_M)
    for g in sorted(set(new[moved].tolist())):
        add = _union_cells(ctx.cells[moved[new[moved] == g]])
        geoms[g] = shapely.union(geoms[g], add, grid_size=_GRID_M) if g in geoms else add
    codes, uniq = pd.factorize(new)
    code_of = {g: i for i, g in enumerate(uniq.tolist())}
    present = set(code_of)
    removed = sorted(g for g in affected if g in gpos and g not in present)
    for g in removed:  # leftover territory (a township without 台区) joins its best neighbour
        rest = geoms.pop(g)
        if rest is None or rest.is_empty or shapely.area(rest) < 1.0:
            continue
        cand = [h for h in geoms if h not in removed]
        cand += [h for h in gids0[stations0 == stations0[gpos[g]]] if h not in affected]
        best, best_len = None, 0.0
        for h in dict.fromkeys(cand):
            geom_h = geoms.get(h, geoms0[gpos[h]] if h in gpos else None)
            if geom_h is None:
                continue
            shared = shapely.length(shapely.intersection(shapely.boundary(rest), shapely.boundary(geom_h)))
            if shared > best_len:
                best, best_len = h, shared
        if best is not None:
            geoms[best] = shapely.union(geoms.get(best, geoms0[gpos[best]]), rest, grid_size=_GRID_M)
            affected.add(best)
    affected -= set(removed)
    # Transformers: grid ids, and the managers of the changed grids.
    grid_manager = dict(zip(gids0.tolist(), mans0.tolist()))
    for g in removed:
        grid_manager.pop(g, None)
    grid_manager.update({str(g): str(m) for g, m in manager_of_grid.items()})
    rows_of = {g: np.flatnonzero(codes == code_of[g]) if g in code_of else np.empty(0, dtype=np.int64)
               for g in sorted(affected)}
    man = tr0["manager_id"].to_numpy(dtype=object, copy=True)
    for g, r in rows_of.items():
        man[r] = grid_manager.get(g)
    tr = tr0.copy(deep=False)  # the other columns are shared, never written (a plan is never mutated)
    tr["grid_id"] = new
    tr["manager_id"] = man
    ctx.grid_codes(tr, known=(codes, code_of))  # the delta and the page's grids read them
    # Grid rows: unchanged rows kept as they are, changed ones rebuilt, new ones appended.
    managers = _manager_table(plan)
    roster = _roster_lookup(managers, {m for g in affected if (m := grid_manager.get(g)) is not None})
    cols = [c for c in grids0.columns if c != grids0.geometry.name]
    data = {c: grids0[c].to_numpy(copy=True) for c in cols}
    geom_out = geoms0.copy()
    extra: list[dict[str, Any]] = []
    for g in sorted(affected):
        before = {c: data[c][gpos[g]] for c in cols} if g in gpos else None
        row = _grid_row(plan, ctx, g, geoms[g], rows_of.get(g, np.empty(0, dtype=np.int64)),
                        grid_manager.get(g), roster, before, cols)
        if g in gpos:
            i = gpos[g]
            for c in cols:
                data[c][i] = row.get(c, data[c][i])
            geom_out[i] = row["geometry"]
        else:
            extra.append(row)
    keep = np.array([g not in removed for g in gids0.tolist()], dtype=bool) if removed else np.ones(len(gids0), bool)
    if extra:
        more = {c: np.array([r.get(c) for r in extra] + [None], dtype=object)[:-1] for c in cols}
        frame = pd.DataFrame({c: np.concatenate([data[c][keep].astype(object), more[c]]) for c in cols})
    else:
        frame = pd.DataFrame({c: data[c][keep] for c in cols})
    geo = list(geom_out[keep]) + [r["geometry"] for r in extra]
    for c in cols:  # columns keep their dtypes
        if frame[c].dtype != grids0[c].dtype and grids0[c].dtype.kind in "fbiu":
            vals = pd.to_numeric(frame[c], errors="coerce")
            if grids0[c].dtype.kind == "b":
                vals = vals.fillna(0).astype(bool)
            elif grids0[c].dtype.kind in "iu" and not vals.isna().any():
                vals = vals.astype(grids0[c].dtype)
            frame[c] = vals
    grids = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geo, crs=grids0.crs).values, crs=grids0.crs)
    if grids.geometry.name != grids0.geometry.name:
        grids = grids.rename_geometry(grids0.geometry.name)
    if list(grids.columns) != list(grids0.columns):
        grids = grids[list(grids0.columns)]
    if extra:
        grids = grids.iloc[np.argsort(grids["grid_id"].astype(str).to_numpy(), kind="stable")].reset_index(drop=True)
    st_all = grids["station_id"].astype(str).to_numpy()
    stations = {st_all[i] for i in np.flatnonzero(grids["grid_id"].isin(affected).to_numpy())}
    stations |= {stations0[gpos[g]] for g in removed}
    if "balance" in grids.columns:
        w = grids["workload"].to_numpy(dtype=float)
        mean = pd.Series(w).groupby(st_all).transform("mean").to_numpy()
        grids["balance"] = np.round(np.where(mean > 0, w / np.where(mean > 0, mean, 1.0), 0.0), 3)
    managers = _update_managers(managers, grids, affected, removed)
    numbers = grid_numbers(plan)
    for g in affected:
        m = _NUM.match(g)
        if m:
            numbers[m.group(1)] = max(numbers.get(m.group(1), 0), int(m.group(2)))
    return dataclasses.replace(plan, transformers=tr, grids=grids, managers=managers,
                               kpi=_kpi(plan, grids, tr, ctx, stations), grid_numbers=numbers)


def _roster_lookup(managers: pd.DataFrame, wanted: set[str]) -> dict[str, tuple[str, str, bool]]:
    """manager_id -> (name, phone, placeholder), for the ``wanted`` managers."""
    managers = managers[managers["manager_id"].astype(str).isin(wanted)]
    ids = managers["manager_id"].astype(str).tolist()
    names = managers["name"].tolist() if "name" in managers.columns else ids
    phones = managers["phone"].tolist() if "phone" in managers.columns else [""] * len(ids)
    ph = managers["placeholder"].tolist() if "placeholder" in managers.columns else [False] * len(ids)
    out: dict[str, tuple[str, str, bool]] = {}
    for i, n, p, f in zip(ids, names, phones, ph):
        if i not in out:
            phone = "" if p is None or (isinstance(p, float) and math.isnan(p)) else str(p)
            out[i] = (str(n), phone, bool(f) if f is not None and not (isinstance(f, float) and math.isnan(f)) else False)
    return out


def _grid_row(plan: Plan, ctx: EditContext, gid: str, geom, rows: np.ndarray, manager_id: str | None,
              roster: dict[str, tuple[str, str, bool]], before: dict[str, Any] | None,
              cols: list[str]) -> dict[str, Any]:
    """One row of the grids layer, recomputed from its 台区 and polygon."""
    cap = float(plan.params.capacity)
    if before is not None:
        row = dict(before)
    else:
        towns = ctx.township[rows]
        t = min(pd.Series(towns).mode().tolist()) if len(rows) else ""
        st = ctx.station[rows][0] if len(rows) else ""
        row = dict.fromkeys(cols)
        row.update({"township_id": t, "station_id": st, "flags": "", "locked": False, "hv_km": 0.0})
    row["grid_id"] = gid
    row["geometry"] = geom
    present = sorted(set(ctx.township[rows].tolist()))
    if present:
        names = [ctx.town_names.get(t, t) for t in present]
        prev = [n for n in str(row.get("townships") or "").split("、") if n and n not in names and before is not None]
        row["townships"] = "、".join(dict.fromkeys(names + prev))
    w = float(ctx.workload[rows].sum())
    row["workload"] = w
    row["customers"] = int(ctx.customers[rows].sum())
    row["n_transformers"] = len(rows)
    if ctx.village is not None:
        row["villages"] = "、".join(sorted({str(v) for v in ctx.village[rows] if v is not None}))
    if len(rows):
        mean_d, max_d = _medoid_mean_max(ctx.xy[rows])
    else:
        mean_d = max_d = 0.0
    row["mean_dist_m"] = round(mean_d, 1)
    row["max_dist_m"] = round(max_d, 1)
    area, perim = shapely.area(geom), shapely.length(geom)
    row["polsby_popper"] = round(float(4 * math.pi * area / perim ** 2), 4) if perim > 0 else 0.0
    row["contiguous"] = bool(ctx.parts(rows) <= 1)
    flags = [f for f in str(row.get("flags") or "").split(",") if f and f != HEAVY_FLAG]
    if len(rows) == 1 and w > cap:
        flags.append(HEAVY_FLAG)
    row["flags"] = ",".join(flags)
    if ctx.segment_tree is not None:
        segs = ctx.segments.geometry.values
        hit = ctx.segment_tree.query(geom, predicate="intersects")
        km = float(shapely.length(shapely.intersection(segs[hit], geom)).sum()) / 1000.0 if len(hit) else 0.0
        row["hv_km"] = round(km, 3)
    if manager_id is not None:
        row["manager_id"] = manager_id
        name, phone, placeholder = roster.get(manager_id, (manager_id, "", manager_id.startswith("待定-")))
        row["manager_name"], row["phone"], row["placeholder"] = name, phone, placeholder
    if row.get("locked") is None or (isinstance(row.get("locked"), float) and math.isnan(row["locked"])):
        row["locked"] = False
    return row


def _medoid_mean_max(xy: np.ndarray) -> tuple[float, float]:
    """Mean and max distance to the medoid of one grid's 台区 (:func:`gridplan.metrics.kpi.group_medoids`)."""
    _, mean_m, max_m = group_medoids(xy, np.zeros(len(xy), dtype=np.int64), 1)
    return float(mean_m[0]), float(max_m[0])


def _update_managers(managers: pd.DataFrame, grids: pd.DataFrame, affected: set[str],
                     removed: list[str]) -> pd.DataFrame:
    """Each manager's grid and workload after the edit (placeholders of removed grids dropped)."""
    m = managers
    mid = m["manager_id"].astype(str).to_numpy()
    mgrid = m["grid_id"].astype(object).to_numpy()
    ph = m["placeholder"].fillna(False).astype(bool).to_numpy() if "placeholder" in m.columns \
        else np.zeros(len(m), dtype=bool)
    gone = np.isin(mgrid.astype(str), removed) if removed else np.zeros(len(m), dtype=bool)
    ga = grids["grid_id"].astype(str).to_numpy()
    gm = grids["manager_id"].astype(str).to_numpy()
    gw = grids["workload"].to_numpy(dtype=float)
    hit = np.isin(ga, list(affected))
    touched = set(gm[hit].tolist()) | set(mid[np.isin(mgrid.astype(str), list(affected | set(removed)))].tolist())
    grid_of: dict[str, tuple[str, float]] = {}
    for g, mm, w in zip(ga.tolist(), gm.tolist(), gw.tolist()):
        grid_of.setdefault(mm, (g, w))
    rows = np.flatnonzero(np.isin(mid, list(touched)) & ~(ph & gone))
    out = m[~(ph & gone)].copy() if (ph & gone).any() else m.copy()
    pos = {i: k for k, i in enumerate(np.flatnonzero(~(ph & gone)))}
    if len(rows):
        gcol = out["grid_id"].to_numpy(dtype=object, copy=True)
        wcol = out["workload"].to_numpy(dtype=float, copy=True)
        for i in rows:
            k = pos[i]
            g, w = grid_of.get(mid[i], (None, 0.0))
            gcol[k], wcol[k] = g, w
        out["grid_id"] = gcol
        out["workload"] = wcol
    have = set(mid.tolist())
    new_rows = []
    for i in np.flatnonzero(hit):
        if gm[i] not in have:  # a new placeholder manager
            new_rows.append({"manager_id": gm[i], "name": str(grids["manager_name"].iloc[i]), "phone": "",
                             "station_id": grids["station_id"].iloc[i], "grid_id": ga[i], "workload": gw[i],
                             "max_workload": np.nan, "placeholder": True, "hv_km": 0.0, "role": "lv"})
    if new_rows:
        out = pd.concat([out, pd.DataFrame(new_rows)], ignore_index=True)
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- KPIs

def _kpi(plan: Plan, grids: pd.DataFrame, tr: pd.DataFrame, ctx: EditContext,
         stations: set[str]) -> dict[str, Any]:
    """The plan's KPI dict with the county figures and the changed stations recomputed."""
    kpi = dict(plan.kpi)
    county = dict(kpi.get("county", {}))
    n = grids["n_transformers"].to_numpy()
    w = grids["workload"].to_numpy(dtype=float)
    real = n > 0
    cap = float(plan.params.capacity)
    contiguous = grids["contiguous"].to_numpy(dtype=bool)
    gid = grids["grid_id"].astype(str).to_numpy()
    ph = grids["placeholder"].fillna(False).to_numpy(dtype=bool)
    pp = grids["polsby_popper"].to_numpy(dtype=float)
    md = grids["mean_dist_m"].to_numpy(dtype=float)
    mx = grids["max_dist_m"].to_numpy(dtype=float)
    broken = sorted(gid[~contiguous].tolist())
    county.update({
        "grids": len(grids),
        "over_capacity_grids": int((w[real] > cap + 1e-9).sum()),
        "noncontiguous_grids": len(broken), "noncontiguous_grid_ids": broken,
        "polsby_popper_mean": round(float(pp.mean()), 4) if len(pp) else 0.0,
        "mean_dist_to_medoid_m": round(float(np.average(md[real], weights=n[real])), 1) if real.any() else 0.0,
        "max_dist_to_medoid_m": round(float(mx[real].max()), 1) if real.any() else 0.0,
        "managers_placeholder": int(ph.sum()),
        **balance_stats(w[real]),
    })
    moved = ctx.labels(tr)[1] != ctx.base_manager
    county["edited_transformers"] = int(moved.sum())
    county["edited_households"] = int(ctx.customers[moved].sum())
    kpi["county"] = county
    st = dict(kpi.get("stations", {}))
    sid = grids["station_id"].astype(str).to_numpy()
    cust = grids["customers"].to_numpy()
    for s in sorted(stations):
        k = sid == s
        kr = k & real
        st[s] = {**st.get(s, {}), "grids": int(k.sum()), "transformers": int(n[k].sum()),
                 "households": int(cust[k].sum()), "workload": round(float(w[k].sum()), 2),
                 "placeholder_managers": int(ph[k].sum()), **balance_stats(w[kr])}
    kpi["stations"] = st
    return kpi


def manager_capacities(plan: Plan) -> dict[str, float]:
    """``{manager_id: max_workload}`` for the managers whose roster row gives a positive one."""
    m = plan.managers
    if m is None or "max_workload" not in m.columns:
        return {}
    cap = pd.to_numeric(m["max_workload"], errors="coerce").to_numpy(dtype=float)
    ids = m["manager_id"].astype(str).to_numpy()
    ok = np.isfinite(cap) & (cap > 0)
    return dict(zip(ids[ok].tolist(), cap[ok].tolist()))


def grid_capacities(plan: Plan, grids: pd.DataFrame | None = None) -> np.ndarray:
    """Each grid's effective capacity: its manager's ``max_workload`` when set, else the plan's.

    The one rule behind the editor's over-capacity flag of a grid and the KPI header's count.

    Parameters
    ----------
    plan
        The plan (its managers and ``params.capacity``).
    grids
        The grid rows to look up (default: ``plan.grids``).

    Returns
    -------
    numpy.ndarray
        One capacity per row of ``grids``.
    """
    grids = plan.grids if grids is None else grids
    caps = manager_capacities(plan)
    default = float(plan.params.capacity)
    return np.array([caps.get(m, default) for m in grids["manager_id"].astype(str).tolist()], dtype=float)


def api_kpi(plan: Plan, context: EditContext | None = None) -> dict[str, Any]:
    """The editor's KPI header: balance, capacity, contiguity and coverage (乡乡有点、村村有人)."""
    ctx = context if context is not None and context.fits(plan) else EditContext.build(plan)
    grids = plan.grids
    n = grids["n_transformers"].to_numpy()
    w = grids["workload"].to_numpy(dtype=float)
    real = n > 0
    stats = balance_stats(w[real])
    man = ctx.labels(plan.transformers)[1]
    ph = grids["manager_id"].astype(str).to_numpy()[grids["placeholder"].fillna(False).to_numpy(dtype=bool)]
    covered = ~np.isin(man, ph) if len(ph) else np.ones(len(man), dtype=bool)
    towns_with = np.unique(ctx.town_code)
    town_cov = len(np.unique(ctx.town_code[covered])) / len(towns_with) if len(towns_with) else 1.0
    village_cov = None
    if ctx.village_code is not None:
        has = ctx.village_code >= 0
        allv = np.unique(ctx.village_code[has])
        village_cov = len(np.unique(ctx.village_code[has & covered])) / len(allv) if len(allv) else 1.0
    moved = man != ctx.base_manager
    return {"cv": stats["cv"], "max_mean": stats["max_over_mean"], "min_mean": stats["min_over_mean"],
            "mean": stats["mean"], "grids": len(grids),
            "over_capacity": int((w[real] > grid_capacities(plan)[real] + 1e-9).sum()),
            "non_contiguous": int((~grids["contiguous"].to_numpy(dtype=bool)).sum()),
            "township_coverage": round(town_cov, 4),
            "village_coverage": None if village_cov is None else round(village_cov, 4),
            "moved_transformers": int(moved.sum()),
            "moved_households": int(ctx.customers[moved].sum())}


def changed_grids(before: Plan, after: Plan) -> tuple[list[str], list[str]]:
    """Grid ids that differ between two plans (new or changed), and ids only in ``before``."""
    ga, gb = before.grids, after.grids
    ia = ga["grid_id"].astype(str).to_numpy()
    ib = gb["grid_id"].astype(str).to_numpy()
    pa = {g: i for i, g in enumerate(ia.tolist())}
    removed = sorted(set(ia.tolist()) - set(ib.tolist()))
    j_both = np.array([j for j, g in enumerate(ib.tolist()) if g in pa], dtype=np.int64)
    i_both = np.array([pa[g] for g in ib[j_both].tolist()], dtype=np.int64)
    new = sorted(set(ib.tolist()) - set(pa))
    geo_a = np.asarray(ga.geometry.values, dtype=object)[i_both]
    geo_b = np.asarray(gb.geometry.values, dtype=object)[j_both]
    diff = np.array([x is not y for x, y in zip(geo_a, geo_b)], dtype=bool)
    if diff.any():
        diff[diff] = ~shapely.equals_exact(geo_a[diff], geo_b[diff], tolerance=0.0)
    for c in ("manager_id", "workload", "n_transformers", "locked", "contiguous", "manager_name"):
        if c in ga.columns and c in gb.columns:
            x = ga[c].to_numpy()[i_both]
            y = gb[c].to_numpy()[j_both]
            ne = x != y
            if ne.any():
                ne &= ~(pd.isna(x) & pd.isna(y))
            diff |= ne
    return sorted(new + ib[j_both[diff]].tolist()), removed


# --------------------------------------------------------------------------- operations

def _manager_row(plan: Plan, manager_id: str) -> pd.Series:
    m = plan.managers
    hit = np.flatnonzero(m["manager_id"].astype(str).to_numpy() == str(manager_id))
    if not len(hit):
        raise EditRefused(f"台区经理不存在:{manager_id}", status=404, code="unknown_manager",
                          detail=f"unknown manager id: {manager_id}", items=[manager_id])
    return m.iloc[int(hit[0])]


def _locked(plan: Plan) -> np.ndarray:
    g = plan.grids
    return g["locked"].fillna(False).astype(bool).to_numpy() if "locked" in g.columns \
        else np.zeros(len(g), dtype=bool)


def reassign(plan: Plan, transformer_ids: Sequence[str], manager_id: str, *,
             context: EditContext | None = None) -> Plan:
    """Move 台区 into the grid of ``manager_id``; return the new plan.

    Parameters
    ----------
    plan
        The plan (not modified).
    transformer_ids
        The 台区 to move (ids already with that manager are ignored).
    manager_id
        A manager of ``plan.managers``. A manager without a grid gets a new grid (a new id).
    context
        The session cache.

    Raises
    ------
    EditRefused
        Unknown 台区 or manager (404); 台区 of another station, or of another township than the
        manager's grid when ``scope`` is township (跨乡镇); 台区 in a locked grid or a locked
        target grid; HV staff; nothing to move (409).
    """
    ctx = _context(plan, context)
    ids = [str(t) for t in transformer_ids]
    if not ids:
        raise EditRefused("未选择台区", status=400, code="bad_request", detail="transformer_ids is empty")
    dup = sorted({t for t in ids if ids.count(t) > 1}) if len(ids) != len(set(ids)) else []
    if dup:
        raise EditRefused(f"台区重复:{_shown(dup)}", status=400, code="bad_request",
                          detail=f"duplicate transformer ids: {', '.join(dup[:50])}", items=dup)
    rows = ctx.rows(ids)
    man = _manager_row(plan, manager_id)
    mid = str(man["manager_id"])
    if str(man.get("role", "lv")) == "hv":
        raise EditRefused(f"{man.get('name', mid)}({mid})是高压线段负责人,不负责台区网格", code="hv_staff",
                          detail=f"{mid} is HV staff (role hv) and has no LV grid", items=[mid])
    home = str(man["station_id"])
    other = rows[ctx.station[rows] != home]
    if len(other):
        bad = ctx.ids[other].tolist()
        raise EditRefused(f"台区经理 {man.get('name', mid)}({mid})属于供电所 {home},不能负责其他供电所的台区:"
                          f"{_shown(bad)}", code="cross_station", items=bad,
                          detail=f"manager {mid} belongs to station {home}; these transformers are in other "
                                 f"stations: {', '.join(bad[:50])}")
    grids = plan.grids
    gid_of_row = ctx.labels(plan.transformers)[0]
    locked_ids = set(grids.loc[_locked(plan), "grid_id"].astype(str))
    in_locked = rows[np.isin(gid_of_row[rows], list(locked_ids))]
    if len(in_locked):
        bad = ctx.ids[in_locked].tolist()
        gl = sorted(set(gid_of_row[in_locked].tolist()))
        raise EditRefused(f"网格 {'、'.join(gl)} 已锁定,其台区不能改派:{_shown(bad)}", code="locked", items=bad,
                          detail=f"grids {', '.join(gl)} are locked; unlock them first")
    mine = np.flatnonzero(grids["manager_id"].astype(str).to_numpy() == mid)
    scope_township = plan.params.scope == "township"
    if len(mine):
        target = str(grids["grid_id"].iloc[int(mine[0])])
        if target in locked_ids:
            raise EditRefused(f"台区经理 {man.get('name', mid)} 的网格 {target} 已锁定,不能加入台区", code="locked",
                              detail=f"the target grid {target} is locked", items=[target])
        if scope_township:
            t_rows = gid_of_row == target
            towns = set(ctx.township[t_rows].tolist()) or {str(grids["township_id"].iloc[int(mine[0])])}
            cross = rows[~np.isin(ctx.township[rows], list(towns))]
            if len(cross):
                bad = ctx.ids[cross].tolist()
                tn = "、".join(ctx.town_names.get(t, t) for t in sorted(towns))
                raise EditRefused(
                    f"跨乡镇:网格 {target} 属于{tn},按乡镇划分(scope = township)时不能加入其他乡镇的台区:"
                    f"{_shown(bad)}", code="cross_township", items=bad,
                    detail=f"scope is township: grid {target} lies in {', '.join(sorted(towns))}; "
                           f"these transformers are in other townships: {', '.join(bad[:50])}")
    else:
        key_vals = sorted(set((ctx.township if scope_township else ctx.station)[rows].tolist()))
        if len(key_vals) > 1:
            bad = ctx.ids[rows].tolist()
            raise EditRefused(f"跨乡镇:所选台区分布在{len(key_vals)}个{'乡镇' if scope_township else '供电所'}"
                              f"({'、'.join(key_vals)}),一个网格不能跨{'乡镇' if scope_township else '供电所'}",
                              code="cross_township", items=bad,
                              detail=f"the selection spans {', '.join(key_vals)}; one grid cannot")
        target = _fresh_id(grid_numbers(plan), key_vals[0])
    rows = rows[gid_of_row[rows] != target]
    if not len(rows):
        raise EditRefused("所选台区已属于该台区经理,无需改派", code="no_change",
                          detail=f"every selected transformer is already in {target}")
    new = gid_of_row.copy()
    new[rows] = target
    return _apply(plan, ctx, new, {target: mid})


def lock(plan: Plan, grid_ids: Sequence[str], locked: bool = True) -> Plan:
    """Lock (or unlock) grids: a locked grid keeps exactly its 台区 and its manager.

    Raises
    ------
    EditRefused
        No or unknown grid ids (400/404).
    """
    ids = [str(g) for g in grid_ids]
    if not ids:
        raise EditRefused("未选择网格", status=400, code="bad_request", detail="grid_ids is empty")
    known = set(plan.grids["grid_id"].astype(str))
    unknown = sorted(set(ids) - known)
    if unknown:
        raise EditRefused(f"网格不存在:{_shown(unknown)}", status=404, code="unknown_grid", items=unknown,
                          detail=f"unknown grid ids: {', '.join(unknown[:50])}")
    grids = plan.grids.copy()
    if "locked" not in grids.columns:
        grids["locked"] = False
    grids["locked"] = grids["locked"].fillna(False).astype(bool)
    grids.loc[grids["grid_id"].astype(str).isin(ids), "locked"] = bool(locked)
    return dataclasses.replace(plan, grids=grids)


@dataclass
class Rebalance:
    """A rebalance result: the new plan and what it changes (not applied to anything yet).

    Attributes
    ----------
    plan
        The plan after rebalancing (derived from the input plan; accept it by keeping it).
    changes
        One row per 台区 that changes manager: ``transformer_id``, ``from_manager``,
        ``to_manager``, ``from_grid``, ``to_grid``.
    area
        ``("township", id)`` or ``("station", id)``.
    """

    plan: Any
    changes: pd.DataFrame
    area: tuple[str, str]
    notes: list[str] = field(default_factory=list)


_PLAN_COLUMNS = ("grid_id", "manager_id", "workload", "segment_id", "response_minutes", "beyond_commitment",
                 "current_grid_id", "current_manager_id", "pin_manager_id", "pin_grid_id", "pin_source")


def _replan_county(plan: Plan, station: str):
    """One station of the plan's county as the planner reads it: ledger columns and the roster.

    Grids never cross stations and managers are matched per station, so planning the station
    alone gives what planning the county with every other station locked would give, faster.
    Feeders and roads are left out: the editor keeps the plan's 10 kV segments and response times.
    """
    county = plan.county
    towns = county.townships[county.townships["station_id"].astype(str) == station]
    keep = plan.transformers["station_id"].astype(str).to_numpy() == station
    tr = plan.transformers.loc[keep].drop(columns=[c for c in _PLAN_COLUMNS if c in plan.transformers.columns])
    villages = county.villages
    if villages is not None and "township_id" in villages.columns:
        villages = villages[villages["township_id"].astype(str).isin(set(towns["township_id"].astype(str)))]
    roster = county.managers
    if roster is None or not len(roster):
        m = _manager_table(plan)
        m = m[~m["placeholder"].fillna(False).astype(bool)] if "placeholder" in m.columns else m
        if len(m):
            role = m["role"].map({"hv": "高压"}).fillna("台区经理") if "role" in m.columns else "台区经理"
            roster = gpd.GeoDataFrame(
                {"manager_id": m["manager_id"].astype(str).to_numpy(), "name": m["name"].astype(str).to_numpy(),
                 "phone": m["phone"].fillna("").astype(str).to_numpy(),
                 "station_id": m["station_id"].astype(str).to_numpy(),
                 "max_workload": pd.to_numeric(m.get("max_workload", np.nan), errors="coerce"),
                 "role": np.asarray(role)},
                geometry=[shapely.Point()] * len(m), crs=county.crs)
        else:
            roster = None
    if roster is not None:
        roster = roster[roster["station_id"].astype(str) == station]
    return dataclasses.replace(county, townships=towns, transformers=tr, managers=roster, villages=villages,
                               feeders=None, switches=None, substations=None, roads=None)


def rebalance(plan: Plan, *, township_id: str | None = None, station_id: str | None = None,
              stability: float = 1.0, edited: Iterable[str] = (),
              context: EditContext | None = None) -> Rebalance:
    """Re-plan the unlocked grids of one township or station with gridplan's planner.

    Everything outside the area and every locked grid is held fixed (as locks); the 台区 in
    ``edited`` (the planner's own edits) are held as pins to their current managers; ``stability``
    prices every other move (see ``gridplan plan --stability``). The planner is
    :func:`gridplan.plan` with ``current`` and ``pins``: no second optimizer.

    Returns
    -------
    Rebalance
        The new plan (derived from ``plan`` with only the area's 台区 moved) and the changes.

    Raises
    ------
    EditRefused
        Neither or both of township_id/station_id, an unknown one (400/404), or pins that cannot
        all hold (409, the planner's reason).
    """
    if (township_id is None) == (station_id is None):
        raise EditRefused("请指定一个乡镇或一个供电所", status=400, code="bad_request",
                          detail="give exactly one of township_id, station_id")
    if not (isinstance(stability, (int, float)) and math.isfinite(stability) and stability >= 0):
        raise EditRefused("stability 须为非负数", status=400, code="bad_request",
                          detail="stability must be a number >= 0")
    ctx = _context(plan, context)
    kind, key = ("township", str(township_id)) if township_id is not None else ("station", str(station_id))
    values = ctx.township if kind == "township" else ctx.station
    known = set(plan.county.townships["township_id"].astype(str)) if kind == "township" \
        else set(plan.county.stations["station_id"].astype(str))
    if key not in known:
        raise EditRefused(f"{'乡镇' if kind == 'township' else '供电所'}不存在:{key}", status=404,
                          code=f"unknown_{kind}", detail=f"unknown {kind} id: {key}", items=[key])
    inside = values == key
    if not inside.any():
        raise EditRefused(f"{key} 没有台区,无需平衡", code="no_change", detail=f"{kind} {key} has no transformers")
    tr = plan.transformers
    gid = tr["grid_id"].astype(str).to_numpy()
    locked_ids = set(plan.grids.loc[_locked(plan), "grid_id"].astype(str))
    station = str(ctx.station[np.flatnonzero(inside)[0]])
    in_station = ctx.station == station
    fixed_grids = sorted(set(gid[in_station & ~inside].tolist()) | (locked_ids & set(gid[inside].tolist())))
    pins = Pins(None)
    for g in fixed_grids:
        pins.items.append(Pin(f"锁定网格 {g}" if g in locked_ids else f"区域外网格 {g}", None, (), (g,)))
    county = _replan_county(plan, station)
    roster = set(county.managers["manager_id"].astype(str)) if county.managers is not None else set()
    man = tr["manager_id"].astype(str).to_numpy()
    held = [r for r in (ctx.row_of[t] for t in edited if t in ctx.row_of)
            if inside[r] and gid[r] not in locked_ids and man[r] in roster]
    for r in sorted(held):
        pins.items.append(Pin(f"编辑 {ctx.ids[r]}", man[r], (ctx.ids[r],)))
    current = pd.DataFrame({"transformer_id": ctx.ids[in_station], "grid_id": gid[in_station],
                            "manager_id": man[in_station]})
    current.attrs["grid_numbers"] = grid_numbers(plan)
    try:
        new = gridplan.plan(county, current=current, pins=pins, stability=float(stability),
                       time_limit=REBALANCE_SECONDS if plan.params.time_limit is None else plan.params.time_limit)
    except (InfeasibleError, InputError) as exc:
        raise EditRefused(f"无法平衡:{exc}", code="infeasible", detail=str(exc)) from exc
    new_tr = new.transformers.set_index(new.transformers["transformer_id"].astype(str))
    area = np.flatnonzero(inside)
    new_gid = new_tr.loc[ctx.ids[area], "grid_id"].astype(str).to_numpy()
    new_man = new_tr.loc[ctx.ids[area], "manager_id"].astype(str).to_numpy()
    target = gid.copy()
    target[area] = new_gid
    managers_of = dict(zip(new_gid, new_man))
    result = _apply(plan, ctx, target, managers_of)
    after = result.transformers["manager_id"].astype(str).to_numpy()
    ch = np.flatnonzero(after != man)
    changes = pd.DataFrame({"transformer_id": ctx.ids[ch], "from_manager": man[ch], "to_manager": after[ch],
                            "from_grid": gid[ch], "to_grid": result.transformers["grid_id"].astype(str).to_numpy()[ch]})
    log.info("rebalance %s %s: %d 台区 change manager", kind, key, len(changes))
    return Rebalance(result, changes, (kind, key), list(new.notes))
