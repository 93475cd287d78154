"""Wall maps (墙图): page size, embedded CJK font, PNG pixels, label placement, hostile names."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

from gridplan import InputError
from gridplan.model import County
from gridplan.pipeline import Plan
from gridplan.render._wall_labels import LabelRequest, boxes_overlap, place_labels
from gridplan.render._wall_layout import format_phone, grid_colours
from gridplan.render.fonts import FontNotFoundError, find_cjk_font
from gridplan.render.wallmap import render_wallmap, wallmap_figure
from gridplan.settings import Params

CRS = "EPSG:4547"  # CGCS2000 / 3-degree Gauss-Kruger CM 114E (metres)
X0, Y0 = 500_000.0, 3_400_000.0
HOSTILE = "<img src=x onerror=alert(1)>"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
MM_TO_PT = 72 / 25.4

try:
    find_cjk_font()
    HAVE_FONT = True
except FontNotFoundError:  # pragma: no cover - only on machines without a CJK font
    HAVE_FONT = False
needs_font = pytest.mark.skipif(not HAVE_FONT, reason="no CJK font installed (apt-get install fonts-noto-cjk)")


def _grid_cells() -> list[tuple[str, str, object]]:
    """(grid_id, station_id, polygon): S01 has 5 grids, one a thin sliver; S02 two grids."""
    b = lambda x0, y0, x1, y1: box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)
    return [
        ("T01-01", "S01", b(0, 0, 4000, 3000)),
        ("T01-02", "S01", b(4000, 0, 8000, 3000)),
        ("T01-03", "S01", b(0, 3000, 3000, 6000)),
        ("T01-04", "S01", b(3000, 3000, 3250, 6000)),  # 250 m sliver: label must go outside
        ("T01-05", "S01", b(3250, 3000, 8000, 6000)),
        ("T02-01", "S02", b(8000, 0, 11000, 3000)),
        ("T02-02", "S02", b(8000, 3000, 11000, 6000)),
    ]


def small_plan() -> Plan:
    """A two-station plan built directly (no solver), with Chinese and hostile names."""
    rng = np.random.default_rng(0)
    cells = _grid_cells()
    names = ["张伟", "王芳", "李娜", "刘洋", HOSTILE, "陈静", "杨磊"]
    phones = ["13800138001", "13800138002", "13912345678", "0371-6543210", "13800138005",
              "15000000006", "15000000007"]
    grids = gpd.GeoDataFrame({
        "grid_id": [c[0] for c in cells], "station_id": [c[1] for c in cells],
        "township_id": [c[0][:3] for c in cells], "manager_id": [f"M{i:02d}" for i in range(7)],
        "manager_name": names, "phone": phones, "placeholder": [False] * 6 + [True],
        "customers": [1450, 1320, 1510, 260, 1480, 1400, 1390],
        "n_transformers": [30, 28, 31, 5, 29, 27, 26],
        "villages": ["东村、西村", "南庄", "北沟、前屯、后屯、大王庄、小李庄、张家洼", "夹道村",
                     f"河口村、{HOSTILE}", "", ""],
    }, geometry=[c[2] for c in cells], crs=CRS)
    townships = gpd.GeoDataFrame({
        "township_id": ["T01", "T02"], "name": ["城关镇", "河口乡"], "station_id": ["S01", "S02"],
        "area_class": ["农村", "农村"]},
        geometry=[box(X0, Y0, X0 + 8000, Y0 + 6000), box(X0 + 8000, Y0, X0 + 11000, Y0 + 6000)],
        crs=CRS)
    stations = gpd.GeoDataFrame({
        "station_id": ["S01", "S02"], "name": ["城关供电所", "河口供电所"],
        "kind": ["供电所", "供电所"], "parent_id": [None, None]},
        geometry=[Point(X0 + 3600, Y0 + 2500), Point(X0 + 9500, Y0 + 3000)], crs=CRS)
    vnames = ["东村", "西村", "南庄", "北沟", "前屯", "后屯", "大王庄", "小李庄", "张家洼", "夹道村",
              "河口村", HOSTILE]
    vgeoms = [box(X0 + (i % 4) * 2000, Y0 + (i // 4) * 2000, X0 + (i % 4 + 1) * 2000,
                  Y0 + (i // 4 + 1) * 2000) for i in range(12)]
    villages = gpd.GeoDataFrame({"village_id": [f"V{i:02d}" for i in range(12)], "name": vnames,
                                 "township_id": ["T01"] * 12}, geometry=vgeoms, crs=CRS)
    n = 180
    xy = np.column_stack([X0 + rng.uniform(50, 10950, n), Y0 + rng.uniform(50, 5950, n)])
    pts = [Point(x, y) for x, y in xy]
    gid = [next(c[0] for c in cells if c[2].covers(p)) for p in pts]
    transformers = gpd.GeoDataFrame({
        "transformer_id": [f"TA{i:04d}" for i in range(n)], "name": [f"台区{i}" for i in range(n)],
        "customers": rng.integers(10, 90, n), "capacity_kva": 200.0, "feeder_id": "F1",
        "status": "运行", "township_id": [g[:3] for g in gid],
        "station_id": ["S02" if g.startswith("T02") else "S01" for g in gid], "village": None,
        "grid_id": gid}, geometry=pts, crs=CRS)
    segments = gpd.GeoDataFrame({
        "segment_id": ["F1-1", "F1-2"], "feeder_id": ["F1", "F1"], "length_km": [6.0, 5.0],
        "transformers": [90, 90], "grid_id": ["T01-01", "T01-05"], "manager_id": ["M00", "M04"],
        "share_in_grid": [1.0, 1.0]},
        geometry=[LineString([(X0 + 3600, Y0 + 2500), (X0 + 500, Y0 + 1500), (X0 + 300, Y0 + 5500)]),
                  LineString([(X0 + 3600, Y0 + 2500), (X0 + 7500, Y0 + 4500)])], crs=CRS)
    county = County(name="示例县", crs=grids.crs, townships=townships, stations=stations,
                    transformers=transformers.drop(columns="grid_id"), villages=villages)
    managers = pd.DataFrame({"manager_id": grids["manager_id"], "name": names, "phone": phones,
                             "station_id": grids["station_id"], "grid_id": grids["grid_id"]})
    return Plan(county=county, params=Params(), transformers=transformers, grids=grids,
                managers=managers, segments=segments)


@pytest.fixture(scope="module")
def plan() -> Plan:
    return small_plan()


def _pdfinfo_size(path: Path) -> tuple[float, float]:
    text = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", text)
    assert m, text
    return float(m.group(1)), float(m.group(2))


@pytest.mark.slow
@needs_font
@pytest.mark.skipif(shutil.which("pdfinfo") is None or shutil.which("pdffonts") is None,
                    reason="poppler-utils (pdfinfo, pdffonts) not installed")
@pytest.mark.parametrize("size,orientation,mm", [("A1", "landscape", (841, 594)),
                                                 ("A3", "portrait", (297, 420))])
def test_pdf_page_size_and_embedded_cjk_font(plan, tmp_path, size, orientation, mm):
    out = render_wallmap(plan, station_id="S01", size=size, orientation=orientation,
                         out=tmp_path / "wall.pdf", date=dt.date(2024, 5, 1))
    assert out == tmp_path / "wall.pdf" and out.exists()
    # no temp file left behind; the sidecar records the file's sha256 (issue #11: a later run may
    # replace the file only while it is gridplan's, unchanged)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".wall.pdf.gridplan.json", "wall.pdf"]
    w, h = _pdfinfo_size(out)
    assert w == pytest.approx(mm[0] * MM_TO_PT, abs=1.0)
    assert h == pytest.approx(mm[1] * MM_TO_PT, abs=1.0)
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True,
                           check=True).stdout.splitlines()[2:]
    cjk = [line for line in fonts if re.search(r"CJK|WenQuanYi|Hei|Han", line)]
    assert cjk, fonts
    assert all(line.split()[-5] == "yes" for line in cjk), cjk  # the "emb" column
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert HOSTILE in text and "供电服务网格图" in text and "95598" in text
    if size == "A1" and shutil.which("pdftoppm"):
        ARTIFACTS.mkdir(exist_ok=True)
        subprocess.run(["pdftoppm", "-r", "30", "-png", "-singlefile", str(out),
                        str(ARTIFACTS / "wallmap_A1_landscape")], check=True)


@pytest.mark.slow
@needs_font
def test_png_pixel_size_at_300_dpi(plan, tmp_path):
    from PIL import Image

    out = render_wallmap(plan, station_id="S01", size="A3", orientation="landscape",
                         out=tmp_path / "wall.png", dpi=300)
    with Image.open(out) as im:
        assert im.size == (int(420 / 25.4 * 300), int(297 / 25.4 * 300))  # 4960 x 3507
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.1)


@needs_font
def test_svg_prints_hostile_names_as_text(plan, tmp_path):
    from gridplan.render import wallmap as wm

    with pytest.MonkeyPatch.context() as mp:
        # The module draws SVG glyphs as paths; keep text as text here to inspect it.
        mp.setitem(wm._RC, "svg.fonttype", "none")
        out = render_wallmap(plan, station_id="S01", size="A3", out=tmp_path / "wall.svg",
                             date="2024年5月1日")
    svg = out.read_text(encoding="utf-8")
    assert "<img" not in svg and "onerror=alert(1)&gt;" in svg  # escaped, printed as text
    assert "城关供电所供电服务网格图" in svg and "报修电话 95598" in svg


@needs_font
def test_grid_labels_do_not_overlap_when_rendered(plan):
    wm = wallmap_figure(plan, station_id="S01", size="A1", date=dt.date(2024, 5, 1))
    renderer = wm.fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in wm.panel.grid_labels]
    assert len(boxes) == 5
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (i, j)
    sliver = next(p for p in wm.panel.placements if p.key == "T01-04")
    assert sliver.leader  # a 250 m wide grid cannot hold its label
    assert all(p.scale >= 0.8 for p in wm.panel.placements)


def test_place_labels_inside_then_outside_without_overlap():
    polys = [box(0, 0, 100, 100), box(100, 0, 104, 100), box(104, 0, 200, 100)]
    reqs = [LabelRequest(f"g{i}", p, 40.0, 20.0) for i, p in enumerate(polys)]
    out = place_labels(reqs, frame=(-200, -200, 400, 300), gap=2.0)
    assert [p.key for p in out] == ["g0", "g1", "g2"]
    assert not out[0].leader and not out[2].leader
    assert polys[0].contains(box(*out[0].box)) and polys[2].contains(box(*out[2].box))
    assert out[1].leader and not polys[1].intersects(box(*out[1].box))
    for i in range(3):
        for j in range(i + 1, 3):
            assert not boxes_overlap(out[i].box, out[j].box)


def test_place_labels_shrinks_before_leaving_the_polygon():
    reqs = [LabelRequest("a", box(0, 0, 36, 30), 40.0, 20.0)]
    (p,) = place_labels(reqs, frame=(-100, -100, 200, 200), scales=(1.0, 0.85))
    assert p.scale == 0.85 and not p.leader


def test_neighbouring_grids_get_different_colours(plan):
    s01 = plan.grids[plan.grids["station_id"] == "S01"].reset_index(drop=True)
    colours = grid_colours(list(s01.geometry))
    geoms = list(s01.geometry)
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            if geoms[i].touches(geoms[j]):
                assert colours[i] != colours[j]


def test_bad_arguments_are_reported_together(plan, tmp_path):
    with pytest.raises(InputError) as err:
        render_wallmap(plan, station_id="S99", size="B2", orientation="sideways",
                       out=tmp_path / "x.jpg")
    msg = str(err.value)
    assert "S99" in msg and "S01" in msg and "B2" in msg and "sideways" in msg and ".jpg" in msg
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
@needs_font
def test_same_input_gives_identical_pdf(plan, tmp_path):
    a = render_wallmap(plan, station_id="S01", size="A3", out=tmp_path / "a.pdf", date="2024-05-01")
    b = render_wallmap(plan, station_id="S01", size="A3", out=tmp_path / "b.pdf", date="2024-05-01")
    assert a.read_bytes() == b.read_bytes()


# ------------------------------------------------------------- issue 14: print-true wall maps

SAMPLE = Path(__file__).resolve().parents[1] / "geodata" / "sample"
LAYOUTS = [(s, o) for s in ("A0", "A1", "A2", "A3", "A4") for o in ("landscape", "portrait")]


@pytest.fixture(scope="module")
def sample_plan():
    if not SAMPLE.exists():
        pytest.skip("geodata/sample not present")
    import gridplan

    return gridplan.plan(gridplan.load_county(SAMPLE))


def _all_texts(wm) -> str:
    from matplotlib.text import Text

    return "\n".join(t.get_text() for f in (wm.fig, *wm.pages) for t in f.findobj(Text))


def _check_geometry(panel) -> None:
    """No label box overlaps another (or an obstacle or a village name); no leader crosses a
    box other than its own, or another leader."""
    from shapely.geometry import box as sbox

    placed = [p for p in panel.placements if p.placed]
    boxes = [(p.key, p.box) for p in placed] + [(f"obstacle{i}", b) for i, b in enumerate(panel.obstacles)] \
        + [(f"village{i}", b) for i, b in enumerate(panel.village_boxes)]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes_overlap(boxes[i][1], boxes[j][1]), (boxes[i], boxes[j])
    leaders = [(p.key, p.leader_line) for p in placed if p.leader_line is not None]
    for key, line in leaders:
        for other, b in boxes:
            if other != key:
                assert not line.intersects(sbox(*b)), (key, other)
    for i in range(len(leaders)):
        for j in range(i + 1, len(leaders)):
            assert not leaders[i][1].intersects(leaders[j][1]), (leaders[i][0], leaders[j][0])


@needs_font
@pytest.mark.parametrize("size,orientation", LAYOUTS + [("A3-sample", "landscape")])
def test_every_size_no_crossings_full_roster_fixed_text(plan, size, orientation, request):
    from matplotlib.text import Text

    from gridplan.render._wall_layout import mm_pt

    if size == "A3-sample":  # the real-shaped sample: 79 grids on one A3 sheet
        size, sample_plan = "A3", request.getfixturevalue("sample_plan")
    else:
        sample_plan = plan
    wm = wallmap_figure(sample_plan, station_id="S01", size=size, orientation=orientation,
                        date=dt.date(2024, 5, 1))
    _check_geometry(wm.panel)
    placed = [p for p in wm.panel.placements if p.placed]
    if sample_plan is plan:
        assert len(placed) == len(wm.panel.placements) == 5
    # the rendered labels sit inside the boxes the placement reserved
    renderer = wm.fig.canvas.get_renderer()
    inv = wm.panel.ax.transData.inverted()
    for art, p in zip(wm.panel.grid_labels, placed):
        bb = inv.transform(art.get_window_extent(renderer).get_points())
        tol = 0.02 * wm.panel.metres_per_inch
        assert bb[0][0] >= p.box[0] - tol and bb[1][0] <= p.box[2] + tol, p.key
    # the whole roster, never "see the roster": every manager and phone is printed
    grids = sample_plan.grids[sample_plan.grids["station_id"] == "S01"]
    text = _all_texts(wm).replace("\n", "")  # long names wrap in the roster
    for name, phone in zip(grids["manager_name"], grids["phone"]):
        assert str(name) in text and format_phone(phone) in text, (name, phone)
    assert "另有" not in text and "见名册" not in text
    assert wm.rows_on_first <= len(wm.rows) == len(grids)
    # text sizes fixed in millimetres: nothing readable shrinks with the paper
    sizes = [t.get_fontsize() for f in (wm.fig, *wm.pages) for t in f.findobj(Text) if t.get_text()]
    assert min(sizes) >= mm_pt(3.0) - 0.01
    label_pts = [c.get_fontsize() for a in wm.panel.grid_labels for c in a.findobj(Text)
                 if c.get_text()]
    assert min(label_pts) >= mm_pt(4.2) * 0.9 - 0.01  # grid id line; names and phones larger


@needs_font
@pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdffonts") is None,
                    reason="poppler-utils (pdftotext, pdffonts) not installed")
@pytest.mark.parametrize("size,orientation", [("A4", "portrait")])
def test_pdf_roster_complete_clean_truetype_font(sample_plan, tmp_path, size, orientation):
    out = render_wallmap(sample_plan, station_id="S01", size=size, orientation=orientation,
                         out=tmp_path / "wall.pdf", date=dt.date(2024, 5, 1))
    # one file (and the sidecar recording that gridplan wrote it: issue #11)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".wall.pdf.gridplan.json", "wall.pdf"]
    run = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True,
                         check=True)
    assert "Mismatch" not in run.stderr and "Syntax" not in run.stderr, run.stderr[:300]
    text = run.stdout
    grids = sample_plan.grids[sample_plan.grids["station_id"] == "S01"]
    for name, phone in zip(grids["manager_name"], grids["phone"]):
        assert str(name) in text and str(phone) in text, (name, phone)
    assert "95598" in text and "供电所值班电话 000-0000-0101" in text
    assert "示例县（虚构）" in text
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True, check=True)
    assert "Mismatch" not in fonts.stderr and "Syntax" not in fonts.stderr
    rows = fonts.stdout.splitlines()[2:]
    assert rows and all("CID TrueType" in r and r.split()[-5] == "yes" for r in rows), rows
    if size == "A4" and shutil.which("pdftoppm"):
        ARTIFACTS.mkdir(exist_ok=True)
        subprocess.run(["pdftoppm", "-r", "40", "-png", str(out),
                        str(ARTIFACTS / "wallmap_A4_portrait")], check=True)


@needs_font
def test_png_continuation_pages_are_separate_files(sample_plan, tmp_path):
    out = render_wallmap(sample_plan, station_id="S01", size="A4", orientation="landscape",
                         out=tmp_path / "s01.png", dpi=40, date="2024-05-01")
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".gridplan.json"))
    assert names[0] == "s01-2.png" and "s01.png" in names and len(names) >= 3, names
    assert out == tmp_path / "s01.png"


@needs_font
def test_duty_phone_county_name_and_villages_from_polygons(tmp_path):
    from gridplan.render.wallmap import county_name

    p = small_plan()
    p.county.stations["phone"] = ["0371-0000-0001", None]
    p.grids["villages"] = ""  # no village column in the ledger: 负责村 comes from the polygons
    wm = wallmap_figure(p, station_id="S01", size="A3", date=dt.date(2024, 5, 1))
    text = _all_texts(wm)
    assert "供电所值班电话 0371-0000-0001" in text and "报修电话 95598" in text
    by_grid = {r[1]: r[6] for r in wm.rows}
    assert "东村" in by_grid["T01-01"] and by_grid["T01-01"]
    assert all(by_grid[g] for g in ("T01-01", "T01-02", "T01-03", "T01-05"))
    # the subtitle names the county, not the folder it was read from
    p.county.name = "county_folder"
    p.county.townships["COUNTYNAME"] = "宜蘭縣"
    assert county_name(p) == "宜蘭縣"
    p = dataclasses.replace(p, params=Params(county_name="某某县"))  # a Plan is frozen (#12)
    assert county_name(p) == "某某县"
