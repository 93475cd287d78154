"""The plan pipeline as the commands run it: progress bar, summary screen."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

import gridplan  # the public API (load_county, plan), looked up when a command runs

from ..errors import Problem
from ..files import OutputError, open_output
from ..metrics.kpi import coverage_line, measures_line
from ..model import PLAN_FILES, Plan
from ..pipeline import STAGES
from ..replan.store import StoreVersion


def run_plan(county_dir: Path, out: Path, *, coords: str | None, basemap: str | None,
             map_html: bool = True, current: Any = None, pins: Any = None,
             store: Path | None = None, note: str = "", force: bool = False,
             quiet: bool = False, command: str = "gridplan plan",
             **params: Any) -> Plan:
    """Check the outputs, load, plan and write one county with a progress bar; return the plan.

    ``out`` (and ``store``) are checked and locked first, before anything is planned: a location
    that cannot be used stops the run at once (:class:`~gridplan.files.OutputError`). With
    ``store`` the plan is also saved there as a new version, committed together with ``out``
    (:class:`~gridplan.replan.store.StoreVersion`). ``current``/``pins`` go to :func:`gridplan.plan`. ``quiet``
    (``-q``): no progress bar, no summary, nothing on the console but errors.
    """
    t0 = time.perf_counter()
    expect = [f for f in PLAN_FILES if map_html or f != "map.html"]
    target = open_output(out, command=command, inputs=[county_dir], expect=expect, force=force)
    version = None
    try:
        version = _open_store(store, target, note) if store is not None else None
        bar = tqdm(total=len(STAGES) + 2, desc="读取数据", unit="步", leave=False,
                   disable=True if quiet else None)
        county = gridplan.load_county(county_dir, coords=coords, **params)
        bar.update(1)

        def progress(stage: str, i: int, n: int) -> None:
            bar.set_description(_STAGE_ZH.get(stage, stage))
            bar.n = i + 1
            bar.refresh()

        p = gridplan.plan(county, progress=progress, current=current, pins=pins)
        bar.set_description("写出结果")
        bar.n = len(STAGES) + 1
        bar.refresh()
        if version is not None:
            version.plan = p
        p.to_file(target, map_html=map_html, basemap=basemap, transaction=version)
        bar.update(1)
        bar.close()
    except BaseException:
        target.close(failed=True)
        raise
    finally:
        if version is not None:
            version.close()
    target.close()
    if version is not None and not quiet:
        click.echo(f"方案已存为 {store} 的第 {version.version} 版 / saved as version "
                   f"{version.version} of {store}")
    if not quiet:
        print_summary(p, out, time.perf_counter() - t0)
    return p


def _open_store(store: Path, target: Any, note: str) -> Any:
    """Open the ``--store`` version (checked and locked), refusing a store among the outputs."""
    ours = {target.path / name for name in PLAN_FILES}
    if Path(store).resolve() in ours:
        raise OutputError([Problem(f"--store {store}", "is one of the files --out writes",
                                   "give the store another name, e.g. plans.gpkg")])
    return StoreVersion(store, note=note, out=target.path).open()


_STAGE_ZH = {"workload": "计算工作量", "graph": "邻接关系", "patches": "低压到片（划分网格）",
             "territory": "网格边界", "feeders": "高压到段（线路分段）", "managers": "分配台区经理",
             "kpis": "计算指标"}


def print_summary(p: Plan, out: Path, seconds: float) -> None:
    """One screen: what was planned, the headline KPIs, notes, and where the files are."""
    c = p.kpi["county"]
    lb = c.get("grid_lower_bound")
    click.secho(f"\n{c['name']} — 规划完成 / plan done in {seconds:.1f} s", bold=True)
    click.echo(f"  乡镇 {c['townships']}  供电所 {c['stations']}  台区 {c['transformers']}  户数 {c['households']}")
    click.echo(f"  网格 {c['grids']}（下限 {lb}）  工作量变异系数 CV {c['cv']:.3f}  "
               f"最大/均值 {c['max_over_mean']:.2f}  最小/均值 {c['min_over_mean']:.2f}")
    click.echo(f"  不连通网格 {c['noncontiguous_grids']}  超容量网格 {c['over_capacity_grids']}  "
               f"平均距中心 {c['mean_dist_to_medoid_m']:.0f} m  占位经理 {c['managers_placeholder']}")
    if "moved_transformers" in c:
        click.echo(f"  与现有方案相比：改派台区 {c['moved_transformers']} 个（{c['moved_households']} 户），"
                   f"新增台区 {c.get('new_transformers', 0)} 个")
    if "p95_response_minutes" in c:
        click.echo(f"  抢修到达 p95 {c['p95_response_minutes']:.0f} 分钟，最长 {c['max_response_minutes']:.0f} 分钟，"
                   f"超出承诺台区 {c['transformers_beyond_commitment']}")
    opt = (p.kpi.get("optimality") or {}).get("county")
    if opt and opt.get("value_m"):
        click.echo(f"  最优性：总距离 {opt['value_m'] / 1000:.1f} km，下界 {opt['bound_m'] / 1000:.1f} km，"
                   f"差距 {opt['gap'] * 100:.1f}%（下界放宽了均衡与连通约束）")
    hv = p.kpi.get("hv") or {}
    if hv.get("segments"):
        click.echo(f"  10kV 线路 {hv.get('feeders')} 条，{hv.get('total_km')} km，分为 {hv['segments']} 段"
                   f"（最长 {hv.get('max_segment_km')} km）")
    line = measures_line(p.kpi.get("measures") or {})
    if line:
        click.echo(f"  {line}")
    cov = p.kpi.get("coverage")
    if cov:
        click.echo(f"  {coverage_line(cov)}")
    for line in input_lines(p.kpi.get("input") or {}):
        click.echo(f"  {line}")
    notes = p.kpi.get("notes") or []
    for note in notes[:8]:
        click.echo(f"  · {note}")
    if len(notes) > 8:
        click.echo(f"  · … 另有 {len(notes) - 8} 条说明见 kpi.json")
    click.echo(f"\n输出 / outputs in {out}/:")
    for name in ("map.html", "plan.gpkg", "roster.xlsx", "kpi.json"):
        if (out / name).exists():
            click.echo(f"  {out / name}")


def _shown(items: list[str], limit: int = 5) -> str:
    return "、".join(items[:limit]) + (f" 等 {len(items)} 个" if len(items) > limit else "")


def input_lines(inp: dict[str, Any]) -> list[str]:
    """Chinese lines on what was done to the input (kpi["input"]): one line per kind, with ids."""
    lines = []
    snapped = inp.get("snapped_transformers") or []
    if snapped:
        far = max(float(r["distance_m"]) for r in snapped)
        lines.append(f"归入乡镇的界外台区 {len(snapped)} 个（最远 {far:.0f} 米）："
                     + _shown([f"{r['transformer_id']}→{r['township_id']}" for r in snapped]))
    for rec in inp.get("swapped_rows") or []:
        lines.append(f"{rec['file']}：经纬度填反已对调的{rec['what']} {len(rec['rows'])} 个：{_shown(rec['rows'])}")
    absorbed = inp.get("absorbed_townships") or []
    if absorbed:
        lines.append(f"无台区的乡镇 {len(absorbed)} 个（辖区并入相邻网格）："
                     + _shown([f"{r['name']}→{r['grid_id'] or '无'}" for r in absorbed]))
    missing = inp.get("stations_without_roster") or []
    if missing:
        lines.append(f"名册中没有人员的供电所 {len(missing)} 个（网格使用占位经理）："
                     + _shown([str(r.get("name") or r["station_id"]) for r in missing]))
    return lines
