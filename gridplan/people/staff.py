"""Roster posts (岗位) of a station's staff, and what a merge releases and needs.

A roster (``managers.*``) may list every person of a station, not only its 台区经理. The ``role``
(岗位) column says which post each person holds:

========== ====================================================== =============================
post       accepted values (case and spaces ignored)              in the plan
========== ====================================================== =============================
``head``   所长, 副所长, 站长, 负责人, head                        no grid (station overhead)
``office`` 内勤, 综合, 综合班, 综合员, 综合管理, 核算员, office    no grid (back office)
``counter`` 营业厅, 柜台, 营业员, 柜员, 营业, counter              no grid (counter staff)
``lv``     台区经理, 低压, 台区, 低压运维, lv, (empty)             one grid each
``hv``     高压, 高压运维, 高压线路, 高压专责, 线路运维, hv        10 kV segments
``leader`` 组长, 小组长, 服务小组组长, leader                      one grid, and leads a service group
========== ====================================================== =============================

A merge closes the absorbed station (its head, back-office and counter positions are released) or
keeps it as a 供电服务站 (its head and back-office positions are released, its counter stays). The
field staff (台区经理, HV) move to the remaining station: how many 台区经理 the merged station needs
comes from its replanned grids.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from .assign import is_leader, parse_roles

__all__ = ["FIELD_POSTS", "POSTS", "POST_LABELS", "not_field", "parse_posts", "staff_change"]

log = logging.getLogger(__name__)

#: Accepted ``role`` values of the posts that hold no grid.
POSTS: dict[str, tuple[str, ...]] = {
    "head": ("head", "所长", "副所长", "站长", "负责人", "供电所所长"),
    "office": ("office", "内勤", "综合", "综合班", "综合员", "综合管理", "核算员", "内勤人员"),
    "counter": ("counter", "营业厅", "柜台", "营业员", "柜员", "营业", "营业厅人员"),
}
#: Posts of field staff (kept by :func:`gridplan.people.assign.parse_roles` as ``lv`` / ``hv``).
FIELD_POSTS = ("lv", "hv")
POST_LABELS = {"head": "所长", "office": "内勤/综合", "counter": "营业厅/柜台", "lv": "台区经理",
               "hv": "高压"}


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return "".join(str(v).split()).lower()


def parse_posts(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Read a roster's ``role`` column into posts.

    Parameters
    ----------
    values
        The raw ``role`` (岗位) values.

    Returns
    -------
    posts, unknown
        ``head`` / ``office`` / ``counter`` / ``lv`` / ``hv`` per row (object array), and a mask of
        values that are none of them (those rows are ``lv``).
    """
    field, bad = parse_roles(values)
    text = values.map(_text)
    out = np.asarray(field, dtype=object).copy()
    for post, names in POSTS.items():
        hit = text.isin([n.lower() for n in names]).to_numpy()
        out[hit] = post
        bad = bad & ~hit
    out[is_leader(values)] = "leader"  # a 台区经理 who also leads a service group (#16 part 6)
    return out, bad


def not_field(managers: pd.DataFrame | None) -> np.ndarray:
    """Mask of the roster rows whose ``role`` is a post without a grid (所长, 内勤, 营业厅)."""
    if managers is None or "role" not in managers.columns:
        return np.zeros(0 if managers is None else len(managers), dtype=bool)
    mask: np.ndarray = managers["role"].astype(str).isin(list(POSTS)).to_numpy()
    return mask


def _count(managers: pd.DataFrame | None, stations: set[str]) -> dict[str, int]:
    out = dict.fromkeys(POST_LABELS, 0)
    if managers is None or not len(managers):
        return out
    m = managers[managers["station_id"].astype(str).isin(stations)]
    role = m["role"].astype(str) if "role" in m.columns else pd.Series("lv", index=m.index)
    for post, n in role.value_counts().items():
        out[str(post) if str(post) in out else "lv"] += int(n)
    return out


def staff_change(managers: pd.DataFrame | None, *, into: str, absorbed: list[str],
                 kept: list[str], grids_before: int, grids_after: int) -> pd.DataFrame:
    """Count what a merge releases and needs, post by post.

    Parameters
    ----------
    managers
        The roster (``station_id``, ``role`` as parsed by the loader).
    into
        The remaining station.
    absorbed
        The absorbed stations.
    kept
        The absorbed stations kept as 供电服务站 (their counter staff stay).
    grids_before, grids_after
        Grids (台区经理 needed) of the merged stations before and after.

    Returns
    -------
    pandas.DataFrame
        One row per post: ``post``, ``label``, ``before`` (people in the merged stations),
        ``released`` (positions freed), ``needed_after`` (positions the merged organisation
        needs), ``note``. The 台区经理 row compares the roster with the grids.
    """
    scope = {into, *absorbed}
    have = _count(managers, scope)
    closed = [s for s in absorbed if s not in kept]
    rows = []
    for post in ("head", "office", "counter"):
        per = {s: _count(managers, {s})[post] for s in absorbed}
        if post == "counter":
            released = sum(per[s] for s in closed)
            note = ("关闭供电所的营业厅岗位释放" if closed else "") + \
                   ("；保留服务站的营业厅保留" if kept else "")
        else:
            released = sum(per.values())
            note = "并入供电所的岗位释放（由保留供电所统一承担）"
        rows.append({"post": post, "label": POST_LABELS[post], "before": have[post],
                     "released": released, "needed_after": have[post] - released,
                     "note": note.strip("；")})
    rows.append({"post": "lv", "label": POST_LABELS["lv"], "before": have["lv"],
                 "released": max(0, grids_before - grids_after), "needed_after": grids_after,
                 "note": f"网格 {grids_before} → {grids_after}；名册 {have['lv']} 人"})
    rows.append({"post": "hv", "label": POST_LABELS["hv"], "before": have["hv"], "released": 0,
                 "needed_after": have["hv"], "note": "高压线段随线路移交，人数不变"})
    return pd.DataFrame(rows)
