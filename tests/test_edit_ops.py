"""gridplan.edit.ops on the sample county: reassign, lock, rebalance, refusals, undo (library API)."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

import gridplan
from gridplan.edit import ops
from gridplan.edit.session import History
from gridplan.metrics.kpi import balance_stats

SAMPLE = Path(__file__).resolve().parents[1] / "geodata" / "sample"
pytestmark = pytest.mark.skipif(not (SAMPLE / "transformers.csv").exists(), reason="geodata/sample not present")


@pytest.fixture(scope="module")
def base():
    p = gridplan.plan(gridplan.load_county(SAMPLE))
    return p, ops.EditContext.build(p)


def _boundary_move(p, ctx, *, offset: int = 0):
    """A 台区 on the border of its grid and the manager of the neighbouring grid (same township)."""
    gid = p.transformers["grid_id"].astype(str).to_numpy()
    man = p.transformers["manager_id"].astype(str).to_numpy()
    found = 0
    for i in range(len(gid)):
        for j in ctx.adjacency[i].indices:
            if gid[j] != gid[i] and ctx.township[j] == ctx.township[i] and (gid == gid[i]).sum() > 3:
                if found == offset:
                    return i, str(man[j]), str(gid[j])
                found += 1
                break
    raise AssertionError("no boundary 台区")


def _snapshot(p):
    return (p.transformers.copy(deep=True), p.grids.copy(deep=True), p.managers.copy(deep=True),
            copy.deepcopy(p.kpi))


def _same(p, snap):
    tr, gr, mg, kpi = snap
    pd.testing.assert_frame_equal(p.transformers, tr)
    pd.testing.assert_frame_equal(p.grids, gr)
    pd.testing.assert_frame_equal(p.managers, mg)
    assert p.kpi == kpi


def _check_tiling(p, township_id, tol: float = 1.0):
    town = p.county.townships.set_index("township_id").geometry.loc[township_id]
    g = p.grids[p.grids["township_id"] == township_id]
    assert abs(float(g.geometry.area.sum()) - town.area) < tol  # no overlap, no gap (m²)
    assert shapely.union_all(g.geometry.values).symmetric_difference(town).area < tol


def _check_stats(p):
    """Every grid's numbers equal an independent count of its 台区."""
    tr = p.transformers
    agg = tr.groupby("grid_id").agg(w=("workload", "sum"), c=("customers", "sum"), n=("transformer_id", "size"),
                                    m=("manager_id", "first"), k=("manager_id", "nunique"))
    g = p.grids.set_index("grid_id").loc[agg.index]
    assert (agg["k"] == 1).all()
    np.testing.assert_allclose(g["workload"].to_numpy(float), agg["w"].to_numpy(float))
    assert (g["customers"].to_numpy() == agg["c"].to_numpy()).all()
    assert (g["n_transformers"].to_numpy() == agg["n"].to_numpy()).all()
    assert (g["manager_id"].astype(str).to_numpy() == agg["m"].astype(str).to_numpy()).all()
    assert set(p.grids["grid_id"]) == set(agg.index)
    real = p.grids[p.grids["n_transformers"] > 0]
    assert p.kpi["county"]["cv"] == balance_stats(real["workload"].to_numpy())["cv"]
    assert p.kpi["county"]["grids"] == len(p.grids)


def test_reassign_moves_only_the_selection_and_keeps_the_input(base):
    p, ctx = base
    before = _snapshot(p)
    i, mid, target = _boundary_move(p, ctx)
    tid = ctx.ids[i]
    q = ops.reassign(p, [tid], mid, context=ctx)
    _same(p, before)  # the input plan is never mutated
    a = p.transformers.set_index("transformer_id")
    b = q.transformers.set_index("transformer_id")
    changed = a.index[(a["manager_id"] != b["manager_id"]).to_numpy()]
    assert list(changed) == [tid]
    assert b.loc[tid, "grid_id"] == target and b.loc[tid, "manager_id"] == mid
    _check_stats(q)
    _check_tiling(q, ctx.township[i])
    api = ops.api_kpi(q, ctx)
    assert api["moved_transformers"] == 1 and api["moved_households"] == int(a.loc[tid, "customers"])
    cells = q.grids.set_index("grid_id").geometry
    assert cells.loc[target].contains(shapely.Point(ctx.xy[i]))
    # unchanged grids share their rows with the input plan
    changed_grids, removed = ops.changed_grids(p, q)
    assert set(changed_grids) == {target, str(a.loc[tid, "grid_id"])} and removed == []


def test_reassign_refusals(base):
    p, ctx = base
    tr = p.transformers
    i, mid, _ = _boundary_move(p, ctx)
    tid = ctx.ids[i]
    with pytest.raises(ops.EditRefused) as e:
        ops.reassign(p, [tid, "NO-SUCH"], mid, context=ctx)
    assert e.value.status == 404 and e.value.code == "unknown_transformer" and e.value.items == ["NO-SUCH"]
    with pytest.raises(ops.EditRefused) as e:
        ops.reassign(p, [tid], "NOBODY", context=ctx)
    assert e.value.status == 404 and e.value.code == "unknown_manager"
    with pytest.raises(ops.EditRefused) as e:
        ops.reassign(p, [], mid, context=ctx)
    assert e.value.status == 400
    # another township of the same station: refused with the reason (scope township)
    st, town = ctx.station[i], ctx.township[i]
    other = np.flatnonzero((ctx.station == st) & (ctx.township != town))
    assert len(other)
    with pytest.raises(ops.EditRefused) as e:
        ops.reassign(p, [ctx.ids[other[0]]], mid, context=ctx)
    assert e.value.code == "cross_township" and "跨乡镇" in e.value.message and e.value.status == 409
    assert ctx.ids[other[0]] in e.value.message
    # another station
    far = np.flatnonzero(ctx.station != st)[0]
    with pytest.raises(ops.EditRefused) as e:
        ops.reassign(p, [ctx.ids[far]], mid, context=ctx)
    assert e.value.code == "cross_station" and "供电所" in e.value.message
    # already with that manager
    own = str(tr["manager_id"].iloc[i])
    with pytest.raises(ops.EditRefused) as e:
        ops.reassign(p, [tid], own, context=ctx)
    assert e.value.code == "no_change"


def test_locked_grids_refuse_edits(base):
    p, ctx = base
    i, mid, target = _boundary_move(p, ctx)
    src = str(p.transformers["grid_id"].iloc[i])
    locked = ops.lock(p, [src])
    assert "locked" not in p.grids.columns or not p.grids["locked"].any()
    with pytest.raises(ops.EditRefused) as e:
        ops.reassign(locked, [ctx.ids[i]], mid, context=ctx)
    assert e.value.code == "locked" and src in e.value.message
    locked_target = ops.lock(p, [target])
    with pytest.raises(ops.EditRefused) as e:
        ops.reassign(locked_target, [ctx.ids[i]], mid, context=ctx)
    assert e.value.code == "locked"
    unlocked = ops.lock(locked, [src], locked=False)
    assert not unlocked.grids["locked"].any()
    with pytest.raises(ops.EditRefused) as e:
        ops.lock(p, ["NO-GRID"])
    assert e.value.status == 404 and e.value.code == "unknown_grid"


def test_emptied_grid_is_removed_and_its_id_never_reused(base):
    p, ctx = base
    gid = p.transformers["grid_id"].astype(str).to_numpy()
    # the smallest grid whose 台区 can all join one neighbouring grid
    sizes = pd.Series(gid).value_counts().sort_values()
    for g in sizes.index:
        rows = np.flatnonzero(gid == g)
        nb = {gid[j] for r in rows for j in ctx.adjacency[r].indices if gid[j] != g
              and ctx.township[j] == ctx.township[r]}
        if nb:
            break
    other = min(nb)
    mgr = str(p.grids.set_index("grid_id").loc[other, "manager_id"])
    old_mgr = str(p.grids.set_index("grid_id").loc[g, "manager_id"])
    q = ops.reassign(p, list(ctx.ids[rows]), mgr, context=ctx)
    assert g not in set(q.grids["grid_id"])
    _check_stats(q)
    _check_tiling(q, ctx.township[rows[0]])
    m = q.managers.set_index("manager_id")
    if old_mgr in m.index:  # a roster manager stays, without a grid
        assert pd.isna(m.loc[old_mgr, "grid_id"]) or m.loc[old_mgr, "grid_id"] is None
        # giving them 台区 again makes a new grid with a new id, never the removed one
        r = ops.reassign(q, [ctx.ids[rows[0]]], old_mgr, context=ctx)
        new_id = str(r.transformers["grid_id"].iloc[rows[0]])
        assert new_id != g and new_id not in set(p.grids["grid_id"])
        key, nn = new_id.rsplit("-", 1)
        assert int(nn) > max(int(x.rsplit("-", 1)[1]) for x in p.grids["grid_id"] if x.rsplit("-", 1)[0] == key)
        assert r.grid_numbers[key] == int(nn)
        _check_stats(r)


def test_undo_restores_the_exact_previous_state(base):
    p, ctx = base
    h = History.start(p)
    snap = _snapshot(p)
    i, mid, _ = _boundary_move(p, ctx)
    q = ops.reassign(p, [ctx.ids[i]], mid, context=ctx)
    h.push(q, {"op": "reassign"}, frozenset({ctx.ids[i]}))
    q2 = ops.lock(q, [str(q.grids["grid_id"].iloc[0])])
    h.push(q2, {"op": "lock"}, frozenset())
    h.undo()
    h.undo()
    _same(h.current.plan, snap)
    h.redo()
    pd.testing.assert_frame_equal(h.current.plan.transformers, q.transformers)
    pd.testing.assert_frame_equal(h.current.plan.grids, q.grids)


def test_rebalance_holds_locks_and_edits_and_stays_in_its_area(base):
    p, ctx = base
    i, mid, target = _boundary_move(p, ctx)
    tid = ctx.ids[i]
    q = ops.reassign(p, [tid], mid, context=ctx)  # the planner's edit (may push a grid over balance)
    town = ctx.township[i]
    grids_in = q.grids[q.grids["township_id"] == town]
    keep = next(g for g in grids_in["grid_id"] if g != target)
    q = ops.lock(q, [keep])
    before = q.transformers.copy()
    locked_geom = q.grids.set_index("grid_id").geometry.loc[keep]
    res = ops.rebalance(q, township_id=town, edited=[tid], context=ctx)
    r = res.plan
    tr = r.transformers
    # the edit is held
    assert tr.set_index("transformer_id").loc[tid, "manager_id"] == mid
    # the locked grid is untouched: same 台区, same manager, same polygon
    a = before[before["grid_id"] == keep]
    b = tr[tr["grid_id"] == keep]
    assert set(a["transformer_id"]) == set(b["transformer_id"])
    assert set(b["manager_id"]) == set(a["manager_id"])
    assert r.grids.set_index("grid_id").geometry.loc[keep].equals(locked_geom)
    # nothing outside the township moves
    outside = ctx.township != town
    assert (before["manager_id"].to_numpy()[outside] == tr["manager_id"].to_numpy()[outside]).all()
    assert set(res.changes["transformer_id"]) <= set(ctx.ids[~outside])
    _check_stats(r)
    _check_tiling(r, town)
    with pytest.raises(ops.EditRefused) as e:
        ops.rebalance(q, township_id="NO-TOWN", context=ctx)
    assert e.value.status == 404
    with pytest.raises(ops.EditRefused) as e:
        ops.rebalance(q, context=ctx)
    assert e.value.status == 400


def test_rebalance_of_a_station_goes_through_the_planner(base):
    p, ctx = base
    st = ctx.station[0]
    res = ops.rebalance(p, station_id=st, context=ctx)
    assert res.area == ("station", st)
    tr = res.plan.transformers
    assert (tr["manager_id"].to_numpy()[ctx.station != st] == p.transformers["manager_id"].to_numpy()[ctx.station != st]).all()
    _check_stats(res.plan)


def _overloading_edit(p, ctx, n_move: int = 15):
    """The planner lassoes ``n_move`` 台区 of a neighbouring grid into one grid (over capacity).

    Returns (receiving grid, its manager, the moved rows, the grid they came from).
    """
    gid = p.transformers["grid_id"].astype(str).to_numpy()
    man = p.transformers["manager_id"].astype(str).to_numpy()
    sizes = pd.Series(gid).value_counts()
    for b in sorted(sizes.index):
        rb = np.flatnonzero(gid == b)
        a = ctx.main_neighbour(gid, b)
        if a is None:
            continue
        if sizes[a] < n_move + 3:
            continue
        ra = np.flatnonzero(gid == a)
        near = ra[np.argsort(np.hypot(*(ctx.xy[ra] - ctx.xy[rb].mean(0)).T), kind="stable")][:n_move]
        extra = float(ctx.workload[near].sum())
        if float(ctx.workload[rb].sum()) + extra > p.params.capacity and extra < 1.2 * p.params.capacity:
            return b, str(man[rb[0]]), near, a
    raise AssertionError("no grid with a big enough neighbour")


def test_rebalance_after_an_overloading_edit_moves_few_and_balances(base):
    """自动平衡 right after an edit that overloads a grid (issue 13): balanced, locks and pins kept,
    and the change is of the size of the overload, not a re-plan of the station."""
    p, ctx = base
    b, mid, rows, a = _overloading_edit(p, ctx)
    moved_ids = [str(t) for t in ctx.ids[rows]]
    q = ops.reassign(p, moved_ids, mid, context=ctx)
    cap = float(q.params.capacity)
    grids = q.grids.set_index("grid_id")
    assert grids.loc[b, "workload"] > cap  # the edit overloads b
    station = str(grids.loc[b, "station_id"])
    town = str(grids.loc[b, "township_id"])
    # lock a grid of the township that touches neither a nor b
    gid = q.transformers["grid_id"].astype(str).to_numpy()
    near = {gid[j] for i in np.flatnonzero(np.isin(gid, [a, b])) for j in ctx.adjacency[i].indices}
    keep = min(set(grids.index[(grids["township_id"] == town)]) - near - {a, b})
    q = ops.lock(q, [keep])
    before = q.transformers.copy()
    res = ops.rebalance(q, station_id=station, edited=moved_ids, context=ctx)
    r = res.plan
    tr = r.transformers.set_index("transformer_id")
    # the planner's edits are held
    assert (tr.loc[moved_ids, "manager_id"] == mid).all()
    # the locked grid keeps its 台区 and manager
    assert set(before.loc[before["grid_id"] == keep, "transformer_id"]) == \
        set(r.transformers.loc[r.transformers["grid_id"] == keep, "transformer_id"])
    assert set(tr.loc[tr["grid_id"] == keep, "manager_id"]) == set(before.loc[before["grid_id"] == keep, "manager_id"])
    # balanced: no grid of the station over capacity, all contiguous, no grid added
    g = r.grids[r.grids["station_id"] == station]
    assert (g["workload"] <= cap + 1e-9).all(), g.loc[g["workload"] > cap, ["grid_id", "workload"]]
    assert g["contiguous"].all()
    assert len(g) == int((q.grids["station_id"] == station).sum())
    # few moves: the excess of b over the township's mean grid workload, in 台区 of median
    # workload, must leave b, each passed along a short chain of neighbouring grids (a hop moves
    # one 台区); before the bounded chains this re-planned the station (about 10 × need)
    tw = q.grids[q.grids["township_id"] == town]
    excess = float(grids.loc[b, "workload"]) - float(tw["workload"].mean())
    unit = float(np.median(ctx.workload[ctx.township == town]))
    need = math.ceil(excess / unit)
    assert 0 < len(res.changes) <= 4 * need, (len(res.changes), need)
    # nothing outside the station moves
    out = ctx.station != station
    assert (before["manager_id"].to_numpy()[out] == r.transformers["manager_id"].to_numpy()[out]).all()
    _check_stats(r)
    # a few dozen cells re-dissolved at 1 mm precision: the tiling holds to ~1 m² of a 150 km² township
    _check_tiling(r, town, tol=2.0)


def test_over_capacity_count_and_row_flags_use_each_grid_s_capacity(base):
    """The KPI header's count and each panel row's 超载 flag follow one rule: the manager's
    max_workload when the roster gives one, else the county capacity (checked from the ledger)."""
    from gridplan.edit import views

    p, ctx = base
    cap = float(p.params.capacity)
    load = p.transformers.groupby("manager_id")["workload"].sum()
    m = p.managers.copy()
    ids = m["manager_id"].astype(str)
    lv = m[(m["role"].astype(str) != "hv") & ids.isin(load.index)]["manager_id"].astype(str).tolist()
    tight, loose = lv[:5], lv[5:8]
    mx = pd.to_numeric(m["max_workload"], errors="coerce").to_numpy(dtype=float, copy=True)
    mx[ids.isin(tight).to_numpy()] = [load[t] - 1.0 for t in ids[ids.isin(tight)]]  # below their load
    mx[ids.isin(loose).to_numpy()] = np.nan  # no max: the county capacity applies
    m["max_workload"] = mx
    q = dataclasses.replace(p, managers=m)
    # an independent count from the ledger: workload per manager against that manager's limit
    limit = {str(a): (float(b) if np.isfinite(b) and b > 0 else cap) for a, b in zip(m["manager_id"], mx)}
    expect = sorted(str(g) for g, man, w in zip(
        q.grids["grid_id"], q.grids["manager_id"].astype(str),
        q.transformers.groupby("grid_id")["workload"].sum().reindex(q.grids["grid_id"]).to_numpy())
        if w > limit.get(man, cap) + 1e-9)
    assert set(tight) <= {str(x) for x in q.grids.loc[q.grids["grid_id"].isin(expect), "manager_id"]}
    feats = views.grid_features(q, ctx)["features"]
    flagged = sorted(f["properties"]["grid_id"] for f in feats if f["properties"]["over_capacity"])
    assert flagged == expect
    assert ops.api_kpi(q, ctx)["over_capacity"] == len(expect)
    for f in feats:
        pr = f["properties"]
        assert pr["capacity"] == limit.get(pr["manager_id"], cap)


def test_vectorised_medoid_figures_equal_the_kpi_module_s(base):
    from gridplan.metrics.kpi import medoid_distances

    p, ctx = base
    gid = p.transformers["grid_id"].astype(str).to_numpy()
    sets = [ctx.xy[gid == g] for g in sorted(set(gid.tolist()))]
    rng = np.random.default_rng(3)
    sets += [rng.normal(size=(n, 2)) * 1000 for n in (1, 2, 3, 17, 640, 1499, 1500, 1501)]
    sets.append(np.repeat(ctx.xy[:5], 3, axis=0))  # ties
    for xy in sets:
        _, mean_d, max_d = medoid_distances(xy)
        assert ops._medoid_mean_max(xy) == (mean_d, max_d)


def test_labels_are_the_text_of_a_plan_s_columns_cached_per_frame(base):
    p, ctx = base
    gid, man = ctx.labels(p.transformers)
    assert (gid == p.transformers["grid_id"].astype(str).to_numpy()).all()
    assert (man == p.transformers["manager_id"].astype(str).to_numpy()).all()
    assert ctx.labels(p.transformers)[0] is gid  # computed once per frame
    with pytest.raises(ValueError):
        gid[0] = "x"  # shared: read-only
    i, mid, target = _boundary_move(p, ctx)
    q = ops.reassign(p, [ctx.ids[i]], mid, context=ctx)
    g2, m2 = ctx.labels(q.transformers)
    assert g2[i] == target and m2[i] == mid and gid[i] != target
