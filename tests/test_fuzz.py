"""A user mistake is never a traceback: property-based fuzzing of a small county folder.

Hypothesis corrupts a copy of the small generated county (tests/countygen.py) — table cells,
headers, text encodings, geometries, whole files, ``gridplan.toml`` and command-line parameters —
and runs ``gridplan plan`` on it. The command must exit 0 (planned) or 2 (a message that names the
problem); never 1, never an uncaught exception, never a traceback.

Runtime is bounded: ``max_examples`` is 40 (set ``GRIDPLAN_FUZZ_EXAMPLES`` for a longer hunt), the
examples are derandomized (the same every run) and nothing is stored in a Hypothesis database.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import traceback
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from click.testing import CliRunner
from countygen import make_county_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridplan.cli import main

EXAMPLES = int(os.environ.get("GRIDPLAN_FUZZ_EXAMPLES", "40"))
TABLES = ("transformers.csv", "managers.csv")
LAYERS = ("townships.geojson", "stations.geojson", "feeders.geojson", "switches.geojson",
          "substations.geojson", "villages.geojson")
KEYS = {"input": ["county_name", "coords", "snap_tolerance_m", "coords_by_layer"],
        "plan": ["workload", "capacity", "tolerance", "scope", "seed", "time_limit", "stability",
                 "grids_from_roster"],
        "hv": ["segment_cap_km", "segment_weight", "segment_cap", "segment_cut", "hv_owner",
               "attach_tolerance_m", "snap_lines_m"],
        "managers": ["placeholder_managers"],
        "response": ["speed_kmh", "detour_factor", "area_class", "commitments"],
        "map": ["basemap", "language", "offline_assets", "tianditu_key"]}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_county_dir(tmp_path_factory.mktemp("fuzz"), chinese_headers=True)


# ----------------------------------------------------------------------------- strategies

cell_values = st.one_of(
    st.text(max_size=12), st.sampled_from(["", " ", "NaN", "inf", "-inf", "1e12", "-0", "12.5", "0",
                                           "=1+1", "１２３", "114°12'", "30,5", "None", "\x00", "\r\n"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-10**15, 10**15).map(str))

toml_values = st.one_of(
    st.text(max_size=10).map(json.dumps), st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(
        lambda f: "nan" if f != f else ("inf" if f == float("inf") else "-inf" if f == -float("inf") else repr(f))),
    st.sampled_from(["true", "false", "[]", "[1, 2]", "{}", '{ a = 1 }', '"gcj02"', '"bd09"', '"gk3"',
                     '"EPSG:4547"', '"customers + 20*transformers"', '"km + 0.02*poles"', '"station"',
                     '"separate"', '"anywhere"', '"城区"', '"amap"', '"en"', "0", "-1", "1e308"]))


@st.composite
def cell_edit(draw):
    return ("cell", draw(st.sampled_from(TABLES)), draw(st.integers(0, 30)), draw(st.integers(0, 12)),
            draw(cell_values))


@st.composite
def header_edit(draw):
    return ("header", draw(st.sampled_from(TABLES)), draw(st.integers(0, 12)),
            draw(st.one_of(st.text(max_size=8), st.sampled_from(["", "台区编号", "经度", "纬度", "户数",
                                                                  "工号", "lon", "lat", "id"]))))


@st.composite
def encoding_edit(draw):
    return ("encoding", draw(st.sampled_from(TABLES + LAYERS + ("gridplan.toml",))),
            draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "gb18030", "utf-8-sig", "latin-1",
                                  "truncate", "garbage", "empty", "nul"])))


@st.composite
def geometry_edit(draw):
    kind = draw(st.sampled_from(["null", "empty", "point", "line", "bowtie", "tiny", "far", "swap",
                                 "huge", "nan", "ring2", "multi"]))
    return ("geometry", draw(st.sampled_from(LAYERS)), draw(st.integers(0, 6)), kind, draw(st.booleans()))


@st.composite
def property_edit(draw):
    """A GeoJSON attribute: its value (any JSON value) or its name."""
    value = draw(st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                           st.floats(allow_nan=False, allow_infinity=False), cell_values,
                           st.sampled_from(["S1", "S2", "T1", "F1", "B1", "V1", "城区", "特殊边远", "是", "否"])))
    return ("property", draw(st.sampled_from(LAYERS)), draw(st.integers(0, 6)), draw(st.integers(0, 6)),
            value, draw(st.booleans()))


@st.composite
def file_edit(draw):
    return ("file", draw(st.sampled_from(TABLES + LAYERS)),
            draw(st.sampled_from(["delete", "rename_xlsx", "rename_txt", "dir", "zip"])))


@st.composite
def toml_edit(draw):
    section = draw(st.sampled_from(list(KEYS) + ["bogus"]))
    key = draw(st.sampled_from(KEYS.get(section, ["x"]) + ["nonsense"]))
    lines = draw(st.lists(st.tuples(st.just(section), st.just(key), toml_values), min_size=1, max_size=3))
    raw = draw(st.sampled_from(["", "", "", "[plan\n", "capacity = 1\n", "= =\n"]))
    return ("toml", lines, raw)


@st.composite
def option_edit(draw):
    opt = draw(st.sampled_from(["--capacity", "--tolerance", "--workload", "--coords", "--segment-cap-km",
                                "--segment-weight", "--segment-cap", "--stability", "--scope",
                                "--hv-owner"]))
    value = draw(st.one_of(st.sampled_from(["0", "-1", "nan", "inf", "1e-9", "1e12", "abc", "", "2",
                                            "customers", "transformers*2", "gcj02", "mars", "station"]),
                           st.text(max_size=8)))
    return ("option", opt, value)


edits = st.lists(st.one_of(cell_edit(), header_edit(), encoding_edit(), geometry_edit(), property_edit(),
                           file_edit(),
                           toml_edit(), option_edit()), min_size=1, max_size=3)


# ----------------------------------------------------------------------------- applying edits

def _rows(path: Path) -> list[list[str]]:
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        return [list(r) for r in csv.reader(fh)]


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    import csv

    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)


def _geometry(kind: str, old: dict | None) -> dict | None:
    pts = {"point": {"type": "Point", "coordinates": [114.1, 30.1]},
           "line": {"type": "LineString", "coordinates": [[114.0, 30.0], [114.1, 30.1]]},
           "bowtie": {"type": "Polygon", "coordinates": [[[114.0, 30.0], [114.1, 30.1], [114.1, 30.0],
                                                          [114.0, 30.1], [114.0, 30.0]]]},
           "tiny": {"type": "Polygon", "coordinates": [[[114.0, 30.0], [114.0, 30.0], [114.0, 30.0],
                                                        [114.0, 30.0]]]},
           "ring2": {"type": "Polygon", "coordinates": [[[114.0, 30.0], [114.1, 30.0]]]},
           "empty": {"type": "GeometryCollection", "geometries": []}}
    if kind == "null":
        return None
    if kind in pts:
        return pts[kind]
    if old is None:
        return None

    def walk(c, f):
        return [walk(x, f) for x in c] if isinstance(c[0], list) else f(c)
    fn = {"far": lambda c: [c[0] + 5, c[1] + 5], "swap": lambda c: [c[1], c[0]],
          "huge": lambda c: [c[0] * 1e6, c[1] * 1e6], "nan": lambda c: [float("nan"), c[1]]}.get(kind)
    if kind == "multi" and old["type"] in ("Polygon", "LineString", "Point"):
        return {"type": "Multi" + old["type"], "coordinates": [old["coordinates"]] * 2}
    if fn is None or "coordinates" not in old:
        return old
    return {"type": old["type"], "coordinates": walk(old["coordinates"], fn)}


def apply(folder: Path, edit: tuple, args: list[str]) -> None:
    kind = edit[0]
    if kind == "option":
        args += [edit[1], edit[2]]
        return
    if kind == "toml":
        _, lines, raw = edit
        toml = folder / "gridplan.toml"
        old = toml.read_text(encoding="utf-8") if toml.exists() else ""
        body = "".join(f"[{s}]\n{k} = {v}\n" for s, k, v in lines)
        toml.write_text(old + raw + body, encoding="utf-8")
        return
    path = folder / edit[1]
    if not path.exists() or path.is_dir():
        return
    if kind == "cell" or kind == "header":
        try:
            rows = _rows(path)
        except (UnicodeDecodeError, OSError, ValueError):
            return
        if not rows:
            return
        if kind == "cell":
            _, _, r, c, value = edit
            row = rows[1 + r % max(len(rows) - 1, 1)] if len(rows) > 1 else rows[0]
            if row:
                row[c % len(row)] = value
        else:
            _, _, c, value = edit
            if rows[0]:
                rows[0][c % len(rows[0])] = value
        _write_rows(path, rows)
    elif kind == "encoding":
        data = path.read_bytes()
        how = edit[2]
        if how == "truncate":
            path.write_bytes(data[: len(data) // 2])
        elif how == "garbage":
            path.write_bytes(data[:50] + bytes(range(256)) + data[50:])
        elif how == "empty":
            path.write_bytes(b"")
        elif how == "nul":
            path.write_bytes(data.replace(b",", b",\x00", 3))
        else:
            text = data.decode("utf-8", errors="replace")
            path.write_bytes(text.encode(how, errors="replace"))
    elif kind == "geometry":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            feats = data["features"]
            chosen = feats if edit[4] else [feats[edit[2] % len(feats)]]  # every feature, or one
        except (ValueError, KeyError, ZeroDivisionError, UnicodeDecodeError, TypeError):
            return
        for feat in chosen:
            feat["geometry"] = _geometry(edit[3], feat.get("geometry"))
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    elif kind == "property":
        _, _, f, k, value, rename = edit
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            props = data["features"][f % len(data["features"])]["properties"]
        except (ValueError, KeyError, ZeroDivisionError, UnicodeDecodeError, TypeError):
            return
        if not props:
            return
        key = sorted(props)[k % len(props)]
        if rename:
            props[str(value)] = props.pop(key)
        else:
            props[key] = value
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    elif kind == "file":
        how = edit[2]
        if how == "delete":
            path.unlink()
        elif how == "rename_xlsx":
            path.rename(path.with_suffix(".xlsx"))
        elif how == "rename_txt":
            path.rename(path.with_suffix(".txt"))
        elif how == "dir":
            path.unlink()
            path.mkdir()
        elif how == "zip":
            import zipfile

            with zipfile.ZipFile(path.with_suffix(".xlsx"), "w") as zf:
                zf.write(path, path.name)
            path.unlink()


# ----------------------------------------------------------------------------- the property

@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(changes=edits)
def test_corrupted_county_exits_0_or_2_never_a_traceback(template, changes):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "county"
        shutil.copytree(template, folder)
        args = ["plan", str(folder), "--out", str(Path(tmp) / "out"), "--no-map"]
        for edit in changes:
            apply(folder, edit, args)
        res = CliRunner().invoke(main, args)
        crash = ""
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            crash = "".join(traceback.format_exception(res.exception))
        assert not crash, f"crash for {changes!r}:\n{crash}"
        assert res.exit_code in (0, 2), f"exit {res.exit_code} for {changes!r}:\n{res.output}"
        assert "Traceback" not in res.output
        if res.exit_code == 2:
            assert res.output.strip(), f"exit 2 without a message for {changes!r}"
            assert not (Path(tmp) / "out").exists() or not any((Path(tmp) / "out").iterdir())
