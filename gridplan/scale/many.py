"""Plan many counties in parallel on Dask: a province on one machine, or a nation on a cluster.

``plan_many(province_dir, out_dir)`` is the library twin of ``gridplan plan-many``::

    result = gridplan.scale.many.plan_many("geodata/province", "maps/province", workers=2)
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
map of every county linking to its own ``map.html`` (:func:`write_summary`, in
:mod:`gridplan.scale.province` and re-exported here).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gridplan  # its load_county and plan, looked up when a county is planned

from .. import __version__
from ..errors import GridplanError, Problems
from ..files import json_default, open_output, sha256
from ..pipeline import PLAN_FILES
from .province import (  # noqa: F401 - the province summary, re-exported from here
    COLUMNS,
    FAILED,
    HEADERS,
    PLANNED,
    SKIPPED,
    STATUS_ZH,
    SUMMARY_FILES,
    SUMMED,
    one_line,
    summary_table,
    write_summary,
)

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
    return [sub for sub in sorted(root.iterdir())
            if sub.is_dir() and not sub.name.startswith(".")
            and any(f.is_file() for f in sub.glob("townships.*"))]


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

    This is the Dask task. It writes ``out_dir`` and the resume manifest as one gridplan output
    (:func:`gridplan.files.open_output`: atomic, never over files gridplan did not write); errors
    become a failure record carrying the message and the exception type.
    """
    start, cpu = time.perf_counter(), time.process_time()
    name = Path(county_dir).name
    res = CountyResult(county=name, status=PLANNED, worker=_worker_address())
    try:
        checksums = input_checksums(county_dir)
        # The county's folder is one gridplan output, checked and locked (here, on the worker)
        # before the county is planned; its files and the resume manifest are swapped in together.
        with open_output(out_dir, command="gridplan plan-many (county)",
                         expect=(*PLAN_FILES, MANIFEST)) as target:
            assert target.staging is not None
            county = gridplan.load_county(county_dir, **params)
            plan = gridplan.plan(county)
            plan.write_into(target.staging, map_html=maps)
            res.kpi = dict(plan.kpi.get("county", {}))
            res.outline = _outline(county)
            manifest = {"county": name, "inputs": checksums, "params_hash": phash,
                        "params": params, "maps": maps, "gridplan": __version__,
                        "county_checksums": dict(county.checksums), "kpi": res.kpi,
                        "outline": res.outline, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
            (target.staging / MANIFEST).write_text(
                json.dumps(manifest, ensure_ascii=False, indent=1, default=json_default),
                encoding="utf-8")
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
    """Return the union of the county's townships in WGS84, simplified (metres) and as GeoJSON."""
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
    # Checked (not inside/above the province, empty or an earlier plan-many output, writable)
    # and locked before any county is planned; the summary files are swapped in at the end.
    target = open_output(out, command="gridplan plan-many", inputs=[root],
                         expect=SUMMARY_FILES)
    try:
        result = _plan_counties(root, out, counties, target, params=params, progress=progress,
                                maps=maps, client=client, scheduler=scheduler, workers=workers,
                                summary=summary)
    except BaseException:
        target.close(failed=True)
        raise
    target.close()
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _plan_counties(root: Path, out: Path, counties: list[Path], target: Any, *,
                   params: dict[str, Any], progress: ManyProgress | None, maps: bool,
                   client: Any | None, scheduler: str | None, workers: int | None,
                   summary: bool) -> ManyResult:
    """Plan the counties not yet current and write the summary into ``target`` (opened)."""
    phash = params_hash(params, maps=maps)

    results: dict[str, CountyResult] = {}
    todo: list[tuple[Path, int]] = []
    done = 0
    for cdir in counties:
        cout = out / cdir.name
        manifest = read_manifest(cout)
        if manifest is not None and _is_current(manifest, input_checksums(cdir), phash, cout):
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
        with _Client(client, scheduler, workers) as cl:
            for res in _run(cl, [c for c, _ in todo], out, params, maps, phash):
                results[res.county] = res
                done += 1
                if progress is not None:
                    progress(res, done, len(counties))

    ordered = [results[c.name] for c in counties]
    result = ManyResult(out_dir=out, counties=ordered, seconds=0.0)
    for c in ordered:
        if c.ok:
            target.add_folder(c.county)
    if summary:
        result.files = write_summary(result, maps=maps, folder=target.staging)
    target.commit()
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


class _Client:
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
