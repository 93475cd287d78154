"""The input contract: one declarative schema per layer of a county folder.

:data:`SPECS` holds, per layer, a :class:`LayerSpec`: whether the file is required, which
extensions it may have, its geometry, its id column, and one :class:`Column` per column, which
says everything gridplan knows about it: the canonical name, the accepted header names (Chinese
and English aliases, in priority order), the kind of value (id, text, number, count, class, flag,
coordinate), whether the column must be present, its unit, its checks (minimum, maximum, accepted
words) and a description. Everything else is derived from these declarations:

- :data:`ALIASES` (header matching, :mod:`gridplan.io.aliases`),
- the generic reading of ids, texts and numbers and their checks (:func:`gridplan.io.validate.parse_columns`),
- the columns :func:`gridplan.io.load.load_county` requires and keeps,
- the input table of README.md, docs/input.md and the column list of :class:`gridplan.County`
  (:func:`readme_table`, :func:`reference_markdown`, :func:`county_columns`; rewritten with
  ``python scripts/gen_schema_docs.py``, checked by ``tests/test_schema.py``).

Adding a plain column (an id, a text, a number with a range) is one edit: one ``Column(...)`` in
its layer below. A column whose values need their own reading (a class such as ``area_class``)
also needs its step in :mod:`gridplan.io.validate` (``LAYER_STEPS``).

This module imports nothing from gridplan, so every other module may read it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

__all__ = ["ALIASES", "GEOM_TYPES", "GEO_EXTS", "KINDS", "MAX_CAPACITY_KVA", "MAX_CUSTOMERS", "SPECS", "TABLE_EXTS",
           "Column", "LayerSpec", "aliases_of", "county_columns", "readme_table", "reference_markdown"]

GEO_EXTS = (".geojson", ".json", ".gpkg", ".shp")
TABLE_EXTS = (".csv", ".txt", ".xlsx", ".xls")

#: What each kind of column holds once loaded (for the documentation).
KINDS: Mapping[str, str] = MappingProxyType({
    "id": "str", "text": "str", "number": "float", "count": "int", "class": "str", "flag": "bool",
    "coord": "float",
})

# Plausibility limits of one 台区. A value above them is a typo or a unit mix-up (kVA for VA, a
# village total for one 台区): an error.
#: Most households (customers) one 台区 can serve: a 2,500 kVA transformer at ~0.5 kVA/household.
MAX_CUSTOMERS = 5_000
#: Largest distribution transformer capacity of one 台区 (kVA); 10 kV units stop near 2,500 kVA.
MAX_CAPACITY_KVA = 10_000.0


@dataclass(frozen=True)
class Column:
    """One column of a layer: names, kind of value, checks and meaning.

    Parameters
    ----------
    name
        The canonical name (what the loaded frame calls it).
    kind
        ``id`` (text ids: ``1001.0`` -> ``"1001"``), ``text``, ``number`` (float; text such as
        ``"1,234"`` read), ``count`` (a whole number >= 0, stored as int), ``class`` (words read
        by the layer's own step in :mod:`gridplan.io.validate`), ``flag`` (yes/no) or ``coord``
        (the ``lon``/``lat`` of a table).
    aliases
        Accepted header names in priority order (the first alias of two columns meaning the same
        wins). The canonical name is accepted first unless it is listed elsewhere.
    required
        Whether the column must be present in the file.
    unit
        The unit of a number (``kVA``, ``households``, ``km/h``), shown in messages and docs.
    minimum, maximum
        Range of a number; ``maximum`` values above it are implausible (an error naming the rows).
    values
        Accepted words of a ``class`` or ``flag`` column and what they mean (first: canonical).
    description
        What the column means, in English (Chinese terms welcome), one sentence.
    zh
        The Chinese name shown in the documentation (default: the first Chinese alias).
    thousands
        Read ``"1,234"`` as 1234 (counts, kWh) rather than as a comma decimal.
    filled
        Numbers: every row must have a value (else the column may be empty in some rows).
    clean
        Texts: ``blank`` (stripped, empty -> None), ``strip`` (stripped, kept) or ``none`` (as read).
    default_from
        Texts: the column whose value an empty cell takes (a 台区 without a name: its id).
    drop_if_empty
        Drop the column from the loaded layer when no row has a value.
    derived
        Added by loading (not read from the file): documented, never looked for in the file.
    """

    name: str
    kind: str = "text"
    aliases: tuple[str, ...] = ()
    required: bool = False
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] = ()
    description: str = ""
    zh: str | None = None
    thousands: bool = False
    filled: bool = False
    clean: str = "blank"
    default_from: str | None = None
    drop_if_empty: bool = False
    derived: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: unknown kind {self.kind!r}")
        if self.clean not in ("blank", "strip", "none"):
            raise ValueError(f"column {self.name!r}: unknown clean {self.clean!r}")

    @property
    def names(self) -> tuple[str, ...]:
        """Every accepted header name, in priority order (canonical name first unless listed)."""
        return self.aliases if self.name in self.aliases else (self.name, *self.aliases)

    @property
    def label(self) -> str:
        """The Chinese name for documentation: ``zh``, else the first non-ASCII alias, else ''."""
        if self.zh is not None:
            return self.zh
        return next((a for a in self.aliases if not a.isascii()), "")


@dataclass(frozen=True)
class LayerSpec:
    """What one layer file must hold: its file, geometry, id and columns."""

    name: str
    required: bool
    exts: tuple[str, ...]
    geom: str  # "polygon", "point", "line" or "home" (an optional point from lon/lat columns)
    id_col: str | None
    fields: tuple[Column, ...]
    what: str = "要素"
    #: Whether ``id_col`` must be unique (feeders: one row per line section repeats the feeder_id).
    unique_id: bool = True
    #: One sentence about the layer, for the documentation.
    description: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of the columns the file must have (``lon``/``lat`` of tables aside)."""
        return tuple(c.name for c in self.fields if c.required and c.kind != "coord" and not c.derived)

    @property
    def optional(self) -> tuple[str, ...]:
        """The names of the columns the file may have (added empty when absent)."""
        return tuple(c.name for c in self.fields
                     if not c.required and c.kind != "coord" and not c.derived)

    @property
    def kept(self) -> tuple[str, ...]:
        """Every column the loaded layer may hold (read and derived; ``lon``/``lat`` aside)."""
        return tuple(c.name for c in self.fields if c.kind != "coord")

    def column(self, name: str) -> Column:
        """The :class:`Column` called ``name`` (KeyError if the layer has none)."""
        for c in self.fields:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


#: The geometry types a layer of each geometry kind may hold (lines: polygons give their outline).
GEOM_TYPES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "polygon": ("Polygon", "MultiPolygon"), "point": ("Point",),
    "line": ("LineString", "MultiLineString", "Polygon", "MultiPolygon"), "home": ("Point",)})


# ----------------------------------------------------------------------------- shared columns

_LON = ("lon", "lng", "long", "longitude", "x", "经度", "东经", "经度坐标", "x坐标")
_LAT = ("lat", "latitude", "y", "纬度", "北纬", "纬度坐标", "y坐标")
_STATION = ("station_id", "供电所编号", "供电所", "所属供电所", "供电所id", "供电所代码", "station")
_TOWNSHIP = ("township_id", "乡镇编号", "乡镇代码", "乡镇id", "乡镇", "所属乡镇", "乡镇街道", "township")


def _lonlat(what: str) -> tuple[Column, Column]:
    return (Column("lon", "coord", _LON, unit="°", zh="经度",
                   description=f"longitude of the {what} (tables only; a point layer has its geometry)"),
            Column("lat", "coord", _LAT, unit="°", zh="纬度", description=f"latitude of the {what}"))


#: 城区 / 农村 / 特殊边远 and the words read as them (``area_class``).
AREA_CLASSES: Mapping[str, str] = MappingProxyType({
    "城区": "城区", "城市": "城区", "市区": "城区", "城镇": "城区", "urban": "城区",
    "农村": "农村", "乡村": "农村", "rural": "农村",
    "特殊边远": "特殊边远", "特殊边远地区": "特殊边远", "边远": "特殊边远",
    "边远地区": "特殊边远", "remote": "特殊边远"})
#: 供电所 / 中心供电所 / 供电服务站 and the words read as them (``kind``).
STATION_KINDS: Mapping[str, str] = MappingProxyType({
    "供电所": "供电所", "中心供电所": "中心供电所", "中心所": "中心供电所",
    "供电服务站": "供电服务站", "服务站": "供电服务站", "station": "供电所",
    "central": "中心供电所", "service": "供电服务站"})
#: Status words that take a 台区 out of the plan (matched as substrings, case-insensitive).
RETIRED = ("停运", "拆除", "退运", "报废", "注销", "废弃", "已拆", "停用", "停止运行", "未投运",
           "待投运", "retired", "out of service", "decommissioned", "removed", "inactive",
           "demolished")
#: Status words of a 台区 in service (matched as substrings once RETIRED did not match). Any
#: other non-empty status is an error that lists these and RETIRED; an empty status is in service.
IN_SERVICE = ("运行", "在运", "投运", "在用", "正常", "备用", "启用", "检修", "active", "in service",
              "in-service", "running", "normal", "operating")
#: Words of a switch's ``normally_open``: open (true) first, then closed (false).
OPEN_WORDS = ("是", "常开", "开", "分", "断开", "1", "true", "t", "yes", "y", "open")
CLOSED_WORDS = ("否", "常闭", "闭", "合", "闭合", "0", "false", "f", "n", "closed", "nc")
#: Posts of the roster's ``role`` column (read by :func:`gridplan.people.staff.parse_posts`).
ROLES = ("台区经理", "低压", "高压", "组长", "所长", "内勤", "综合", "营业厅", "柜台")


# ----------------------------------------------------------------------------- the layers

_TOWNSHIPS = LayerSpec(
    "townships", True, GEO_EXTS, "polygon", "township_id", (
        Column("township_id", "id", ("township_id", "乡镇编号", "乡镇代码", "乡镇id", "乡镇编码", "id",
                                     "code", "towncode", "编号", "代码"), required=True,
               description="unique id of the township (乡镇/街道)"),
        Column("name", "text", ("name", "乡镇名称", "乡镇", "名称", "乡镇街道", "townname"), required=True,
               clean="none", default_from="township_id", description="township name (empty: its id)"),
        Column("station_id", "id", _STATION, required=True, zh="供电所",
               description="the 供电所 serving the township: a station_id of stations.*, in every row"),
        Column("area_class", "class", ("area_class", "区域类型", "地区类型", "供电区域", "供电区域类型",
                                       "区域类别"), values=("城区", "农村", "特殊边远"),
               description="area class for repair commitments (45 / 90 / 120 min); empty: from "
                           "the name (…街道 / …镇 / …乡), else params.area_class"),
        Column("class_source", "text", derived=True, zh="",
               description="where area_class came from: given, name or default"),
    ), "乡镇", description="township polygons; every point is placed in one of them")

_STATIONS = LayerSpec(
    "stations", True, GEO_EXTS + TABLE_EXTS, "point", "station_id", (
        Column("station_id", "id", ("station_id", "供电所编号", "供电所代码", "供电所id", "id", "编号",
                                    "代码"), required=True, description="unique id of the 供电所"),
        *_lonlat("station"),
        Column("name", "text", ("name", "供电所名称", "名称", "供电所"), required=True, clean="none",
               description="station name"),
        Column("kind", "class", ("kind", "类型", "供电所类型", "type", "类别"),
               values=("供电所", "中心供电所", "供电服务站"),
               description="kind of station (empty: 供电所)"),
        Column("parent_id", "id", ("parent_id", "上级供电所", "所属中心供电所", "中心供电所", "parent",
                                   "上级"), description="the 中心供电所 of a 供电服务站 (a station_id)"),
        Column("phone", "id", ("phone", "值班电话", "供电所电话", "电话", "联系电话", "tel"),
               description="duty phone printed on wall maps and boards beside 95598 (text: leading "
                           "zeros kept)"),
    ), "供电所", description="station locations (points, or a table with 经度/纬度)")

_TRANSFORMERS = LayerSpec(
    "transformers", True, GEO_EXTS + TABLE_EXTS, "point", "transformer_id", (
        Column("transformer_id", "id", ("transformer_id", "台区编号", "台区编码", "台区id", "台区代码",
                                        "台区号", "id", "编号", "tq_id"), required=True,
               description="unique id of the 台区"),
        Column("name", "text", ("name", "台区名称", "台区名", "名称", "台区"), required=True,
               default_from="transformer_id", description="台区 name (empty: its id)"),
        *_lonlat("台区"),
        Column("customers", "count", ("customers", "用户数", "户数", "用户数量", "用户户数", "客户数",
                                      "households", "n_customers"), required=True, unit="households",
               minimum=0, maximum=MAX_CUSTOMERS, thousands=True, filled=True, zh="户数",
               description='households served (a whole number; "12" as text is fine, 12.5 is not)'),
        Column("capacity_kva", "number", ("capacity_kva", "容量", "容量kva", "配变容量", "变压器容量",
                                          "额定容量", "capacity", "kva"), required=True, unit="kVA",
               minimum=0, maximum=MAX_CAPACITY_KVA, thousands=True, filled=True, zh="容量(kVA)",
               description="transformer capacity"),
        Column("feeder_id", "id", ("feeder_id", "所属线路", "线路编号", "馈线", "馈线编号", "线路",
                                   "所属馈线", "feeder", "line_id"),
               description="the 10 kV feeder it hangs on (feeder_id of feeders.*; else by location)"),
        Column("status", "class", ("status", "运行状态", "状态", "设备状态"),
               values=IN_SERVICE + RETIRED,
               description="in service (运行, 在运, 投运 … or empty) or retired (停运, 拆除, 退运, "
                           "报废 …: left out and counted in the report); any other word is an error"),
        Column("township_id", "id", _TOWNSHIP, zh="乡镇",
               description="the ledger's township: as station_id"),
        Column("station_id", "id", _STATION, zh="供电所",
               description="the ledger's station: replaced by the spatial join (disagreements "
                           "counted); used to place a 台区 outside every township"),
        Column("village", "text", ("village", "村", "行政村", "所属村", "村名", "所属行政村"),
               description="village name, shown in grids and the roster"),
        Column("current_manager_id", "id", ("manager_id", "current_manager_id", "台区经理工号",
                                            "台区经理编号", "工号", "人员编号"), drop_if_empty=True,
               description="the manager of a current plan (a manager_id), to stay close to"),
        Column("current_grid_id", "id", ("grid_id", "current_grid_id", "网格编号", "所属网格", "网格"),
               drop_if_empty=True, description="the grid of a current plan"),
        Column("sales_kwh", "number", ("sales_kwh", "售电量", "售电量kwh", "年售电量", "售电量(kWh)",
                                       "sales"), unit="kWh", minimum=0, thousands=True,
               drop_if_empty=True, description="yearly electricity sales (used by merge-candidates)"),
        Column("snapped_m", "number", derived=True, unit="m", zh="",
               description="distance to the township a 台区 in no township polygon was put in "
                           "(NaN for the others)"),
        Column("snapped", "text", derived=True, zh="",
               description="the map's note of a snapped 台区, e.g. 已归入 头城镇，距边界 6 米"),
        Column("ledger_lon", "number", derived=True, unit="°", zh="",
               description="WGS84 longitude the ledger gives a snapped 台区 (NaN when not moved)"),
        Column("ledger_lat", "number", derived=True, unit="°", zh="",
               description="WGS84 latitude the ledger gives a snapped 台区 (NaN when not moved)"),
    ), "台区", description="the 台区 ledger: points, or a table with 经度/纬度; retired 台区 are "
                          "left out")

_FEEDERS = LayerSpec(
    "feeders", False, GEO_EXTS, "line", "feeder_id", (
        Column("feeder_id", "id", ("feeder_id", "线路编号", "馈线编号", "线路id", "id", "编号"),
               required=True, description="the 10 kV feeder; repeated by its line sections"),
        Column("name", "text", ("name", "线路名称", "馈线名称", "名称"), clean="none",
               description="feeder name"),
        Column("substation_id", "id", ("substation_id", "变电站编号", "所属变电站", "变电站", "电源点"),
               description="the substation it leaves from; every section of a feeder names the "
                           "same one (or leaves it empty)"),
        Column("poles", "number", ("poles", "杆数", "电杆数", "杆塔数", "杆塔数量"), minimum=0,
               thousands=True, description="poles, for a segment weight with poles (else one per "
                                           "line vertex)"),
        Column("line_id", "id", ("line_id", "线段编号", "线路段编号", "区段编号", "导线编号", "回路编号"),
               description="one id per line section: two lines between the same points with "
                           "distinct ids (a double circuit) are both kept"),
    ), "线路", unique_id=False, description="10 kV lines: one row per feeder or per line section")

_SWITCHES = LayerSpec(
    "switches", False, GEO_EXTS + TABLE_EXTS, "point", "switch_id", (
        Column("switch_id", "id", ("switch_id", "开关编号", "开关id", "id", "编号"), required=True,
               description="unique id of the switch"),
        *_lonlat("switch"),
        Column("normally_open", "flag", ("normally_open", "常开", "是否常开", "联络开关", "分合状态",
                                         "open"), required=True, values=OPEN_WORDS + CLOSED_WORDS,
               description="a normally open (tie) switch: 是/否, 常开/常闭, true/false, 1/0"),
        Column("feeder_id", "id", ("feeder_id", "所属线路", "线路编号", "馈线", "线路"),
               description="the feeder it sits on"),
    ), "开关", description="sectioning and tie switches: HV segments are cut there")

_SUBSTATIONS = LayerSpec(
    "substations", False, GEO_EXTS + TABLE_EXTS, "point", "substation_id", (
        Column("substation_id", "id", ("substation_id", "变电站编号", "变电站id", "id", "编号"),
               required=True, description="unique id of the substation"),
        *_lonlat("substation"),
        Column("name", "text", ("name", "变电站名称", "名称", "变电站"), clean="none",
               description="substation name"),
    ), "变电站", description="the substations feeders leave from")

_MANAGERS = LayerSpec(
    "managers", False, TABLE_EXTS, "home", "manager_id", (
        Column("manager_id", "id", ("manager_id", "工号", "人员编号", "员工编号", "编号", "id"),
               required=True, description="unique staff number"),
        Column("name", "text", ("name", "姓名", "台区经理", "名称"), required=True, clean="strip",
               description="the person's name"),
        Column("phone", "id", ("phone", "电话", "联系电话", "手机", "手机号", "手机号码", "tel", "mobile"),
               description="phone printed on wall maps and boards (text: leading zeros kept)"),
        Column("station_id", "id", _STATION, required=True, zh="供电所",
               description="the person's 供电所: an id, or a station's name"),
        *_lonlat("home (optional)"),
        Column("max_workload", "number", ("max_workload", "最大工作量", "工作量上限", "承载上限"),
               minimum=0, thousands=True,
               description="most workload the person can take (empty: the plan's capacity)"),
        Column("role", "class", ("role", "岗位", "类型", "人员类型", "岗位类型"), values=ROLES,
               description="post: 台区经理 / 低压 (empty), 高压 (HV staff who own 10 kV segments "
                           'with hv_owner = "separate"), 组长 (a 台区经理 who leads a service '
                           "group), or posts without a grid: 所长, 内勤 / 综合, 营业厅 / 柜台"),
    ), "台区经理", description="the roster (CSV / XLSX), with optional home 经度/纬度")

_VILLAGES = LayerSpec(
    "villages", False, GEO_EXTS, "polygon", "village_id", (
        Column("village_id", "id", ("village_id", "村编号", "行政村编号", "村代码", "villcode", "id",
                                    "编号"), required=True, description="unique id of the village"),
        Column("name", "text", ("name", "村名", "村名称", "行政村", "村", "名称", "villname"),
               required=True, clean="none", description="village name"),
        Column("township_id", "id", _TOWNSHIP, zh="乡镇",
               description="its township (empty: by location)"),
    ), "村", description="village polygons: every village has a responsible person (村村有人)")

_BARRIERS = LayerSpec(
    "barriers", False, GEO_EXTS, "line", None, (
        Column("name", "text", ("name", "名称"), clean="none", description="name of the river, highway …"),
        Column("kind", "text", ("kind", "类型", "type"), clean="none", description="what it is"),
    ), "障碍线", description="rivers, highways: grids do not connect across them (polygons: "
                             "their outline)")

_ROADS = LayerSpec(
    "roads", False, GEO_EXTS, "line", None, (
        Column("name", "text", ("name", "名称", "道路名称"), clean="none", description="road name"),
        Column("speed_kmh", "number", ("speed_kmh", "速度", "车速", "限速", "speed", "maxspeed"),
               unit="km/h", minimum=0, description="travel speed (empty: params.speed_kmh)"),
    ), "道路", description="roads, for response times (else straight line × detour factor)")

_CANDIDATES = LayerSpec(
    "candidates", False, GEO_EXTS + TABLE_EXTS, "point", "candidate_id", (
        Column("candidate_id", "id", ("candidate_id", "站点编号", "候选站点编号", "id", "编号"),
               required=True, description="unique id of the site"),
        *_lonlat("site"),
        Column("name", "text", ("name", "站点名称", "名称", "地点"), default_from="candidate_id",
               description="site name (empty: its id)"),
    ), "候选服务站点", description="candidate sites of 供电服务站 for `merge`")

#: Every layer of a county folder, in the order they are read.
SPECS: dict[str, LayerSpec] = {s.name: s for s in (
    _TOWNSHIPS, _STATIONS, _TRANSFORMERS, _FEEDERS, _SWITCHES, _SUBSTATIONS, _MANAGERS, _VILLAGES,
    _BARRIERS, _ROADS, _CANDIDATES)}

#: Accepted column names per layer, canonical name first (derived from :data:`SPECS`). Matching is
#: done on :func:`gridplan.io.aliases.normalize_header` of both sides.
def aliases_of(spec: LayerSpec) -> dict[str, list[str]]:
    """The accepted names of every column of one layer read from its file, canonical name first."""
    return {c.name: list(c.names) for c in spec.fields if not c.derived}


ALIASES: dict[str, dict[str, list[str]]] = {layer: aliases_of(spec) for layer, spec in SPECS.items()}


# ----------------------------------------------------------------------------- documentation

_FORMATS = {".geojson": "GeoJSON", ".gpkg": "GPKG", ".shp": "SHP", ".csv": "CSV", ".xlsx": "XLSX"}
_GEOMETRY = {"polygon": "Polygon / MultiPolygon", "line": "LineString (polygons: their outline)",
             "point": "Point, or `lon`/`lat` columns", "home": "optional home `lon`/`lat`"}


def _formats(spec: LayerSpec) -> str:
    return " / ".join(dict.fromkeys(_FORMATS[e] for e in spec.exts if e in _FORMATS))


def _short(c: Column) -> str:
    """```name` (中文)`` or ```name` (中文: a / b / c)`` for a class with a few values."""
    bits = [c.label] if c.label else []
    if c.kind == "class" and 0 < len(c.values) <= 3:
        bits.append(" / ".join(c.values))
    return f"`{c.name}`" + (f" ({': '.join(bits)})" if bits else "")


def readme_table() -> str:
    """The README's table of the county folder's layers (one row per layer)."""
    rows = ["| file | required | geometry | columns (Chinese aliases accepted) | what |",
            "|---|---|---|---|---|"]
    for spec in SPECS.values():
        read = [c for c in spec.fields if not c.derived and c.kind != "coord"]
        need = [_short(c) for c in read if c.required]
        opt = [_short(c) for c in read if not c.required]
        if any(c.kind == "coord" for c in spec.fields):  # a table's 经度/纬度
            (need if spec.geom == "point" else opt).insert(
                1, "`lon`/`lat` (经度/纬度" + ("; a table's" if spec.geom == "point" else ": home")
                + ")")
        cols = ", ".join(need + ([f"optional {', '.join(opt)}"] if opt else []))
        rows.append(f"| `{spec.name}.*` ({_formats(spec)}) | {'yes' if spec.required else 'no'} | "
                    f"{_GEOMETRY[spec.geom]} | {cols} | {spec.description} |")
    rows.append("| `gridplan.toml` | no | | planning parameters and the input coordinate system "
                "(below) | |")
    return "\n".join(rows)


def _checks(c: Column) -> str:
    bits = []
    if c.kind == "count":
        bits.append("whole number")
    if c.minimum is not None and c.maximum is not None:
        bits.append(f"{c.minimum:,.0f} to {c.maximum:,.0f}")
    elif c.minimum is not None:
        bits.append(f"≥ {c.minimum:g}")
    if c.filled:
        bits.append("in every row")
    if c.kind in ("class", "flag") and c.values:
        bits.append("one of " + ", ".join(c.values[:8]) + (" …" if len(c.values) > 8 else ""))
    return "; ".join(bits)


def reference_markdown() -> str:
    """docs/input.md: every layer and column with names, kind, unit, checks and meaning."""
    out = ["# The county folder: every layer and column",
           "",
           ("Generated from `gridplan/io/schema.py` (`python scripts/gen_schema_docs.py`); "
            "`tests/test_schema.py` fails when this file and the schema disagree. Header matching "
            "ignores case, spaces, full-width forms and brackets (`容量(kVA)` = `容量（KVA）` = "
            "`capacity_kva`); the first listed name of two columns meaning the same wins."),
           ""]
    for spec in SPECS.values():
        out += [f"## `{spec.name}.*` — {spec.what}", "",
                f"{spec.description[:1].upper() + spec.description[1:]}. "
                f"{'Required' if spec.required else 'Optional'}; {_formats(spec)}; "
                f"geometry: {_GEOMETRY[spec.geom]}"
                + (f"; id: `{spec.id_col}`" + ("" if spec.unique_id else " (repeats allowed)")
                   if spec.id_col else "") + ".", "",
                "| column | type | required | unit | checks | accepted names | meaning |",
                "|---|---|---|---|---|---|---|"]
        for c in spec.fields:
            names = "added by loading" if c.derived else " / ".join(c.names)
            req = "—" if c.derived else ("yes" if c.required else "no")
            if c.kind == "coord":
                req = "tables: yes" if spec.geom == "point" else "no"
            out.append(f"| `{c.name}` | {KINDS[c.kind]} | {req} | {c.unit or ''} | {_checks(c)} | "
                       f"{names} | {c.description} |")
        out.append("")
    return "\n".join(out)


def county_columns(indent: str = "    ") -> str:
    """The column list of :class:`gridplan.County`'s docstring (each layer as loaded)."""
    lines = []
    for spec in SPECS.values():
        head = f"``{spec.name}``" + ("" if spec.required else " (optional)")
        lines.append(f"{indent}{head}")
        cols = []
        for c in spec.fields:
            if c.kind == "coord":
                continue
            cols.append(f"``{c.name}`` ({_county_note(c)})")
        text = ", ".join(cols) + "; " + _GEOMETRY[spec.geom].split(",")[0].replace("`", "") + "."
        lines += [f"{indent}    {line}" for line in _wrap(text, 92 - len(indent))]
    return "\n".join(lines)


def _county_note(c: Column) -> str:
    """``str``, ``str: 城区 / 农村 / 特殊边远``, ``str; only when given``, ``float: <what>``."""
    note = KINDS[c.kind]
    if c.kind == "class" and 0 < len(c.values) <= 3:
        note += ": " + " / ".join(c.values)
    if c.derived:
        note += ": " + c.description
    if c.drop_if_empty:
        note += "; only when the file has values"
    return note


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(" "), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    return lines + ([cur] if cur else [])


# ----------------------------------------------------------------------------- generated sections

#: Files with generated sections: path (from the repository root) -> (begin, end, renderer).
BEGIN, END = "<!-- schema:begin (generated by python scripts/gen_schema_docs.py) -->", \
    "<!-- schema:end -->"
_DOC_BEGIN, _DOC_END = "    .. schema:begin (generated by python scripts/gen_schema_docs.py)", \
    "    .. schema:end"


def generated_sections() -> dict[str, tuple[str, str, str]]:
    """Per file (relative to the repository root): begin marker, end marker, expected text."""
    return {"README.md": (BEGIN, END, readme_table()),
            "gridplan/model.py": (_DOC_BEGIN, _DOC_END, f"\n{county_columns()}\n")}


def splice(text: str, begin: str, end: str, body: str) -> str:
    """``text`` with what lies between the lines ``begin`` and ``end`` replaced by ``body``."""
    pattern = re.compile(re.escape(begin) + r"\n.*?\n?" + r"(?=" + re.escape(end) + r")", re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"markers {begin!r} … {end!r} not found")
    return pattern.sub(lambda _: f"{begin}\n{body}\n", text, count=1)


def write_docs(root: Path) -> list[Path]:
    """Rewrite every generated section and docs/input.md under ``root``; return the files changed."""
    changed = []
    for rel, (begin, end, body) in generated_sections().items():
        path = root / rel
        old = path.read_text(encoding="utf-8")
        new = splice(old, begin, end, body)
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    ref = root / "docs" / "input.md"
    body = reference_markdown() + "\n"
    if not ref.exists() or ref.read_text(encoding="utf-8") != body:
        ref.write_text(body, encoding="utf-8")
        changed.append(ref)
    return changed
