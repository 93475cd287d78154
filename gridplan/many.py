"""Plan many counties in parallel on Dask: a province on one machine, or a nation on a cluster.

``plan_many(province_dir, out_dir)`` is the library twin of ``gridplan plan-many``::

    result = gridplan.many.plan_many("geodata/province", "maps/province", workers=2)
    result.failed        # counties whose input was bad or whose planning failed, with the message

Every county folder (a subfolder holding a ``townships.*`` file) is planned in its own Dask task.
The task loads, plans and writes ``OUT/<county>/`` itself (so outputs go straight from the worker to
the shared output folder) and returns only a small record (KPIs, outline, timings) or the error.
One county's failure never stops the others.

Resume: each county output holds ``.gridplan-run.json`` (sha256 of every input file, a hash of the
parameters and the gridplan version). Before submitting, the client hashes the inputs and skips
counties whose manifest matches, so an interrupted run picks up where it stopped.

Finally the client writes the province summary into ``OUT`` (atomically): ``summary.csv``,
``summary.xlsx``, ``failures.txt`` (only when some county failed) and ``index.html``, an overview
map of every county linking to its own ``map.html`` (:func:`write_summary`).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import resource
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import __version__
from ._errors import GridplanError, Problems
from ._files import json_default, sha256, write_text_atomic

if TYPE_CHECKING:
    import folium
    import pandas as pd

__all__ = [
    "MANIFEST",
    "CountyResult",
    "ManyResult",
    "SchedulerError",
    "discover_counties",
    "input_checksums",
    "plan_many",
]

log = logging.getLogger(__name__)

#: Name of the resume manifest written in every county's output folder.
MANIFEST = ".gridplan-run.json"

#: County statuses (what the summary's 状态 column says).
PLANNED, SKIPPED, FAILED = "planned", "skipped", "failed"

#: Called with (result of one county, counties done, counties in all) as the run advances.
ManyProgress = Callable[["CountyResult", int, int], None]

#: Simplification tolerance (metres) of the county outline drawn on the overview map.
OUTLINE_TOLERANCE_M = 100.0


class SchedulerError(GridplanError):
    """The Dask scheduler given by address could not be reached."""


@dataclass
class CountyResult:
    """What one county's task returns to the client (small: no geometry layers).

    Attributes
    ----------
    county
        The county folder's name (also the name of its output folder).
    status
        ``"planned"``, ``"skipped"`` (inputs and parameters unchanged since the last run) or
        ``"failed"``.
    kpi
        ``Plan.kpi["county"]`` (county totals), or ``{}`` when failed.
    error, error_type
        The message (for an :class:`~gridplan.InputError`, every problem) and the exception's class
        name, when failed.
    traceback
        The traceback of an unexpected (non-gridplan) exception, for the bug report.
    outline
        The county's outline (union of its townships) as GeoJSON geometry in WGS84, simplified.
    seconds
        Wall time of the task (load + plan + write).
    cpu_seconds
        CPU time of the worker process during the task (wall time minus waiting for a busy CPU).
    peak_rss_mb
        Peak resident memory of the worker process when the task ended (MB).
    worker
        Address of the Dask worker that ran the task.
    """

    county: str
    status: str
    kpi: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    error_type: str = ""
    traceback: str = ""
    outline: dict[str, Any] | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float | None = None
    worker: str = ""

    @property
    def ok(self) -> bool:
        """True when the county has a valid output (planned now or earlier)."""
        return self.status != FAILED


@dataclass
class ManyResult:
    """The outcome of :func:`plan_many`: one :class:`CountyResult` per county, in name order."""

    out_dir: Path
    counties: list[CountyResult]
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)

    def by_status(self, status: str) -> list[CountyResult]:
        """Return the counties with ``status``."""
        return [c for c in self.counties if c.status == status]

    @property
    def planned(self) -> list[CountyResult]:
        """Counties planned in this run."""
        return self.by_status(PLANNED)

    @property
    def skipped(self) -> list[CountyResult]:
        """Counties skipped because inputs and parameters were unchanged."""
        return self.by_status(SKIPPED)

    @property
    def failed(self) -> list[CountyResult]:
        """Counties that failed, each with its error."""
        return self.by_status(FAILED)

    @property
    def ok(self) -> bool:
        """True when no county failed."""
        return not self.failed

    def peak_memory_by_worker(self) -> dict[str, float]:
        """Peak resident memory (MB) seen in each worker's tasks, by worker address."""
        out: dict[str, float] = {}
        for c in self.counties:
            if c.worker and c.peak_rss_mb is not None:
                out[c.worker] = max(out.get(c.worker, 0.0), c.peak_rss_mb)
        return dict(sorted(out.items()))


# -- discovery and checksums ----------------------------------------------------------------------

def discover_counties(province_dir: str | Path) -> list[Path]:
    """Return the county folders of ``province_dir``: subfolders holding a ``townships.*`` file.

    Hidden folders (``.name``) are ignored; the list is sorted by name.
    """
    root = Path(province_dir)
    found = []
    for sub in sorted(root.iterdir()):
        if sub.is_dir() and not sub.name.startswith(".") and any(
                f.is_file() for f in sub.glob("townships.*")):
            found.append(sub)
    return found


def input_checksums(county_dir: str | Path) -> dict[str, str]:
    """Return the sha256 of every (non-hidden) file under ``county_dir``, by relative path."""
    root = Path(county_dir)
    out = {}
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if f.is_file() and not any(part.startswith(".") for part in rel.parts):
            out[rel.as_posix()] = sha256(f)
    return out


def params_hash(params: dict[str, Any], *, maps: bool) -> str:
    """Return a stable hash of the parameter overrides and output options of a run."""
    text = json.dumps({"params": params, "maps": maps}, sort_keys=True, ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_manifest(county_out: Path) -> dict[str, Any] | None:
    """Return the resume manifest of one county's output, or ``None`` if absent or unreadable."""
    try:
        return json.loads((county_out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(manifest: dict[str, Any] | None, checksums: dict[str, str], phash: str,
                county_out: Path) -> bool:
    return (manifest is not None and manifest.get("inputs") == checksums
            and manifest.get("params_hash") == phash and manifest.get("gridplan") == __version__
            and (county_out / "kpi.json").exists())


# -- the task (runs on a worker) ------------------------------------------------------------------

def plan_one_county(county_dir: str, out_dir: str, params: dict[str, Any], *, maps: bool,
                    phash: str) -> dict[str, Any]:
    """Load, plan and write one county; return a :class:`CountyResult` as a dict. Never raises.

    This is the Dask task. It writes ``out_dir`` (via ``Plan.to_file``, atomically) and then the
    resume manifest; errors become a failure record carrying the message and the exception type.
    """
    import gridplan

    start, cpu = time.perf_counter(), time.process_time()
    name = Path(county_dir).name
    res = CountyResult(county=name, status=PLANNED, worker=_worker_address())
    try:
        checksums = input_checksums(county_dir)
        county = gridplan.load_county(county_dir, **params)
        plan = gridplan.plan(county)
        plan.to_file(out_dir, map_html=maps)
        res.kpi = dict(plan.kpi.get("county", {}))
        res.outline = _outline(county)
        manifest = {"county": name, "inputs": checksums, "params_hash": phash,
                    "params": params, "maps": maps, "gridplan": __version__,
                    "county_checksums": dict(county.checksums), "kpi": res.kpi,
                    "outline": res.outline, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_text_atomic(Path(out_dir) / MANIFEST,
                          json.dumps(manifest, ensure_ascii=False, indent=1, default=json_default))
    except Exception as exc:  # noqa: BLE001 - isolation of one county is the point
        res.status = FAILED
        res.error_type = type(exc).__name__
        res.error = exc.format() if hasattr(exc, "format") and callable(exc.format) else str(exc)
        if not res.error:
            res.error = repr(exc)
        if not isinstance(exc, GridplanError):
            res.traceback = traceback.format_exc()
        log.info("county %s failed: %s: %s", name, res.error_type, one_line(res.error, 200))
    res.seconds = round(time.perf_counter() - start, 3)
    res.cpu_seconds = round(time.process_time() - cpu, 3)
    res.peak_rss_mb = _peak_rss_mb()
    return _jsonable(asdict(res))


def _outline(county: Any) -> dict[str, Any] | None:
    """The union of the county's townships in WGS84, simplified (metres) and as GeoJSON."""
    from shapely.geometry import mapping

    try:
        geom = county.townships.geometry.union_all().simplify(OUTLINE_TOLERANCE_M)
        import geopandas as gpd

        wgs = gpd.GeoSeries([geom], crs=county.crs).to_crs(4326).iloc[0]
        return _round_coords(mapping(wgs))
    except Exception:
        log.debug("no outline for %s", county.name, exc_info=True)
        return None


def _round_coords(obj: Any, ndigits: int = 5) -> Any:
    if isinstance(obj, float):
        return round(obj, ndigits)
    if isinstance(obj, (list, tuple)):
        return [_round_coords(v, ndigits) for v in obj]
    if isinstance(obj, dict):
        return {k: _round_coords(v, ndigits) for k, v in obj.items()}
    return obj


def _jsonable(obj: Any) -> Any:
    """Plain Python types only (numpy scalars become numbers), so results pickle small and safe."""
    return json.loads(json.dumps(obj, ensure_ascii=False, default=json_default))


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1024 * 1024 if os.uname().sysname == "Darwin" else 1024
    return round(peak / scale, 1)


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return ""


# -- the client -----------------------------------------------------------------------------------

def plan_many(province_dir: str | Path, out_dir: str | Path, *, scheduler: str | None = None,
              workers: int | None = None, params: dict[str, Any] | None = None,
              progress: ManyProgress | None = None, maps: bool = True,
              client: Any | None = None, summary: bool = True) -> ManyResult:
    """Plan every county folder of ``province_dir`` in parallel on Dask; write ``out_dir``.

    Parameters
    ----------
    province_dir
        A folder of county folders (each holding ``townships.*``, ``stations.*``,
        ``transformers.*`` ... as for ``gridplan plan``).
    out_dir
        Output folder (on a filesystem every worker can write): ``<county>/`` per county, plus
        ``summary.csv``, ``summary.xlsx``, ``index.html`` and, when some failed, ``failures.txt``.
    scheduler
        Address of a running Dask scheduler (``tcp://host:8786``). Default: a LocalCluster with one
        single-threaded worker process per core.
    workers
        Number of local worker processes (default ``os.cpu_count()``); ignored with ``scheduler``.
    params
        Parameter overrides applied to every county (as for :func:`gridplan.load_county`).
    progress
        Callback ``(county_result, done, total)``, called once per county (skipped ones first).
    maps
        Write each county's ``map.html`` (and the overview map links to it).
    client
        An existing ``distributed.Client`` to use instead (``scheduler``/``workers`` are ignored).
    summary
        Write the province summary files.

    Returns
    -------
    ManyResult

    Raises
    ------
    gridplan.InputError
        ``province_dir`` holds no county folder.
    SchedulerError
        ``scheduler`` cannot be reached.
    """
    start = time.perf_counter()
    params = dict(params or {})
    # Absolute paths: the workers (maybe on other machines) resolve them, not the client's cwd.
    root, out = Path(province_dir).resolve(), Path(out_dir).resolve()
    counties = _discover_or_raise(root)
    out.mkdir(parents=True, exist_ok=True)
    phash = params_hash(params, maps=maps)

    results: dict[str, CountyResult] = {}
    todo: list[tuple[Path, int]] = []
    done = 0
    for cdir in counties:
        cout = out / cdir.name
        manifest = read_manifest(cout)
        if _is_current(manifest, input_checksums(cdir), phash, cout):
            res = CountyResult(county=cdir.name, status=SKIPPED, kpi=manifest.get("kpi", {}),
                               outline=manifest.get("outline"))
            results[cdir.name] = res
            done += 1
            if progress is not None:
                progress(res, done, len(counties))
        else:
            todo.append((cdir, _folder_size(cdir)))
    log.info("%d counties: %d unchanged (skipped), %d to plan", len(counties),
             len(counties) - len(todo), len(todo))

    if todo:
        # Largest first: the long tasks start early and the short ones fill the gaps at the end.
        todo.sort(key=lambda item: (-item[1], item[0].name))
        with _client(client, scheduler, workers) as cl:
            for res in _run(cl, [c for c, _ in todo], out, params, maps, phash):
                results[res.county] = res
                done += 1
                if progress is not None:
                    progress(res, done, len(counties))

    ordered = [results[c.name] for c in counties]
    result = ManyResult(out_dir=out, counties=ordered, seconds=0.0)
    if summary:
        result.files = write_summary(result, maps=maps)
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _discover_or_raise(root: Path) -> list[Path]:
    problems = Problems()
    if not root.is_dir():
        problems.add(str(root), "is not a folder", "give the folder that holds one folder per county")
        problems.raise_if_any()
    counties = discover_counties(root)
    if not counties:
        problems.add(str(root), "holds no county folder (a subfolder with a townships.* file)",
                     "put each county in its own subfolder: PROVINCE/<county>/townships.geojson, "
                     "stations.*, transformers.* ...")
    problems.raise_if_any()
    return counties


def _folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _run(cl: Any, todo: list[Path], out: Path, params: dict[str, Any], maps: bool,
         phash: str) -> Iterable[CountyResult]:
    """Submit one task per county and yield the results as they complete."""
    from distributed import as_completed

    futures = {}
    for i, cdir in enumerate(todo):
        key = f"gridplan-county-{cdir.name}-{phash}-{time.time_ns()}"
        fut = cl.submit(plan_one_county, str(cdir), str(out / cdir.name), params, maps=maps,
                        phash=phash, key=key, pure=False, priority=len(todo) - i)
        futures[fut] = cdir.name
    for fut in as_completed(list(futures)):
        name = futures.pop(fut)
        try:
            yield CountyResult(**fut.result())
        except Exception as exc:  # noqa: BLE001 - e.g. a worker killed (out of memory)
            yield CountyResult(county=name, status=FAILED, error_type=type(exc).__name__,
                               error=f"the Dask task failed: {exc!r}. A worker dying repeatedly "
                                     "usually means it ran out of memory.")
        fut.release()


class _client:
    """Context manager: the given client, a client of ``scheduler``, or a new LocalCluster."""

    def __init__(self, client: Any | None, scheduler: str | None, workers: int | None):
        self.given, self.scheduler, self.workers = client, scheduler, workers
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> Any:
        from distributed import Client, LocalCluster

        if self.given is not None:
            return self.given
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise SchedulerError(
                    f"cannot reach the Dask scheduler at {self.scheduler!r}: {exc}. Start it with "
                    "`dask scheduler` and give its address, e.g. tcp://10.0.0.5:8786") from exc
            log.info("connected to %s", self.scheduler)
            return self.client
        n = self.workers or os.cpu_count() or 1
        self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                    dashboard_address=None)
        self.client = Client(self.cluster)
        log.info("local Dask cluster: %d worker processes", n)
        return self.client

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# -- the province summary -------------------------------------------------------------------------

#: Summary columns (Chinese headers) and the ``kpi["county"]`` keys each may come from (first found).
COLUMNS: dict[str, tuple[str, ...]] = {
    "乡镇数": ("townships", "n_townships"),
    "供电所数": ("stations", "n_stations"),
    "台区数": ("transformers", "n_transformers"),
    "户数": ("customers", "households"),
    "网格数": ("grids", "n_grids"),
    "网格下限": ("grid_lower_bound", "lower_bound", "grids_lower_bound"),
    "工作量变异系数": ("workload_cv", "cv"),
    "最大/均值": ("workload_max_over_mean", "max_over_mean", "max_mean"),
    "超承诺台区数": ("transformers_beyond_commitment", "beyond_commitment",
                 "n_beyond_commitment"),
}
#: Columns that add up in the totals row.
SUMMED = ("乡镇数", "供电所数", "台区数", "户数", "网格数", "网格下限", "超承诺台区数")
STATUS_ZH = {PLANNED: "完成", SKIPPED: "完成(输入未变,沿用)", FAILED: "失败"}
HEADERS = ("县", *COLUMNS, "状态", "错误信息")


def one_line(text: str, limit: int = 300) -> str:
    """The message on one line (lines joined), cut at ``limit`` characters."""
    flat = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _kpi_value(kpi: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if kpi.get(k) is not None:
            return kpi[k]
    return None


def summary_table(result: ManyResult) -> pd.DataFrame:
    """Return the province summary: one row per county (name order), then a 合计 (totals) row.

    A KPI the planner does not report is left blank. Failed counties carry their error's first
    line in 错误信息 (the whole message is in ``failures.txt``).
    """
    import pandas as pd

    rows = []
    for c in result.counties:
        row: dict[str, Any] = {"县": c.county}
        for col, keys in COLUMNS.items():
            row[col] = _kpi_value(c.kpi, keys) if c.ok else None
        row["状态"] = STATUS_ZH[c.status]
        row["错误信息"] = f"{c.error_type}: {one_line(c.error)}" if c.error else ""
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(HEADERS))
    for col in SUMMED:
        table[col] = pd.to_numeric(table[col], errors="coerce").round().astype("Int64")
    for col in ("工作量变异系数", "最大/均值"):
        table[col] = pd.to_numeric(table[col], errors="coerce").astype("Float64")
    totals: dict[str, Any] = {"县": "合计"}
    for col in SUMMED:
        values = pd.to_numeric(table[col], errors="coerce")
        totals[col] = int(values.sum()) if values.notna().any() else None
    n_ok, n_failed = sum(c.ok for c in result.counties), len(result.failed)
    totals["状态"] = f"完成 {n_ok} 个县, 失败 {n_failed} 个县"
    totals["错误信息"] = ""
    total_row = pd.DataFrame([totals], columns=list(HEADERS)).astype(table.dtypes.to_dict())
    return pd.concat([table, total_row], ignore_index=True)


def write_summary(result: ManyResult, *, maps: bool = True) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.xlsx``, ``failures.txt`` and ``index.html`` atomically.

    Returns
    -------
    dict
        The files written, by short name (``csv``, ``xlsx``, ``failures``, ``index``).
    """
    out = result.out_dir
    table = summary_table(result)
    files = {"csv": out / "summary.csv", "xlsx": out / "summary.xlsx"}
    # utf-8-sig: Excel on Windows opens the CSV with the right encoding.
    _write_atomic(files["csv"], lambda tmp: table.to_csv(tmp, index=False, encoding="utf-8-sig"))
    _write_atomic(files["xlsx"], lambda tmp: _to_excel(table, tmp))
    failures = out / "failures.txt"
    if result.failed:
        write_text_atomic(failures, _failures_text(result))
        files["failures"] = failures
    else:
        failures.unlink(missing_ok=True)
    files["index"] = out / "index.html"
    _write_atomic(files["index"], lambda tmp: _save_map(overview_map(result, maps=maps), tmp))
    return files


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _to_excel(table: pd.DataFrame, path: Path) -> None:
    import pandas as pd

    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        table.to_excel(xw, sheet_name="省级汇总", index=False)
        ws = xw.sheets["省级汇总"]
        ws.freeze_panes = "B2"
        for i, col in enumerate(table.columns, 1):
            width = 40 if col == "错误信息" else max(8, 2 * len(col) + 2)
            ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = width


def _failures_text(result: ManyResult) -> str:
    parts = [f"{len(result.failed)} 个县规划失败 (counties failed):\n"]
    for c in result.failed:
        parts.append(f"== {c.county} ({c.error_type}) ==\n{c.error}\n")
        if c.traceback:
            parts.append(c.traceback + "\n")
    return "\n".join(parts)


# -- the overview map -----------------------------------------------------------------------------

def overview_map(result: ManyResult, *, maps: bool = True) -> folium.Map:
    """Return a Folium map with one polygon per county, coloured by grid count, linking to its map.

    Two colourings, switched in the layer control: 网格数 (grid count) and 工作量变异系数 (balance).
    Each polygon's popup lists the county's numbers and links to ``<county>/map.html``; a panel
    gives the legend and lists the counties that failed with their error. Names are HTML-escaped.
    """
    import branca.colormap as cm
    import folium

    shaped = [c for c in result.counties if c.ok and c.outline]
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    folium.TileLayer("OpenStreetMap", name="OpenStreetMap 底图 (需联网)").add_to(m)
    grids = [float(_kpi_value(c.kpi, COLUMNS["网格数"]) or 0) for c in shaped]
    cvs = [float(_kpi_value(c.kpi, COLUMNS["工作量变异系数"]) or 0) for c in shaped]
    by_grids = cm.LinearColormap(["#ffffd9", "#41b6c4", "#081d58"],
                                 vmin=min(grids, default=0), vmax=max(max(grids, default=1), 1))
    by_cv = cm.LinearColormap(["#1a9850", "#fee08b", "#d73027"], vmin=0,
                              vmax=max(max(cvs, default=0.1), 0.1))
    layers = [("按网格数着色", by_grids, grids, True), ("按工作量均衡着色 (变异系数)", by_cv, cvs, False)]
    for name, cmap, values, show in layers:
        group = folium.FeatureGroup(name=name, show=show)
        for c, v in zip(shaped, values):
            has_map = maps and (result.out_dir / c.county / "map.html").exists()
            _county_shape(c, cmap(v), maps=has_map).add_to(group)
        group.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    bounds = _bounds([c.outline for c in shaped])
    if bounds:
        m.fit_bounds(bounds)
    legend = [(f"网格数 {by_grids.vmin:.0f} → {by_grids.vmax:.0f}", by_grids),
              (f"变异系数 0 → {by_cv.vmax:.2f} (越小越均衡)", by_cv)]
    m.get_root().html.add_child(folium.Element(_panel(result, legend)))
    return m


def _save_map(m: folium.Map, path: Path) -> None:
    """Save ``m`` as one self-contained page (assets inlined); CDN links if assets are missing."""
    figure = m.get_root()
    page = figure.render()
    try:
        from .render import assets
    except ImportError:  # pragma: no cover - the render package ships with gridplan
        assets = None
    if assets is not None:
        try:
            page = assets.inline_assets(page, assets.collect_links(figure))
        except assets.AssetsMissingError as exc:
            log.warning("index.html links its web assets online: %s", exc)
    path.write_text(page, encoding="utf-8")


def _county_shape(c: CountyResult, colour: str, *, maps: bool) -> folium.GeoJson:
    import folium

    style = {"fillColor": colour, "color": "#333333", "weight": 1, "fillOpacity": 0.7}
    shape = folium.GeoJson({"type": "Feature", "geometry": c.outline, "properties": {}},
                           style_function=lambda _f, s=style: s,
                           highlight_function=lambda _f: {"weight": 3, "color": "#000000"})
    folium.Tooltip(html.escape(c.county)).add_to(shape)
    folium.Popup(_popup_html(c, maps=maps), max_width=320).add_to(shape)
    return shape


def _popup_html(c: CountyResult, *, maps: bool) -> str:
    rows = []
    for col, keys in COLUMNS.items():
        v = _kpi_value(c.kpi, keys)
        text = "—" if v is None else (f"{v:.3f}" if isinstance(v, float) and not v.is_integer() else
                                      f"{v:,.0f}" if isinstance(v, (int, float)) else str(v))
        rows.append(f"<tr><th style='text-align:left'>{html.escape(col)}</th>"
                    f"<td style='text-align:right'>{html.escape(text)}</td></tr>")
    link = (f"<p><a href=\"{html.escape(quote(c.county))}/map.html\" target=\"_blank\">"
            f"打开 {html.escape(c.county)} 规划地图</a></p>" if maps else "<p>(未生成县地图)</p>")
    return (f"<h4>{html.escape(c.county)}</h4><table>{''.join(rows)}</table>"
            f"<p>{html.escape(STATUS_ZH[c.status])}</p>{link}")


def _panel(result: ManyResult, legend: list[tuple[str, Any]]) -> str:
    n = len(result.counties)
    head = (f"<b>省级规划总览</b><br>{n} 个县: 完成 {n - len(result.failed)}, "
            f"失败 {len(result.failed)}")
    bars = "".join(
        f"<div>{html.escape(label)}<div style='height:10px;width:200px;background:linear-gradient("
        f"to right,{cmap(cmap.vmin)},{cmap((cmap.vmin + cmap.vmax) / 2)},{cmap(cmap.vmax)})'></div></div>"
        for label, cmap in legend)
    items = "".join(f"<li><b>{html.escape(c.county)}</b>: {html.escape(c.error_type)}: "
                    f"{html.escape(one_line(c.error, 200))}</li>"
                    for c in result.failed)
    fails = (f"失败的县 (详见 failures.txt):<ul style='margin:0;padding-left:18px'>{items}</ul>"
             if items else "")
    return ("<div style='position:fixed;bottom:20px;left:10px;z-index:9999;background:white;"
            "padding:8px 10px;border:1px solid #999;max-width:420px;max-height:40%;overflow:auto;"
            f"font-size:13px'>{head}{bars}{fails}</div>")


def _bounds(outlines: list[dict[str, Any]]) -> list[list[float]] | None:
    from shapely.geometry import shape

    boxes = [shape(o).bounds for o in outlines]
    if not boxes:
        return None
    return [[min(b[1] for b in boxes), min(b[0] for b in boxes)],
            [max(b[3] for b in boxes), max(b[2] for b in boxes)]]
