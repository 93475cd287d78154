"""Where to put service points (供电服务站): location set covering and maximal coverage, exact.

A 台区 is *covered* by a site when the travel time from the site is within the 台区's commitment
(45 / 90 / 120 minutes by area class). The stations that remain after a merge cover what they
cover; the candidate sites are the closed stations, the township seats (a representative point of
each township polygon: always inside it) and the optional ``candidates.*`` layer.

* **Location set covering (LSCP)**: the fewest sites such that every 台区 a site can reach within
  its commitment is covered (台区 no site reaches are reported as ``uncoverable``).
* **Maximal coverage (MCLP)**: with at most ``k`` sites, the most households covered (ties: the
  most 台区, then the fewest sites).

Both are 0/1 programs solved to optimality with HiGHS through :func:`scipy.optimize.milp`; rows
with the same covering sites are merged first (the program is the same, only smaller).

::

    sites = candidate_sites(county, closed=closed_stations)
    sp = propose_service_points(county, existing, sites, params=county.params)        # LSCP
    sp = propose_service_points(county, existing, sites, params=county.params, k=2)   # MCLP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from ..metrics.response import TravelTimes, response_times, travel_times
from ..model import County
from ..settings import Params

__all__ = ["ServicePoints", "candidate_sites", "propose_service_points", "solve_lscp", "solve_mclp"]

log = logging.getLogger(__name__)

SITE_KINDS = {"closed": "撤并供电所", "seat": "乡镇驻地", "file": "候选站点"}


def candidate_sites(county: County, *, closed: gpd.GeoDataFrame | None = None,
                    seats: bool = True) -> gpd.GeoDataFrame:
    """Candidate service-point sites: closed stations, township seats and ``county.candidates``.

    Parameters
    ----------
    county
        The county (metric CRS).
    closed
        Stations closed by a merge (``station_id``, ``name``; Points).
    seats
        Add a representative point of every township polygon (乡镇驻地).

    Returns
    -------
    geopandas.GeoDataFrame
        ``point_id`` (``站:<id>``, ``乡:<township_id>``, ``点:<candidate_id>``), ``name``,
        ``kind`` (:data:`SITE_KINDS`), ``source_id``; Points in ``county.crs``, no duplicates of id.
    """
    parts = []
    if closed is not None and len(closed):
        parts.append(pd.DataFrame({"point_id": "站:" + closed["station_id"].astype(str),
                                   "name": closed["name"].astype(str) + "（原供电所）",
                                   "kind": SITE_KINDS["closed"],
                                   "source_id": closed["station_id"].astype(str),
                                   "geometry": closed.geometry.to_crs(county.crs).values}))
    if seats and len(county.townships):
        t = county.townships
        parts.append(pd.DataFrame({"point_id": "乡:" + t["township_id"].astype(str),
                                   "name": t["name"].astype(str) + "驻地", "kind": SITE_KINDS["seat"],
                                   "source_id": t["township_id"].astype(str),
                                   "geometry": t.geometry.representative_point().values}))
    cand = county.candidates
    if cand is not None and len(cand):
        parts.append(pd.DataFrame({"point_id": "点:" + cand["candidate_id"].astype(str),
                                   "name": cand["name"].astype(str), "kind": SITE_KINDS["file"],
                                   "source_id": cand["candidate_id"].astype(str),
                                   "geometry": cand.geometry.to_crs(county.crs).values}))
    if not parts:
        return gpd.GeoDataFrame({"point_id": [], "name": [], "kind": [], "source_id": []},
                                geometry=[], crs=county.crs)
    out = pd.concat(parts, ignore_index=True).drop_duplicates("point_id").reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=county.crs)


def _unique_rows(cover: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a bool matrix and, for every row, the index of its distinct row."""
    if cover.shape[0] == 0:
        return cover, np.zeros(0, dtype=int)
    packed = np.packbits(cover, axis=1)
    _, first, inv = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    return cover[first], inv.ravel()


def solve_lscp(cover: np.ndarray, *, time_limit: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The fewest columns (sites) covering every coverable row (demand), solved exactly.

    Parameters
    ----------
    cover
        ``(n_demand, n_sites)`` bool: site j covers demand i.
    time_limit
        Seconds for HiGHS (None: no limit).

    Returns
    -------
    chosen, uncoverable
        Sorted indices of the chosen sites; bool mask of the demands no site covers.

    Examples
    --------
    >>> cover = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=bool)
    >>> solve_lscp(cover)[0].tolist()
    [0, 2]
    """
    cover = np.asarray(cover, dtype=bool)
    uncoverable = np.asarray(~cover.any(axis=1))
    rows, _ = _unique_rows(cover[~uncoverable])
    n = cover.shape[1]
    if len(rows) == 0 or n == 0:
        return np.zeros(0, dtype=int), uncoverable
    a = sparse.csr_matrix(rows.astype(float))
    res = milp(np.ones(n), constraints=LinearConstraint(a, lb=1, ub=np.inf),
               integrality=np.ones(n), bounds=Bounds(0, 1), options=_options(time_limit))
    if res.x is None:
        raise RuntimeError(f"set covering failed: {res.message}")
    return np.flatnonzero(res.x > 0.5), uncoverable


def solve_mclp(cover: np.ndarray, weights: np.ndarray, k: int, *,
               time_limit: float | None = None) -> tuple[np.ndarray, float]:
    """At most ``k`` sites covering the largest total weight, solved exactly.

    Ties are broken towards more covered demands, then fewer sites (small secondary terms).

    Parameters
    ----------
    cover
        ``(n_demand, n_sites)`` bool.
    weights
        ``(n_demand,)`` non-negative weights (households).
    k
        The number of sites allowed.
    time_limit
        Seconds for HiGHS.

    Returns
    -------
    chosen, covered
        Sorted indices of the chosen sites; the covered weight.

    Examples
    --------
    >>> cover = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=bool)
    >>> solve_mclp(cover, np.array([5, 1, 1, 4]), 1)
    (array([0]), 6.0)
    """
    cover = np.asarray(cover, dtype=bool)
    w = np.asarray(weights, dtype=float)
    keep = cover.any(axis=1)
    rows, inv = _unique_rows(cover[keep])
    n = cover.shape[1]
    if len(rows) == 0 or n == 0 or k <= 0:
        return np.zeros(0, dtype=int), 0.0
    m = len(rows)
    rw = np.bincount(inv, weights=w[keep], minlength=m)
    rc = np.bincount(inv, minlength=m).astype(float)
    # variables: x (n sites), y (m demand groups); minimise −weight − ε₁·count + ε₂·sites, with
    # ε₁·(all demands) < 1 household and ε₂·(all sites) < ε₁: the secondary terms only break ties
    eps1 = 1.0 / (rc.sum() + 1.0)
    eps2 = eps1 / (n + 1.0)
    c = np.r_[np.full(n, eps2), -(rw + eps1 * rc)]
    a_cov = sparse.hstack([-sparse.csr_matrix(rows.astype(float)), sparse.identity(m)])  # y ≤ Σ a x
    a_k = sparse.hstack([sparse.csr_matrix(np.ones((1, n))), sparse.csr_matrix((1, m))])
    cons = [LinearConstraint(a_cov, lb=-np.inf, ub=0), LinearConstraint(a_k, lb=0, ub=k)]
    res = milp(c, constraints=cons, integrality=np.r_[np.ones(n), np.zeros(m)], bounds=Bounds(0, 1),
               options=_options(time_limit))
    if res.x is None:
        raise RuntimeError(f"maximal covering failed: {res.message}")
    chosen = np.flatnonzero(res.x[:n] > 0.5)
    covered = float(rw[rows[:, chosen].any(axis=1)].sum()) if len(chosen) else 0.0
    return chosen, covered


def _options(time_limit: float | None) -> dict[str, float | bool]:
    opts: dict[str, float | bool] = {"disp": False}
    if time_limit is not None:
        opts["time_limit"] = float(time_limit)
    return opts


@dataclass
class ServicePoints:
    """Proposed service points and the response times with them.

    Attributes
    ----------
    method
        ``"lscp"`` (fewest points for full coverage) or ``"mclp"`` (best ``k`` points).
    k
        Points allowed (MCLP) or needed (LSCP).
    sites
        The chosen sites (``point_id``, ``name``, ``kind``, ``transformers_served`` = 台区 now
        nearest to it, ``newly_within`` = 台区 it brings within their commitment; Points).
    response
        :func:`gridplan.metrics.response.response_times` with the existing points and the chosen sites.
    beyond_before
        台区 beyond their commitment with the existing points only.
    uncoverable
        ``transformer_id`` of 台区 no candidate site brings within their commitment.
    candidates
        Number of candidate sites considered.
    """

    method: str
    k: int
    sites: gpd.GeoDataFrame
    response: pd.DataFrame
    beyond_before: int
    uncoverable: list[str]
    candidates: int

    @property
    def beyond_after(self) -> int:
        """台区 still beyond their commitment with the proposed points."""
        return int(self.response["beyond"].sum())


def propose_service_points(county: County, existing: gpd.GeoDataFrame, sites: gpd.GeoDataFrame, *,
                           params: Params | None = None, k: int | None = None,
                           travel: TravelTimes | None = None, site_travel: TravelTimes | None = None,
                           time_limit: float | None = 60.0) -> ServicePoints:
    """The fewest service points bringing every 台区 within its commitment, or the best ``k``.

    Parameters
    ----------
    county
        The county (after a merge, or as it is).
    existing
        The stations and service points that stay (``station_id``/``point_id``, ``name``, ``kind``).
    sites
        Candidate sites (:func:`candidate_sites`).
    params
        Response parameters (default ``county.params``).
    k
        None: location set covering; an int: maximal coverage with at most ``k`` points.
    travel
        Travel times from ``existing`` (computed here otherwise).
    site_travel
        Travel times from ``sites`` (e.g. ``all_sites.subset(ids)``; computed here otherwise).
    time_limit
        Seconds for the solver.

    Returns
    -------
    ServicePoints
    """
    params = params or county.params
    base_tt = travel if travel is not None else travel_times(county, existing, params=params)
    rt0 = response_times(county, params=params, travel=base_tt)
    need = rt0["beyond"].to_numpy()
    site_tt = site_travel if site_travel is not None else \
        (travel_times(county, sites, params=params) if len(sites) else None)
    commit = rt0["commitment"].to_numpy(dtype=float)
    cover = (site_tt.minutes <= commit[:, None] + 1e-9) if site_tt is not None \
        else np.zeros((len(rt0), 0), dtype=bool)
    demand = cover[need]
    if k is None:
        chosen, unc = solve_lscp(demand, time_limit=time_limit)
        uncoverable = rt0.loc[need, "transformer_id"].to_numpy()[unc].tolist()
        method = "lscp"
    else:
        chosen, covered = solve_mclp(demand, rt0.loc[need, "customers"].to_numpy(), k,
                                     time_limit=time_limit)
        uncoverable = rt0.loc[need, "transformer_id"].to_numpy()[~demand.any(axis=1)].tolist()
        method = "mclp"
    log.info("%s: %d of %d candidate sites chosen for %d 台区 beyond commitment", method, len(chosen),
             len(sites), int(need.sum()))
    chosen_sites = sites.iloc[chosen].reset_index(drop=True)
    if len(chosen_sites):
        assert site_tt is not None  # no site times: no sites, nothing chosen
        tt = _join(base_tt, site_tt, chosen)
        rt = response_times(county, params=params, travel=tt)
    else:
        rt = rt0
    ids = chosen_sites["point_id"].astype(str)
    served = rt["point_id"].value_counts()
    within = rt[need & ~rt["beyond"].to_numpy()]["point_id"].value_counts()
    chosen_sites = chosen_sites.assign(
        transformers_served=ids.map(served).fillna(0).astype(int).to_numpy(),
        newly_within=ids.map(within).fillna(0).astype(int).to_numpy())
    return ServicePoints(method, len(chosen_sites) if k is None else int(k),
                         gpd.GeoDataFrame(chosen_sites, geometry="geometry", crs=county.crs), rt,
                         int(need.sum()), uncoverable, len(sites))


def _join(a: TravelTimes, b: TravelTimes, cols: np.ndarray) -> TravelTimes:
    """``a`` with the columns ``cols`` of ``b`` appended (same 台区 in the same order)."""
    sub = b.subset(b.points["point_id"].iloc[cols])
    return TravelTimes(pd.concat([a.points, sub.points], ignore_index=True), a.transformer_id,
                       np.hstack([a.minutes, sub.minutes]), np.hstack([a.metres, sub.metres]),
                       np.hstack([a.via_road, sub.via_road]), a.method)
