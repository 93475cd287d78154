"""from_pandapower / from_network_geojson on the real mv_oberrhein network, then segmentation."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely

from gridplan.hv.segments import segment_feeders
from gridplan.settings import Params

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
GEOJSON = SHARED / "networks" / "mv_oberrhein"


def _check(county, cut):
    r = segment_feeders(county, params=Params(segment_cap_km=5, segment_cut=cut))
    # every transformer attached to a segment
    assert r.transformer_segment.notna().all()
    assert r.segments["transformers"].sum() == len(county.transformers)
    # every line in exactly one segment: segments do not overlap and together are the lines
    lines_km = county.feeders.geometry.length.sum() / 1000
    assert r.segments["length_km"].sum() == pytest.approx(lines_km, abs=0.05)  # ends snapped within 5 m
    assert r.kpi["length_error_km"] < 1e-6
    union = shapely.union_all(r.segments.geometry.values)
    assert union.length / 1000 == pytest.approx(r.segments["length_km"].sum(), rel=1e-6)
    for geom in county.feeders.geometry.values:
        share = shapely.length(shapely.intersection(r.segments.geometry.values, geom.buffer(0.01))) / geom.length
        assert share.sum() == pytest.approx(1.0, abs=0.01)
    assert r.kpi["loops"] == 0
    assert r.kpi["segments"] >= r.kpi["lower_bound"]
    assert r.segments["length_km"].max() <= 5 + 1e-9
    return r


@pytest.mark.slow
@pytest.mark.parametrize("substations", [True, False])
def test_from_pandapower_mv_oberrhein(substations):
    pn = pytest.importorskip("pandapower.networks", reason="pandapower not installed")
    from gridplan.io.network import from_pandapower

    county = from_pandapower(pn.mv_oberrhein(include_substations=substations))
    assert county.crs.is_projected
    assert len(county.transformers) == (141 if substations else 147)
    assert county.switches["normally_open"].sum() == 6
    assert len(county.substations) == 2
    assert county.feeders["feeder_id"].nunique() == 4
    assert county.transformers["feeder_id"].notna().all()
    assert county.townships.geometry.iloc[0].contains(county.transformers.union_all())
    _check(county, "switches")


@pytest.mark.skipif(not GEOJSON.exists(), reason="../shared/data not present (only in the dev workspace)")
def test_from_network_geojson_copy():
    from gridplan.io.network import from_network_geojson

    county = from_network_geojson(GEOJSON)
    assert len(county.transformers) == 141
    assert len(county.feeders) == 181
    r = _check(county, "anywhere")
    assert r.kpi["feeders"] == 4
