"""The plan pipeline as the commands run it: progress bar, summary screen."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from ..plan import STAGES, Plan


def run_plan(county_dir: Path, out: Path, *, coords: str | None, basemap: str | None,
             map_html: bool = True, current: Any = None, pins: Any = None,
             store: Path | None = None, note: str = "", **params: Any) -> Plan:
    """Load, plan and write one county with a progress bar; return the plan.

    ``current``/``pins`` go to :func:`gridplan.plan`; with ``store`` the plan is also saved there
    as a new version (after the output folder is written).
    """
    from .. import load_county, plan

    t0 = time.perf_counter()
    bar = tqdm(total=len(STAGES) + 2, desc="读取数据", unit="步", leave=False, disable=None)
    county = load_county(county_dir, coords=coords, **params)
    bar.update(1)

    def progress(stage: str, i: int, n: int) -> None:
        bar.set_description(_STAGE_ZH.get(stage, stage))
        bar.n = i + 1
        bar.refresh()

    p = plan(county, progress=progress, current=current, pins=pins)
    bar.set_description("写出结果")
    bar.n = len(STAGES) + 1
    bar.refresh()
    p.to_file(out, map_html=map_html, basemap=basemap)
    bar.update(1)
    bar.close()
    if store is not None:
        from ..store import save_version
        version = save_version(p, store, note=note)
        click.echo(f"方案已存为 {store} 的第 {version} 版 / saved as version {version} of {store}")
    print_summary(p, out, time.perf_counter() - t0)
    return p


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
    notes = p.kpi.get("notes") or []
    for note in notes[:8]:
        click.echo(f"  · {note}")
    if len(notes) > 8:
        click.echo(f"  · … 另有 {len(notes) - 8} 条说明见 kpi.json")
    click.echo(f"\n输出 / outputs in {out}/:")
    for name in ("map.html", "plan.gpkg", "roster.xlsx", "kpi.json"):
        if (out / name).exists():
            click.echo(f"  {out / name}")
