"""Invariants of the synthetic county generator (scripts/make_sample_county.py) and its sample."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import tomllib
from pathlib import Path

import geopandas as gpd
import networkx as nx
import pandas as pd
import pytest
import shapely

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "geodata" / "sample"
LEDGER_HEADER = ["台区编号", "台区名称", "经度", "纬度", "容量(kVA)", "户数", "所属线路", "运行状态", "村"]
MANAGER_HEADER = ["工号", "姓名", "电话", "供电所", "经度", "纬度", "最大工作量"]
FILES = ["townships.geojson", "stations.geojson", "villages.geojson", "transformers.csv",
         "feeders.geojson", "switches.geojson", "substations.geojson", "managers.csv",
         "gridplan.toml"]


def _generator():
    spec = importlib.util.spec_from_file_location("make_sample_county",
                                                  ROOT / "scripts" / "make_sample_county.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gen():
    return _generator()


@pytest.fixture(scope="module")
def small(gen, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("county") / "c"
    gen.main(["--out", str(out), "--seed", "3", "--transformers", "300", "--townships", "6", "-q"])
    return out


@pytest.fixture(scope="module")
def small_sections(gen, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("county") / "s"
    gen.main(["--out", str(out), "--seed", "3", "--transformers", "300", "--townships", "6", "-q",
              "--feeder-rows", "section"])
    return out


def _read(folder: Path) -> dict:
    layers = {n: gpd.read_file(folder / f"{n}.geojson")
              for n in ("townships", "stations", "villages", "feeders", "switches", "substations")}
    layers["transformers"] = pd.read_csv(folder / "transformers.csv", encoding="utf-8-sig",
                                         dtype=str)
    layers["managers"] = pd.read_csv(folder / "managers.csv", encoding="utf-8-sig", dtype=str)
    return layers


def _ledger_points(tf: pd.DataFrame) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(tf, geometry=gpd.points_from_xy(tf["经度"].astype(float),
                                                            tf["纬度"].astype(float)), crs=4326)


def _key(xy) -> tuple[float, float]:
    return (round(float(xy[0]), 6), round(float(xy[1]), 6))


def _feeder_graphs(feeders: gpd.GeoDataFrame) -> dict[str, nx.Graph]:
    graphs: dict[str, nx.Graph] = {}
    for fid, geom in zip(feeders["feeder_id"], feeders.geometry):
        g = graphs.setdefault(fid, nx.Graph())
        for part in shapely.get_parts(geom):
            c = shapely.get_coordinates(part)
            for a, b in itertools.pairwise(c):
                g.add_edge(_key(a), _key(b))
    return graphs


def test_files_and_headers(small):
    assert sorted(p.name for p in small.iterdir()) == sorted(FILES)
    raw = (small / "transformers.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "ledger must be UTF-8 with BOM like an Excel export"
    d = _read(small)
    assert list(d["transformers"].columns) == LEDGER_HEADER
    assert list(d["managers"].columns) == MANAGER_HEADER
    with open(small / "gridplan.toml", "rb") as fh:
        toml = tomllib.load(fh)
    assert toml["input"]["coords"] == "wgs84"
    from gridplan.settings import read_params
    params = read_params(small / "gridplan.toml")
    assert params.workload == "customers" and params.capacity == 1500


def test_townships_tile_the_county_without_overlap(small):
    d = _read(small)
    town = d["townships"]
    assert town.geom_type.eq("Polygon").all() and town.is_valid.all()
    assert town["township_id"].is_unique
    assert set(town["area_class"]) == {"城区", "农村", "特殊边远"}
    assert (town["area_class"] == "特殊边远").sum() == 1
    assert town["name"].str[-1].isin(["镇", "乡"]).all()
    m = town.to_crs(town.estimate_utm_crs())
    union = shapely.union_all(m.geometry.values)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0
    assert abs(m.area.sum() - union.area) < 1e-6 * union.area
    for i, j in m.sindex.query(m.geometry, predicate="intersects").T:
        if i < j:
            assert m.geometry.iloc[i].intersection(m.geometry.iloc[j]).area < 1.0  # m²


def test_villages_tile_their_townships(small):
    d = _read(small)
    crs = d["townships"].estimate_utm_crs()
    town = d["townships"].to_crs(crs).set_index("township_id")
    vil = d["villages"].to_crs(crs)
    assert vil.is_valid.all() and vil["name"].str.endswith("村").all() and vil["name"].is_unique
    per = vil.groupby("township_id")
    assert per.size().between(1, 25).all()
    for tid, group in per:
        t = town.geometry[tid]
        assert abs(group.area.sum() - t.area) < 1e-6 * t.area
        assert shapely.union_all(group.geometry.values).symmetric_difference(t).area < 1e-6 * t.area


def test_transformers_inside_townships_and_villages(small):
    d = _read(small)
    tf = _ledger_points(d["transformers"])
    assert len(tf) == 300 and tf["台区编号"].is_unique
    assert set(tf["运行状态"]) <= {"运行", "停运", "拆除"}
    assert (tf["户数"].astype(int) > 0).all()
    assert set(tf["容量(kVA)"].astype(int)) <= {50, 80, 100, 160, 200, 315, 400, 630}
    joined = gpd.sjoin(tf, d["townships"], predicate="within", how="left")
    assert joined["township_id"].notna().all()
    vil = gpd.sjoin(tf, d["villages"], predicate="within", how="left")
    assert (vil["name"] == vil["村"]).all()


@pytest.mark.slow
@pytest.mark.parametrize("rows", ["feeder", "section"])
def test_feeders_are_trees_from_their_substation(rows, request):
    folder = request.getfixturevalue("small" if rows == "feeder" else "small_sections")
    d = _read(folder)
    tf, feeders, subs = d["transformers"], d["feeders"], d["substations"]
    graphs = _feeder_graphs(feeders)
    sub_pt = {s: _key((g.x, g.y)) for s, g in zip(subs["substation_id"], subs.geometry)}
    active = tf[tf["运行状态"] != "拆除"]
    assert active["所属线路"].notna().all()
    assert set(active["所属线路"]) == set(graphs)
    assert feeders.groupby("feeder_id")["substation_id"].nunique().eq(1).all()
    if rows == "feeder":
        assert feeders["feeder_id"].is_unique and feeders.geom_type.eq("MultiLineString").all()
    else:
        assert feeders.geom_type.eq("LineString").all()
        assert (shapely.get_num_coordinates(feeders.geometry.values) == 2).all()
    crs = d["townships"].estimate_utm_crs()
    lengths = feeders.to_crs(crs).length.groupby(feeders["feeder_id"]).sum() / 1000
    assert lengths.between(1, 60).all()
    for fid, g in graphs.items():
        assert nx.is_tree(g), f"{fid} is not a radial tree"
        sub = feeders.loc[feeders["feeder_id"] == fid, "substation_id"].iloc[0]
        assert sub_pt[sub] in g, f"{fid} does not start at its substation {sub}"
        assert g.degree(sub_pt[sub]) == 1
        mine = active[active["所属线路"] == fid]
        for lon, lat in zip(mine["经度"].astype(float), mine["纬度"].astype(float)):
            assert _key((lon, lat)) in g


def test_switches_sit_on_their_feeders(small):
    d = _read(small)
    graphs = _feeder_graphs(d["feeders"])
    sw = d["switches"]
    assert sw["switch_id"].is_unique and sw["normally_open"].dtype == bool
    assert (~sw["normally_open"]).sum() > 0 and sw["normally_open"].sum() > 0
    for fid, geom, is_open in zip(sw["feeder_id"], sw.geometry, sw["normally_open"]):
        p = _key((geom.x, geom.y))
        assert p in graphs[fid]
        owners = [f for f, g in graphs.items() if p in g]
        if is_open:  # a tie: the end of a short tie line from each of two feeders
            assert len(owners) == 2 and all(graphs[f].degree(p) == 1 for f in owners)
        else:  # sectionalising: inside one feeder's line
            assert owners == [fid] and graphs[fid].degree(p) == 2


def test_stations_and_managers(small):
    d = _read(small)
    town, st, man, tf = d["townships"], d["stations"], d["managers"], d["transformers"]
    assert set(town["station_id"]) == set(st["station_id"])
    assert set(st["kind"]) <= {"供电所", "中心供电所"}
    assert st["name"].str.endswith("供电所").all()
    for sid, g in zip(st["station_id"], st.geometry):
        mine = town[town["station_id"] == sid]
        assert mine.contains(g).any(), f"station {sid} is not inside one of its townships"
    assert man["工号"].is_unique and man["电话"].str.match(r"^138-0000-\d{4}$").all()
    assert man["姓名"].str[:2].isin(["示例", "测试", "样例", "虚构"]).all()
    assert set(man["供电所"]) <= set(st["station_id"])
    tfp = _ledger_points(tf[tf["运行状态"] == "运行"])
    hh = gpd.sjoin(tfp, town, predicate="within").groupby("station_id")["户数"].apply(
        lambda s: s.astype(int).sum())
    # about one manager per grid of the default capacity (1,500 households), a few spare
    for sid, n in man.groupby("供电所").size().items():
        assert n == max(1, round(hh[sid] / 1350))


def test_same_seed_same_bytes_other_seed_other_county(gen, small, tmp_path):
    again = tmp_path / "again"
    gen.main(["--out", str(again), "--seed", "3", "--transformers", "300", "--townships", "6",
              "-q"])
    for name in FILES:
        assert (again / name).read_bytes() == (small / name).read_bytes(), name
    other = tmp_path / "other"
    gen.main(["--out", str(other), "--seed", "4", "--transformers", "300", "--townships", "6",
              "-q"])
    assert (other / "townships.geojson").read_bytes() != (small / "townships.geojson").read_bytes()


def test_overwrite_is_atomic_and_leaves_no_temp(gen, tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    gen.main(["--out", str(out), "--seed", "1", "--transformers", "60", "--townships", "3", "-q"])
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert [p.name for p in tmp_path.iterdir()] == ["c"]


def test_province_mode(gen, tmp_path):
    out = tmp_path / "prov"
    gen.main(["--out", str(out), "--seed", "2", "--counties", "2", "--transformers", "80",
              "--townships", "3", "-q"])
    folders = sorted(p.name for p in out.iterdir())
    assert folders == ["county_001", "county_002"]
    outlines = [gpd.read_file(out / f / "townships.geojson").union_all() for f in folders]
    assert not outlines[0].intersects(outlines[1])
    for o in outlines:
        assert 110 < o.centroid.x < 120 and 30 < o.centroid.y < 38


def test_committed_sample_loads():
    assert SAMPLE.exists(), "geodata/sample is committed with the repository"
    d = _read(SAMPLE)
    assert d["townships"].crs.to_epsg() == 4326
    assert 12 <= len(d["townships"]) <= 18 and 3 <= len(d["stations"]) <= 5
    assert 2_500 <= len(d["transformers"]) <= 3_500
    assert 2 <= len(d["substations"]) <= 3
    n_vil = d["villages"].groupby("township_id").size()
    assert n_vil.between(8, 25).all()
    retired = d["transformers"]["运行状态"].ne("运行").mean()
    assert 0.005 <= retired <= 0.03
    size = sum(p.stat().st_size for p in SAMPLE.iterdir())
    assert size < 4_000_000


def test_committed_sample_is_what_the_default_command_writes(gen, tmp_path):
    out = tmp_path / "sample"
    gen.main(["--out", str(out), "--seed", "7", "-q"])
    for name in FILES:
        assert (out / name).read_bytes() == (SAMPLE / name).read_bytes(), (
            f"{name} differs: regenerate with python scripts/make_sample_county.py "
            "--out geodata/sample --seed 7")


def test_committed_sample_passes_the_loader():
    from gridplan.io.load import load_county
    county = load_county(SAMPLE)
    assert len(county.townships) == 15 and len(county.stations) == 4
    active = county.transformers
    assert (active["status"] == "运行").all() and active["feeder_id"].notna().all()
    assert set(active["feeder_id"]) <= set(county.feeders["feeder_id"])
    assert county.params.capacity == 1500 and county.params.segment_cap_km == 12
    assert county.crs.is_projected
