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

Every key is type-checked: an unknown section or key (a typo must not be silently ignored), a key
under another section than its own, and a value of the wrong type (``capacity = "abc"``) are
errors that name the key, the type expected and an example; so are values out of range.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import Problems

__all__ = ["COMMITMENT_MINUTES", "WEIGHT_NAMES", "Params", "parse_weight", "read_params"]

#: Repair-arrival commitments by area class (domain primer: 45 / 90 / 120 minutes).
COMMITMENT_MINUTES: dict[str, float] = {"城区": 45.0, "农村": 90.0, "特殊边远": 120.0}

_SECTIONS = ("input", "plan", "hv", "managers", "response", "map")
#: Largest gap between line ends that ``snap_lines_m`` may bridge (a drawing gap, not a distance).
MAX_SNAP_LINES_M = 1000.0

#: The ``gridplan.toml`` section of every parameter (a field not listed is accepted in any section).
SECTION_OF: dict[str, str] = {
    **dict.fromkeys(("county_name", "coords", "coords_by_layer", "snap_tolerance_m"), "input"),
    **dict.fromkeys(("workload", "capacity", "tolerance", "scope", "grids_from_roster", "seed",
                     "time_limit", "stability"), "plan"),
    **dict.fromkeys(("max_travel_min", "groups_per_station", "grids_per_group"), "plan"),  # #16 (5, 6)
    **dict.fromkeys(("segment_cap_km", "segment_weight", "segment_cap", "segment_cut",
                     "attach_tolerance_m", "snap_lines_m", "hv_owner"), "hv"),
    "placeholder_managers": "managers",
    **dict.fromkeys(("speed_kmh", "detour_factor", "area_class", "commitments"), "response"),
    **dict.fromkeys(("basemap", "tianditu_key", "language", "offline_assets"), "map"),
}
#: Examples shown in type errors where the default is no example (``None``).
_EXAMPLES: dict[str, str] = {"county_name": '"某某县"', "time_limit": "60", "segment_cap": "20",
                             "tianditu_key": '"your-tianditu-key"',
                             "coords_by_layer": '{ townships = "gcj02" }',
                             "commitments": '{ "城区" = 45, "农村" = 90 }'}
_EXAMPLES.update({"max_travel_min": "30", "groups_per_station": "3", "grids_per_group": "3"})  # #16


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
    #: Reach (#16 part 5): no 台区 farther than this many minutes from its grid's manager base.
    max_travel_min: float | None = None
    #: Service groups (供电服务小组, #16 part 6): groups per station, or grids per group (not both).
    groups_per_station: int | None = None
    grids_per_group: int | None = None
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
        typed = type_problems({f.name: getattr(self, f.name) for f in fields(self)}, source)
        typed.raise_if_any()  # the range checks below need the right types
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
        self._validate_ranges(p, source)
        self._validate_groups(p, source)
        p.raise_if_any()

    def _validate_ranges(self, p: Problems, source: str) -> None:
        """Distances, seeds and times that cannot be negative; area classes and commitments."""
        for name in ("snap_tolerance_m", "attach_tolerance_m", "snap_lines_m", "stability", "seed"):
            if getattr(self, name) < 0:
                p.add(source, f"{name} must be >= 0, got {getattr(self, name)}", f"e.g. {_example(name)}")
        if self.snap_lines_m > MAX_SNAP_LINES_M:
            p.add(source, f"snap_lines_m = {self.snap_lines_m:g} is more than {MAX_SNAP_LINES_M:g} m: it "
                          "would join line ends that are far apart", "it bridges small drawing gaps: "
                          "e.g. snap_lines_m = 5 under [hv]")
        if self.time_limit is not None and not self.time_limit > 0:
            p.add(source, f"time_limit must be > 0 (seconds), got {self.time_limit}", "e.g. time_limit = 60")
        classes = ", ".join(COMMITMENT_MINUTES)
        if self.area_class not in COMMITMENT_MINUTES:
            p.add(source, f"area_class must be one of {classes}, got {self.area_class!r}",
                  'e.g. area_class = "农村" under [response]')
        bad = sorted(k for k in self.commitments if k not in COMMITMENT_MINUTES)
        if bad:
            p.add(source, f"[response.commitments] names unknown area class(es): {', '.join(bad)}",
                  f"use {classes}")
        low = sorted(k for k, v in self.commitments.items() if not v > 0)
        if low:
            p.add(source, f"[response.commitments] must be > 0 minutes: {', '.join(low)}",
                  '"城区" = 45')

    def _validate_groups(self, p: Problems, source: str) -> None:
        """``max_travel_min`` > 0; ``groups_per_station`` / ``grids_per_group`` >= 1, not both."""
        if self.max_travel_min is not None and not self.max_travel_min > 0:
            p.add(source, f"max_travel_min must be > 0 (minutes), got {self.max_travel_min}",
                  "e.g. max_travel_min = 30 under [plan], or leave it out (no reach limit)")
        for name in ("groups_per_station", "grids_per_group"):
            value = getattr(self, name)
            if value is not None and value < 1:
                p.add(source, f"{name} must be >= 1, got {value}", f"e.g. {_example(name)} under [plan]")
        if self.groups_per_station is not None and self.grids_per_group is not None:
            p.add(source, "groups_per_station and grids_per_group are both set",
                  "give one of them under [plan]: groups_per_station = 3 (groups of each station) "
                  "or grids_per_group = 3 (grids of each group)")

    def _validate_segment_weight(self, p: Problems, source: str) -> None:
        """``segment_weight`` parses; ``segment_cap`` is given exactly when the weight is not plain km."""
        from .errors import InputError

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


def _kind(annotation: object) -> str:
    """The kind of value a field holds, from its annotation: number, integer, text, flag or table."""
    text = str(annotation).replace(" ", "")
    return {"float": "number", "float|None": "number", "int": "integer", "int|None": "integer",
            "str": "text", "str|None": "text", "bool": "flag", "dict[str,str]": "text table",
            "dict[str,float]": "number table"}.get(text, "any")


_KIND_WORDS = {"number": "a number", "integer": "a whole number", "text": "a text in quotes",
               "flag": "true or false", "text table": "a table of texts",
               "number table": "a table of numbers"}


def _is_number(v: object) -> bool:
    """A finite real number (numpy scalars too), not a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and math.isfinite(float(v))


def _fits(kind: str, v: object) -> bool:
    """Whether ``v`` is a value of ``kind`` (``None`` fits: the field's "not set")."""
    if v is None or kind == "any":
        return True
    if kind == "number":
        return _is_number(v)
    if kind == "integer":
        return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
    if kind == "text":
        return isinstance(v, str)
    if kind == "flag":
        return isinstance(v, (bool, np.bool_))
    if kind == "text table":
        return isinstance(v, dict) and all(isinstance(b, str) for b in v.values())
    if kind == "number table":
        return isinstance(v, dict) and all(_is_number(b) for b in v.values())
    return True


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _example(name: str) -> str:
    """``name = value`` as it would be written in ``gridplan.toml`` (the default, or an example)."""
    if name in _EXAMPLES:
        return f"{name} = {_EXAMPLES[name]}"
    f = next(f for f in fields(Params) if f.name == name)
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return f"{name} = {_toml_value(default)}"


def type_problems(values: dict[str, Any], source: str) -> Problems:
    """One problem per value whose type is not its field's (e.g. ``capacity = "abc"``)."""
    p = Problems()
    kinds = {f.name: _kind(f.type) for f in fields(Params)}
    for name, v in values.items():
        kind = kinds.get(name, "any")
        if not _fits(kind, v):
            where = SECTION_OF.get(name)
            key = f"[{where}] {name}" if where else name
            p.add(source, f"{key} must be {_KIND_WORDS[kind]}, got {type(v).__name__} {v!r}",
                  f"write e.g. {_example(name)}" + (f" under [{where}]" if where else ""))
    return p


#: Names a segment weight may use: line length (km), poles, attached 台区.
WEIGHT_NAMES = ("km", "poles", "transformers")


def parse_weight(expr: str) -> dict[str, float]:
    """Parse ``segment_weight`` (e.g. ``"km + 0.02*poles + 0.3*transformers"``) into coefficients.

    Raises
    ------
    gridplan.InputError
        Names other than ``km``, ``poles``, ``transformers``; bare numbers; anything but ``+``, ``*``.
    """
    from .lv.workload import parse_workload

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
        _read_sections(data, label, names, values, problems)
        problems.items.extend(type_problems(values, label).items)
        problems.raise_if_any()
        if isinstance(values.get("commitments"), dict):
            values["commitments"] = {**COMMITMENT_MINUTES,
                                     **{str(a): float(b) for a, b in values["commitments"].items()}}
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - names
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    type_problems(given, "parameters").raise_if_any()
    values.update(given)
    params = Params(**values)
    params.validate(Path(path).name if path else "parameters")
    return params


def _read_sections(data: dict[str, Any], label: str, names: set[str], values: dict[str, Any],
                   problems: Problems) -> None:
    """Collect ``[section] key = value`` pairs into ``values``; unknown or misplaced keys are problems."""
    for section, table in data.items():
        if section not in _SECTIONS:
            if section in names:
                where = SECTION_OF.get(section, "plan")
                problems.add(label, f"{section!r} is outside every section",
                             f"put it under [{where}], e.g. [{where}] {_example(section)}")
            else:
                problems.add(label, f"unknown section [{section}]",
                             f"sections are: {', '.join(f'[{x}]' for x in _SECTIONS)}")
            continue
        if not isinstance(table, dict):
            problems.add(label, f"{section} must be a section ([{section}]), got {table!r}",
                         f"write [{section}] on a line of its own, then its keys")
            continue
        for key, v in table.items():
            own = SECTION_OF.get(key)
            if key not in names:
                valid = sorted(k for k in names if SECTION_OF.get(k, section) == section)
                problems.add(label, f"unknown parameter {key!r} in [{section}]",
                             f"valid names in [{section}]: {', '.join(valid)}")
            elif own is not None and own != section:
                problems.add(label, f"{key!r} belongs under [{own}], not [{section}]",
                             f"move it: [{own}] {_example(key)}")
            else:
                values[key] = v
