"""``gridplan merge`` and ``gridplan merge-candidates``: what-if station merges."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import pandas as pd

import gridplan

from ..files import open_output
from ..scenarios import merge_candidates as rank
from ..scenarios import merge_stations
from ..scenarios.comparison import CANDIDATE_FILES, SCENARIO_FILES, write_candidates
from . import options


def _ids(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").replace("，", ",").split(",") if s.strip()]


def _show(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.0f}" if v.is_integer() else f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"
    return str(v)


def _pad(text: str, width: int, *, right: bool = False) -> str:
    """Pad to a terminal width, counting CJK characters as two columns."""
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    fill = " " * max(0, width - cols)
    return fill + text if right else text + fill


def echo_comparison(table: pd.DataFrame) -> None:
    """Print the before/after table on the terminal."""
    width = max(sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in x)
                for x in table["label"]) + 2
    for scope, grp in table.groupby("scope", sort=False):
        click.secho(f"\n  {scope}", bold=True)
        click.echo("  " + _pad("指标", width) + "".join(_pad(h, 12, right=True)
                                                       for h in ("合并前", "合并后", "变化")))
        for r in grp.itertuples(index=False):
            change = "" if r.change in (None, 0) or pd.isna(r.change) else \
                (("+" if r.change > 0 else "") + _show(r.change))
            click.echo("  " + _pad(r.label, width) + "".join(
                _pad(v, 12, right=True) for v in (_show(r.before), _show(r.after), change)))


@contextmanager
def _output(out: Path, command: str, county_dir: Path, expect: tuple[str, ...],
            force: bool) -> Iterator[Any]:
    """The output folder, checked and locked before the county is read; closed at the end."""
    target = open_output(out, command=command, inputs=[county_dir], expect=expect, force=force)
    try:
        yield target
    except BaseException:
        target.close(failed=True)
        raise
    target.close()


def echo_townships(sc) -> None:
    """Print the absorbed townships' change (the first table of the report)."""
    t = sc.townships[sc.townships["township_id"].isin(sc.absorbed_townships)]
    if not len(t):
        return
    click.secho("\n  并入乡镇 / absorbed townships", bold=True)
    heads = ("乡镇", "台区", "户数", "95%前", "95%后", "最长前", "最长后", "超时前", "超时后")
    click.echo("  " + _pad(heads[0], 16) + "".join(_pad(h, 9, right=True) for h in heads[1:]))
    for r in t.itertuples(index=False):
        vals = (r.transformers, r.customers, r.p95_before, r.p95_after, r.max_before, r.max_after,
                r.beyond_before, r.beyond_after)
        click.echo("  " + _pad(str(r.township)[:8], 16) + "".join(_pad(_show(v), 9, right=True) for v in vals))


@click.command("merge")
@click.argument("county_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--stations", "stations", required=True,
              help="Station ids to merge, comma-separated (e.g. S01,S02).")
@click.option("--into", default=None, help="The station that remains (default: the first of --stations).")
@click.option("--keep-service-point", "keep", default=None,
              help="Absorbed stations kept as 供电服务站 service points, comma-separated.")
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: maps/<county>-merge-<stations>).")
@click.option("--service-points", "k", type=click.IntRange(min=1), default=None,
              help="Also place this many 供电服务站 for the most households within their commitment "
                   "(maximal coverage; the fewest points for full coverage are always proposed).")
@options.coords
@options.basemap
@click.option("--no-map", is_flag=True, help="Do not write compare.html and the plan maps.")
@options.force
@options.verbosity
@options.quiet
@options.handle_errors
def merge(county_dir: Path, stations: str, into: str | None, keep: str | None, out: Path | None,
          k: int | None, coords, basemap, no_map, force, verbose, quiet) -> None:
    """Merge stations of COUNTY_DIR, replan, and compare before and after.

    Writes report.html / report.xlsx (the page to decide from: verdict, commitments, staff, the
    absorbed townships, then the details), comparison.csv/.xlsx (one row per affected township),
    compare.html (before | after map with station territories and proposed service points),
    service_points.csv, worsening.csv, beyond.csv, response.csv, metrics.csv and the before/ and
    after/ plans to --out (atomically).
    """
    options.setup_logging(verbose, quiet)
    ids = _ids(stations)
    out = out or Path("maps") / f"{county_dir.resolve().name}-merge-{'-'.join(ids)}"
    t0 = time.perf_counter()
    with _output(out, "gridplan merge", county_dir, SCENARIO_FILES, force) as target:
        county = gridplan.load_county(county_dir, coords=coords)
        sc = merge_stations(county, ids, into=into, keep_service_point=_ids(keep), service_points=k)
        sc.to_file(target, maps=not no_map, basemap=basemap)
        if quiet:  # -q: errors only
            return
    click.secho(f"\n{county.name} — 合并方案评估 / merge evaluated in {time.perf_counter() - t0:.1f} s",
                bold=True)
    colour = {"可合并": "green", "需设服务站": "yellow", "不宜合并": "red"}.get(sc.verdict)
    click.secho(f"  结论：{sc.verdict}（{'；'.join(sc.reasons)}）", fg=colour, bold=True)
    echo_townships(sc)
    for note in sc.notes:
        click.secho(f"  {note}", fg="red" if note.startswith("⚠") else None)
    for r in sc.staff.itertuples(index=False):
        click.echo(f"  {r.label}：合并前 {r.before} 人，释放 {r.released}，合并后需要 {r.needed_after}")
    tb, ta = sc.travel_summary
    click.echo(f"  台区经理平均出行 {_show(tb)} → {_show(ta)} 分钟")
    for label, sp in (("最少服务站", sc.service_points), (f"限定 {k} 个服务站", sc.service_points_k)):
        if sp is not None:
            click.echo(f"  {label}：{len(sp.sites)} 个（{'、'.join(sp.sites['name'].astype(str)) or '无'}），"
                       f"超时台区 {sp.beyond_before} → {sp.beyond_after}")
    echo_comparison(sc.comparison)
    click.echo(f"\n输出 / outputs in {out}/:")
    for name in ("report.html", "report.xlsx", "compare.html", "comparison.xlsx", "service_points.csv"):
        if (out / name).exists():
            click.echo(f"  {out / name}")


@click.command("merge-candidates")
@click.argument("county_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: maps/<county>-merge-candidates).")
@click.option("--keep-service-point", "keep", is_flag=True,
              help="Keep each absorbed station as a 供电服务站 (default: removed).")
@click.option("--top", type=int, default=10, show_default=True, help="Candidates shown on screen.")
@options.coords
@options.force
@options.verbosity
@options.quiet
@options.handle_errors
def merge_candidates(county_dir: Path, out: Path | None, keep: bool, top: int, coords, force,
                     verbose, quiet) -> None:
    """Evaluate and rank the merge of every pair of neighbouring stations of COUNTY_DIR.

    Writes candidates.csv, candidates.xlsx, candidates.html and candidates_map.html (pairs coloured
    by verdict) to --out (atomically).
    """
    from tqdm import tqdm


    options.setup_logging(verbose, quiet)
    out = out or Path("maps") / f"{county_dir.resolve().name}-merge-candidates"
    t0 = time.perf_counter()
    with _output(out, "gridplan merge-candidates", county_dir, CANDIDATE_FILES, force) as target:
        county = gridplan.load_county(county_dir, coords=coords)
        bar = tqdm(desc="评估合并方案", unit="对", leave=False, disable=True if quiet else None)

        def progress(i: int, n: int) -> None:
            bar.total = n
            bar.n = i
            bar.refresh()

        df = rank(county, keep_service_point=keep, progress=progress)
        bar.close()
        write_candidates(df, target, county_name=county.name, params=county.params, county=county)
        if quiet:  # -q: errors only
            return
    click.secho(f"\n{county.name} — {len(df)} 对相邻供电所已评估 / evaluated in "
                f"{time.perf_counter() - t0:.1f} s", bold=True)
    for r in df.head(top).itertuples(index=False):
        click.echo(f"  {r.rank:>2}. {r.absorbed_name}（{r.absorbed}）→ {r.into_name}（{r.into}）  {r.verdict}  "
                   f"得分 {r.score:.1f}  释放岗位 {r.positions_released}  并入乡镇95%到达 +{_show(r.p95_increase)} 分钟  "
                   f"新增超时 {r.new_beyond}  — {r.reasons}")
    click.echo(f"\n输出 / outputs in {out}/:")
    for name in ("candidates.html", "candidates_map.html", "candidates.xlsx", "candidates.csv"):
        click.echo(f"  {out / name}")


COMMANDS = [merge, merge_candidates]
