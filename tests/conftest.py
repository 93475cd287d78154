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

``chromium`` is a headless Debian Chromium driven by Playwright (one per test module), for the
browser tests of the map and the editor; skipped, with the reason, without either.

``sample_dir`` / ``sample_county`` are the shipped sample county (``geodata/sample``), its folder
and a loaded copy (loaded once per session; each test gets its own deep copy, so a test may
change it). Tests that take more than a few seconds carry ``@pytest.mark.slow``: ``-m "not slow"``
runs the quick part of the suite.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "geodata" / "sample"
SHARED = ROOT.parent / "shared" / "data"
REAL_COUNTIES = ("10002_宜蘭縣", "10015_花蓮縣", "10009_雲林縣", "10014_台東縣")
CHROMIUM = Path("/usr/bin/chromium")
#: Headless, and nothing that would reach the network on its own.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


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


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A launched headless Chromium (a Playwright ``Browser``), shared by the tests of a module."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.exists():
        pytest.skip("needs playwright and /usr/bin/chromium (apt-get install chromium; the test "
                    "command installs both)")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    except BaseException:
        pw.stop()
        raise
    yield browser
    browser.close()
    pw.stop()
