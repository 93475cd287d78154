"""``gridplan merge`` and ``gridplan merge-candidates``: what-if station merges."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import click
import pandas as pd

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


@click.command("merge")
@click.argument("county_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--stations", "stations", required=True,
              help="Station ids to merge, comma-separated (e.g. S01,S02).")
@click.option("--into", default=None, help="The station that remains (default: the first of --stations).")
@click.option("--keep-service-point", "keep", default=None,
              help="Absorbed stations kept as 供电服务站 service points, comma-separated.")
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: maps/<county>-merge-<stations>).")
@options.coords
@options.basemap
@click.option("--no-map", is_flag=True, help="Do not write compare.html and the plan maps.")
@options.verbosity
@options.quiet
@options.handle_errors
def merge(county_dir: Path, stations: str, into: str | None, keep: str | None, out: Path | None,
          coords, basemap, no_map, verbose, quiet) -> None:
    """Merge stations of COUNTY_DIR, replan, and compare before and after.

    Writes comparison.csv/.xlsx, report.html, compare.html (before | after map), beyond.csv (台区
    beyond their response commitment after the merge), response.csv and the before/ and after/
    plans to --out (atomically).
    """
    from .. import load_county
    from ..scenarios import merge_stations

    options.setup_logging(verbose, quiet)
    ids = _ids(stations)
    out = out or Path("maps") / f"{county_dir.resolve().name}-merge-{'-'.join(ids)}"
    t0 = time.perf_counter()
    county = load_county(county_dir, coords=coords)
    sc = merge_stations(county, ids, into=into, keep_service_point=_ids(keep))
    sc.to_file(out, maps=not no_map, basemap=basemap)
    if quiet:  # -q: errors only
        return
    click.secho(f"\n{county.name} — 合并方案评估 / merge evaluated in {time.perf_counter() - t0:.1f} s",
                bold=True)
    for note in sc.notes:
        click.secho(f"  {note}", fg="red" if note.startswith("⚠") else None)
    echo_comparison(sc.comparison)
    click.echo(f"\n输出 / outputs in {out}/:")
    for name in ("report.html", "compare.html", "comparison.xlsx", "beyond.csv"):
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
@options.verbosity
@options.quiet
@options.handle_errors
def merge_candidates(county_dir: Path, out: Path | None, keep: bool, top: int, coords, verbose,
                     quiet) -> None:
    """Evaluate and rank the merge of every pair of neighbouring stations of COUNTY_DIR.

    Writes candidates.csv, candidates.xlsx and candidates.html to --out (atomically).
    """
    from tqdm import tqdm

    from .. import load_county
    from .._compare import write_candidates
    from ..scenarios import merge_candidates as rank

    options.setup_logging(verbose, quiet)
    out = out or Path("maps") / f"{county_dir.resolve().name}-merge-candidates"
    t0 = time.perf_counter()
    county = load_county(county_dir, coords=coords)
    bar = tqdm(desc="评估合并方案", unit="对", leave=False, disable=True if quiet else None)

    def progress(i: int, n: int) -> None:
        bar.total = n
        bar.n = i
        bar.refresh()

    df = rank(county, keep_service_point=keep, progress=progress)
    bar.close()
    write_candidates(df, out, county_name=county.name, params=county.params)
    if quiet:  # -q: errors only
        return
    click.secho(f"\n{county.name} — {len(df)} 对相邻供电所已评估 / evaluated in "
                f"{time.perf_counter() - t0:.1f} s", bold=True)
    for r in df.head(top).itertuples(index=False):
        click.echo(f"  {r.rank:>2}. {r.absorbed_name}（{r.absorbed}）→ {r.into_name}（{r.into}）  {r.verdict}  "
                   f"节省经理 {r.managers_saved}  补足缺员 {r.shortage_covered}  变异系数 {r.cv_after:.3f}  "
                   f"95% 到达 {_show(r.p95_after)} 分钟")
    click.echo(f"\n输出 / outputs in {out}/:")
    for name in ("candidates.html", "candidates.xlsx", "candidates.csv"):
        click.echo(f"  {out / name}")


COMMANDS = [merge, merge_candidates]
