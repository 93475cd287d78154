"""The fixture factories of conftest.py build what they promise."""

from __future__ import annotations

import pytest

import gridplan


def test_small_county_factory(small_county):
    c = small_county(n=40, seed=3, managers=False)
    assert len(c.transformers) == 40 and c.managers is None
    assert c.crs.is_projected


def test_county_dir_factory_writes_fresh_loadable_folders(county_dir):
    a, b = county_dir(), county_dir(chinese_headers=True, ledger_format="xlsx")
    assert a != b and (b / "transformers.xlsx").exists()
    assert len(gridplan.load_county(a).transformers) == len(gridplan.load_county(b).transformers)


@pytest.mark.slow
def test_real_county_dir_factory_is_real_shaped_and_seeded(real_county_dir):
    one, again = real_county_dir("10002_宜蘭縣", seed=1), real_county_dir("10002_宜蘭縣", seed=1)
    assert (one / "transformers.csv").read_bytes() == (again / "transformers.csv").read_bytes()
    county = gridplan.load_county(one)
    assert len(county.townships) >= 12 and len(county.transformers) > 300
    assert county.crs.is_projected


def test_real_county_dir_rejects_an_unknown_county(real_county_dir):
    with pytest.raises(ValueError, match="unknown county"):
        real_county_dir("99999_nowhere")


def test_sample_county_is_a_private_copy(sample_county, request):
    sample_county.transformers.drop(sample_county.transformers.index, inplace=True)
    fresh = request.getfixturevalue("_sample_county_once")
    assert len(fresh.transformers) > 0
