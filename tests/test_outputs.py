"""Outputs that never destroy (issue #11, item 3), through the command line.

Every command that writes checks its output location before it plans: a folder that is not empty
and not an earlier gridplan output (no ``.gridplan-manifest.json``) is refused with exit status 2,
so is an output equal to, inside or above the input folder, and an unwritable location. An earlier
output is replaced by swapping in gridplan's own files only; the user's files in it are kept.
Killed runs (real ``SIGKILL`` of a subprocess at chosen points) leave nothing that the next run
does not clean up or finish, and a ``--store`` version and its folder are committed together.
Two runs on one folder or one store: the second exits 2 and names the first.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from countygen import make_county_dir

import gridplan
from gridplan.cli import main
from gridplan.files import LOCK, MANIFEST, MARKER, read_manifest

#: Hooks the subprocess runner applies before running the CLI (a real kill at a chosen point).
RUNNER = textwrap.dedent('''
    import os, signal, sys, time
    from pathlib import Path

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    hook = os.environ.get("GP_HOOK", "")
    if hook == "kill-in-plan":
        import gridplan
        gridplan.plan = lambda *a, **k: die()
    elif hook == "kill-mid-swap":
        import gridplan.files as F
        real_swap, real_replace = F._swap, os.replace
        def swap(*a, **k):
            n = [0]
            def replace(src, dst):
                n[0] += 1
                if n[0] > 2:  # the first file swapped, the second moved out of the way: kill
                    die()
                real_replace(src, dst)
            F.os.replace = replace
            real_swap(*a, **k)
        F._swap = swap
    elif hook == "kill-before-store-commit":
        import gridplan.replan.store as S
        S.StoreVersion.commit = lambda self: die()
    elif hook == "kill-after-store-rows":
        import gridplan.replan.store as S
        real_prepare = S.StoreVersion.prepare
        def prepare(self, manifest=None):
            real_prepare(self, manifest)
            die()
        S.StoreVersion.prepare = prepare
    elif hook == "kill-in-render":
        import matplotlib.figure
        matplotlib.figure.Figure.savefig = lambda *a, **k: die()
    elif hook.startswith("wait-for:"):
        import gridplan
        flag, real_load = Path(hook.split(":", 1)[1]), gridplan.load_county
        def load(*a, **k):
            t = time.time()
            while not flag.exists() and time.time() - t < 300:
                time.sleep(0.05)
            return real_load(*a, **k)
        gridplan.load_county = load
    from gridplan.cli import main
    main(sys.argv[1:], prog_name="gridplan")
''')


def run(*args: object) -> object:
    """The CLI in-process (stdout and stderr both in ``result.output``)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def run_sub(tmp: Path, *args: object, hook: str = "", cwd: Path | None = None,
            wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    """The CLI in a subprocess with a hook (see RUNNER)."""
    script = tmp / "_runner.py"
    if not script.exists():
        script.write_text(RUNNER, encoding="utf-8")
    env = {**os.environ, "GP_HOOK": hook}
    cmd = [sys.executable, str(script), *[str(a) for a in args]]
    if not wait:
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600,
                          check=False)


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with its sha256."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != MANIFEST)


def assert_consistent(out: Path) -> dict:
    """The folder's gridplan files are exactly those of its manifest, with their checksums."""
    manifest = read_manifest(out)
    assert manifest is not None and manifest["complete"]
    have = tree(out)
    for rel, info in manifest["files"].items():
        assert have.get(rel) == info["sha256"], rel
    return manifest


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> Path:
    return make_county_dir(tmp_path_factory.mktemp("outputs"))


@pytest.fixture(scope="module")
def planned(county, tmp_path_factory) -> Path:
    """One plan output (with map) made by the CLI, to copy from."""
    out = tmp_path_factory.mktemp("planned") / "plan"
    res = run("plan", county, "--out", out, "-q")
    assert res.exit_code == 0, res.output
    return out


def copy_output(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- refusals

def test_foreign_folder_is_refused_and_untouched(county, tmp_path, monkeypatch):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.docx").write_bytes(b"the user's work")
    (out / "photos").mkdir()
    (out / "photos" / "a.jpg").write_bytes(b"jpg")
    before = tree(out)
    monkeypatch.setattr(gridplan, "load_county", _never)
    res = run("plan", county, "--out", out)
    assert res.exit_code == 2, res.output
    assert "not an earlier gridplan output" in res.output and MANIFEST in res.output
    assert "report.docx" in res.output and "fix:" in res.output and "Traceback" not in res.output
    assert tree(out) == before and sorted(p.name for p in out.iterdir()) == ["photos", "report.docx"]


def _never(*args, **kwargs):
    raise AssertionError("planning must not start when the output location is refused")


@pytest.mark.parametrize("where", ["equal", "inside", "above"])
def test_out_equal_inside_or_above_the_county_is_refused(county, where, monkeypatch):
    out = {"equal": county, "inside": county / "out", "above": county.parent}[where]
    before = tree(county.parent)
    monkeypatch.setattr(gridplan, "load_county", _never)
    res = run("plan", county, "--out", out)
    assert res.exit_code == 2, res.output
    assert {"equal": "is the input folder", "inside": "is inside the input folder",
            "above": "contains the input folder"}[where] in res.output
    assert tree(county.parent) == before and not (county / "out").exists()


def test_other_commands_refuse_foreign_and_input_folders(county, planned, tmp_path, monkeypatch):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x", encoding="utf-8")
    monkeypatch.setattr(gridplan, "load_county", _never)
    province = tmp_path / "province"
    (province / "c1").mkdir(parents=True)
    (province / "c1" / "townships.geojson").write_text("{}", encoding="utf-8")
    cases = [
        ("diff", planned, planned, "--out", foreign),
        ("merge", county, "--stations", "S1,S2", "--out", foreign),
        ("merge", county, "--stations", "S1,S2", "--out", county / "m"),
        ("merge-candidates", county, "--out", foreign),
        ("merge-candidates", county, "--out", county.parent),
        ("plan-many", province, "--out", foreign),
        ("plan-many", province, "--out", province / "out"),
        ("diff", planned, planned, "--out", planned),  # a plan output is not a diff output
    ]
    for args in cases:
        before = tree(tmp_path)
        res = run(*args)
        assert res.exit_code == 2, (args, res.output)
        assert "output location cannot be used" in res.output and "Traceback" not in res.output
        assert tree(tmp_path) == before, args
    assert not (county / "m").exists() and not (province / "out").exists()


def test_unwritable_location_fails_before_planning(county, tmp_path, monkeypatch):
    monkeypatch.setattr(gridplan, "load_county", _never)
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    targets = [blocker / "out", blocker]
    if not os.access("/sys", os.W_OK) or not _can_mkdir(Path("/sys")):
        targets.append(Path("/sys/gridplan-test-out"))  # sysfs: creating a folder is refused
    if os.geteuid() != 0:
        ro = tmp_path / "read-only"
        ro.mkdir()
        ro.chmod(0o555)
        targets.append(ro / "out")
        targets.append(ro)
    for out in targets:
        res = run("plan", county, "--out", out)
        assert res.exit_code == 2, (out, res.output)
        assert "Traceback" not in res.output and "fix:" in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) in (["a-file"], ["a-file", "read-only"])


def _can_mkdir(parent: Path) -> bool:
    probe = parent / f"gridplan-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    probe.rmdir()
    return True


def test_store_that_is_not_a_store_or_a_folder_is_refused(county, tmp_path, monkeypatch):
    monkeypatch.setattr(gridplan, "load_county", _never)
    (tmp_path / "notes.gpkg").write_bytes(b"not sqlite")
    for store in (tmp_path, tmp_path / "notes.gpkg", tmp_path / "o" / "plan.gpkg"):
        res = run("plan", county, "--out", tmp_path / "o", "--store", store)
        assert res.exit_code == 2, (store, res.output)
        assert "Traceback" not in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.gpkg"]


# ----------------------------------------------------------------------------- replacing

def test_out_dot_when_empty_then_when_an_output_then_when_foreign(county, tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    res = run("plan", county, "--out", ".", "--no-map", "-q")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in here.iterdir()) == [MANIFEST, "kpi.json", "plan.gpkg", "roster.xlsx"]
    assert_consistent(here)
    res = run("plan", county, "--out", ".", "--no-map", "-q")  # an earlier output: replaced
    assert res.exit_code == 0, res.output
    assert hidden_leftovers(here) == [] and sorted(tmp_path.iterdir()) == [here]

    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("x", encoding="utf-8")
    monkeypatch.chdir(other)
    res = run("plan", county, "--out", ".", "--no-map")
    assert res.exit_code == 2 and "not an earlier gridplan output" in res.output
    assert [p.name for p in other.iterdir()] == ["x.txt"]  # no hidden folder left


def test_rerun_replaces_only_gridplan_files_and_keeps_the_users(county, planned, tmp_path):
    out = copy_output(planned, tmp_path / "out")
    (out / "notes.txt").write_text("my notes", encoding="utf-8")
    (out / "S1.pdf").write_bytes(b"%PDF- a wall map printed earlier")
    first = read_manifest(out)
    assert set(first["files"]) == {"plan.gpkg", "kpi.json", "roster.xlsx", "map.html"}
    assert first["command"] == "gridplan plan" and first["tool"] == "gridplan"

    res = run("plan", county, "--out", out, "--no-map", "--capacity", 700, "-q")
    assert res.exit_code == 0, res.output
    manifest = assert_consistent(out)
    assert set(manifest["files"]) == {"plan.gpkg", "kpi.json", "roster.xlsx"}
    assert not (out / "map.html").exists()  # gridplan's, no longer written: removed
    assert (out / "notes.txt").read_text(encoding="utf-8") == "my notes"
    assert (out / "S1.pdf").read_bytes() == b"%PDF- a wall map printed earlier"
    assert manifest["files"]["kpi.json"]["sha256"] != first["files"]["kpi.json"]["sha256"]
    assert hidden_leftovers(out) == []


def _plan_without_loading(monkeypatch, county, out):
    """``gridplan plan COUNTY --out OUT`` where loading the county fails the test: the refusal
    must come from the output checks, before any planning."""
    with monkeypatch.context() as m:
        m.setattr(gridplan, "load_county", _never)
        return run("plan", county, "--out", out)


def test_changed_outputs_and_user_files_named_like_outputs(county, planned, tmp_path, monkeypatch):
    out = copy_output(planned, tmp_path / "out")
    (out / "kpi.json").write_text('{"edited": "by the user"}', encoding="utf-8")
    res = _plan_without_loading(monkeypatch, county, out)
    assert res.exit_code == 2 and "kpi.json" in res.output and "--force" in res.output
    assert (out / "kpi.json").read_text(encoding="utf-8") == '{"edited": "by the user"}'
    res = run("plan", county, "--out", out, "--force", "--no-map", "-q")
    assert res.exit_code == 0, res.output
    assert_consistent(out)

    # map.html is no longer gridplan's (last run had --no-map); the user puts their own there
    (out / "map.html").write_text("<html>the user's own map</html>", encoding="utf-8")
    res = _plan_without_loading(monkeypatch, county, out)
    assert res.exit_code == 2 and "map.html" in res.output and "not written by gridplan" in res.output
    assert (out / "map.html").read_text(encoding="utf-8") == "<html>the user's own map</html>"


def test_a_diff_output_is_replaced_and_the_users_files_kept(planned, tmp_path):
    out = tmp_path / "d"
    assert run("diff", planned, planned, "--out", out, "--basemap", "none").exit_code == 0
    (out / "mine.csv").write_text("a,b\n", encoding="utf-8")
    res = run("diff", planned, planned, "--out", out, "--no-map")
    assert res.exit_code == 0, res.output
    manifest = assert_consistent(out)
    assert manifest["command"] == "gridplan diff" and "diff.html" not in manifest["files"]
    assert not (out / "diff.html").exists() and (out / "mine.csv").read_text() == "a,b\n"


# ----------------------------------------------------------------------------- kills

def test_killed_while_planning_leaves_only_marked_leftovers_the_next_run_removes(county, tmp_path):
    out = tmp_path / "out"
    proc = run_sub(tmp_path, "plan", county, "--out", out, "--no-map", hook="kill-in-plan")
    assert proc.returncode == -9, proc.stderr
    left = [p for p in out.iterdir() if p.name.startswith(".gridplan-tmp-")]
    assert len(left) == 1 and (left[0] / MARKER).is_file()
    assert not [p for p in out.iterdir() if not p.name.startswith(".")]  # no partial output

    # a staging folder of a live process is never touched
    alive = out / ".gridplan-tmp-alive"
    alive.mkdir()
    (alive / MARKER).write_text(json.dumps({"tool": "gridplan", "state": "writing", "owner": {
        "pid": os.getpid(), "host": os.uname().nodename, "start": None}}), encoding="utf-8")
    res = run("plan", county, "--out", out, "--no-map", "-q", "-v")
    assert res.exit_code == 0, res.output
    assert_consistent(out)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == sorted([
        ".gridplan-tmp-alive", MANIFEST])


def test_killed_mid_swap_is_finished_by_the_next_run(county, planned, tmp_path, caplog):
    out = copy_output(planned, tmp_path / "out")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    proc = run_sub(tmp_path, "plan", county, "--out", out, "--capacity", 700, "--no-map",
                   hook="kill-mid-swap")
    assert proc.returncode == -9, proc.stderr
    assert not (out / "kpi.json").exists() or not (out / "plan.gpkg").exists() \
        or tree(out) != tree(planned)  # really cut in the middle
    caplog.set_level("INFO", logger="gridplan")
    res = run("plan", county, "--out", out, "--capacity", 700, "--no-map", "-v")
    assert res.exit_code == 0, res.output
    assert "finished the interrupted swap" in caplog.text
    manifest = assert_consistent(out)
    assert set(manifest["files"]) == {"plan.gpkg", "kpi.json", "roster.xlsx"}
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert hidden_leftovers(out) == []


def _versions(store: Path) -> list[int]:
    from gridplan.replan.store import list_versions

    return [int(v) for v in list_versions(store)["version"]]


def test_store_version_and_folder_commit_together_across_kills(county, tmp_path):
    out, store = tmp_path / "out", tmp_path / "plans.gpkg"
    assert run("plan", county, "--out", out, "--no-map", "--store", store, "-q").exit_code == 0
    assert _versions(store) == [1] and read_manifest(out)["store"]["version"] == 1
    first = tree(out)

    # killed after the version's rows, before the folder swap: neither is committed
    proc = run_sub(tmp_path, "plan", county, "--out", out, "--no-map", "--capacity", 700,
                   "--store", store, hook="kill-after-store-rows")
    assert proc.returncode == -9, proc.stderr
    assert _versions(store) == [1]
    left = {k: v for k, v in tree(out).items() if not k.startswith((".gridplan-tmp-", LOCK))}
    assert left == first  # the lock file and staging folder of the killed run: next run removes

    # killed after the folder swap, before the store commit: the next run on the store commits it
    proc = run_sub(tmp_path, "plan", county, "--out", out, "--no-map", "--capacity", 700,
                   "--store", store, hook="kill-before-store-commit")
    assert proc.returncode == -9, proc.stderr
    assert _versions(store) == [1]
    manifest = read_manifest(out)
    assert manifest["store"]["version"] == 3  # 2 was used by the rows of the first killed run
    res = run("plan", county, "--out", tmp_path / "other", "--no-map", "--store", store, "-q")
    assert res.exit_code == 0, res.output
    assert _versions(store) == [1, 3, 4]
    res = run("diff", f"{store}#3", out / "plan.gpkg")
    assert res.exit_code == 0 and "改派台区 0 个" in res.output, res.output
    res = run("diff", f"{store}#1", out / "plan.gpkg")
    assert "改派台区 0 个" not in res.output  # version 3 really is the --capacity 700 plan


def test_store_commit_failure_rolls_the_folder_back(county, tmp_path, monkeypatch):
    out, store = tmp_path / "out", tmp_path / "plans.gpkg"
    assert run("plan", county, "--out", out, "--no-map", "--store", store, "-q").exit_code == 0
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    before = tree(out)

    def broken(self):
        raise OSError(28, "No space left on device", str(store))

    monkeypatch.setattr("gridplan.replan.store.StoreVersion.commit", broken)
    res = run("plan", county, "--out", out, "--no-map", "--capacity", 700, "--store", store)
    assert res.exit_code == 1 and "No space left on device" in res.output, res.output
    assert "Traceback" not in res.output
    assert tree(out) == before and _versions(store) == [1]


# ----------------------------------------------------------------------------- locks

def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    t = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t < seconds, "the first run never took its lock"
        time.sleep(0.05)


def test_two_runs_on_one_folder_or_one_store(county, tmp_path):
    out, store, go = tmp_path / "out", tmp_path / "plans.gpkg", tmp_path / "go"
    first = run_sub(tmp_path, "plan", county, "--out", out, "--no-map", "--store", store,
                    hook=f"wait-for:{go}", wait=False)
    try:
        _wait_for(out / LOCK, first)
        _wait_for(store.with_name(store.name + ".lock"), first)
        res = run("plan", county, "--out", out, "--no-map")
        assert res.exit_code == 2, res.output
        assert "being written by another gridplan run" in res.output
        assert f"pid {first.pid}" in res.output and "gridplan plan" in res.output
        res = run("plan", county, "--out", tmp_path / "elsewhere", "--no-map", "--store", store)
        assert res.exit_code == 2 and "plan store" in res.output and f"pid {first.pid}" in res.output
        assert not (tmp_path / "elsewhere").exists()
    finally:
        go.write_text("go", encoding="utf-8")
        _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    assert_consistent(out)
    assert _versions(store) == [1] and not (out / LOCK).exists()


def test_a_lock_file_left_by_a_killed_run_does_not_block(county, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).write_text(json.dumps({"pid": 999999, "host": "gone", "command": "gridplan plan"}),
                            encoding="utf-8")
    res = run("plan", county, "--out", out, "--no-map", "-q")
    assert res.exit_code == 0, res.output
    assert not (out / LOCK).exists()


# ----------------------------------------------------------------------------- single files

def _have_font() -> bool:
    from gridplan.render.fonts import FontNotFoundError, find_cjk_font

    try:
        find_cjk_font()
    except FontNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _have_font(), reason="no CJK font installed (apt-get install fonts-noto-cjk)")
def test_wallmap_replaces_only_its_own_unchanged_file(planned, tmp_path):
    pdf = tmp_path / "S1.pdf"
    res = run("wallmap", planned, "--station", "S1", "--size", "A3", "--out", pdf)
    assert res.exit_code == 0, res.output
    assert pdf.read_bytes()[:5] == b"%PDF-" and (tmp_path / ".S1.pdf.gridplan.json").exists()
    res = run("wallmap", planned, "--station", "S1", "--size", "A3", "--out", pdf)
    assert res.exit_code == 0, res.output  # gridplan's own, unchanged: replaced

    theirs = tmp_path / "theirs.pdf"
    theirs.write_bytes(b"%PDF- the user's")
    pdf.write_bytes(pdf.read_bytes() + b"% annotated")
    for path, why in ((theirs, "not written by gridplan"), (pdf, "changed since")):
        res = run("wallmap", planned, "--station", "S1", "--size", "A3", "--out", path)
        assert res.exit_code == 2 and why in res.output and "--force" in res.output, res.output
    assert theirs.read_bytes() == b"%PDF- the user's"
    res = run("wallmap", planned, "--station", "S1", "--size", "A3", "--out", theirs, "--force")
    assert res.exit_code == 0 and theirs.read_bytes()[:5] == b"%PDF-"
    res = run("wallmap", planned, "--station", "S1", "--out", tmp_path)
    assert res.exit_code == 2
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".S1.pdf.gridplan.json", ".theirs.pdf.gridplan.json", "S1.pdf", "theirs.pdf"]


@pytest.mark.skipif(not _have_font(), reason="no CJK font installed (apt-get install fonts-noto-cjk)")
def test_wallmap_killed_while_rendering_leaves_a_marked_leftover_the_next_run_removes(planned,
                                                                                     tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    proc = run_sub(tmp_path, "wallmap", planned, "--station", "S1", "--size", "A3", "--out",
                   maps / "S1.pdf", hook="kill-in-render")
    assert proc.returncode == -9, proc.stderr
    left = sorted(p.name for p in maps.iterdir())
    assert len(left) == 2 and left[0].startswith(".S1.pdf.gridplan-tmp-")  # + the stale lock file
    assert not (maps / "S1.pdf").exists()
    res = run("wallmap", planned, "--station", "S1", "--size", "A3", "--out", maps / "S1.pdf")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in maps.iterdir()) == [".S1.pdf.gridplan.json", "S1.pdf"]
