"""The GeoPackage plan store: versions, refs, history CLI, plan --store."""

from __future__ import annotations

import pytest
from _plan_fixtures import small_county
from click.testing import CliRunner

import gridplan
from gridplan import InputError
from gridplan.cli import main
from gridplan.replan.store import list_versions, load_snapshot, save_version


@pytest.fixture(scope="module")
def plans():
    c = small_county()
    return gridplan.plan(c, capacity=1000), gridplan.plan(c, capacity=1500)


def test_versions_are_numbered_and_read_back(tmp_path, plans):
    store = tmp_path / "plans.gpkg"
    assert save_version(plans[0], store, note="第一版") == 1
    assert save_version(plans[1], store, note="扩容") == 2
    v = list_versions(store)
    assert v["version"].tolist() == [1, 2]
    assert v["note"].tolist() == ["第一版", "扩容"]
    assert v["params"][1]["capacity"] == 1500
    assert v["timestamp"][0].endswith("+00:00")
    for ref, p in ((f"{store}#1", plans[0]), (f"{store}#latest", plans[1]), (store, plans[1])):
        s = load_snapshot(ref)
        got = s.assignments.set_index("transformer_id")["manager_id"]
        want = p.transformers.set_index("transformer_id")["manager_id"]
        assert (got.loc[want.index] == want).all()
        assert len(s.grids) == len(p.grids)
        assert s.crs == p.crs


def test_bad_refs_are_input_errors(tmp_path, plans):
    store = tmp_path / "plans.gpkg"
    save_version(plans[0], store)
    with pytest.raises(InputError, match="no version '7'"):
        load_snapshot(f"{store}#7")
    with pytest.raises(InputError, match="not found"):
        load_snapshot(tmp_path / "missing.gpkg")
    plans[0].to_file(tmp_path / "p", map_html=False, roster=False)
    with pytest.raises(InputError, match="not a gridplan plan store"):
        save_version(plans[0], tmp_path / "p" / "plan.gpkg")


@pytest.mark.slow
def test_plan_store_and_history_cli(tmp_path):
    from countygen import make_county_dir

    folder = make_county_dir(tmp_path)
    store = tmp_path / "plans.gpkg"
    run = CliRunner()
    for note in ("初稿", "复核"):
        r = run.invoke(main, ["plan", str(folder), "-o", str(tmp_path / note), "--no-map", "-q",
                              "--store", str(store), "--note", note])
        assert r.exit_code == 0, r.output
    r = run.invoke(main, ["history", str(store)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("版本") and "初稿" in lines[1] and "复核" in lines[2]
    assert lines[1].split()[-2] == lines[2].split()[-2]  # same inputs, same fingerprint
    r = run.invoke(main, ["diff", f"{store}#1", f"{store}#2"])
    assert r.exit_code == 0 and "改派台区 0 个" in r.output, r.output
    r = run.invoke(main, ["history", str(tmp_path / "初稿" / "plan.gpkg")])
    assert r.exit_code == 2
