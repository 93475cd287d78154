"""Several measures balanced at once: ``[plan] also_balance`` (issue #16, part 1).

Every check recomputes the grids' measures from the raw 台区 columns (the generated ledger, or the
grid polygons for areas), never from the plan's own KPIs.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from countygen import STEP, X0, Y0, make_county_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridplan import InputError
from gridplan.cli import main
from gridplan.io.load import load_county
from gridplan.lv import solver as S
from gridplan.lv.graph import neighbour_edges
from gridplan.lv.measures import LABELS, feeder_km
from gridplan.lv.partition import balanced_contiguous
from gridplan.pipeline import plan, read_plan
from gridplan.settings import Params, read_params

_TOWNS = {"T1": (0, 0), "T2": (1, 0), "T3": (0, 1), "T4": (1, 1)}


def _ledger(seed: int, per_town: tuple[int, int]) -> pd.DataFrame:
    """A seeded ledger: 台区 uniformly inside the four townships of ``countygen``, off their borders."""
    rng = np.random.default_rng(seed)
    rows = []
    for t, (i, j) in _TOWNS.items():
        for _ in range(int(rng.integers(*per_town))):
            lon = X0 + (i + rng.uniform(0.04, 0.96)) * STEP
            lat = Y0 + (j + rng.uniform(0.04, 0.96)) * STEP
            n = len(rows) + 1
            rows.append({"transformer_id": f"TQ{n:04d}", "name": f"{n}号台区", "lon": round(lon, 6),
                         "lat": round(lat, 6), "customers": int(rng.integers(20, 120)),
                         "capacity_kva": float(rng.choice([200, 315, 400])),
                         "feeder_id": "F1" if lat < Y0 + STEP else "F2", "status": "运行",
                         "village": f"村{1 + i + 2 * j}", "town": t})
    return pd.DataFrame(rows)


def _grid_sums(p, ledger: pd.DataFrame, name: str) -> pd.DataFrame:
    """Per grid: its township and its sum of measure ``name`` from the raw ledger columns."""
    gid = p.transformers.set_index("transformer_id")["grid_id"]
    led = ledger.assign(grid_id=ledger["transformer_id"].map(gid))
    if name == "area":
        g = p.grids.set_index("grid_id")
        return pd.DataFrame({"township_id": g["township_id"].astype(str),
                             "value": g.geometry.area / 1e6})
    col = {"transformers": None, "customers": "customers", "capacity": "capacity_kva"}[name]
    vals = np.ones(len(led)) if col is None else led[col].astype(float).to_numpy()
    per = pd.DataFrame({"grid_id": led["grid_id"], "township_id": led["town"], "value": vals})
    return per.groupby("grid_id").agg(township_id=("township_id", "first"), value=("value", "sum"))


def _off_band(p, ledger: pd.DataFrame, name: str, tol: float) -> dict[str, float]:
    """Townships whose grids hold ``name`` outside ``±tol`` of the township mean: max deviation."""
    per = _grid_sums(p, ledger, name)
    out = {}
    for t, g in per.groupby("township_id"):
        if len(g) < 2:
            continue
        dev = float((g["value"] / g["value"].mean() - 1).abs().max())
        if dev > tol + 1e-9:
            out[str(t)] = dev
    return out


def _plan(ledger: pd.DataFrame, tmp: Path, **params):
    folder = make_county_dir(tmp, edit_ledger=lambda _: ledger.drop(columns="town"))
    return plan(load_county(folder), **params)


# ---------------------------------------------------------------------------------- the solver

@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(seed=st.integers(0, 10**6), k=st.integers(3, 8), per=st.integers(50, 90),
       clustered=st.booleans(), tol_n=st.floats(0.15, 0.3), tol_km=st.floats(0.15, 0.3))
def test_solver_meets_every_band_on_fine_grained_points(seed: int, k: int, per: int,
                                                       clustered: bool, tol_n: float,
                                                       tol_km: float) -> None:
    """50-90 units per part, measures of similar size: every band can be met, and is."""
    rng = np.random.default_rng(seed)
    n = k * per
    if clustered:
        c = rng.uniform(0, 10000, (6, 2))
        xy = c[rng.integers(0, 6, n)] + rng.normal(0, 900, (n, 2))
    else:
        xy = rng.uniform(0, 10000, (n, 2))
    cust, km = rng.lognormal(4, 0.5, n), rng.lognormal(0, 0.5, n)
    edges = neighbour_edges(xy)
    lab = balanced_contiguous(xy, cust, k, edges=edges, seed=0,
                              also=np.column_stack([np.ones(n), km]), also_tolerance=[tol_n, tol_km])
    for v, tol in ((cust, 0.05), (np.ones(n), tol_n), (km, tol_km)):
        loads = np.bincount(lab, v, k)
        assert np.abs(loads / (v.sum() / k) - 1).max() <= tol + 1e-9
    assert S.n_broken(S.build_graph(xy, edges), lab, k) == 0
    assert len(np.unique(lab)) == k


def test_single_measure_path_is_unchanged() -> None:
    rng = np.random.default_rng(5)
    xy, w = rng.uniform(0, 5000, (400, 2)), rng.lognormal(4, 0.6, 400)
    assert np.array_equal(balanced_contiguous(xy, w, 6), balanced_contiguous(xy, w, 6, also=None))
    with pytest.raises(ValueError, match="also_tolerance"):
        balanced_contiguous(xy, w, 6, also=np.ones((400, 1)), also_tolerance=[1.5])
    with pytest.raises(ValueError, match="also must be"):
        balanced_contiguous(xy, w, 6, also=np.ones((399, 2)))


# ---------------------------------------------------------------------------- whole plans

@settings(max_examples=5, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), grids=st.integers(2, 3), tol_n=st.sampled_from([0.15, 0.2, 0.3]),
       tol_cap=st.sampled_from([0.2, 0.3]), area=st.booleans())
def test_every_measure_is_within_tolerance_or_named(seed: int, grids: int, tol_n: float,
                                                    tol_cap: float, area: bool) -> None:
    ledger = _ledger(seed, (60, 110))
    cap = float(ledger.groupby("town")["customers"].sum().max()) / grids * 1.05
    also = {"transformers": tol_n, "capacity": tol_cap, **({"area": 0.5} if area else {})}
    with tempfile.TemporaryDirectory() as tmp:
        p = _plan(ledger, Path(tmp), capacity=cap, also_balance=also)
    assert set(p.kpi["measures"]) == {"workload", *also}
    for name, tol in also.items():
        got = p.kpi["measures"][name]
        named = {r["key"] for r in got["unmet"]}
        off = _off_band(p, ledger, name, tol)
        assert set(off) <= named, f"{name}: {off} off band but not named ({named})"
        for t in named:
            assert any(LABELS[name] in n and f"({t})" in n for n in p.notes), (name, t)
        assert got["within_tolerance"] == (not named)
        if name != "area":  # ≥ 20 台区 per grid of similar size: the bands can be met, and are
            assert not off, f"{name}: {off}"
        c = got["county"]
        assert c["min_over_mean"] <= 1 <= c["max_over_mean"] and c["cv"] >= 0
        assert set(got["stations"]) == {"S1", "S2"}


def test_infeasible_measure_is_named(tmp_path: Path) -> None:
    """One 台区 of 8 MVA (others 0.2-0.4): with households balanced, capacity cannot be too."""
    ledger = _ledger(7, (60, 70))
    big = ledger.index[ledger["town"] == "T2"][0]
    ledger.loc[big, "capacity_kva"] = 8000.0
    cap = float(ledger.groupby("town")["customers"].sum().max()) / 2 * 1.05
    p = _plan(ledger, tmp_path, capacity=cap, also_balance={"capacity": 0.2, "transformers": 0.3})
    m = p.kpi["measures"]["capacity"]
    assert not m["within_tolerance"]
    row = next(r for r in m["unmet"] if r["key"] == "T2")
    assert row["max_deviation"] > 0.2 and "单个台区" in row["why"]
    assert set(_off_band(p, ledger, "capacity", 0.2)) == {r["key"] for r in m["unmet"]}
    assert any("配变容量" in n and "(T2)" in n and "±20%" in n for n in p.notes)
    assert p.kpi["measures"]["transformers"]["within_tolerance"]
    assert not _off_band(p, ledger, "transformers", 0.3)


def test_feeder_km_shares_the_lines_among_the_transformers(tmp_path: Path) -> None:
    county = load_county(make_county_dir(tmp_path))
    km = feeder_km(county)
    assert km.shape == (len(county.transformers),) and (km >= 0).all()
    total = float(county.feeders.geometry.length.sum()) / 1000
    assert km.sum() == pytest.approx(total, rel=1e-3)  # both feeders feed 台区
    p = plan(county, also_balance={"feeder_km": 0.25})
    assert "feeder_km" in p.transformers.columns
    assert p.kpi["measures"]["feeder_km"]["label"] == LABELS["feeder_km"]


def test_feeder_km_without_feeders_is_an_input_error(tmp_path: Path) -> None:
    county = load_county(make_county_dir(tmp_path, optional=False))
    with pytest.raises(InputError, match="no feeders layer"):
        plan(county, also_balance={"feeder_km": 0.25})


def test_also_balance_is_validated(tmp_path: Path) -> None:
    assert Params(also_balance={"transformers": 0.15}).also_balance == {"transformers": 0.15}
    with pytest.raises(InputError, match="unknown measure 'households'"):
        Params().replace(also_balance={"households": 0.1})
    with pytest.raises(InputError, match=r"must be in \(0, 1\)"):
        Params().replace(also_balance={"area": 1.0})
    toml = tmp_path / "gridplan.toml"
    toml.write_text("[plan]\nalso_balance = { transformers = 0.15, feeder_km = 0.25 }\n",
                    encoding="utf-8")
    assert read_params(toml).also_balance == {"transformers": 0.15, "feeder_km": 0.25}
    toml.write_text("[hv]\nalso_balance = { transformers = 0.15 }\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"belongs under \[plan\]"):
        read_params(toml)


def test_cli_also_balance(tmp_path: Path) -> None:
    folder = make_county_dir(tmp_path)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["plan", str(folder), "-o", str(out), "--no-map", "--capacity", "700",
                                    "--also-balance", "transformers=0.3,area=0.5"])
    assert res.exit_code == 0, res.output
    assert "均衡指标" in res.output and "台区数" in res.output
    kpi = json.loads((out / "kpi.json").read_text(encoding="utf-8"))
    assert set(kpi["measures"]) == {"workload", "transformers", "area"}
    for bad, what in (("transformers", "cannot read"), ("foo=0.1", "unknown measure"),
                      ("area=2", "(0, 1)")):
        res = CliRunner().invoke(main, ["plan", str(folder), "-o", str(tmp_path / "bad"),
                                        "--also-balance", bad])
        assert res.exit_code == 2 and what in res.output and "Traceback" not in res.output, res.output
        assert not (tmp_path / "bad" / "kpi.json").exists()


def test_measures_survive_the_plan_file(tmp_path: Path) -> None:
    p = plan(load_county(make_county_dir(tmp_path)), capacity=700,
             also_balance={"transformers": 0.3})
    p.to_file(tmp_path / "out", map_html=False, roster=False)
    back = read_plan(tmp_path / "out")
    assert back.params.also_balance == {"transformers": 0.3}
    assert back.kpi["measures"]["transformers"]["tolerance"] == 0.3
    assert shapely.get_coordinates(back.transformers.geometry.to_numpy()).shape[0] == len(p.transformers)
