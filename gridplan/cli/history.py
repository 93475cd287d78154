"""``gridplan history`` (versions in a plan store) and ``gridplan diff`` (compare two plans)."""

from __future__ import annotations

from pathlib import Path

import click

from ..files import open_output
from ..replan.diff import DIFF_FILES, diff_plans, write_diff
from ..replan.store import list_versions
from . import options


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - _width(text), 0)


@click.command("history")
@click.argument("store", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@options.verbosity
@options.quiet
@options.handle_errors
def history(store: Path, verbose: int, quiet: bool) -> None:
    """List the plan versions saved in STORE (a GeoPackage written by `gridplan plan --store`).

    Compare two of them with `gridplan diff STORE#1 STORE#2 --out DIR`.
    """
    options.setup_logging(verbose, quiet)
    v = list_versions(store)
    head = ["版本", "时间(UTC)", "县", "台区", "网格", "改派台区", "输入校验", "备注"]
    rows = []
    for r in v.to_dict("records"):
        kpi = r["kpi"] or {}
        digest = _short(r["checksums"])
        rows.append([str(r["version"]), str(r["timestamp"]).replace("+00:00", "Z"), str(r["county"]),
                     str(kpi.get("transformers", "")), str(kpi.get("grids", "")),
                     str(kpi.get("moved_transformers", "")), digest, str(r["note"] or "")])
    widths = [max(_width(x) for x in col) for col in zip(head, *rows)]
    click.echo("  ".join(_pad(h, w) for h, w in zip(head, widths)))
    for row in rows:
        click.echo("  ".join(_pad(x, w) for x, w in zip(row, widths)))
    if not rows:
        click.echo("（暂无版本）")


def _short(checksums: dict[str, str]) -> str:
    """A short fingerprint of all input checksums (same inputs, same fingerprint)."""
    import hashlib

    text = "".join(f"{k}={checksums[k]}" for k in sorted(checksums))
    return hashlib.sha256(text.encode()).hexdigest()[:10] if checksums else "-"


@click.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write changes.csv, managers.csv, diff.gpkg and diff.html here.")
@options.basemap
@click.option("--no-map", is_flag=True, help="Do not write diff.html.")
@click.option("--limit", type=int, default=30, show_default=True, help="台区 changes listed on screen.")
@options.force
@options.verbosity
@options.quiet
@options.handle_errors
def diff(a: str, b: str, out: Path | None, basemap: str | None, no_map: bool, limit: int,
         force: bool, verbose: int, quiet: bool) -> None:
    """Compare plan A (before) with plan B (after): 台区 that changed manager, and workloads.

    A and B are plan.gpkg files (or plan folders) or plan-store versions such as plans.gpkg#3
    (plans.gpkg#latest, or a store alone, is its latest version).
    """
    options.setup_logging(verbose, quiet)
    target = None
    if out is not None:  # checked and locked before the plans are read
        inputs = [Path(str(ref).rpartition("#")[0] or str(ref)) for ref in (a, b)]
        target = open_output(out, command="gridplan diff", inputs=inputs, expect=DIFF_FILES,
                             force=force)
    try:
        _diff(a, b, target, basemap=basemap, no_map=no_map, limit=limit)
    except BaseException:
        if target is not None:
            target.close(failed=True)
        raise
    if target is not None:
        target.close()


def _diff(a: str, b: str, target, *, basemap: str | None, no_map: bool, limit: int) -> None:

    d = diff_plans(a, b)
    s = d.summary()
    click.secho(f"{d.a.label} → {d.b.label}", bold=True)
    click.echo(f"  改派台区 {s['moved_transformers']} 个（{s['moved_households']} 户），新增 "
               f"{s['added_transformers']} 个，移除 {s['removed_transformers']} 个；"
               f"工作量变化的台区经理 {s['managers_changed']} 人")
    ch = d.changes
    for r in ch.head(limit).to_dict("records"):
        click.echo(f"  {r['change']} {r['transformer_id']} {r['name'] or ''}："
                   f"{r['from_name'] or r['from_manager'] or '—'} → {r['to_name'] or r['to_manager'] or '—'}"
                   f"（{int(r['customers'])} 户）")
    if len(ch) > limit:
        click.echo(f"  … 另有 {len(ch) - limit} 条，见 changes.csv")
    m = d.managers[d.managers["workload_change"].abs() > 1e-9]
    if len(m):
        click.echo("  台区经理工作量（前 → 后）：")
        for r in m.head(limit).to_dict("records"):
            click.echo(f"    {r['manager_id']} {r['name']}：{r['workload_before']:g} → "
                       f"{r['workload_after']:g}（{r['workload_change']:+g}）")
    if target is not None:
        write_diff(d, target, basemap=basemap or "osm", map_html=not no_map)
        click.echo(f"\n输出 / outputs in {target.given}/: changes.csv managers.csv diff.gpkg"
                   + ("" if no_map else " diff.html"))


COMMANDS = [history, diff]
