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
``Params`` validates itself when made (``Params(capacity=-5)`` raises), however it is made.

Each parameter is declared once, as one field of :class:`Params` made with :func:`param`: its
default, ``gridplan.toml`` section, help text, command-line option (``cli=``), accepted values and
range. :data:`SECTION_OF`, the type and range checks and the options of ``gridplan plan``
(:func:`gridplan.cli.options.params_options`) are derived from these declarations, so adding a
parameter is that one field (plus, for a check that is not a range or a choice, a line in
:meth:`Params.validate`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import tomllib
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, Problems
from .lv.workload import parse_workload

__all__ = ["ALSO_BALANCE_NAMES", "COMMITMENT_MINUTES", "SECTION_OF", "WEIGHT_NAMES", "Params", "field_kind", "param", "parse_weight",
           "read_params"]

#: Repair-arrival commitments by area class (domain primer: 45 / 90 / 120 minutes).
COMMITMENT_MINUTES: dict[str, float] = {"城区": 45.0, "农村": 90.0, "特殊边远": 120.0}

_SECTIONS = ("input", "plan", "hv", "managers", "response", "map")
#: Largest gap between line ends that ``snap_lines_m`` may bridge (a drawing gap, not a distance).
MAX_SNAP_LINES_M = 1000.0
#: Measures ``[plan] also_balance`` may name (see :mod:`gridplan.lv.measures`).
ALSO_BALANCE_NAMES = ("customers", "transformers", "capacity", "feeder_km", "area")
#: The layers ``coords_by_layer`` may name (those of :data:`gridplan.io.schema.SPECS`).
LAYERS = ("townships", "stations", "transformers", "feeders", "switches", "substations", "managers",
          "villages", "barriers", "roads", "candidates")

#: Where the value source of the Params being made is named in messages (``read_params`` sets the
#: TOML file's name for the construction it makes, so its problems name the file).
_SOURCE: ContextVar[str] = ContextVar("gridplan_params_source", default="parameters")


def param(default: Any = dataclasses.MISSING, *, section: str, doc: str,
          factory: Callable[[], Any] | None = None, cli: str | tuple[str, ...] | None = None,
          cli_choices: tuple[str, ...] | None = None, metavar: str | None = None,
          choices: tuple[str, ...] | None = None, above: float | None = None,
          minimum: float | None = None, below: float | None = None, unit: str = "",
          example: str | None = None, fix: str = "") -> Any:
    """Declare one :class:`Params` field with everything the rest of gridplan derives from it.

    Parameters
    ----------
    default, factory
        The default value (or a function making it, for tables).
    section
        The ``gridplan.toml`` table the key belongs under (``[plan]``, ``[hv]``, …): a key under
        another table is an error that names this one.
    doc
        One sentence: the help text of the command-line option (and the key's documentation).
    cli
        The command-line option(s) of ``gridplan plan`` (e.g. ``"--capacity"``); None: TOML only.
    cli_choices, metavar
        Choices / metavar of the option when they differ from ``choices`` / the type's.
    choices
        The accepted values (an error otherwise, listing them).
    above, minimum, below
        Range checks: ``> above``, ``>= minimum``, ``< below`` (an error naming the key and value).
    unit
        The unit, named in range errors (``seconds``).
    example
        ``value`` shown in type errors when the default is no example (``None``).
    fix
        How to fix an out-of-range value (default: ``e.g. <key> = <default>``).
    """
    meta = {"section": section, "help": doc, "cli": (cli,) if isinstance(cli, str) else cli,
            "cli_choices": cli_choices if cli_choices is not None else choices, "metavar": metavar,
            "choices": choices, "above": above, "minimum": minimum, "below": below, "unit": unit,
            "example": example, "fix": fix}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Params:
    """Every tunable of a gridplan run, validated when made.

    Attributes are grouped by the ``gridplan.toml`` table they are read from (see the module
    docstring); each is declared once, with :func:`param`: its section, help text, command-line
    option, accepted values and range. All distances are in metres unless the name says km.

    Raises
    ------
    gridplan.InputError
        When made with a value of the wrong type or out of range (``Params(capacity=-5)``),
        naming every such key, the value and the fix.
    """

    # [input]
    county_name: str | None = param(None, section="input", example='"某某县"',
                                    doc="County name shown on maps and reports (default: the folder's name).")
    coords: str = param("wgs84", section="input", cli="--coords",
                        doc="Input coordinate system: wgs84, cgcs2000, gk3[:zone], gcj02, bd09 or EPSG:nnnn "
                             "(wins over a file's lon/lat header such as CRS84; a projected header wins).")
    coords_by_layer: dict[str, str] = param(  # noqa: RUF009 - param() is dataclasses.field
        section="input", factory=dict, cli=("--layer-coords", "--coords-by-layer"), metavar="LAYER=SYSTEM",
        example='{ townships = "gcj02" }',
        doc="Coordinate system of one layer, e.g. --layer-coords transformers=gcj02 (repeat it, or "
             "separate with commas: townships=wgs84,transformers=gcj02). Wins over --coords, "
             "[input.coords_by_layer] of gridplan.toml and the file's own header.")
    #: 台区 and stations in no township polygon but this close to one are put in it (and listed).
    snap_tolerance_m: float = param(1000.0, section="input", minimum=0,
                                    doc="台区 and stations this close to a township are snapped into it (m).")
    # [plan]
    workload: str = param("customers", section="plan", cli="--workload",
                          doc="Workload of a 台区: customers, transformers, capacity or e.g. "
                               "'customers + 20*transformers'.")
    capacity: float = param(1500.0, section="plan", cli="--capacity", above=0,
                            fix="set plan.capacity to a positive workload",
                            doc="Maximum workload per manager (grid).")
    tolerance: float = param(0.05, section="plan", cli="--tolerance", above=0, below=1,
                             doc="Allowed workload deviation from the mean (0.05 = ±5%).")
    scope: str = param("township", section="plan", cli="--scope", choices=("township", "station"),

                       doc="Grids stay inside a township (default) or inside a station.")
    grids_from_roster: bool = param(False, section="plan",
                                    doc="As many grids per station as its roster has 台区经理.")
    seed: int = param(0, section="plan", cli="--seed", minimum=0,
                      doc="Random seed (default 0, or gridplan.toml).")
    time_limit: float | None = param(None, section="plan", above=0, unit="seconds", example="60",
                                     doc="Time limit of the partition search per township (s).")
    stability: float = param(1.0, section="plan", cli="--stability", minimum=0,
                             doc="Weight of keeping 台区 with their current manager (default 1; 0 = "
                                  "replan freely).")
    also_balance: dict[str, float] = param(  # noqa: RUF009 - param() is dataclasses.field
        section="plan", factory=dict, cli="--also-balance", metavar="NAME=TOL,...",
        example="{ transformers = 0.15, feeder_km = 0.25 }",
        doc="Further measures to balance, each within its tolerance of the mean, e.g. "
             "'transformers=0.15,feeder_km=0.25' (customers, transformers, capacity, feeder_km, area).")
    max_travel_min: float | None = param(
        None, section="plan", unit="minutes", example="30",  # range checked in _validate_groups
        doc="Reach: no 台区 farther than this many minutes from its grid's manager base (home, else "
             "the grid's medoid).")
    groups_per_station: int | None = param(None, section="plan", example="3",
                                           doc="Service groups (供电服务小组) per station.")
    grids_per_group: int | None = param(None, section="plan", example="3",
                                        doc="Grids per service group (供电服务小组); not with "
                                             "groups_per_station.")
    workers: int = param(1, section="plan", minimum=0, example="2",
                         doc="Processes planning townships in parallel (default 1: none; 0 = auto: "
                              "min(cores, 4) from 100,000 台区); the plan is the same for any number.")
    # [hv]
    segment_cap_km: float = param(15.0, section="hv", cli="--segment-cap-km", above=0,
                                  doc="Maximum 10 kV segment length (km).")
    segment_weight: str = param("km", section="hv", cli="--segment-weight",
                                doc="Weight of a 10 kV segment: km (default) or e.g. "
                                     "'km + 0.02*poles + 0.3*transformers'.")
    segment_cap: float | None = param(None, section="hv", cli="--segment-cap", example="20",
                                      doc="Maximum segment weight, in the units of --segment-weight "
                                           "(needed when it is not km).")
    segment_cut: str = param("switches", section="hv", choices=("switches", "anywhere"),
                             doc="Cut 10 kV lines only at switches (when given) or anywhere.")
    attach_tolerance_m: float = param(500.0, section="hv", minimum=0,
                                      doc="Farthest a 台区 is attached to a feeder line (m).")
    snap_lines_m: float = param(5.0, section="hv", minimum=0,
                                doc="Line ends this close are joined (a drawing gap, m).")
    hv_owner: str = param("lv", section="hv", cli="--hv-owner", choices=("lv", "separate"),
                          fix="lv: the manager of the grid holding most of a segment owns it; separate: "
                              "HV staff (managers with role 高压) own the segments",
                          doc="Who owns 10 kV segments: the grid's manager (lv, default) or the roster's "
                               "HV staff (separate).")
    # [managers]
    placeholder_managers: bool = param(True, section="managers",
                                       doc="Generate placeholder managers where the roster is short.")
    # [response]
    speed_kmh: float = param(30.0, section="response", above=0,
                             doc="Repair crew speed when no roads.* layer is given (km/h).")
    detour_factor: float = param(1.4, section="response", minimum=1,
                                 doc="Straight-line distance × this = road distance.")
    area_class: str = param("农村", section="response", choices=tuple(COMMITMENT_MINUTES),
                            fix='e.g. area_class = "农村" under [response]',
                            doc="Default class of a township without area_class.")
    commitments: dict[str, float] = param(  # noqa: RUF009 - param() is dataclasses.field
        section="response", factory=lambda: dict(COMMITMENT_MINUTES), example='{ "城区" = 45, "农村" = 90 }',
        doc="Repair-arrival commitments by area class (minutes).")
    # [map]
    basemap: str = param("osm", section="map", cli="--basemap",
                         cli_choices=("osm", "amap", "tianditu", "none"),
                         doc="Basemap of map.html (default osm; none = offline, no tiles).")
    tianditu_key: str | None = param(None, section="map", example='"your-tianditu-key"',
                                     doc='天地图 key, for basemap = "tianditu".')
    language: str = param("zh", section="map", choices=("zh", "en"),
                          doc="Language of maps and prints.")
    offline_assets: bool = param(True, section="map",
                                 doc="Embed the map page's scripts (no network needed to open it).")

    def __post_init__(self) -> None:
        self.validate(_SOURCE.get())

    def replace(self, **changes: Any) -> Params:
        """Return a copy with ``changes`` applied and validated."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def validate(self, source: str = "parameters") -> None:
        """Raise :class:`~gridplan.InputError` if any value is of the wrong type or out of range."""
        typed = type_problems({f.name: getattr(self, f.name) for f in fields(self)}, source)
        typed.raise_if_any()  # the range checks below need the right types
        p = Problems()
        for f in fields(self):
            _check_field(f, getattr(self, f.name), p, source)
        self._validate_segment_weight(p, source)
        bad = sorted(set(self.coords_by_layer) - set(LAYERS))
        if bad:
            p.add(source, f"coords_by_layer names unknown layer(s): {', '.join(bad)}",
                  f"use layer names among: {', '.join(sorted(LAYERS))}")
        self._validate_tables(p, source)
        self._validate_also_balance(p, source)
        self._validate_groups(p, source)
        p.raise_if_any()

    def _validate_also_balance(self, p: Problems, source: str) -> None:
        """``also_balance`` names known measures, each with a tolerance in (0, 1)."""
        names = ", ".join(ALSO_BALANCE_NAMES)
        for name, tol in self.also_balance.items():
            if name not in ALSO_BALANCE_NAMES:
                p.add(source, f"[plan] also_balance names unknown measure {name!r}",
                      f"use {names}, e.g. {_example('also_balance')}")
            elif not 0 < float(tol) < 1:
                p.add(source, f"[plan] also_balance {name} = {tol}: the tolerance must be in (0, 1)",
                      f"e.g. {name} = 0.15 (±15% of the mean)")

    def _validate_tables(self, p: Problems, source: str) -> None:
        """``snap_lines_m`` stays a drawing gap; the commitments name known area classes."""
        if self.snap_lines_m > MAX_SNAP_LINES_M:
            p.add(source, f"snap_lines_m = {self.snap_lines_m:g} is more than {MAX_SNAP_LINES_M:g} m: it "
                          "would join line ends that are far apart", "it bridges small drawing gaps: "
                          "e.g. snap_lines_m = 5 under [hv]")
        classes = ", ".join(COMMITMENT_MINUTES)
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


#: The ``gridplan.toml`` section of every parameter (from its declaration; a field declared
#: without :func:`param` is accepted in any section).
SECTION_OF: dict[str, str] = {f.name: f.metadata["section"] for f in fields(Params) if "section" in f.metadata}


def _choices_text(choices: tuple[str, ...]) -> str:
    if len(choices) == 2:
        return f"{choices[0]!r} or {choices[1]!r}"
    return "one of " + ", ".join(choices)


def _check_field(f: dataclasses.Field[Any], v: Any, p: Problems, source: str) -> None:
    """The declared checks of one field (choices, range): one problem per failed check."""
    meta, name = f.metadata, f.name
    if v is None or not meta:
        return
    fix = meta["fix"]
    unit = f" ({meta['unit']})" if meta["unit"] else ""
    if meta["choices"] is not None and v not in meta["choices"]:
        p.add(source, f"{name} must be {_choices_text(meta['choices'])}, got {v!r}", fix)
        return
    lo, lo_ok, hi = meta["above"], meta["minimum"], meta["below"]
    if lo is not None and hi is not None and not lo < v < hi:
        p.add(source, f"{name} must be in ({lo:g}, {hi:g}){unit}, got {v}", fix or f"e.g. {_example(name)}")
    elif lo is not None and hi is None and not v > lo:
        p.add(source, f"{name} must be > {lo:g}{unit}, got {v}", fix or f"e.g. {_example(name)}")
    elif lo_ok is not None and v < lo_ok:
        p.add(source, f"{name} must be >= {lo_ok:g}{unit}, got {v}", fix or f"e.g. {_example(name)}")


def _kind(annotation: object) -> str:
    """The kind of value a field holds, from its annotation: number, integer, text, flag or table."""
    text = str(annotation).replace(" ", "")
    return {"float": "number", "float|None": "number", "int": "integer", "int|None": "integer",
            "str": "text", "str|None": "text", "bool": "flag", "dict[str,str]": "text table",
            "dict[str,float]": "number table"}.get(text, "any")


def field_kind(f: dataclasses.Field[Any]) -> str:
    """The kind of value a :class:`Params` field holds: number, integer, text, flag or a table."""
    return _kind(f.type)


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
    f = next(f for f in fields(Params) if f.name == name)
    if f.metadata.get("example") is not None:
        return f"{name} = {f.metadata['example']}"
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
    token = _SOURCE.set(Path(path).name if path else "parameters")
    try:
        return Params(**values)  # validated when made, its problems naming the file
    finally:
        _SOURCE.reset(token)


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
