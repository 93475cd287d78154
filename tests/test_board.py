"""The service notice board (公示牌): every manager with phone (pdftotext), photos, fitted names."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from test_wallmap import HOSTILE, needs_font, small_plan

from gridplan import InputError
from gridplan.render.board import board_figures, fit_name, render_board

LONG = "欧阳" + "长" * 26 + "名字"  # 30 characters


def _plan():
    p = small_plan()
    p.grids.loc[1, "manager_name"] = LONG
    p.county.stations["phone"] = ["0371-0000-0001", None]
    return p


def test_fit_name_shrinks_then_wraps_never_overflows():
    text, pt = fit_name("张伟", 1.0, max_pt=21, min_pt=9)
    assert text == "张伟" and pt == 21
    text, pt = fit_name(LONG, 1.0, max_pt=21, min_pt=9)
    assert "\n" in text and text.replace("\n", "") == LONG
    from gridplan.render._wall_layout import text_width_em
    assert max(text_width_em(line) for line in text.split("\n")) * pt / 72 <= 1.0 + 1e-9


@needs_font
def test_board_lists_every_manager_with_phone(tmp_path):
    from PIL import Image

    plan = _plan()
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((400, 300, 3), 120, dtype=np.uint8)).save(photos / "M00.jpg")
    out = render_board(plan, station_id="S01", size="A4", photos=photos, out=tmp_path / "b.pdf",
                       date="2024年5月1日")
    # no temp file left; the sidecar records that gridplan wrote b.pdf (issue #11: never replace a
    # file gridplan did not write)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.pdf.gridplan.json", "b.pdf", "photos"]
    if shutil.which("pdftotext"):
        run = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True)
        assert "Mismatch" not in run.stderr
        flat = "".join(run.stdout.split())
        s01 = plan.grids[plan.grids["station_id"] == "S01"]
        from gridplan.render._wall_layout import format_phone
        for name, phone in zip(s01["manager_name"], s01["phone"]):
            assert "".join(str(name).split()) in flat, name
            assert "".join(format_phone(phone).split()) in flat, phone
        assert "95598" in flat and "0371-0000-0001" in flat and "90分钟" in flat
        assert HOSTILE.replace(" ", "") in flat  # printed as text
    if shutil.which("pdffonts"):
        rows = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True,
                              check=True).stdout.splitlines()[2:]
        assert rows and all("CID TrueType" in r and r.split()[-5] == "yes" for r in rows)


@needs_font
@pytest.mark.parametrize("size", ["A4", "A3"])
def test_names_fit_their_panel(size):
    board = board_figures(_plan(), station_id="S01", size=size, date="2024-05-01")
    assert len(board.names) == 5
    for name, art, (x0, y0, x1, y1) in board.names:
        fig = art.figure
        bb = art.get_window_extent(fig.canvas.get_renderer()).transformed(fig.transFigure.inverted())
        assert bb.x0 >= x0 - 1e-3 and bb.x1 <= x1 + 1e-3, (name, bb, (x0, x1))
        assert bb.y0 >= y0 - 1e-3, name


def test_bad_arguments_are_reported_together(tmp_path):
    with pytest.raises(InputError) as err:
        render_board(_plan(), station_id="S99", size="B5", photos=tmp_path / "none",
                     out=tmp_path / "b.png")
    msg = str(err.value)
    assert "S99" in msg and "B5" in msg and "photo folder" in msg and ".png" in msg
    assert not list(tmp_path.iterdir())
