"""Fixture factories shared by the tests: counties from small to real-shaped.

Three kinds of county, cheapest first:

``small_county``
    a factory of hand-built :class:`~gridplan.County` objects (no loader, metric CRS, 3-4
    townships, 2 stations, ``n`` 台区): ``small_county(n=60, seed=1, managers=False)``.
``county_dir``
    a factory of generated county *folders* (what ``gridplan plan`` reads), with every variation of
    ``countygen.make_county_dir`` (formats, encodings, Chinese headers, coordinate systems, edits):
    ``county_dir(ledger_format="xlsx", coords="gcj02")``. Each call writes a fresh folder.
``real_county_dir``
    a factory of real-shaped county folders: the real township and village polygons of
    ``../shared/data/townships`` with synthetic stations and seeded 台区 inside the villages;
    skipped, with the reason, when ``../shared`` is absent (a user's clone).

``sample_dir`` / ``sample_county`` are the shipped sample county (``geodata/sample``), its folder
and a loaded copy (loaded once per session; each test gets its own deep copy, so a test may
change it). Tests that take more than a few seconds carry ``@pytest.mark.slow``: ``-m "not slow"``
runs the quick part of the suite.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "geodata" / "sample"
SHARED = ROOT.parent / "shared" / "data"
REAL_COUNTIES = ("10002_宜蘭縣", "10015_花蓮縣", "10009_雲林縣", "10014_台東縣")


@pytest.fixture
def small_county() -> Callable[..., Any]:
    """Factory of small hand-built counties; keywords as ``_plan_fixtures.small_county``."""
    from _plan_fixtures import small_county as build

    return build


@pytest.fixture
def county_dir(tmp_path: Path) -> Callable[..., Path]:
    """Factory of generated county folders under ``tmp_path``; keywords as ``make_county_dir``."""
    from countygen import make_county_dir

    names = (f"county{i}" for i in itertools.count(1))

    def make(**kwargs: Any) -> Path:
        kwargs.setdefault("name", next(names))
        return make_county_dir(tmp_path, **kwargs)

    return make


@pytest.fixture
def real_county_dir(tmp_path: Path) -> Callable[..., Path]:
    """Factory of real-shaped county folders: ``real_county_dir("10002_宜蘭縣", seed=0)``."""
    if not (SHARED / "townships").exists():
        pytest.skip("../shared/data/townships not present (only in the dev workspace)")
    from test_real_townships import make_real_county

    calls = itertools.count(1)

    def make(code: str = REAL_COUNTIES[0], *, seed: int = 0) -> Path:
        if code not in REAL_COUNTIES:
            raise ValueError(f"unknown county {code!r}; one of {', '.join(REAL_COUNTIES)}")
        parent = tmp_path / f"real{next(calls)}"
        parent.mkdir()
        return make_real_county(parent, code, seed=seed)

    return make


@pytest.fixture
def sample_dir() -> Path:
    """The shipped sample county folder (skips when it is not there)."""
    if not (SAMPLE / "transformers.csv").exists():
        pytest.skip("geodata/sample not present")
    return SAMPLE


@pytest.fixture(scope="session")
def _sample_county_once() -> Any:
    if not (SAMPLE / "transformers.csv").exists():
        pytest.skip("geodata/sample not present")
    import gridplan

    return gridplan.load_county(SAMPLE)


@pytest.fixture
def sample_county(_sample_county_once: Any) -> Any:
    """The sample county, loaded once per session; a deep copy per test."""
    return copy.deepcopy(_sample_county_once)
