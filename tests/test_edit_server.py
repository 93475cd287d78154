"""The editor's HTTP API (Starlette TestClient; no network): every operation, refusal and check.

Security: token, Host, Origin, body size, content type, field validation; errors are JSON with a
Chinese message, never a 500. Versions: save, stale save refused with nothing lost, then
`gridplan history` lists the version and `gridplan diff` lists exactly the edited 台区.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import gridplan
from gridplan.cli import main
from gridplan.edit.server import MAX_BODY, create_app
from gridplan.edit.session import JOURNAL_NAME, EditSession

starlette = pytest.importorskip("starlette")
from starlette.testclient import TestClient

SAMPLE = Path(__file__).resolve().parents[1] / "geodata" / "sample"
pytestmark = pytest.mark.skipif(not (SAMPLE / "transformers.csv").exists(), reason="geodata/sample not present")
PORT = 8799
TOKEN = "test-token-0123456789"
H = {"X-Gridplan-Token": TOKEN}


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edit")
    p = gridplan.plan(gridplan.load_county(SAMPLE))
    p.to_file(tmp / "plan", map_html=False, roster=False)
    return tmp


@pytest.fixture
def served(planned, tmp_path):
    from gridplan.pipeline import read_plan

    p = read_plan(planned / "plan")
    store = tmp_path / "plans.gpkg"
    session = EditSession(p, store=store, label="sample", export_dir=tmp_path / "export")
    app = create_app(session, token=TOKEN, port=PORT)
    client = TestClient(app, base_url=f"http://127.0.0.1:{PORT}", raise_server_exceptions=False)
    return client, session, tmp_path


def _move(state, *, offset: int = 0):
    """(transformer id, manager id of a neighbouring grid of the same township) from the state."""
    t = state["transformers"]
    grids = {f["id"]: f["properties"] for f in state["grids"]["features"]}
    by_town: dict[str, list[int]] = {}
    for i, town in enumerate(t["township_id"]):
        by_town.setdefault(town, []).append(i)
    found = 0
    for town, rows in sorted(by_town.items()):
        gids = sorted({t["grid_id"][i] for i in rows})
        if len(gids) < 2:
            continue
        xy = np.array([[t["lon"][i], t["lat"][i]] for i in rows])
        for a in rows:
            others = [r for r in rows if t["grid_id"][r] != t["grid_id"][a]]
            if not others:
                continue
            d = np.hypot(*(np.array([[t["lon"][r], t["lat"][r]] for r in others]) - [t["lon"][a], t["lat"][a]]).T)
            b = others[int(np.argmin(d))]
            if found == offset:
                return t["transformer_id"][a], grids[t["grid_id"][b]]["manager_id"]
            found += 1
        del xy
    raise AssertionError("no move found")


def test_state_follows_the_contract(served):
    client, session, _ = served
    r = client.get("/api/state", headers=H)
    assert r.status_code == 200
    s = r.json()
    assert {"county_name", "params", "stations", "townships", "villages", "managers", "grids", "transformers",
            "kpi", "history", "store", "dirty"} <= set(s)
    assert set(s["params"]) == {"capacity", "tolerance", "scope", "workload"}
    f = s["grids"]["features"][0]
    assert {"grid_id", "manager_id", "manager_name", "phone", "station_id", "township_id", "workload", "capacity",
            "customers", "n_transformers", "hv_km", "locked", "parts", "contiguous", "over_capacity",
            "beyond_commitment"} <= set(f["properties"])
    lon, lat = np.array(f["geometry"]["coordinates"][0] if f["geometry"]["type"] == "Polygon"
                        else f["geometry"]["coordinates"][0][0]).T
    assert 100 < lon.min() < 130 and 20 < lat.min() < 50  # WGS84
    t = s["transformers"]
    n = len(session.current.transformers)
    for k in ("transformer_id", "name", "lon", "lat", "township_id", "grid_id", "manager_id", "customers",
              "workload", "beyond_commitment"):
        assert len(t[k]) == n
    assert {"cv", "max_mean", "min_mean", "over_capacity", "non_contiguous", "township_coverage",
            "village_coverage"} <= set(s["kpi"])
    assert s["history"] == {"can_undo": False, "can_redo": False, "steps": 0, "position": 0}
    assert s["dirty"] is False and s["store"]["version"] is None
    # the panel's numbers: each grid's households equal the sum over its 台区
    per = pd.DataFrame({"g": t["grid_id"], "c": t["customers"]}).groupby("g")["c"].sum()
    for feat in s["grids"]["features"]:
        assert feat["properties"]["customers"] == per.get(feat["id"], 0)


def test_reassign_undo_redo_over_http(served):
    client, session, tmp = served
    s0 = client.get("/api/state", headers=H).json()
    tid, mid = _move(s0)
    r = client.post("/api/reassign", headers=H, json={"transformer_ids": [tid], "manager_id": mid})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["transformers"][tid]["manager_id"] == mid
    assert list(d["transformers"]) == [tid]
    assert d["history"]["can_undo"] and d["dirty"]
    assert d["kpi"]["moved_transformers"] == 1
    assert all(f["properties"]["grid_id"] == f["id"] for f in d["grids"]["features"])
    assert (tmp / JOURNAL_NAME).exists()  # journaled after the step
    r = client.post("/api/undo", headers=H)
    assert r.status_code == 200
    assert r.json()["transformers"][tid]["manager_id"] == s0["transformers"]["manager_id"][
        s0["transformers"]["transformer_id"].index(tid)]
    s1 = client.get("/api/state", headers=H).json()
    assert s1["grids"] == s0["grids"] and s1["transformers"] == s0["transformers"] and s1["kpi"] == s0["kpi"]
    assert not (tmp / JOURNAL_NAME).exists()  # nothing unsaved any more
    assert client.post("/api/undo", headers=H).status_code == 409
    assert client.post("/api/redo", headers=H).json()["transformers"][tid]["manager_id"] == mid
    assert client.post("/api/redo", headers=H).status_code == 409


def test_refusals_are_4xx_json_with_reasons(served):
    client, session, _ = served
    s = client.get("/api/state", headers=H).json()
    t = s["transformers"]
    tid, mid = _move(s)
    i = t["transformer_id"].index(tid)
    other_town = next(j for j in range(len(t["transformer_id"]))
                      if t["township_id"][j] != t["township_id"][i] and t["station_id"][j] == t["station_id"][i])
    cases = [
        ({"transformer_ids": [tid], "manager_id": "NOBODY"}, 404, "unknown_manager"),
        ({"transformer_ids": ["NO-SUCH"], "manager_id": mid}, 404, "unknown_transformer"),
        ({"transformer_ids": [t["transformer_id"][other_town]], "manager_id": mid}, 409, "cross_township"),
        ({"transformer_ids": [], "manager_id": mid}, 400, "bad_request"),
        ({"transformer_ids": tid, "manager_id": mid}, 400, "bad_request"),
        ({"transformer_ids": [1, 2], "manager_id": mid}, 400, "bad_request"),
        ({"transformer_ids": [tid], "manager_id": 7}, 400, "bad_request"),
        ({"transformer_ids": [tid]}, 400, "bad_request"),
        ({"transformer_ids": [tid], "manager_id": mid, "extra": 1}, 400, "bad_request"),
        ({"transformer_ids": [tid, tid], "manager_id": mid}, 400, "bad_request"),
    ]
    for body, status, code in cases:
        r = client.post("/api/reassign", headers=H, json=body)
        assert r.status_code == status, (body, r.text)
        e = r.json()
        assert e["code"] == code and e["error"] and "Traceback" not in r.text
    r = client.post("/api/reassign", headers=H,
                    json={"transformer_ids": [t["transformer_id"][other_town]], "manager_id": mid})
    assert "跨乡镇" in r.json()["error"]
    # locked grid
    g = t["grid_id"][i]
    assert client.post("/api/lock", headers=H, json={"grid_ids": [g], "locked": True}).status_code == 200
    r = client.post("/api/reassign", headers=H, json={"transformer_ids": [tid], "manager_id": mid})
    assert r.status_code == 409 and r.json()["code"] == "locked"
    assert client.post("/api/lock", headers=H, json={"grid_ids": ["NOPE"], "locked": True}).status_code == 404
    assert client.post("/api/lock", headers=H, json={"grid_ids": [g], "locked": "yes"}).status_code == 400
    # other endpoints' validation
    bad = [("/api/rebalance", {}), ("/api/rebalance", {"township_id": "T01", "station_id": "S01"}),
           ("/api/rebalance", {"station_id": 5}), ("/api/rebalance", {"station_id": "S01", "stability": -1}),
           ("/api/rebalance/accept", {"preview_id": "nope"}), ("/api/rebalance/discard", {}),
           ("/api/save", {"note": 5}), ("/api/save", {"base_version": "1"}), ("/api/open", {"version": 99}),
           ("/api/open", {"version": True}), ("/api/export", {"what": "pdf"}),
           ("/api/export", {"what": "wallmap", "station_id": "NOPE"}), ("/api/recovery", {"action": "x"}),
           ("/api/undo", {"x": 1}), ("/api/rebalance", {"township_id": "NOPE"})]
    for path, body in bad:
        r = client.post(path, headers=H, json=body)
        assert 400 <= r.status_code < 500, (path, body, r.status_code, r.text)
        assert r.json()["error"]
    assert client.get("/api/compare?version=abc", headers=H).status_code == 400
    assert client.get("/api/compare?version=3", headers=H).status_code == 404
    assert client.get("/api/nothing", headers=H).status_code == 404
    assert client.get("/api/reassign", headers=H).status_code == 405
    assert client.get("/api/download/..%2Fplans.gpkg", headers=H).status_code == 404


def test_security_checks(served):
    client, session, _ = served
    assert client.get("/api/state").status_code == 401
    assert client.get("/api/state", headers={"X-Gridplan-Token": "wrong"}).status_code == 403
    # the token in the query or cookie is not enough for the API (a custom header is required)
    assert client.get(f"/api/state?token={TOKEN}").status_code == 401
    assert client.get("/api/state", headers={**H, "Host": "evil.example:8799"}).status_code == 400
    assert client.get("/api/state", headers={**H, "Host": f"127.0.0.1:{PORT + 1}"}).status_code == 400
    assert client.get("/api/state", headers={**H, "Host": f"localhost:{PORT}"}).status_code == 200
    assert client.post("/api/undo", headers={**H, "Origin": "http://evil.example"}).status_code == 403
    assert client.post("/api/undo", headers={**H, "Origin": "null"}).status_code == 403
    assert client.post("/api/undo", headers={**H, "Sec-Fetch-Site": "cross-site"}).status_code == 403
    r = client.post("/api/undo", headers={**H, "Origin": f"http://127.0.0.1:{PORT}"})
    assert r.status_code == 409  # allowed through; nothing to undo
    big = json.dumps({"transformer_ids": ["x" * 100] * (MAX_BODY // 100), "manager_id": "M"})
    r = client.post("/api/reassign", headers={**H, "Content-Type": "application/json"}, content=big)
    assert r.status_code == 413 and r.json()["code"] == "too_large"

    def chunks():
        for _ in range(30):
            yield b" " * 50_000
    r = client.post("/api/reassign", headers={**H, "Content-Type": "application/json"}, content=chunks())
    assert r.status_code == 413  # streamed without a Content-Length
    r = client.post("/api/reassign", headers={**H, "Content-Type": "text/plain"}, content=b'{"a": 1}')
    assert r.status_code == 415
    r = client.post("/api/reassign", headers={**H, "Content-Type": "application/json"}, content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]
    r = client.post("/api/reassign", headers={**H, "Content-Type": "application/json"}, content=b"[1, 2]")
    assert r.status_code == 400
    r = client.post("/api/reassign", headers={**H, "Content-Type": "application/json"}, content=b"\xff\xfe")
    assert r.status_code == 400
    # the page and its assets: token in the query (sets an HttpOnly cookie) or the cookie
    assert client.get("/").status_code == 401
    assert client.get("/static/app.js").status_code == 401
    r = client.get("/api/state", headers=H)
    assert r.headers["x-content-type-options"] == "nosniff" and "default-src 'self'" in r.headers[
        "content-security-policy"]
    assert r.headers["cache-control"] == "no-store"


def test_page_sets_the_cookie_and_serves_assets(served, tmp_path):
    _, session, _ = served
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>编辑</title>", encoding="utf-8")
    (static / "app.js").write_text("console.log(1)", encoding="utf-8")
    client = TestClient(create_app(session, token=TOKEN, port=PORT, static_dir=static),
                        base_url=f"http://127.0.0.1:{PORT}")
    r = client.get(f"/?token={TOKEN}")
    assert r.status_code == 200 and "编辑" in r.text
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    assert client.get("/static/app.js").status_code == 200  # the cookie now
    assert client.get("/static/missing.js").status_code == 404


def test_internal_errors_are_generic_and_bad_input_never_reaches_them(served, monkeypatch, caplog):
    client, session, _ = served
    calls = []
    import gridplan.edit.server as srv

    real = srv.log.error
    monkeypatch.setattr(srv.log, "error", lambda *a, **k: (calls.append(a), real(*a, **k)))
    for body in ({"transformer_ids": [None], "manager_id": "x"}, {"transformer_ids": [{"a": 1}], "manager_id": []},
                 {"grid_ids": [["x"]]}, {"transformer_ids": ["x"] * 20_001, "manager_id": "M"}):
        for path in ("/api/reassign", "/api/lock"):
            r = client.post(path, headers=H, json=body)
            assert 400 <= r.status_code < 500, (path, body, r.text)
    assert calls == []  # the catch-all handler was never reached by bad input
    monkeypatch.setattr(session, "versions", lambda: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="gridplan.edit.server"):
        r = client.get("/api/versions", headers=H)
    assert r.status_code == 500 and r.json()["code"] == "internal"
    assert "ZeroDivision" not in r.text and "Traceback" not in r.text
    assert calls


def test_save_stale_history_and_diff(served):
    client, session, tmp = served
    store = tmp / "plans.gpkg"
    r = client.post("/api/save", headers=H, json={"note": "初始", "base_version": None})
    assert r.status_code == 200 and r.json()["version"] == 1
    s = client.get("/api/state", headers=H).json()
    edited = []
    for k in range(3):
        tid, mid = _move(s, offset=7 * k)
        r = client.post("/api/reassign", headers=H, json={"transformer_ids": [tid], "manager_id": mid})
        if r.status_code == 200:
            edited.append(tid)
        s = client.get("/api/state", headers=H).json()
    assert edited
    # another editor saves first
    from gridplan.replan.store import save_version

    save_version(session.history.steps[0].plan, store, note="另一位编辑者")
    before = client.get("/api/state", headers=H).json()
    r = client.post("/api/save", headers=H, json={"note": "我的调整", "base_version": 1})
    assert r.status_code == 409 and r.json()["code"] == "stale"
    assert "第 2 版" in r.json()["error"]
    after = client.get("/api/state", headers=H).json()
    assert after["transformers"] == before["transformers"] and after["dirty"]  # nothing lost
    r = client.post("/api/save", headers=H, json={"note": "我的调整", "base_version": 2})
    assert r.status_code == 200 and r.json()["version"] == 3
    versions = client.get("/api/versions", headers=H).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3] and versions[2]["note"] == "我的调整"
    cmp = client.get("/api/compare?version=1", headers=H).json()
    assert set(cmp["changed"]) == set(edited) and cmp["managers"]
    out = CliRunner().invoke(main, ["history", str(store)])
    assert out.exit_code == 0 and "我的调整" in out.output
    diff_dir = tmp / "diff"
    out = CliRunner().invoke(main, ["diff", f"{store}#1", f"{store}#3", "--out", str(diff_dir), "--no-map"])
    assert out.exit_code == 0, out.output
    changes = pd.read_csv(diff_dir / "changes.csv", encoding="utf-8-sig", dtype=str)
    assert set(changes["台区编号"]) == set(edited)
    # open version 1 again: the edits are undone as one step
    r = client.post("/api/open", headers=H, json={"version": 1})
    assert r.status_code == 200 and not r.json()["dirty"]
    back = r.json()["transformers"]
    first = session.history.steps[0].plan.transformers
    assert back["manager_id"] == first["manager_id"].astype(str).tolist()


def test_rebalance_preview_accept_discard(served):
    client, session, _ = served
    s = client.get("/api/state", headers=H).json()
    tid, mid = _move(s)
    client.post("/api/reassign", headers=H, json={"transformer_ids": [tid], "manager_id": mid})
    i = s["transformers"]["transformer_id"].index(tid)
    town = s["transformers"]["township_id"][i]
    r = client.post("/api/rebalance", headers=H, json={"township_id": town})
    assert r.status_code == 200, r.text
    pv = r.json()
    assert {"preview_id", "changes", "kpi_before", "kpi_after", "grids"} <= set(pv)
    assert all(c["transformer_id"] != tid for c in pv["changes"])  # the edit is held as a pin
    assert client.get("/api/state", headers=H).json()["history"]["steps"] == 1  # a preview changes nothing
    assert client.post("/api/rebalance/discard", headers=H, json={"preview_id": pv["preview_id"]}).json() == {
        "discarded": True}
    assert client.post("/api/rebalance/accept", headers=H, json={"preview_id": pv["preview_id"]}).status_code == 404
    pv = client.post("/api/rebalance", headers=H, json={"township_id": town}).json()
    r = client.post("/api/rebalance/accept", headers=H, json={"preview_id": pv["preview_id"]})
    assert r.status_code == 200
    assert r.json()["kpi"] == pv["kpi_after"]
    changed = {c["transformer_id"]: c["to_manager"] for c in pv["changes"]}
    for t, m in changed.items():
        assert r.json()["transformers"][t]["manager_id"] == m
    assert r.json()["history"]["steps"] == 2


def test_recovery_journal_replays_unsaved_edits(served, planned):
    from gridplan.pipeline import read_plan

    client, session, tmp = served
    s = client.get("/api/state", headers=H).json()
    tid, mid = _move(s)
    client.post("/api/reassign", headers=H, json={"transformer_ids": [tid], "manager_id": mid})
    g = s["grids"]["features"][0]["id"]
    client.post("/api/lock", headers=H, json={"grid_ids": [g], "locked": True})
    want = session.current
    journal = json.loads((tmp / JOURNAL_NAME).read_text(encoding="utf-8"))
    assert [o["op"] for o in journal["ops"]] == ["reassign", "lock"]
    # a new start (after a crash) offers the journal and replays it
    again = EditSession(read_plan(planned / "plan"), store=tmp / "plans.gpkg", label="sample")
    assert again.recovery and len(again.recovery["ops"]) == 2
    assert again.recover() == 2
    pd.testing.assert_series_equal(again.current.transformers["manager_id"], want.transformers["manager_id"])
    assert again.current.grids.set_index("grid_id").loc[g, "locked"]
    other = EditSession(read_plan(planned / "plan"), store=tmp / "plans.gpkg", label="another plan")
    assert other.recovery is None  # a journal of another plan is not offered


def test_export_writes_new_files_with_gridplan_writers(served):
    client, session, tmp = served
    s = client.get("/api/state", headers=H).json()
    tid, mid = _move(s)
    client.post("/api/reassign", headers=H, json={"transformer_ids": [tid], "manager_id": mid})
    r = client.post("/api/export", headers=H, json={"what": "roster"})
    assert r.status_code == 200, r.text
    first = Path(r.json()["path"])
    assert first.exists() and first.suffix == ".xlsx"
    r2 = client.post("/api/export", headers=H, json={"what": "roster"})
    assert Path(r2.json()["path"]) != first and first.exists()  # never over an existing file
    r = client.post("/api/export", headers=H, json={"what": "plan"})
    plan_dir = Path(r.json()["path"])
    from gridplan.pipeline import read_plan

    q = read_plan(plan_dir)
    assert q.transformers.set_index("transformer_id").loc[tid, "manager_id"] == mid
    d = client.get(f"/api/download/{first.name}", headers=H)
    assert d.status_code == 200 and d.content[:2] == b"PK"



def test_export_map_and_wallmap_of_the_current_state_through_the_output_writer(served):
    """map.html and a station's wall map are written from the current (edited) state by the output
    writer (staged, moved into place, a sidecar beside) and never replace a user's file."""
    client, session, tmp = served
    s = client.get("/api/state", headers=H).json()
    tid, mid = _move(s)
    assert client.post("/api/reassign", headers=H, json={"transformer_ids": [tid], "manager_id": mid}).status_code == 200
    export = tmp / "export"
    export.mkdir(exist_ok=True)
    mine = export / "我的笔记.html"
    mine.write_text("planner's own file", encoding="utf-8")
    r = client.post("/api/export", headers=H, json={"what": "map"})
    assert r.status_code == 200, r.text
    page = Path(r.json()["path"])
    assert page.parent == export and page.suffix == ".html" and r.json()["download"]
    assert (export / f".{page.name}.gridplan.json").is_file()  # written by gridplan's output writer
    html = page.read_text(encoding="utf-8")
    name = str(session.current.managers.set_index("manager_id").loc[mid, "name"])
    assert name in html or json.dumps(name)[1:-1] in html  # names may be JSON-escaped in the page
    station = str(session.current.transformers.set_index("transformer_id").loc[tid, "station_id"])
    r = client.post("/api/export", headers=H, json={"what": "wallmap", "station_id": station, "size": "A3"})
    assert r.status_code == 200, r.text
    pdf = Path(r.json()["path"])
    assert pdf.read_bytes()[:5] == b"%PDF-" and station in pdf.name
    assert (export / f".{pdf.name}.gridplan.json").is_file()
    assert client.get(f"/api/download/{pdf.name}", headers=H).content[:5] == b"%PDF-"
    assert mine.read_text(encoding="utf-8") == "planner's own file"
    assert not [p for p in export.iterdir() if "gridplan-tmp" in p.name]  # no staging left


def test_two_editors_racing_to_save_one_wins_the_other_keeps_its_edits(planned, tmp_path):
    """The base-version check and the write are one locked store transaction: of two editors
    saving at once from the same base, exactly one saves; the other is refused (stale) and keeps
    every edit, and can then save deliberately on top of the winner."""
    import threading

    from gridplan.edit.ops import EditRefused
    from gridplan.pipeline import read_plan
    from gridplan.replan.store import list_versions

    store = tmp_path / "plans.gpkg"
    sessions = [EditSession(read_plan(planned / "plan"), store=store, label=f"editor{i}",
                            export_dir=tmp_path / f"export{i}") for i in range(2)]
    for k, s in enumerate(sessions):
        client = TestClient(create_app(s, token=TOKEN, port=PORT), base_url=f"http://127.0.0.1:{PORT}")
        tid, mid = _move(client.get("/api/state", headers=H).json(), offset=5 * k)
        s.reassign([tid], mid)
    snaps = [(s.history.position, s.current.transformers.copy()) for s in sessions]
    go = threading.Barrier(2)
    results: list[object] = [None, None]

    def save(i: int) -> None:
        go.wait()
        try:
            results[i] = sessions[i].save(f"编辑者{i}", None)
        except EditRefused as exc:
            results[i] = exc

    threads = [threading.Thread(target=save, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    won = [i for i in range(2) if isinstance(results[i], int)]
    lost = [i for i in range(2) if isinstance(results[i], EditRefused)]
    assert len(won) == 1 and len(lost) == 1, results
    refusal = results[lost[0]]
    assert isinstance(refusal, EditRefused) and refusal.code == "stale" and refusal.status == 409
    assert list(list_versions(store)["version"]) == [1]
    loser = sessions[lost[0]]
    pos, tr = snaps[lost[0]]
    assert loser.history.position == pos and loser.dirty  # nothing lost
    pd.testing.assert_frame_equal(loser.current.transformers, tr)
    assert loser.save("在第 1 版之上", 1) == 2
    assert list(list_versions(store)["version"]) == [1, 2]


def test_an_edit_reports_its_phases_in_a_server_timing_header(served):
    client, session, tmp = served
    s = client.get("/api/state", headers=H).json()
    tid, mid = _move(s)
    r = client.post("/api/reassign", headers=H, json={"transformer_ids": [tid], "manager_id": mid})
    assert r.status_code == 200, r.text
    phases = {p.split(";")[0].strip(): p for p in r.headers["Server-Timing"].split(",")}
    assert {"parse", "queue", "edit", "journal", "delta", "json", "handler"} <= set(phases)
    assert all(";dur=" in p and 'desc="cpu ' in p for p in phases.values())
    r = client.post("/api/undo", headers=H)
    assert r.status_code == 200 and "delta;dur=" in r.headers["Server-Timing"]
    assert session.phases is None  # the recorder is the request's, not the session's


def test_the_journal_is_in_place_at_the_answer_and_flushed_in_the_background(served):
    client, session, tmp = served
    s = client.get("/api/state", headers=H).json()
    tid, mid = _move(s)
    r = client.post("/api/reassign", headers=H, json={"transformer_ids": [tid], "manager_id": mid})
    assert r.status_code == 200
    journal = json.loads((tmp / JOURNAL_NAME).read_text(encoding="utf-8"))  # before any flush
    assert journal["ops"][-1] == {"op": "reassign", "transformer_ids": [tid], "manager_id": mid}
    session.flush_journal()  # waits for the background fsync
    assert not list(tmp.glob(f".{JOURNAL_NAME}.*.tmp"))  # no temporary file left behind
    assert client.post("/api/undo", headers=H).status_code == 200
    session.flush_journal()
    assert not (tmp / JOURNAL_NAME).exists()
