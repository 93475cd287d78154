"""Column-name aliases: which header in a user's file means which canonical column of a layer.

:data:`ALIASES` lists, per layer, the accepted names of every column (canonical name first).
Matching is insensitive to case, spaces, full-width forms and brackets (:func:`normalize_header`):
``容量(kVA)``, ``容量（KVA）`` and ``容量`` all mean ``capacity_kva``. A shapefile's ``.dbf`` keeps 10
characters of a name, so long ASCII aliases also match their first 10 characters.
:func:`rename_columns` renames a frame's columns; :func:`accepted_names` lists the names of one
column for messages. Everything here is re-exported by :mod:`gridplan.io`.
"""

from __future__ import annotations

import logging
import re
import unicodedata

import pandas as pd

__all__ = ["ALIASES", "accepted_names", "normalize_header", "rename_columns"]

# The messages keep the logger of the public module that re-exports these functions.
log = logging.getLogger("gridplan.io")

_LON = ["lon", "lng", "long", "longitude", "x", "经度", "东经", "经度坐标", "x坐标"]
_LAT = ["lat", "latitude", "y", "纬度", "北纬", "纬度坐标", "y坐标"]
_STATION = ["station_id", "供电所编号", "供电所", "所属供电所", "供电所id", "供电所代码", "station"]
_TOWNSHIP = ["township_id", "乡镇编号", "乡镇代码", "乡镇id", "乡镇", "所属乡镇", "乡镇街道", "township"]

#: Accepted column names per layer, canonical name first. Matching is done on
#: :func:`normalize_header` of both sides, so case, spaces and brackets do not matter.
ALIASES: dict[str, dict[str, list[str]]] = {
    "townships": {
        "township_id": ["township_id", "乡镇编号", "乡镇代码", "乡镇id", "乡镇编码", "id", "code",
                        "towncode", "编号", "代码"],
        "name": ["name", "乡镇名称", "乡镇", "名称", "乡镇街道", "townname"],
        "station_id": _STATION,
        "area_class": ["area_class", "区域类型", "地区类型", "供电区域", "供电区域类型", "区域类别"],
    },
    "stations": {
        "station_id": ["station_id", "供电所编号", "供电所代码", "供电所id", "id", "编号", "代码"],
        "lon": _LON,  # a stations.csv / .xlsx with 经度/纬度 (as the README says)
        "lat": _LAT,
        "name": ["name", "供电所名称", "名称", "供电所"],
        "kind": ["kind", "类型", "供电所类型", "type", "类别"],
        "parent_id": ["parent_id", "上级供电所", "所属中心供电所", "中心供电所", "parent", "上级"],
        "phone": ["phone", "值班电话", "供电所电话", "电话", "联系电话", "tel"],
    },
    "transformers": {
        "transformer_id": ["transformer_id", "台区编号", "台区编码", "台区id", "台区代码", "台区号",
                           "id", "编号", "tq_id"],
        "name": ["name", "台区名称", "台区名", "名称", "台区"],
        "lon": _LON,
        "lat": _LAT,
        "customers": ["customers", "用户数", "户数", "用户数量", "用户户数", "客户数", "households",
                      "n_customers"],
        "capacity_kva": ["capacity_kva", "容量", "容量kva", "配变容量", "变压器容量", "额定容量",
                         "capacity", "kva"],
        "feeder_id": ["feeder_id", "所属线路", "线路编号", "馈线", "馈线编号", "线路", "所属馈线",
                      "feeder", "line_id"],
        "status": ["status", "运行状态", "状态", "设备状态"],
        "village": ["village", "村", "行政村", "所属村", "村名", "所属行政村"],
        "current_manager_id": ["manager_id", "current_manager_id", "台区经理工号", "台区经理编号",
                               "工号", "人员编号"],
        "current_grid_id": ["grid_id", "current_grid_id", "网格编号", "所属网格", "网格"],
        "station_id": _STATION,
        "township_id": _TOWNSHIP,
        "sales_kwh": ["sales_kwh", "售电量", "售电量kwh", "年售电量", "售电量(kWh)", "sales"],
    },
    "managers": {
        "manager_id": ["manager_id", "工号", "人员编号", "员工编号", "编号", "id"],
        "name": ["name", "姓名", "台区经理", "名称"],
        "phone": ["phone", "电话", "联系电话", "手机", "手机号", "手机号码", "tel", "mobile"],
        "station_id": _STATION,
        "lon": _LON,
        "lat": _LAT,
        "max_workload": ["max_workload", "最大工作量", "工作量上限", "承载上限"],
        "role": ["role", "岗位", "类型", "人员类型", "岗位类型"],
    },
    "feeders": {
        "feeder_id": ["feeder_id", "线路编号", "馈线编号", "线路id", "id", "编号"],
        "name": ["name", "线路名称", "馈线名称", "名称"],
        "substation_id": ["substation_id", "变电站编号", "所属变电站", "变电站", "电源点"],
        "poles": ["poles", "杆数", "电杆数", "杆塔数", "杆塔数量"],
        "line_id": ["line_id", "线段编号", "线路段编号", "区段编号", "导线编号", "回路编号"],
    },
    "switches": {
        "switch_id": ["switch_id", "开关编号", "开关id", "id", "编号"],
        "normally_open": ["normally_open", "常开", "是否常开", "联络开关", "分合状态", "open"],
        "feeder_id": ["feeder_id", "所属线路", "线路编号", "馈线", "线路"],
    },
    "substations": {
        "substation_id": ["substation_id", "变电站编号", "变电站id", "id", "编号"],
        "name": ["name", "变电站名称", "名称", "变电站"],
    },
    "villages": {
        "village_id": ["village_id", "村编号", "行政村编号", "村代码", "villcode", "id", "编号"],
        "name": ["name", "村名", "村名称", "行政村", "村", "名称", "villname"],
        "township_id": _TOWNSHIP,
    },
    "candidates": {"candidate_id": ["candidate_id", "站点编号", "候选站点编号", "id", "编号"],
                   "name": ["name", "站点名称", "名称", "地点"]},
    "barriers": {"name": ["name", "名称"], "kind": ["kind", "类型", "type"]},
    "roads": {"name": ["name", "名称", "道路名称"],
              "speed_kmh": ["speed_kmh", "速度", "车速", "限速", "speed", "maxspeed"]},
}


_BRACKETS = "()[]{}<>（）【】〔〕《》「」"
_BRACKETED = re.compile(r"[(\[{<（【〔《「][^)\]}>）】〕》」]*[)\]}>）】〕》」]")


def normalize_header(text: object) -> str:
    """Return the matching key of a column name: NFKC, lower case, no spaces, no brackets.

    >>> normalize_header(" 容量（kVA） ")
    '容量kva'
    """
    s = unicodedata.normalize("NFKC", str(text)).lower()
    s = re.sub(r"[\s_\-.:：/]+", "", s)
    return "".join(ch for ch in s if ch not in _BRACKETS)


def _key_without_brackets(text: object) -> str:
    s = unicodedata.normalize("NFKC", str(text))
    return normalize_header(_BRACKETED.sub("", s))


def _alias_index(layer: str) -> dict[str, tuple[str, int]]:
    """Map normalized alias -> (canonical name, priority) for one layer."""
    out: dict[str, tuple[str, int]] = {}
    for canon, names in ALIASES.get(layer, {}).items():
        for prio, name in enumerate(names):
            out.setdefault(normalize_header(name), (canon, prio))
    for canon, names in ALIASES.get(layer, {}).items():
        for prio, name in enumerate(names):
            if name.isascii() and len(name) > 10:  # a shapefile's .dbf keeps 10 characters
                out.setdefault(normalize_header(name[:10]), (canon, prio + 100))
    return out


def _match(column: object, index: dict[str, tuple[str, int]]) -> tuple[str, int] | None:
    hit = index.get(normalize_header(column))
    if hit is None:
        hit = index.get(_key_without_brackets(column))
    return hit


def rename_columns(frame: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Rename the columns of ``frame`` to the canonical names of ``layer``.

    When several columns mean the same thing (``id`` and ``台区编号``), the one whose alias comes
    first in :data:`ALIASES` wins; the others keep their names.
    """
    index = _alias_index(layer)
    best: dict[str, tuple[int, object]] = {}
    for col in frame.columns:
        if col in ("_row", "geometry"):
            continue
        hit = _match(col, index)
        if hit is None:
            continue
        canon, prio = hit
        if canon not in best or prio < best[canon][0]:
            best[canon] = (prio, col)
    mapping = {col: canon for canon, (_, col) in best.items() if col != canon}
    # A column already named like a canonical target that is not chosen must step aside.
    clash = {c: f"{c}_orig" for c in frame.columns if c in mapping.values() and c not in mapping}
    if mapping:
        log.debug("%s: columns renamed %s", layer, mapping)
    out = frame.rename(columns={**clash, **mapping})
    out.attrs["source_columns"] = [str(c) for c in frame.columns if c not in ("_row", "geometry")]
    return out


def accepted_names(layer: str, column: str) -> str:
    """The accepted names of one column, for messages: ``台区编号 / 台区编码 / ...``."""
    return " / ".join(ALIASES.get(layer, {}).get(column, [column]))
