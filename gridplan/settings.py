"""Planning parameters: defaults, ``gridplan.toml`` and keyword overrides, validated once.

A county folder may hold a ``gridplan.toml``; its tables map onto :class:`Params` fields::

    [input]
    county_name = "某某县"       # shown on maps and reports (default: the folder's name)
    coords = "gcj02"            # wgs84 | cgcs2000 | gk3 | gcj02 | bd09 | EPSG:xxxx
    snap_tolerance_m = 1000     # default: GPS points vs simplified polygons, coasts, islets

    [input.coords_by_layer]     # a layer in another system than the rest (wins over file headers)
    townships = "wgs84"

    [plan]
    workload = "customers + 20*transformers"
    capacity = 1500
    tolerance = 0.05
    scope = "township"          # or "station"
    seed = 0

    [hv]
    segment_cap_km = 12
    # or a workload mix per segment, capped in its own units:
    # segment_weight = "km + 0.02*poles + 0.3*transformers"
    # segment_cap = 20
    hv_owner = "lv"             # or "separate": HV staff (role 高压) own the segments

Unknown keys are an error (a typo must not be silently ignored).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ._errors import Problems

__all__ = ["COMMITMENT_MINUTES", "WEIGHT_NAMES", "Params", "parse_weight", "read_params"]

#: Repair-arrival commitments by area class (domain primer: 45 / 90 / 120 minutes).
COMMITMENT_MINUTES: dict[str, float] = {"城区": 45.0, "农村": 90.0, "特殊边远": 120.0}

_SECTIONS = ("input", "plan", "hv", "managers", "response", "map")


@dataclass(frozen=True)
class Params:
    """Every tunable of a gridplan run.

    Attributes are grouped by the ``gridplan.toml`` table they are read from (see the module
    docstring). All distances are in metres unless the name says km.
    """

    # [input]
    county_name: str | None = None
    coords: str = "wgs84"
    coords_by_layer: dict[str, str] = field(default_factory=dict)
    #: 台区 and stations in no township polygon but this close to one are put in it (and listed).
    snap_tolerance_m: float = 1000.0
    # [plan]
    workload: str = "customers"
    capacity: float = 1500.0
    tolerance: float = 0.05
    scope: str = "township"
    grids_from_roster: bool = False
    seed: int = 0
    time_limit: float | None = None
    stability: float = 1.0
    # [hv]
    segment_cap_km: float = 15.0
    segment_weight: str = "km"
    segment_cap: float | None = None
    segment_cut: str = "switches"
    attach_tolerance_m: float = 500.0
    snap_lines_m: float = 5.0
    hv_owner: str = "lv"
    # [managers]
    placeholder_managers: bool = True
    # [response]
    speed_kmh: float = 30.0
    detour_factor: float = 1.4
    area_class: str = "农村"
    commitments: dict[str, float] = field(default_factory=lambda: dict(COMMITMENT_MINUTES))
    # [map]
    basemap: str = "osm"
    tianditu_key: str | None = None
    language: str = "zh"
    offline_assets: bool = True

    def replace(self, **changes: Any) -> Params:
        """Return a copy with ``changes`` applied and validated."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def validate(self, source: str = "parameters") -> None:
        """Raise :class:`~gridplan.InputError` if any value is out of range."""
        p = Problems()
        if not self.capacity > 0:
            p.add(source, f"capacity must be > 0, got {self.capacity}", "set plan.capacity to a positive workload")
        if not 0 < self.tolerance < 1:
            p.add(source, f"tolerance must be in (0, 1), got {self.tolerance}", "e.g. tolerance = 0.05")
        if self.scope not in ("township", "station"):
            p.add(source, f"scope must be 'township' or 'station', got {self.scope!r}", "")
        if self.segment_cap_km <= 0:
            p.add(source, f"segment_cap_km must be > 0, got {self.segment_cap_km}", "")
        self._validate_segment_weight(p, source)
        if self.hv_owner not in ("lv", "separate"):
            p.add(source, f"hv_owner must be 'lv' or 'separate', got {self.hv_owner!r}",
                  "lv: the manager of the grid holding most of a segment owns it; separate: HV staff "
                  "(managers with role 高压) own the segments")
        if self.segment_cut not in ("switches", "anywhere"):
            p.add(source, f"segment_cut must be 'switches' or 'anywhere', got {self.segment_cut!r}", "")
        if self.language not in ("zh", "en"):
            p.add(source, f"language must be 'zh' or 'en', got {self.language!r}", "")
        layers = {"townships", "stations", "transformers", "feeders", "switches", "substations",
                  "managers", "villages", "barriers", "roads"}
        bad = sorted(set(self.coords_by_layer) - layers)
        if bad:
            p.add(source, f"coords_by_layer names unknown layer(s): {', '.join(bad)}",
                  f"use layer names among: {', '.join(sorted(layers))}")
        if self.speed_kmh <= 0 or self.detour_factor < 1:
            p.add(source, "speed_kmh must be > 0 and detour_factor >= 1", "")
        p.raise_if_any()


    def _validate_segment_weight(self, p: Problems, source: str) -> None:
        """``segment_weight`` parses; ``segment_cap`` is given exactly when the weight is not plain km."""
        from ._errors import InputError

        try:
            w = parse_weight(self.segment_weight)
        except InputError as exc:
            p.items.extend(exc.problems)
            return
        if {k: v for k, v in w.items() if v} == {"km": 1.0}:  # plain km (zero terms dropped)
            if self.segment_cap is not None:
                p.add(source, f"segment_cap = {self.segment_cap} is set but segment_weight is plain km",
                      "give the cap in km as segment_cap_km (segment_cap is for a workload mix)")
        elif self.segment_cap is None:
            p.add(source, f"segment_weight = {self.segment_weight!r} needs segment_cap (the cap in its units)",
                  "add e.g. segment_cap = 20 under [hv]")
        elif not self.segment_cap > 0:
            p.add(source, f"segment_cap must be > 0, got {self.segment_cap}", "")


#: Names a segment weight may use: line length (km), poles, attached 台区.
WEIGHT_NAMES = ("km", "poles", "transformers")


def parse_weight(expr: str) -> dict[str, float]:
    """Parse ``segment_weight`` (e.g. ``"km + 0.02*poles + 0.3*transformers"``) into coefficients.

    Raises
    ------
    gridplan.InputError
        Names other than ``km``, ``poles``, ``transformers``; bare numbers; anything but ``+``, ``*``.
    """
    from .workload import parse_workload

    return parse_workload(expr, names=WEIGHT_NAMES, constant=None, label="segment_weight",
                          example="km + 0.02*poles + 0.3*transformers")


def read_params(path: str | Path | None, **overrides: Any) -> Params:
    """Read ``gridplan.toml`` (if it exists) and apply ``overrides`` (ignoring ``None`` values).

    Parameters
    ----------
    path
        The TOML file, or ``None`` / a missing file for the defaults.
    **overrides
        Field values that win over the file (e.g. from command-line options).

    Returns
    -------
    Params
        Validated parameters.
    """
    values: dict[str, Any] = {}
    problems = Problems()
    names = {f.name for f in fields(Params)}
    if path is not None and Path(path).exists():
        label = Path(path).name
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.add(label, f"not a valid TOML file: {exc}", "fix the syntax (see the README's parameter table)")
            problems.raise_if_any()
        for key, val in data.items():
            if key in _SECTIONS and isinstance(val, dict):
                items = val.items()
            else:
                items = [(key, val)]
            for k, v in items:
                if k == "coords_by_layer" and isinstance(v, dict):
                    v = {str(a): str(b) for a, b in v.items()}
                if k == "commitments" and isinstance(v, dict):
                    v = {**COMMITMENT_MINUTES, **{str(a): float(b) for a, b in v.items()}}
                if k not in names:
                    problems.add(label, f"unknown parameter {k!r}", f"valid names: {', '.join(sorted(names))}")
                else:
                    values[k] = v
        problems.raise_if_any()
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - names
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    params = Params(**values)
    params.validate(Path(path).name if path else "parameters")
    return params
