"""An editing session: the undo/redo history of plans, the recovery journal, saving and exporting.

The session holds plans, never mutates one: every step pushes the new plan (see
:mod:`gridplan.edit.ops`); undo and redo move along the list. After every step, before its answer
is sent, the operations since the session's start are journaled (atomically: a new file renamed
over the old one) to a recovery file next to the store, so a crash or a kill of the editor loses
nothing: the next start offers to replay them. The file is then flushed to the disk (fsync of the
file and its folder) by a background thread, within milliseconds, so the answer does not wait for
the disk; only an operating-system crash or power cut in those milliseconds can lose the last step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..files import OutputError, json_default, open_output_file
from ..hv.segments import align_segments, assign_owners
from ..people.roster import write_roster
from ..render.map import save_map
from ..render.wallmap import render_wallmap
from ..replan.store import StaleStoreError, list_versions, load_snapshot, save_version
from . import ops
from .ops import EditContext, EditRefused

if TYPE_CHECKING:
    from ..pipeline import Plan

__all__ = ["JOURNAL_NAME", "EditSession", "History", "Phases", "Step", "read_journal"]

log = logging.getLogger(__name__)

JOURNAL_NAME = ".gridplan-edit-recovery.json"
JOURNAL_FORMAT = "gridplan-edit-recovery/1"
_EXPORTS = ("plan", "roster", "map", "wallmap")


class Phases:
    """Wall and CPU time of the phases of one request (the editor's ``Server-Timing`` header).

    A phase is timed in the thread that runs it (CPU is that thread's ``time.thread_time``), so
    the event loop's phases and the worker thread's can be recorded on one object. The session
    records its own phases on :attr:`EditSession.phases` while a request's recorder is set there.
    """

    def __init__(self) -> None:
        self.items: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as phase ``name`` (wall and this thread's CPU, in seconds)."""
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            with self._lock:
                self.items.append((name, time.perf_counter() - t0, time.thread_time() - c0))

    def header(self) -> str:
        """The ``Server-Timing`` value: ``name;dur=<wall ms>;desc="cpu <ms>"`` per phase."""
        with self._lock:
            items = list(self.items)
        return ", ".join(f'{n};dur={w * 1000:.1f};desc="cpu {c * 1000:.1f}"' for n, w, c in items)


@contextlib.contextmanager
def _no_phase(name: str) -> Iterator[None]:
    yield


@dataclass(frozen=True)
class Step:
    """One state of the history: the plan, the operation that made it, the 台区 edited so far."""

    plan: Any
    op: dict[str, Any] | None
    edited: frozenset[str] = frozenset()


@dataclass
class History:
    """Undo/redo as a list of plans: ``steps[position]`` is the current state."""

    steps: list[Step]
    position: int = 0
    limit: int = 1000

    @classmethod
    def start(cls, plan: Plan) -> History:
        """A history holding only ``plan``."""
        return cls([Step(plan, None)])

    @property
    def current(self) -> Step:
        """The current state."""
        return self.steps[self.position]

    @property
    def can_undo(self) -> bool:
        return self.position > 0

    @property
    def can_redo(self) -> bool:
        return self.position < len(self.steps) - 1

    def push(self, plan: Plan, op: dict[str, Any], edited: frozenset[str]) -> None:
        """Make ``plan`` the current state; the redo branch is dropped."""
        del self.steps[self.position + 1:]
        self.steps.append(Step(plan, op, edited))
        self.position += 1
        if len(self.steps) > self.limit:  # the oldest states go; the journal keeps their ops
            drop = len(self.steps) - self.limit
            self.steps = self.steps[drop:]
            self.position -= drop

    def undo(self) -> Step:
        """Step back; :class:`EditRefused` when there is nothing to undo."""
        if not self.can_undo:
            raise EditRefused("没有可撤销的操作", code="nothing_to_undo", detail="nothing to undo")
        self.position -= 1
        return self.current

    def redo(self) -> Step:
        """Step forward again; :class:`EditRefused` when there is nothing to redo."""
        if not self.can_redo:
            raise EditRefused("没有可重做的操作", code="nothing_to_redo", detail="nothing to redo")
        self.position += 1
        return self.current

    def summary(self) -> dict[str, Any]:
        """``{can_undo, can_redo, steps, position}`` for the page."""
        return {"can_undo": self.can_undo, "can_redo": self.can_redo,
                "steps": len(self.steps) - 1, "position": self.position}


def read_journal(path: Path) -> dict[str, Any] | None:
    """The recovery journal at ``path`` (None when absent or unreadable: then it is ignored)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("recovery file %s is unreadable (%s); ignored", path, exc)
        return None
    if not isinstance(data, dict) or data.get("format") != JOURNAL_FORMAT or not isinstance(data.get("ops"), list):
        log.warning("recovery file %s is not a gridplan edit journal; ignored", path)
        return None
    return data


#: Seconds a save waits for the store's lock while another editor or run is writing the store.
SAVE_WAIT_SECONDS = 10.0


def _save_when_free(plan: Plan, store: Path, *, note: str, expect_latest: int | None) -> int:
    """:func:`save_version` (a compare-and-save), retried while another writer holds the lock."""
    deadline = time.monotonic() + SAVE_WAIT_SECONDS
    while True:
        try:
            return save_version(plan, store, note=note, expect_latest=expect_latest)
        except OutputError as exc:
            if "being written by another gridplan run" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass
class EditSession:
    """The state of one ``gridplan edit`` run.

    Parameters
    ----------
    plan
        The plan being edited (the session's start).
    store
        The plan store saves go to (``gridplan history`` / ``gridplan diff`` read it).
    label
        How the user named the plan (shown, and kept in the journal).
    export_dir
        Where exports are written (default: ``export/`` next to the store).
    journal
        The recovery file (default: ``.gridplan-edit-recovery.json`` next to the store; None: none).
    """

    plan: Any
    store: Path
    label: str = ""
    export_dir: Path | None = None
    journal: Path | None = None
    context: EditContext | None = None
    history: History = field(init=False)
    base_version: int | None = field(init=False, default=None)
    version: int | None = field(init=False, default=None)
    saved_position: int = field(init=False, default=0)
    previews: dict[str, ops.Rebalance] = field(init=False, default_factory=dict)
    recovery: dict[str, Any] | None = field(init=False, default=None)
    _static_json: dict[str, Any] | None = field(init=False, default=None, repr=False, compare=False)  # views' cache
    phases: Phases | None = field(init=False, default=None, repr=False, compare=False)  # the request's timer
    _syncer: ThreadPoolExecutor | None = field(init=False, default=None, repr=False, compare=False)
    _sync_pending: bool = field(init=False, default=False, repr=False, compare=False)
    _sync_lock: Any = field(init=False, default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.store = Path(self.store)
        self.plan = _editable(self.plan)
        if self.context is None:
            self.context = EditContext.build(self.plan)
        self.history = History.start(self.plan)
        self.export_dir = Path(self.export_dir) if self.export_dir else self.store.parent / "export"
        if self.journal is None:
            self.journal = self.store.parent / JOURNAL_NAME
        self.base_version = self.latest_version()
        self.recovery = read_journal(self.journal)
        if self.recovery is not None and self.recovery.get("source") != self.label:
            log.warning("recovery file %s belongs to %s, not %s; not offered",
                        self.journal, self.recovery.get("source"), self.label)
            self.recovery = None

    # ----------------------------------------------------------------- state

    @property
    def current(self) -> Plan:
        """The current plan."""
        return self.history.current.plan

    @property
    def dirty(self) -> bool:
        """Whether the current state differs from the last saved or opened one."""
        return self.history.position != self.saved_position

    def store_info(self) -> dict[str, Any]:
        return {"path": str(self.store), "version": self.version, "base_version": self.base_version}

    def latest_version(self) -> int | None:
        """The newest version in the store (None for a missing or empty store)."""
        if not self.store.exists():
            return None
        v = list_versions(self.store)
        return int(v["version"].max()) if len(v) else None

    def _phase(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Time a phase on the current request's :class:`Phases` (nothing when none is set)."""
        return self.phases.phase(name) if self.phases is not None else _no_phase(name)

    def _step(self, plan: Plan, op: dict[str, Any], edited: set[str] | frozenset[str]) -> tuple[Plan, Plan]:
        before = self.current
        self.history.push(plan, op, frozenset(self.history.current.edited | set(edited)))
        self.previews.clear()
        with self._phase("journal"):
            self._write_journal()
        return before, plan

    # ----------------------------------------------------------------- operations

    def reassign(self, transformer_ids: list[str], manager_id: str) -> tuple[Plan, Plan]:
        """Move 台区 to a manager; return (before, after)."""
        with self._phase("edit"):
            after = ops.reassign(self.current, transformer_ids, manager_id, context=self.context)
        return self._step(after, {"op": "reassign", "transformer_ids": list(map(str, transformer_ids)),
                                  "manager_id": str(manager_id)}, set(map(str, transformer_ids)))

    def lock(self, grid_ids: list[str], locked: bool) -> tuple[Plan, Plan]:
        """Lock or unlock grids; return (before, after)."""
        after = ops.lock(self.current, grid_ids, locked=locked)
        return self._step(after, {"op": "lock", "grid_ids": list(map(str, grid_ids)), "locked": bool(locked)},
                          set())

    def undo(self) -> tuple[Plan, Plan]:
        """Step back: ``(plan before, plan now)``."""
        return self._history_move(self.history.undo)

    def redo(self) -> tuple[Plan, Plan]:
        """Step forward again: ``(plan before, plan now)``."""
        return self._history_move(self.history.redo)

    def _history_move(self, move: Callable[[], object]) -> tuple[Plan, Plan]:
        before = self.current
        move()
        self.previews.clear()
        with self._phase("journal"):
            self._write_journal()
        return before, self.current

    def rebalance(self, *, township_id: str | None = None, station_id: str | None = None,
                  stability: float = 1.0) -> tuple[str, ops.Rebalance]:
        """Run the planner on an area; keep the result as a preview (nothing changes yet)."""
        result = ops.rebalance(self.current, township_id=township_id, station_id=station_id,
                               stability=stability, edited=self.history.current.edited,
                               context=self.context)
        pid = secrets.token_urlsafe(12)
        self.previews = {pid: result}
        return pid, result

    def accept(self, preview_id: str) -> tuple[Plan, Plan]:
        """Make a rebalance preview the current state (one undo step)."""
        result = self._preview(preview_id)
        tr = result.plan.transformers
        ch = result.changes
        grid_of = dict(zip(tr["transformer_id"].astype(str), tr["grid_id"].astype(str)))
        changed = {t: grid_of[t] for t in ch["transformer_id"].astype(str)}
        grids = result.plan.grids
        managers = dict(zip(grids["grid_id"].astype(str), grids["manager_id"].astype(str)))
        area_grids = set(ch["to_grid"].astype(str)) | set(ch["from_grid"].astype(str))
        op = {"op": "assign", "grids": changed,
              "managers": {g: managers[g] for g in sorted(area_grids) if g in managers},
              "source": f"自动平衡 {result.area[0]} {result.area[1]}"}
        return self._step(result.plan, op, set())

    def discard(self, preview_id: str) -> None:
        """Drop a rebalance preview."""
        self._preview(preview_id)
        self.previews.clear()

    def _preview(self, preview_id: str) -> ops.Rebalance:
        if preview_id not in self.previews:
            raise EditRefused("预览已失效或不存在,请重新执行自动平衡", status=404, code="unknown_preview",
                              detail="unknown or stale preview_id (any edit discards previews)")
        return self.previews[preview_id]

    # ----------------------------------------------------------------- versions

    def versions(self) -> list[dict[str, Any]]:
        """The store's versions, oldest first."""
        if not self.store.exists():
            return []
        out = []
        for r in list_versions(self.store).to_dict("records"):
            kpi = r.get("kpi") or {}
            out.append({"version": int(r["version"]), "timestamp": str(r["timestamp"]),
                        "note": str(r.get("note") or ""), "county": str(r.get("county") or ""),
                        "transformers": kpi.get("transformers"), "grids": kpi.get("grids"),
                        "moved_transformers": kpi.get("moved_transformers")})
        return out

    def save(self, note: str, base_version: int | None) -> int:
        """Save the current state as a new store version; refused (409) when the store moved on.

        Nothing is lost on a refusal: the edit state stays as it is.
        """
        plan = self.finalized()
        try:  # checked and written in one locked store transaction: two editors cannot both win
            v = _save_when_free(plan, self.store, note=note,
                                expect_latest=None if base_version is None else int(base_version))
        except StaleStoreError as exc:
            latest = exc.latest
            raise EditRefused(
                f"方案库中已有更新的版本(第 {latest} 版,可能是另一位编辑者保存的),本次未保存;"
                f"当前编辑内容仍保留。请先与第 {latest} 版比较或打开它,确认后以 base_version={latest} 再次保存。",
                code="stale", items=[str(latest)],
                detail=f"the store has version {latest}, newer than base_version {base_version}; "
                       "nothing was saved and the edits are kept") from exc
        self.version = self.base_version = int(v)
        self.saved_position = self.history.position
        self._write_journal()
        return int(v)

    def open_version(self, version: int) -> tuple[Plan, Plan]:
        """Make a stored version the current state (one undo step)."""
        snap = self._snapshot(version)
        a = snap.assignments
        cur = self.current.transformers
        assert self.context is not None  # set in __post_init__
        known = a[a["transformer_id"].astype(str).isin(self.context.row_of)]
        now = dict(zip(cur["transformer_id"].astype(str), cur["grid_id"].astype(str)))
        grid_of = {str(t): str(g) for t, g in zip(known["transformer_id"], known["grid_id"])
                   if now.get(str(t)) != str(g)}
        managers = {str(g): str(m) for g, m in zip(snap.grids["grid_id"], snap.grids["manager_id"])}
        after = ops.set_assignment(self.current, grid_of, managers, context=self.context)
        op = {"op": "assign", "grids": grid_of, "managers": managers, "source": f"打开第 {version} 版"}
        before, after = self._step(after, op, set())
        self.version = int(version)
        self.base_version = self.latest_version()  # the planner has seen the store as it is now
        self.saved_position = self.history.position
        self._write_journal()
        return before, after

    def _snapshot(self, version: int):

        if not self.store.exists():
            raise EditRefused("方案库尚无版本", status=404, code="unknown_version", detail="the store is empty")
        known = {v["version"] for v in self.versions()}
        if int(version) not in known:
            raise EditRefused(f"方案库中没有第 {version} 版", status=404, code="unknown_version",
                              detail=f"no version {version}; versions: {sorted(known)}", items=[str(version)])
        return load_snapshot(f"{self.store}#{int(version)}")

    def compare(self, version: int) -> dict[str, Any]:
        """台区 whose manager differs from a stored version, and managers' numbers before/after."""
        snap = self._snapshot(version)
        a = snap.assignments.assign(transformer_id=lambda d: d["transformer_id"].astype(str))
        b = self.current.transformers
        b = pd.DataFrame({"transformer_id": b["transformer_id"].astype(str).to_numpy(),
                          "manager_id": b["manager_id"].astype(str).to_numpy(),
                          "customers": b["customers"].to_numpy(), "workload": b["workload"].to_numpy()})
        before = a.set_index("transformer_id")["manager_id"].astype(str)
        after = b.set_index("transformer_id")["manager_id"]
        common = before.index.intersection(after.index)
        changed = sorted(common[(before.loc[common] != after.loc[common]).to_numpy()])
        changed += sorted(set(after.index) - set(before.index))

        def per(df: pd.DataFrame) -> pd.DataFrame:
            return df.groupby(df["manager_id"].astype(str)).agg(
                workload=("workload", "sum"), customers=("customers", "sum"), n=("transformer_id", "size"))

        pa, pb = per(a), per(b)
        names = dict(zip(snap.managers["manager_id"].astype(str), snap.managers["name"].astype(str)))
        m = self.current.managers
        names.update(dict(zip(m["manager_id"].astype(str), m["name"].astype(str))))
        rows = []
        for mid in sorted(set(pa.index) | set(pb.index)):
            x = pa.loc[mid] if mid in pa.index else None
            y = pb.loc[mid] if mid in pb.index else None

            def nums(r) -> dict[str, float]:
                return {"workload": 0.0, "customers": 0, "n": 0} if r is None else {
                    "workload": round(float(r["workload"]), 2), "customers": int(r["customers"]), "n": int(r["n"])}

            bx, by = nums(x), nums(y)
            if bx != by:
                rows.append({"manager_id": mid, "name": names.get(mid, mid), "before": bx, "after": by})
        return {"version": int(version), "changed": changed, "managers": rows}

    # ----------------------------------------------------------------- export

    def finalized(self) -> Plan:
        """The current plan with its 10 kV segments re-aligned to the edited grids (for writers)."""
        p = self.current
        kpi = dict(p.kpi)
        county = dict(kpi.get("county", {}))
        if "edited_transformers" in county:  # `gridplan history` shows these as 改派台区
            county["moved_transformers"] = county["edited_transformers"]
            county["moved_households"] = county.get("edited_households", 0)
        kpi["county"] = county
        p = dataclasses.replace(p, kpi=kpi)
        if p.segments is None or not len(p.segments):
            return p

        old = p.segments
        seg = align_segments(old.drop(columns=["grid_id", "manager_id", "share_in_grid"], errors="ignore"),
                             p.grids)
        if p.params.hv_owner == "lv":
            seg, _ = assign_owners(seg, p.county.townships, mode="lv")
        else:
            for c in ("manager_id", "owner_role", "owner_share"):
                if c in old.columns:
                    seg[c] = old[c].to_numpy()
        return dataclasses.replace(p, segments=seg)

    def export(self, what: str, *, station_id: str | None = None, size: str = "A1") -> Path:
        """Write the current state with gridplan's writers into the export folder (never over a file)."""
        if what not in _EXPORTS:
            raise EditRefused(f"不支持的导出类型:{what}", status=400, code="bad_request",
                              detail=f"what must be one of {', '.join(_EXPORTS)}")
        plan = self.finalized()
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        assert self.export_dir is not None  # set in __post_init__
        self.export_dir.mkdir(parents=True, exist_ok=True)
        if what == "wallmap":
            stations = set(plan.county.stations["station_id"].astype(str))
            if station_id is None or str(station_id) not in stations:
                raise EditRefused(f"供电所不存在:{station_id}", status=404 if station_id else 400,
                                  code="unknown_station", detail=f"unknown station_id: {station_id}")
            if size not in ("A0", "A1", "A2", "A3"):
                raise EditRefused(f"纸张尺寸无效:{size}", status=400, code="bad_request",
                                  detail="size must be A0, A1, A2 or A3")
        name = {"plan": f"plan-{stamp}", "roster": f"roster-{stamp}.xlsx", "map": f"map-{stamp}.html",
                "wallmap": f"wallmap-{station_id}-{size}-{stamp}.pdf"}[what]
        out = _unused(self.export_dir / name)
        command = f"gridplan edit (导出 {what})"
        if what == "plan":
            plan.to_file(out, map_html=False, roster=False)  # plan.gpkg + kpi.json, an output folder
        elif what == "wallmap":
            render_wallmap(plan, station_id=str(station_id), size=size, out=out)  # through open_output_file
        else:  # one file, staged and moved into place by the output writer (never over a user's file)
            with open_output_file(out, command=command) as target:
                if what == "roster":
                    write_roster(plan, target.tmp)
                else:
                    save_map(plan, target.tmp)
        log.info("exported %s to %s", what, out)
        return out

    # ----------------------------------------------------------------- recovery journal

    def _write_journal(self) -> None:
        """Journal the operations since the start (atomically); remove it when nothing is unsaved.

        The new file is in place (renamed over the old one) when this returns, so a crash or a
        kill of the editor from then on finds it; its fsync runs on a background thread
        (:meth:`flush_journal` waits for it).
        """
        if self.journal is None:
            return
        if not self.dirty:
            Path(self.journal).unlink(missing_ok=True)
            self._sync_soon()  # the removal, too, reaches the disk
            return
        ops_ = [s.op for s in self.history.steps[1:self.history.position + 1] if s.op is not None]
        data = {"format": JOURNAL_FORMAT, "source": self.label, "store": str(self.store),
                "base_version": self.base_version, "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "ops": ops_}
        _replace_text(Path(self.journal), json.dumps(data, ensure_ascii=False, default=json_default))
        self._sync_soon()

    def _sync_soon(self) -> None:
        """Have the background thread fsync the journal (once for any number of writes meanwhile)."""
        with self._sync_lock:
            if self._sync_pending:
                return
            self._sync_pending = True
            if self._syncer is None:
                self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridplan-journal")
            self._syncer.submit(self._sync_journal)

    def _sync_journal(self) -> None:
        with self._sync_lock:
            self._sync_pending = False  # a write after this point asks again
        if self.journal is None:
            return
        path = Path(self.journal)
        try:
            _fsync(path)
        except FileNotFoundError:
            pass  # removed (nothing unsaved): the folder's fsync below records that
        except OSError as exc:
            log.warning("recovery file %s: fsync failed (%s)", path, exc)
        try:
            _fsync(path.parent)
        except OSError as exc:
            log.warning("folder of the recovery file %s: fsync failed (%s)", path, exc)

    def flush_journal(self) -> None:
        """Wait until the recovery journal, as last written, is on the disk."""
        with self._sync_lock:
            syncer = self._syncer
        if syncer is not None:
            syncer.submit(self._sync_journal).result()

    def recover(self) -> int:
        """Replay the recovery journal's operations (each one undo step); return how many."""
        data, self.recovery = self.recovery, None
        if not data:
            return 0
        n = 0
        for op in data["ops"]:
            try:
                self._replay(op)
                n += 1
            except (EditRefused, KeyError, TypeError, ValueError) as exc:
                log.warning("recovery: step %d (%s) could not be replayed: %s", n + 1, op.get("op"), exc)
                break
        self._write_journal()
        return n

    def discard_recovery(self) -> None:
        """Delete the recovery journal without replaying it."""
        self.recovery = None
        if self.journal is not None and not self.dirty:
            Path(self.journal).unlink(missing_ok=True)

    def _replay(self, op: dict[str, Any]) -> None:
        kind = op.get("op")
        if kind == "reassign":
            self.reassign(list(op["transformer_ids"]), str(op["manager_id"]))
        elif kind == "lock":
            self.lock(list(op["grid_ids"]), bool(op["locked"]))
        elif kind == "assign":
            after = ops.set_assignment(self.current, dict(op["grids"]), dict(op.get("managers") or {}),
                                       context=self.context)
            self._step(after, op, set())
        else:
            raise ValueError(f"unknown operation {kind!r}")


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to a new file next to ``path`` and rename it over ``path`` (no fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync(path: Path) -> None:
    """Flush a file or a folder to the disk (fsync), by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _editable(plan: Plan) -> Plan:
    """The plan with a ``locked`` column on its grids (False), as the editor keeps it."""
    g = plan.grids
    if "locked" in g.columns:
        return plan
    return dataclasses.replace(plan, grids=g.assign(locked=False))


def _unused(path: Path) -> Path:
    """``path``, or ``name-2.ext``, ``name-3.ext``… when it exists (an export never overwrites)."""
    if not path.exists():
        return path
    stem, suffix = (path.name, "") if path.is_dir() or not path.suffix else (path.stem, path.suffix)
    for k in range(2, 10_000):
        cand = path.with_name(f"{stem}-{k}{suffix}")
        if not cand.exists():
            return cand
    raise EditRefused("导出文件名已用尽", code="export_failed", detail=str(path))
