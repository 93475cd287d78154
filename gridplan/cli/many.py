"""``gridplan plan-many``: plan every county of a province in parallel on Dask."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ..scale import many as _many
from ..scale.many import FAILED, CountyResult, ManyResult, SchedulerError, one_line
from .options import handle_errors, quiet, setup_logging, verbosity

#: How many failed counties the one-screen summary lists (the rest are in summary.csv).
MAX_FAILED_SHOWN = 10


@click.command("plan-many")
@click.argument("province_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (shared by every worker): one folder per county plus the summary.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                   "(default: a local cluster on this machine).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: one per core); ignored with --scheduler.")
@click.option("--no-maps", is_flag=True, help="Skip each county's map.html (faster).")
@verbosity
@quiet
@handle_errors
def plan_many(province_dir: Path, out: Path, scheduler: str | None, workers: int | None,
              no_maps: bool, verbose: int, quiet: bool) -> None:
    """Plan every county folder of PROVINCE_DIR in parallel (Dask) and write a province summary.

    A county folder is a subfolder holding townships.*, stations.* and transformers.* (as for
    `gridplan plan`). A county whose input is bad is reported and the others go on; re-running
    skips counties whose inputs and parameters are unchanged, so an interrupted run resumes.

    Exit status: 0 all counties planned, 1 some failed (listed in OUT/summary.csv and
    OUT/failures.txt), 2 bad usage or no county found.
    """
    from tqdm import tqdm

    setup_logging(verbose, quiet)
    import distributed  # noqa: F401 - configures its loggers on import; quiet them after that

    if verbose < 2:  # Dask's own INFO lines (cluster start/stop) only with -vv
        logging.getLogger("distributed").setLevel(logging.ERROR if quiet else logging.WARNING)
    bar = tqdm(total=0, unit="县", desc="规划", disable=quiet, file=sys.stderr, dynamic_ncols=True)

    def progress(res: CountyResult, done: int, total: int) -> None:
        bar.total = total
        bar.set_postfix_str(f"{res.county} {'失败' if res.status == FAILED else ''}".strip())
        bar.update(1)

    try:
        result = _many.plan_many(province_dir, out, scheduler=scheduler, workers=workers,
                                 progress=progress, maps=not no_maps)
    except SchedulerError as exc:
        raise click.BadParameter(str(exc), param_hint="--scheduler") from exc
    finally:
        bar.close()
    if not quiet:
        click.echo(_report(result))
    if result.failed:
        click.secho(f"{len(result.failed)} 个县规划失败, 列表见 {result.out_dir / 'summary.csv'} "
                    f"与 {result.out_dir / 'failures.txt'}", fg="red", err=True)
        sys.exit(1)


def _report(result: ManyResult) -> str:
    """A one-screen summary of the run: counts, totals, the first failures and the output files."""
    n = len(result.counties)
    ok = [c for c in result.counties if c.ok]
    total = {k: sum(int(c.kpi.get(k) or 0) for c in ok)
             for k in ("townships", "transformers", "households", "grids")}
    lines = [
        (f"{n} 个县: 新规划 {len(result.planned)}, 输入未变沿用 {len(result.skipped)}, "
         f"失败 {len(result.failed)} ({result.seconds:.0f} 秒)"),
        (f"合计 (成功的县): 乡镇 {total['townships']:,}, 台区 {total['transformers']:,}, "
         f"户数 {total['households']:,}, 网格 {total['grids']:,}"),
    ]
    for c in result.failed[:MAX_FAILED_SHOWN]:
        lines.append(f"  失败 {c.county}: {c.error_type}: {one_line(c.error, 100)}")
    if len(result.failed) > MAX_FAILED_SHOWN:
        lines.append(f"  … 另有 {len(result.failed) - MAX_FAILED_SHOWN} 个县失败")
    for name, path in result.files.items():
        lines.append(f"{_LABELS.get(name, name)}: {path}")
    return "\n".join(lines)


_LABELS = {"csv": "汇总表", "xlsx": "汇总表 (Excel)", "index": "总览地图", "failures": "失败详情"}

COMMANDS = [plan_many]
