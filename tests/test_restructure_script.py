"""scripts/restructure.py rewrites imports the way issue #12 needs (skipped once it is deleted).

restructure: keep-file (the old module paths below are inputs of the script, not imports)
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "restructure.py"
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="scripts/restructure.py was applied and removed")


@pytest.fixture(scope="module")
def rs():
    spec = importlib.util.spec_from_file_location("_restructure_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def rewrite(rs, text: str, old_path: str) -> tuple[str, list[str]]:
    report = rs.Report()
    modules = set(rs.MODMAP) | rs.NEW_MODULES | {"gridplan.render", "gridplan.render.map",
                                                 "gridplan.render._layers", "gridplan.cli"}
    ctx = rs.Ctx(old_path, rs.MOVES.get(old_path, old_path), modules,
                 {"gridplan": {"plan", "load_county", "Plan", "__version__"}})
    return rs.rewrite_python(text, ctx, report), report.errors


def test_relative_imports_are_recomputed_from_the_new_place(rs):
    src = "from .settings import Params\nfrom . import _solver\nfrom ._errors import InputError\n"
    out, errors = rewrite(rs, src, "gridplan/partition.py")
    assert not errors
    assert out == ("from ..settings import Params\nfrom . import solver as _solver\n"
                   "from ..errors import InputError\n")


def test_a_from_import_of_several_modules_is_split_keeping_the_indent(rs):
    src = "def f():\n    from . import assign, kpi, partition, territory  # noqa\n    return kpi\n"
    out, errors = rewrite(rs, src, "gridplan/plan.py")
    assert not errors
    assert out == ("def f():\n    from .people import assign\n    from .metrics import kpi\n"
                   "    from .lv import partition, territory  # noqa\n    return kpi\n")


def test_absolute_imports_strings_and_attribute_chains(rs):
    src = ('import gridplan\nimport gridplan.many\nfrom gridplan import coords as C, plan\n'
           'from gridplan.load import load_county\n'
           'monkeypatch.setattr("gridplan.plan.read_plan", f)\n'
           'x = gridplan.many.plan_many, gridplan.plan(c), "gridplan.toml"\n')
    out, errors = rewrite(rs, src, "tests/test_x.py")
    assert not errors
    assert out.splitlines() == [
        "import gridplan", "import gridplan.scale.many", "from gridplan import coords as C, plan",
        "from gridplan.io.load import load_county",
        'monkeypatch.setattr("gridplan.pipeline.read_plan", f)',
        'x = gridplan.scale.many.plan_many, gridplan.plan(c), "gridplan.toml"']


def test_lines_marked_keep_and_unmoved_modules_are_left_alone(rs):
    src = ('from gridplan.render.map import save_map\n'
           'OLD = "gridplan.load"  # restructure: keep\n')
    out, errors = rewrite(rs, src, "tests/test_x.py")
    assert out == src and not errors


def test_an_import_sharing_its_line_is_reported_not_guessed(rs):
    src = "x = 1; from . import assign, kpi\n"
    out, errors = rewrite(rs, src, "gridplan/plan.py")
    assert out == src
    assert errors and "split it by hand" in errors[0]


def test_a_file_marked_keep_file_is_skipped(rs):
    assert rs.kept_file('"""Doc.\n\nrestructure: keep-file\n"""\n')
    assert not rs.kept_file("x = 1\n" * 10 + "# restructure: keep-file\n")


def test_a_second_run_changes_nothing(rs):
    once, _ = rewrite(rs, "from ._patches import plan_patches_impl\n", "gridplan/partition.py")
    assert once == "from .patches import plan_patches_impl\n"
    twice, _ = rewrite(rs, once, "gridplan/lv/partition.py")
    assert twice == once


def test_every_move_is_a_whole_file_and_no_two_land_on_one_path(rs):
    assert len(set(rs.MOVES.values())) == len(rs.MOVES)
    assert all(o.endswith(".py") and n.endswith(".py") for o, n in rs.MOVES.items())
    assert not set(rs.MODMAP) & (rs.NEW_MODULES - set(rs.MODMAP.values()))
