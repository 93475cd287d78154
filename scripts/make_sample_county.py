"""Generate realistic SYNTHETIC counties in gridplan's input format (seeded, byte-identical).

Every name, phone number, place and line in the output is made up. The shapes are built in a local
metric frame (transverse Mercator centred on the county, metres) and written in WGS84 lon/lat:

* outline: a noisy star-shaped polygon (~40 x 50 km by default);
* fine cells: the Voronoi cells of a jittered grid of points inside the outline (~250 per township);
* townships and villages: unions of fine cells grown from seed cells by a multi-source Dijkstra over
  the cell adjacency graph with noisy edge weights (each region is connected, regions tile exactly,
  borders wiggle like real ones); township head starts vary so township sizes vary;
* stations: groups of 2-5 neighbouring townships; 台区 clustered around village centres;
* feeders: per substation, the service area is cut into angular sectors, one feeder per sector:
  the minimum spanning tree of its 台区 (over the Delaunay graph) plus one exit section from the
  substation; sectionalising switches along trunks and at big branches, and
  normally-open tie switches (with a short tie line) between neighbouring feeders' ends.

Usage::

    python scripts/make_sample_county.py --out geodata/sample --seed 7      # the committed sample
    python scripts/make_sample_county.py --out /tmp/big --transformers 100000
    python scripts/make_sample_county.py --out /tmp/province --counties 20
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS, Transformer
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import Delaunay, QhullError, cKDTree

log = logging.getLogger("make_sample_county")

#: Standard distribution-transformer sizes (kVA).
KVA_SERIES = np.array([50, 80, 100, 160, 200, 315, 400, 630])
#: Where the default (single) county sits: rural Henan.
DEFAULT_CENTRE = (114.5, 33.5)
CELLS_PER_TOWNSHIP = 250
TOWNSHIP_AREA_M2 = 1.0e8  # ~100 km2 per township on average
FEEDER_TARGET_M = 22_000.0
FEEDER_MAX_KVA = 15_000.0

SURNAMES = list("李王张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢")
TOWN_SUFFIX = list("店集庄桥楼寨营岗湖河坡屯铺口园岭")
VILLAGE_PREFIX = ["", "东", "西", "南", "北", "前", "后", "大", "小", "上", "下", "新"]
VILLAGE_SUFFIX = list("庄营寨楼湾洼岗屯集店园沟坡桥圩")
GIVEN = ["三", "四", "五", "六", "七", "八", "九", "十", "一", "二", "甲", "乙", "丙", "丁", "戊"]
FAKE_PREFIX = ["示例", "测试", "样例", "虚构"]
ORDINALS = "一二三四五六七八九十"


@dataclass
class CountySpec:
    """What to generate: one county."""

    seed: int = 7
    lon: float = DEFAULT_CENTRE[0]
    lat: float = DEFAULT_CENTRE[1]
    townships: int = 15
    transformers: int = 3000
    name: str = "示例县（虚构）"


@dataclass
class Network:
    """Nodes (metric xy) and 10 kV line sections of a county, built up by the feeder functions."""

    xy: np.ndarray
    sections: list[tuple[int, int, int]] = field(default_factory=list)  # (node, node, feeder)
    switches: list[tuple[int, bool, int]] = field(default_factory=list)  # (node, open, feeder)
    feeder_sub: list[int] = field(default_factory=list)
    feeder_name: list[str] = field(default_factory=list)

    def add_node(self, p: np.ndarray) -> int:
        """Append a node and return its index."""
        self.xy = np.vstack([self.xy, p[None, :]])
        return len(self.xy) - 1


# ---------------------------------------------------------------------------------------------
# geometry: outline, cells, region growing
# ---------------------------------------------------------------------------------------------

def make_outline(rng: np.random.Generator, *, scale: float) -> shapely.Polygon:
    """A noisy star-shaped county outline around (0, 0), ~40 x 50 km times ``scale``."""
    theta = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    a, b, rot = 20_000.0 * scale, 25_000.0 * scale, rng.uniform(0, np.pi)
    t = theta - rot
    r = a * b / np.sqrt((b * np.cos(t)) ** 2 + (a * np.sin(t)) ** 2)
    logr = sum(rng.normal(0, 0.16 / k ** 0.6) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
               for k in range(2, 13))
    r = r * np.exp(logr * min(1.0, 0.3 / np.abs(logr).max()))  # radius within 26% of the ellipse
    return shapely.Polygon(np.c_[r * np.cos(theta), r * np.sin(theta)])


def make_cells(rng: np.random.Generator, outline: shapely.Polygon, n_cells: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voronoi cells of jittered grid points whose generator lies inside ``outline``.

    Returns
    -------
    cells, centres, edges
        Cell polygons, their generator points (inside their cell), and the (m, 2) pairs of cells
        sharing a border longer than 1 m.
    """
    xmin, ymin, xmax, ymax = outline.bounds
    step = math.sqrt(outline.area / n_cells)
    gx, gy = np.meshgrid(np.arange(xmin - 2 * step, xmax + 2 * step, step),
                         np.arange(ymin - 2 * step, ymax + 2 * step, step))
    pts = np.c_[gx.ravel(), gy.ravel()] + rng.uniform(-0.42, 0.42, (gx.size, 2)) * step
    allcells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), ordered=True))
    allcells = shapely.set_precision(allcells, 0.01, mode="pointwise")
    keep = shapely.contains_xy(outline, pts[:, 0], pts[:, 1])
    keep = _fill_and_connect(allcells, keep)
    cells, centres = allcells[keep], pts[keep]
    edges = _cell_edges(cells, centres)
    return cells, centres, edges


def _fill_and_connect(cells: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Keep the largest part of the kept cells' union and fill its holes."""
    union = shapely.coverage_union_all(cells[keep])
    part = max(shapely.get_parts(union), key=lambda g: g.area)
    shell = shapely.Polygon(part.exterior)
    inside = shapely.contains(shell, shapely.point_on_surface(cells))
    return inside


def _cell_edges(cells: np.ndarray, centres: np.ndarray) -> np.ndarray:
    tri = Delaunay(centres)
    ind, nbr = tri.vertex_neighbor_vertices
    a = np.repeat(np.arange(len(centres)), np.diff(ind))
    pairs = np.c_[a, nbr]
    pairs = np.unique(np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1), axis=0)
    shared = shapely.length(shapely.intersection(cells[pairs[:, 0]], cells[pairs[:, 1]]))
    return pairs[shared > 1.0]


def grow_regions(n: int, edges: np.ndarray, weights: np.ndarray, sources: np.ndarray,
                 head_start: np.ndarray) -> np.ndarray:
    """Multi-source Dijkstra: label each node with the source that reaches it first.

    ``head_start`` (metres, >= 0) delays a source; each region is connected in the graph.
    """
    rows = np.r_[edges[:, 0], edges[:, 1], np.full(len(sources), n)]
    cols = np.r_[edges[:, 1], edges[:, 0], sources]
    vals = np.r_[weights, weights, head_start + 1.0]
    g = sparse.csr_matrix((vals, (rows, cols)), shape=(n + 1, n + 1))
    dist, pred = csgraph.dijkstra(g, directed=True, indices=n, return_predecessors=True)
    label = np.full(n + 1, -1)
    label[sources] = np.arange(len(sources))
    for v in np.argsort(dist[:n], kind="stable"):
        if label[v] < 0 and np.isfinite(dist[v]):
            label[v] = label[pred[v]]
    return label[:n]


def spread_sample(rng: np.random.Generator, xy: np.ndarray, k: int, first: int | None = None
                  ) -> np.ndarray:
    """K indices of ``xy`` spread out (k-means++ seeding: probability ~ squared distance)."""
    chosen = [int(rng.integers(len(xy))) if first is None else first]
    d2 = ((xy - xy[chosen[0]]) ** 2).sum(1)
    for _ in range(k - 1):
        i = int(rng.choice(len(xy), p=d2 / d2.sum()))
        chosen.append(i)
        d2 = np.minimum(d2, ((xy - xy[i]) ** 2).sum(1))
    return np.array(chosen)


# ---------------------------------------------------------------------------------------------
# administrative layers
# ---------------------------------------------------------------------------------------------

def name_pool(rng: np.random.Generator, prefixes: list[str], suffixes: list[str], n: int,
              *, tail: str = "") -> list[str]:
    """N distinct made-up place names: prefix + surname + suffix + tail."""
    combos = [p + s + x for p in prefixes for s in SURNAMES for x in suffixes]
    pick = rng.permutation(len(combos))
    out = [combos[i] + tail for i in pick[:n]]
    for i in range(len(out), n):  # only for huge counties
        out.append(f"{combos[pick[i % len(combos)]]}{i // len(combos) + 1}{tail}")
    return out


def make_townships(rng: np.random.Generator, cells: np.ndarray, centres: np.ndarray,
                   edges: np.ndarray, n_town: int) -> dict:
    """Township labels of the cells, their seed cells, names and area classes."""
    seat = int(np.argmin(((centres - rng.normal(0, 2500, 2)) ** 2).sum(1)))
    seeds = spread_sample(rng, centres, n_town, first=seat)
    far = int(np.argmax(((centres[seeds] - centres[seat]) ** 2).sum(1)))
    head = rng.uniform(0, 6000, n_town)
    head[0] = 3000.0
    head[far] = 0.0  # the remote mountainous township is the big one
    heavy = 1 + int(rng.integers(n_town - 1))
    head[heavy] = 0.0
    length = np.linalg.norm(centres[edges[:, 0]] - centres[edges[:, 1]], axis=1)
    w = length * rng.lognormal(0, 0.35, len(edges))
    label = grow_regions(len(cells), edges, w, seeds, head)
    names = ["城关镇"]
    kinds = [("镇" if rng.random() < 0.45 else "乡") for _ in range(n_town)]
    base = name_pool(rng, [""], TOWN_SUFFIX, n_town)
    for i in range(1, n_town):
        stem = base[i][:-1] + "山" if i == far else base[i]
        names.append(stem + kinds[i])
    area_class = ["城区"] + ["农村"] * (n_town - 1)
    area_class[far] = "特殊边远"
    return {"label": label, "seeds": seeds, "names": names, "area_class": area_class, "far": far}


def make_villages(rng: np.random.Generator, cells: np.ndarray, centres: np.ndarray,
                  edges: np.ndarray, town: np.ndarray) -> dict:
    """Village labels of the cells (regions inside each township) and their seed cells."""
    seeds: list[int] = []
    vtown: list[int] = []
    cell_area = shapely.area(cells)
    for t in range(town.max() + 1):
        idx = np.flatnonzero(town == t)
        km2 = cell_area[idx].sum() / 1e6
        k = int(np.clip(round(km2 / 6.5 * rng.uniform(0.75, 1.3)), 8, 25))
        k = max(1, min(k, len(idx) // 4))
        seeds.extend(idx[spread_sample(rng, centres[idx], k)])
        vtown.extend([t] * k)
    same = town[edges[:, 0]] == town[edges[:, 1]]
    e = edges[same]
    length = np.linalg.norm(centres[e[:, 0]] - centres[e[:, 1]], axis=1)
    label = grow_regions(len(cells), e, length * rng.lognormal(0, 0.4, len(e)), np.array(seeds),
                         rng.uniform(0, 800, len(seeds)))
    names = name_pool(rng, VILLAGE_PREFIX, VILLAGE_SUFFIX, len(seeds), tail="村")
    return {"label": label, "seeds": np.array(seeds), "town": np.array(vtown), "names": names}


def township_adjacency(town: np.ndarray, edges: np.ndarray) -> list[set[int]]:
    """Which townships share a border."""
    n = town.max() + 1
    adj: list[set[int]] = [set() for _ in range(n)]
    for a, b in np.unique(np.sort(town[edges], axis=1), axis=0):
        if a != b:
            adj[a].add(int(b))
            adj[b].add(int(a))
    return adj


def group_stations(rng: np.random.Generator, adj: list[set[int]], seed_xy: np.ndarray
                   ) -> np.ndarray:
    """Station index per township: 2-5 neighbouring townships per station, county seat first."""
    n = len(adj)
    k = max(1, min(n, round(n / 3.7)))
    heads = spread_sample(rng, seed_xy, k, first=0)
    group = np.full(n, -1)
    group[heads] = np.arange(k)
    while (group < 0).any():
        sizes = np.bincount(group[group >= 0], minlength=k)
        for g in np.argsort(sizes, kind="stable"):
            cand = sorted({t for m in np.flatnonzero(group == g) for t in adj[m] if group[t] < 0})
            if cand:
                d = ((seed_xy[cand] - seed_xy[heads[g]]) ** 2).sum(1)
                group[cand[int(np.argmin(d))]] = g
                break
        else:  # pragma: no cover - the township graph is connected
            raise RuntimeError("township adjacency graph is not connected")
    return group


# ---------------------------------------------------------------------------------------------
# 台区
# ---------------------------------------------------------------------------------------------

def place_transformers(rng: np.random.Generator, villages: list[shapely.Geometry],
                       centres: np.ndarray, vclass: list[str], n: int) -> dict:
    """Clustered 台区 points, households, capacities and status, in village order."""
    nv = len(villages)
    factor = np.array([{"城区": 3.5, "农村": 1.0, "特殊边远": 0.35}[c] for c in vclass])
    area = shapely.area(np.array(villages, dtype=object))
    w = rng.lognormal(0, 0.5, nv) * (area / area.mean()) ** 0.3 * factor
    base = 1 if n >= nv else 0
    counts = base + rng.multinomial(n - base * nv, w / w.sum())
    xy, vil = [], []
    for v in range(nv):
        xy.append(_points_in(rng, villages[v], centres[v], counts[v]))
        vil.extend([v] * counts[v])
    xy_arr = np.vstack(xy) if xy else np.zeros((0, 2))
    vil_arr = np.array(vil, dtype=int)
    urban = np.array([vclass[v] == "城区" for v in vil_arr], dtype=bool)
    hh = rng.lognormal(np.log(65), 0.6, len(vil_arr)) * np.where(urban, 1.6, 1.0)
    hh = np.clip(np.round(hh), 8, 600).astype(int)
    need = hh * rng.uniform(1.0, 2.4, len(hh))
    kva = KVA_SERIES[np.minimum(np.searchsorted(KVA_SERIES, need), len(KVA_SERIES) - 1)]
    status = rng.choice(np.array(["运行", "停运", "拆除"]), size=len(hh), p=[0.985, 0.01, 0.005])
    return {"xy": xy_arr, "village": vil_arr, "households": hh, "kva": kva, "status": status}


def _points_in(rng: np.random.Generator, poly: shapely.Geometry, centre: np.ndarray, k: int
               ) -> np.ndarray:
    """K points inside ``poly``: ~80% clustered around ``centre``, the rest scattered."""
    if k == 0:
        return np.zeros((0, 2))
    sigma = float(np.clip(0.35 * math.sqrt(poly.area / math.pi), 150, 1500))
    xmin, ymin, xmax, ymax = poly.bounds
    out = np.zeros((0, 2))
    shapely.prepare(poly)
    for attempt in range(60):
        m = 4 * (k - len(out)) + 8
        if attempt < 30:
            scatter = rng.random(m) < 0.2
            p = centre + rng.normal(0, sigma, (m, 2))
            p[scatter] = np.c_[rng.uniform(xmin, xmax, scatter.sum()),
                               rng.uniform(ymin, ymax, scatter.sum())]
        else:
            p = np.c_[rng.uniform(xmin, xmax, m), rng.uniform(ymin, ymax, m)]
        out = np.vstack([out, p[shapely.contains_xy(poly, p[:, 0], p[:, 1])]])
        if len(out) >= k:
            return out[:k]
    raise RuntimeError("could not place 台区 inside a village")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# 10 kV network
# ---------------------------------------------------------------------------------------------

def mst_edges(xy: np.ndarray) -> np.ndarray:
    """Edges (m, 2) of the Euclidean minimum spanning tree of ``xy`` (via Delaunay)."""
    n = len(xy)
    if n < 2:
        return np.zeros((0, 2), dtype=int)
    try:
        if n < 4:
            raise QhullError("too few points")
        ind, nbr = Delaunay(xy).vertex_neighbor_vertices
        pairs = np.c_[np.repeat(np.arange(n), np.diff(ind)), nbr]
        pairs = pairs[pairs[:, 0] < pairs[:, 1]]
    except QhullError:
        pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)])
    d = np.linalg.norm(xy[pairs[:, 0]] - xy[pairs[:, 1]], axis=1) + 1e-3
    g = sparse.csr_matrix((d, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    t = csgraph.minimum_spanning_tree(g).tocoo()
    e = np.c_[t.row, t.col]
    return e[np.lexsort((e[:, 1], e[:, 0]))]


def place_substations(rng: np.random.Generator, xy: np.ndarray, weight: np.ndarray, n_sub: int,
                      *, first: np.ndarray) -> np.ndarray:
    """Substation points at the load centres of ``n_sub`` areas (weighted Lloyd iterations).

    The first area starts at ``first`` (the county seat), so substation 0 is the seat's.
    """
    centre = xy[spread_sample(rng, xy, n_sub, first=int(np.argmin(((xy - first) ** 2).sum(1))))]
    for _ in range(15):
        lab = cKDTree(centre).query(xy)[1]
        for c in range(n_sub):
            m = lab == c
            if m.any():
                centre[c] = np.average(xy[m], axis=0, weights=weight[m])
    return centre + rng.normal(0, 800, centre.shape)


def split_feeders(xy: np.ndarray, sub: np.ndarray, k: int) -> np.ndarray:
    """Feeder index (0..k-1) per point: k angular sectors around ``sub``.

    The cut balances the points' share of line length (distance to the nearest other point), so
    feeders get similar lengths; the sectors start at the widest angular gap.
    """
    d = xy - sub
    ang = np.arctan2(d[:, 1], d[:, 0])
    share = cKDTree(xy).query(xy, k=2)[0][:, 1] + 100.0 if len(xy) > 1 else np.ones(len(xy))
    order = np.argsort(ang, kind="stable")
    gaps = np.diff(np.r_[ang[order], ang[order[0]] + 2 * np.pi])
    order = np.roll(order, -(int(np.argmax(gaps)) + 1))
    return _weighted_bins(order, share, k)


def _weighted_bins(order: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """Bin (0..k-1) per item: items taken in ``order``, cut into k runs of equal total weight."""
    cum = np.cumsum(weight[order]) - 0.5 * weight[order]
    bins = np.empty(len(order), dtype=int)
    bins[order] = np.minimum((cum / max(weight.sum(), 1e-9) * k).astype(int), k - 1)
    return bins


def build_feeders(rng: np.random.Generator, net: Network, tf_nodes: np.ndarray,
                  kva: np.ndarray, sub_nodes: np.ndarray, name_of: list[str]) -> np.ndarray:
    """Radial feeders from each substation over the given 台区 nodes; returns feeder per 台区."""
    xy = net.xy[tf_nodes]
    dsub = np.linalg.norm(xy[:, None, :] - net.xy[sub_nodes][None, :, :], axis=2)
    area = np.argmin(dsub, axis=1)
    feeder_of = np.full(len(tf_nodes), -1)
    for s, sub_node in enumerate(sub_nodes):
        idx = np.flatnonzero(area == s)
        if len(idx) == 0:
            continue
        e = mst_edges(xy[idx])
        total = np.linalg.norm(xy[idx][e[:, 0]] - xy[idx][e[:, 1]], axis=1).sum()
        k = max(2, math.ceil(total / FEEDER_TARGET_M), math.ceil(kva[idx].sum() / FEEDER_MAX_KVA))
        k = min(k, len(idx))
        part = split_feeders(xy[idx], net.xy[sub_node], k)
        for f in range(k):
            members = idx[part == f]
            if len(members) == 0:
                continue
            fid = len(net.feeder_sub)
            net.feeder_sub.append(s)
            feeder_of[members] = fid
            nodes = tf_nodes[members]
            for a, b in mst_edges(net.xy[nodes]):
                net.sections.append((int(nodes[a]), int(nodes[b]), fid))
            root = nodes[np.argmin(np.linalg.norm(net.xy[nodes] - net.xy[sub_node], axis=1))]
            net.sections.append((int(sub_node), int(root), fid))
            centre = net.xy[nodes].mean(0)
            net.feeder_name.append(name_of[members[np.argmin(
                np.linalg.norm(net.xy[nodes] - centre, axis=1))]])
    return feeder_of


def _rooted(net: Network, secs: list[int], root: int) -> tuple[dict[int, int], list[int]]:
    """Parent map and BFS order from ``root`` of the tree made of sections ``secs``."""
    adj: dict[int, list[int]] = {}
    for i in secs:
        a, b, _ = net.sections[i]
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    parent, order = {root: -1}, [root]
    for v in order:
        for w in sorted(adj.get(v, [])):
            if w not in parent:
                parent[w] = v
                order.append(w)
    return parent, order


def add_sectionalisers(rng: np.random.Generator, net: Network, sub_nodes: np.ndarray) -> None:
    """Normally-closed switches every 3-5 km along each trunk and at the head of big branches."""
    by_feeder: dict[int, list[int]] = {}
    for i, (_, _, f) in enumerate(net.sections):
        by_feeder.setdefault(f, []).append(i)
    new_xy: list[np.ndarray] = []
    for fid in range(len(net.feeder_sub)):
        root = int(sub_nodes[net.feeder_sub[fid]])
        parent, order = _rooted(net, by_feeder.get(fid, []), root)
        elen = {v: float(np.linalg.norm(net.xy[v] - net.xy[p])) for v, p in parent.items() if p >= 0}
        depth = {root: 0.0}
        for v in order[1:]:
            depth[v] = depth[parent[v]] + elen[v]
        sub_len = dict.fromkeys(order, 0.0)
        for v in reversed(order[1:]):
            sub_len[parent[v]] += sub_len[v] + elen[v]
        end = max(order, key=lambda v: (depth[v], -v))
        trunk = [end]
        while parent[trunk[-1]] >= 0:
            trunk.append(parent[trunk[-1]])
        trunk.reverse()
        on_trunk = set(trunk)
        cuts: list[int] = []
        run, gap = 0.0, rng.uniform(3000, 5000)
        for v in trunk[1:]:
            run += elen[v]
            if run >= gap:
                cuts.append(v)
                run, gap = 0.0, rng.uniform(3000, 5000)
        for v in order[1:]:
            if v not in on_trunk and parent[v] in on_trunk and sub_len[v] + elen[v] > 4000:
                cuts.append(v)
        sec_of = {frozenset(net.sections[i][:2]): i for i in by_feeder.get(fid, [])}
        for v in cuts:
            i = sec_of[frozenset((parent[v], v))]
            if net.sections[i][0] != parent[v]:
                a, b, f = net.sections[i]
                net.sections[i] = (b, a, f)
            pa, pb = net.xy[parent[v]], net.xy[v]
            at = min(30.0, 0.3 * elen[v]) / max(elen[v], 1e-9)
            s = len(net.xy) + len(new_xy)
            new_xy.append(pa + (pb - pa) * at)
            net.sections[i] = (parent[v], s, fid)
            net.sections.append((s, v, fid))
            net.switches.append((s, False, fid))
    if new_xy:
        net.xy = np.vstack([net.xy, np.array(new_xy)])


def add_ties(net: Network, sub_nodes: np.ndarray, *, max_m: float = 2500.0) -> None:
    """Normally-open tie switches on short tie lines between ends of neighbouring feeders."""
    deg: dict[int, int] = {}
    owner: dict[int, int] = {}
    for a, b, f in net.sections:
        deg[a] = deg.get(a, 0) + 1
        deg[b] = deg.get(b, 0) + 1
        owner.setdefault(a, f)
        owner.setdefault(b, f)
    subs = {int(s) for s in sub_nodes}
    leaves = np.array(sorted(v for v, d in deg.items() if d == 1 and v not in subs))
    if len(leaves) < 2:
        return
    tree = cKDTree(net.xy[leaves])
    pairs = tree.query_pairs(max_m, output_type="ndarray")
    fa = np.array([owner[int(v)] for v in leaves[pairs[:, 0]]]) if len(pairs) else np.zeros(0)
    fb = np.array([owner[int(v)] for v in leaves[pairs[:, 1]]]) if len(pairs) else np.zeros(0)
    pairs = pairs[fa != fb]
    d = np.linalg.norm(net.xy[leaves[pairs[:, 0]]] - net.xy[leaves[pairs[:, 1]]], axis=1)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0], d))]
    want = max(1, round(len(net.feeder_sub) * 0.3))
    used: set[int] = set()
    for i, j in pairs:
        a, b = int(leaves[i]), int(leaves[j])
        if owner[a] in used or owner[b] in used:
            continue
        m = net.add_node((net.xy[a] + net.xy[b]) / 2)
        net.sections.append((a, m, owner[a]))
        net.sections.append((m, b, owner[b]))
        net.switches.append((m, True, owner[a]))
        used.update((owner[a], owner[b]))
        if len(used) >= 2 * want:
            break


# ---------------------------------------------------------------------------------------------
# the county
# ---------------------------------------------------------------------------------------------

def local_crs(lon: float, lat: float) -> CRS:
    """Transverse Mercator centred on the county (metres)."""
    return CRS.from_proj4(f"+proj=tmerc +lat_0={lat} +lon_0={lon} +k=1 +x_0=0 +y_0=0 "
                          "+ellps=GRS80 +units=m +no_defs")


def generate(spec: CountySpec) -> dict:
    """Build every layer of one county (metric coordinates, to be written by :func:`write`)."""
    rng = np.random.default_rng(spec.seed)
    scale = math.sqrt(spec.townships / 15)
    outline = make_outline(rng, scale=scale)
    cells, centres, edges = make_cells(rng, outline, CELLS_PER_TOWNSHIP * spec.townships)
    town = make_townships(rng, cells, centres, edges, spec.townships)
    vil = make_villages(rng, cells, centres, edges, town["label"])
    tpoly = [shapely.coverage_union_all(cells[town["label"] == t]) for t in range(spec.townships)]
    vpoly = [shapely.coverage_union_all(cells[vil["label"] == v]) for v in range(len(vil["seeds"]))]
    adj = township_adjacency(town["label"], edges)
    seed_xy = centres[town["seeds"]]
    group = group_stations(rng, adj, seed_xy)
    n_st = group.max() + 1
    station_xy = seed_xy[[int(np.flatnonzero(group == g)[0]) for g in range(n_st)]]
    vclass = [town["area_class"][t] for t in vil["town"]]
    tf = place_transformers(rng, vpoly, centres[vil["seeds"]], vclass, spec.transformers)
    n_sub = max(2 if spec.townships < 10 else 3, round(spec.transformers / 1100))
    sub_xy = place_substations(rng, tf["xy"], tf["kva"].astype(float),
                               min(n_sub, len(tf["xy"])), first=station_xy[0])
    sub_xy = np.array([_inside(rng, outline, p) for p in sub_xy])
    n_tf = len(tf["xy"])
    net = Network(xy=np.vstack([tf["xy"], sub_xy]))
    sub_nodes = np.arange(n_tf, n_tf + n_sub)
    wired = np.flatnonzero(tf["status"] != "拆除")
    stems = [vil["names"][v][:-1] for v in tf["village"][wired]]
    feeder_of = np.full(n_tf, -1)
    feeder_of[wired] = build_feeders(rng, net, wired, tf["kva"][wired], sub_nodes, stems)
    add_sectionalisers(rng, net, sub_nodes)
    add_ties(net, sub_nodes)
    return {"spec": spec, "outline": outline, "town": town, "vil": vil, "tpoly": tpoly,
            "vpoly": vpoly, "group": group, "station_xy": station_xy, "tf": tf, "net": net,
            "sub_nodes": sub_nodes, "feeder_of": feeder_of, "rng": rng}


def _inside(rng: np.random.Generator, poly: shapely.Polygon, p: np.ndarray) -> np.ndarray:
    q = p.copy()
    while not shapely.contains_xy(poly, q[0], q[1]):
        q = p * rng.uniform(0.5, 0.95)
    return q


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------

def _r(v: float) -> float:
    return round(float(v), 6)


def _coords(g: shapely.Geometry) -> list:
    if isinstance(g, shapely.Polygon):
        return [[[_r(x), _r(y)] for x, y in ring.coords] for ring in [g.exterior, *g.interiors]]
    if isinstance(g, shapely.MultiPolygon):
        return [_coords(p) for p in g.geoms]
    if isinstance(g, shapely.LineString):
        return [[_r(x), _r(y)] for x, y in g.coords]
    if isinstance(g, shapely.MultiLineString):
        return [_coords(p) for p in g.geoms]
    return [_r(g.x), _r(g.y)]


def geojson_text(name: str, rows: list[dict], geoms: list[shapely.Geometry]) -> str:
    """A compact RFC 7946 FeatureCollection, one feature per line (deterministic)."""
    lines = [f'{{"type":"FeatureCollection","name":{json.dumps(name)},"features":[']
    feats = []
    for props, g in zip(rows, geoms):
        feat = {"type": "Feature", "properties": props,
                "geometry": {"type": g.geom_type, "coordinates": _coords(g)}}
        feats.append(json.dumps(feat, ensure_ascii=False, separators=(",", ":")))
    lines.append(",\n".join(feats))
    lines.append("]}\n")
    return "\n".join(lines)


def csv_text(header: list[str], rows: list[list]) -> str:
    """CSV as Chinese Excel exports it: UTF-8 with BOM, CRLF line ends."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return "\ufeff" + buf.getvalue()


def to_wgs84(g: shapely.Geometry | np.ndarray, tr: Transformer):
    """Transform metric geometry (or an (n, 2) array) to lon/lat rounded to 6 decimals."""
    if isinstance(g, np.ndarray):
        lon, lat = tr.transform(g[:, 0], g[:, 1])
        return np.round(np.c_[lon, lat], 6)
    out = shapely.transform(g, lambda c: np.c_[tr.transform(c[:, 0], c[:, 1])])
    out = shapely.set_precision(out, 1e-6, mode="pointwise")
    if not shapely.is_valid(out):
        out = shapely.set_precision(out, 1e-6)
    return out


def render(county: dict, *, feeder_rows: str = "feeder") -> dict[str, str]:
    """Every output file's text, by file name."""
    spec: CountySpec = county["spec"]
    rng: np.random.Generator = county["rng"]
    tr = Transformer.from_crs(local_crs(spec.lon, spec.lat), 4326, always_xy=True)
    town, vil, tf, net = county["town"], county["vil"], county["tf"], county["net"]
    group = county["group"]
    n_t = len(county["tpoly"])
    tid = [f"T{t + 1:02d}" for t in range(n_t)]
    sid = [f"S{g + 1:02d}" for g in range(group.max() + 1)]
    files: dict[str, str] = {}

    files["townships.geojson"] = geojson_text(
        "townships",
        [{"township_id": tid[t], "name": town["names"][t], "station_id": sid[group[t]],
          "area_class": town["area_class"][t]} for t in range(n_t)],
        [to_wgs84(p, tr) for p in county["tpoly"]])

    sizes = np.bincount(group)
    main = [int(np.flatnonzero(group == g)[0]) for g in range(len(sid))]
    st_names = [_short(town["names"][t]) + "供电所" for t in main]
    st_kind = ["中心供电所" if g == int(np.argmax(sizes)) else "供电所" for g in range(len(sid))]
    st_pts = to_wgs84(county["station_xy"], tr)
    files["stations.geojson"] = geojson_text(
        "stations",
        # duty phones (值班电话): obviously fictitious numbers
        [{"station_id": sid[g], "name": st_names[g], "phone": f"000-0000-01{g + 1:02d}",
          "kind": st_kind[g]} for g in range(len(sid))],
        [shapely.Point(p) for p in st_pts])

    files["villages.geojson"] = geojson_text(
        "villages",
        [{"village_id": f"V{v + 1:03d}", "name": vil["names"][v], "township_id": tid[vil["town"][v]]}
         for v in range(len(vil["names"]))],
        [to_wgs84(p, tr) for p in county["vpoly"]])

    node_ll = to_wgs84(net.xy, tr)
    node_ll = _unique_nodes(node_ll)
    fids = [f"F{f + 1:03d}" for f in range(len(net.feeder_sub))]
    counter: dict[int, int] = {}
    rows = []
    for i in range(len(tf["xy"])):
        v = int(tf["village"][i])
        counter[v] = counter.get(v, 0) + 1
        f = county["feeder_of"][i]
        rows.append([f"TQ{i + 1:06d}", f"{vil['names'][v]}{counter[v]}号台区",
                     f"{node_ll[i, 0]:.6f}", f"{node_ll[i, 1]:.6f}", int(tf["kva"][i]),
                     int(tf["households"][i]), fids[f] if f >= 0 else "", tf["status"][i],
                     vil["names"][v]])
    files["transformers.csv"] = csv_text(
        ["台区编号", "台区名称", "经度", "纬度", "容量(kVA)", "户数", "所属线路", "运行状态", "村"], rows)

    sub_nodes = county["sub_nodes"]
    sub_ids = [f"B{s + 1}" for s in range(len(sub_nodes))]
    sub_town = [_town_of(county["tpoly"], net.xy[n]) for n in sub_nodes]
    sub_names = [("110kV" if s == 0 else "35kV") + _short(town["names"][t]) + "变"
                 for s, t in enumerate(sub_town)]
    sub_names = _dedupe(sub_names, "变")
    files["substations.geojson"] = geojson_text(
        "substations",
        [{"substation_id": sub_ids[s], "name": sub_names[s]} for s in range(len(sub_nodes))],
        [shapely.Point(node_ll[n]) for n in sub_nodes])

    fnames = _dedupe([f"10kV{n}线" for n in net.feeder_name], "线")
    order = sorted(range(len(net.sections)), key=lambda i: (net.sections[i][2], i))
    lines = [shapely.LineString(node_ll[[net.sections[i][0], net.sections[i][1]]]) for i in order]
    owner = [net.sections[i][2] for i in order]
    if feeder_rows == "feeder":  # one MultiLineString per feeder, chains merged at pass-through nodes
        by_f: dict[int, list[shapely.LineString]] = {}
        for f, line in zip(owner, lines):
            by_f.setdefault(f, []).append(line)
        owner = sorted(by_f)
        lines = [shapely.MultiLineString(list(shapely.get_parts(
            shapely.line_merge(shapely.MultiLineString(by_f[f]))))) for f in owner]
    files["feeders.geojson"] = geojson_text(
        "feeders",
        [{"feeder_id": fids[f], "name": fnames[f], "substation_id": sub_ids[net.feeder_sub[f]]}
         for f in owner], lines)

    sw = sorted(net.switches, key=lambda s: (s[2], s[1], s[0]))
    files["switches.geojson"] = geojson_text(
        "switches",
        [{"switch_id": f"K{i + 1:04d}", "normally_open": bool(o), "feeder_id": fids[f]}
         for i, (_, o, f) in enumerate(sw)],
        [shapely.Point(node_ll[n]) for n, _, _ in sw])

    files["managers.csv"] = _managers_csv(rng, county, sid, tr)
    files["gridplan.toml"] = GRIDPLAN_TOML.replace("__NAME__", spec.name)
    return files


def _short(name: str) -> str:
    return name[:-1] if name[-1] in "镇乡" else name


def _dedupe(names: list[str], tail: str) -> list[str]:
    """Make names unique the Chinese way: 10kV李庄线, 10kV李庄二线, ..."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        k = seen[n]
        if k > 1:
            stem = n[: -len(tail)]
            n = f"{stem}{ORDINALS[k - 1] if k <= 10 else k}{tail}"
        out.append(n)
    return out


def _town_of(tpoly: list[shapely.Geometry], p: np.ndarray) -> int:
    d = [shapely.distance(t, shapely.Point(p)) for t in tpoly]
    return int(np.argmin(d))


def _unique_nodes(ll: np.ndarray) -> np.ndarray:
    """Nudge nodes that collide after rounding so every line section has a length."""
    ll = ll.copy()
    _, first, inv = np.unique(ll, axis=0, return_index=True, return_inverse=True)
    inv = inv.ravel()
    dup = np.flatnonzero(first[inv] != np.arange(len(ll)))
    for k, i in enumerate(dup):
        ll[i, 0] = round(ll[i, 0] + 2e-6 * (k + 1), 6)
    return ll


def _managers_csv(rng: np.random.Generator, county: dict, sid: list[str], tr: Transformer) -> str:
    group, tf = county["group"], county["tf"]
    t_of_v = county["vil"]["town"]
    active = tf["status"] == "运行"
    st_of_tf = group[t_of_v[tf["village"]]]
    rows = []
    k = 0
    for g in range(len(sid)):
        hh = int(tf["households"][active & (st_of_tf == g)].sum())
        # Roughly one manager per grid of the default capacity (1,500 households), a few spare.
        home = county["station_xy"][g] + rng.normal(0, 2500, (max(1, round(hh / 1350)), 2))
        home = np.array([_inside(rng, county["outline"], p) for p in home])
        for p in to_wgs84(home, tr):
            k += 1
            name = FAKE_PREFIX[k % len(FAKE_PREFIX)] + SURNAMES[(k * 7) % len(SURNAMES)] + \
                GIVEN[k % len(GIVEN)]
            rows.append([f"M{k:04d}", name, f"138-0000-{k:04d}", sid[g], f"{p[0]:.6f}",
                         f"{p[1]:.6f}", int(rng.choice([1500, 1600, 1800]))])
    return csv_text(["工号", "姓名", "电话", "供电所", "经度", "纬度", "最大工作量"], rows)


GRIDPLAN_TOML = """\
# Parameters of the SYNTHETIC sample county (scripts/make_sample_county.py).
[input]
county_name = "__NAME__"
coords = "wgs84"

[plan]
workload = "customers"
capacity = 1500
tolerance = 0.05
scope = "township"
seed = 0

[hv]
segment_cap_km = 12
segment_cut = "switches"
"""


def write_atomic(out: Path, files_by_dir: dict[str, dict[str, str]]) -> None:
    """Write ``{subdir: {name: text}}`` under a temp folder beside ``out``, then swap it in."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for sub, files in files_by_dir.items():
            d = tmp / sub if sub else tmp
            d.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (d / name).write_bytes(text.encode("utf-8"))
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{tmp.name[-8:]}"
            out.rename(old)
        tmp.chmod(0o755)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def make_county(spec: CountySpec, *, feeder_rows: str = "feeder") -> dict[str, str]:
    """Generate one county and return its files' text by name.

    ``feeder_rows``: ``"feeder"`` writes one MultiLineString per feeder, ``"section"`` one
    two-point LineString per line section (both carry ``feeder_id``, ``name``, ``substation_id``).
    """
    t0 = time.perf_counter()
    county = generate(spec)
    files = render(county, feeder_rows=feeder_rows)
    log.info("county seed=%d: %d townships, %d villages, %d 台区, %d feeders, %d sections, "
             "%d switches in %.1f s", spec.seed, len(county["tpoly"]), len(county["vpoly"]),
             len(county["tf"]["xy"]), len(county["net"].feeder_sub), len(county["net"].sections),
             len(county["net"].switches), time.perf_counter() - t0)
    return files


def province_specs(*, counties: int, seed: int, townships: int | None, transformers: int
                   ) -> list[CountySpec]:
    """K counties at different places of a Henan-like grid, each with its own seed."""
    rng = np.random.default_rng(seed)
    max_town = townships or 20
    # an outline spans at most 2 x 25 km x 1.35 x sqrt(townships / 15): spots never overlap
    span_lon = 0.80 * math.sqrt(max_town / 15)
    span_lat = 0.72 * math.sqrt(max_town / 15)
    # a grid over Henan (about 111.0-116.5 E, 31.6-36.2 N), extended north if K needs more room
    cols = max(1, int(5.5 / span_lon))
    rows = max(int(4.6 / span_lat), math.ceil(counties / cols))
    spots = rng.permutation(cols * rows)[:counties]
    specs = []
    for i, s in enumerate(spots):
        r, c = divmod(int(s), cols)
        specs.append(CountySpec(
            seed=seed * 1000 + i + 1,
            lon=round(111.0 + (c + 0.5) * span_lon + rng.uniform(-0.02, 0.02), 4),
            lat=round(31.6 + (r + 0.5) * span_lat + rng.uniform(-0.02, 0.02), 4),
            townships=townships or int(rng.integers(10, 21)),
            transformers=max(50, round(transformers * rng.uniform(0.6, 1.5))),
            name=f"示例{i + 1:03d}县（虚构）"))
    return specs


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("geodata/sample"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--transformers", type=int, default=3000, help="number of 台区")
    ap.add_argument("--townships", type=int, default=None, help="number of townships (15)")
    ap.add_argument("--counties", type=int, default=None,
                    help="write a province: K folders OUT/county_001 ...")
    ap.add_argument("--lon", type=float, default=DEFAULT_CENTRE[0])
    ap.add_argument("--lat", type=float, default=DEFAULT_CENTRE[1])
    ap.add_argument("--feeder-rows", choices=["feeder", "section"], default="feeder",
                    help="feeders.geojson: one MultiLineString per feeder (default) or one "
                         "LineString per line section")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s")
    if args.townships is not None and args.townships < 2:
        ap.error("--townships must be >= 2")
    if args.transformers < 1:
        ap.error("--transformers must be >= 1")
    if args.counties:
        specs = province_specs(counties=args.counties, seed=args.seed, townships=args.townships,
                               transformers=args.transformers)
        files = {f"county_{i + 1:03d}": make_county(s, feeder_rows=args.feeder_rows)
                 for i, s in enumerate(specs)}
    else:
        spec = CountySpec(seed=args.seed, lon=args.lon, lat=args.lat,
                          townships=args.townships or 15, transformers=args.transformers)
        files = {"": make_county(spec, feeder_rows=args.feeder_rows)}
    write_atomic(args.out, files)
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
