"""File helpers every stage shares: outputs that never destroy, atomic writes, checksums.

Every gridplan output is either a *folder* (``plan``, ``demo``, ``diff``, ``merge``,
``merge-candidates``, ``plan-many``) or a *single file* (``wallmap``). Both are written through
this module, by the same rules (README, "What every command will and will not overwrite"):

* A folder gridplan writes is marked by :data:`MANIFEST` (``.gridplan-manifest.json``: tool,
  version, command and every file written with its sha256). ``--out`` may be a new folder, an
  empty one, or a previous output of the same command; any other non-empty folder is refused
  (:class:`OutputError`, exit status 2) before anything is touched. ``--out`` equal to, inside or
  above an input folder is refused too.
* The files are written into a hidden staging folder inside the output folder
  (``.gridplan-tmp-*``, marked by :data:`MARKER`), then swapped in: each file by an atomic rename,
  the manifest last. Only files listed in the previous manifest are replaced or removed; any
  other file in the folder is the user's and is kept. The staging folder keeps the replaced files
  until the swap (and a ``--store`` commit) succeeded, so a failure rolls back; a killed swap is
  completed by the next run (its marker says where it stopped).
* The location is checked writable, and a lock file (:data:`LOCK`: ``fcntl.flock``, with pid,
  host and command inside) taken, *before* planning. A second run on the same folder exits 2.
* Leftover staging folders of killed runs are removed by the next run on that folder, but only
  folders whose marker names a process that is gone.
* A single file (``wallmap --out S01.pdf``) is rendered into a staging folder beside it and moved
  into place by one rename; an existing file is replaced only when gridplan wrote it (its sha256 is
  recorded in the sidecar ``.S01.pdf.gridplan.json``) and it is unchanged since, or with ``force``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from ._version import __version__
from .errors import InputError, Problem

__all__ = [
    "LOCK",
    "MANIFEST",
    "MARKER",
    "FileLock",
    "OutputDir",
    "OutputError",
    "OutputFile",
    "Transaction",
    "atomic_dir",
    "json_default",
    "make_dirs",
    "open_output",
    "open_output_file",
    "output_folder",
    "owner_alive",
    "read_manifest",
    "recover_folder",
    "recovering",
    "register_recovery",
    "rmdir_quiet",
    "sha256",
    "write_text_atomic",
]

log = logging.getLogger(__name__)

#: Marks a folder gridplan wrote: tool, version, command, kind and every file with its sha256.
MANIFEST = ".gridplan-manifest.json"
#: Lock file inside an output folder (beside a single output file: ``.NAME.gridplan.lock``).
LOCK = ".gridplan.lock"
#: Prefix of staging folders inside an output folder.
STAGING_PREFIX = ".gridplan-tmp-"
#: Marker file inside every staging folder: owner process and how far the swap got.
MARKER = ".gridplan-staging.json"
#: Sub-folder of a staging folder that keeps the replaced files until the commit succeeded.
BACKUP = ".replaced"
TOOL = "gridplan"

#: Commands whose outputs are the same kind (one may replace the other's folder).
_KIND_OF = {"demo": "plan", "Plan.to_file": "plan", "plan-many (county)": "plan"}


class OutputError(InputError):
    """The output location cannot be used (not empty, input inside, read-only, locked...).

    A subclass of :class:`~gridplan.InputError`: the CLI prints every problem and exits with
    status 2; nothing was written.
    """

    def format(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} with the output location:"
        body = "\n".join(f"{i}. {p.format()}" for i, p in enumerate(self.problems, 1))
        return f"{head}\n{body}"


def _error(path: str | Path, what: str, fix: str) -> OutputError:
    return OutputError([Problem(str(path), what, fix)])


# --------------------------------------------------------------------------- small helpers

def sha256(path: str | Path) -> str:
    """The sha256 of a file, in hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def json_default(obj: Any) -> Any:
    """``json.dumps`` fallback: numpy scalars become numbers, sets and tuples lists, the rest text."""
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def write_text_atomic(path: str | Path, text: str, *, tmp_dir: str | Path | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename.

    The temporary file is made in ``tmp_dir`` (default: ``path``'s folder), which must be on the
    same file system.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=tmp_dir or path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True, default=json_default)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _version() -> str:
    return __version__


# --------------------------------------------------------------------------- processes

def _host() -> str:
    return socket.gethostname()


def _start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` (clock ticks since boot, Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def _owner() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "host": _host(), "start": _start_ticks(pid),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def owner_alive(info: dict[str, Any] | None) -> bool:
    """Whether the process an owner record names may still run.

    A process on another host cannot be checked and counts as alive; on this host the pid must
    exist and (when recorded) have the same start time, so a reused pid does not count.
    """
    if not info:
        return False
    if info.get("host") != _host():
        return True
    try:
        pid = int(info.get("pid") or 0)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    if pid == os.getpid():
        return info.get("start") in (None, _start_ticks(pid))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = info.get("start")
    now = _start_ticks(pid)
    return not (start is not None and now is not None and int(start) != now)


# --------------------------------------------------------------------------- locks

class FileLock:
    """An exclusive, non-blocking lock on a lock file (``fcntl.flock``), holder recorded inside.

    The kernel releases the lock when its process dies, so a lock file left by a killed run is
    never in the way (stale locks need no clean-up); the file is removed on release.

    Parameters
    ----------
    path
        The lock file.
    what
        What the lock protects, for the message (``"the output folder maps/x"``).
    command
        The command taking it (recorded for the message a second run prints).
    """

    def __init__(self, path: Path, *, what: str, command: str):
        self.path = Path(path)
        self.what = what
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> Self:
        """Take the lock, or raise :class:`OutputError` saying who holds it."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise _error(self.path.parent, f"is not writable ({exc.strerror})",
                             "choose a location you can write to (check permissions and that "
                             "the disk is not mounted read-only)") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = self._holder(fd)
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise _error(self.path, f"cannot be locked ({exc.strerror})",
                                 "use a local disk for the output") from None
                raise _error(self.path.parent,
                             f"{self.what} is being written by another gridplan run ({holder})",
                             "wait for that run to finish, or choose another output") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the file was removed by its releasing holder: lock the new one
        os.ftruncate(fd, 0)
        os.write(fd, _dumps({**_owner(), "command": self.command}).encode("utf-8"))
        self._fd = fd
        return self

    def probe(self) -> None:
        """Raise :class:`OutputError` when another process holds the lock (creates nothing)."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = self._holder(fd)
            raise _error(self.path.parent,
                         f"{self.what} is being written by another gridplan run ({holder})",
                         "wait for that run to finish, or choose another output") from None
        finally:
            os.close(fd)  # also releases a lock taken by the probe

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        except (OSError, ValueError):
            info = {}
        if not info:
            return "just starting"
        return (f"`{info.get('command', 'gridplan')}`, pid {info.get('pid')} on {info.get('host')}, "
                f"since {info.get('since')}")

    def release(self) -> None:
        """Remove the lock file and release the lock."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# --------------------------------------------------------------------------- manifests

def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of a folder gridplan wrote, or ``None`` when it has none."""
    data = _read_json(Path(folder) / MANIFEST)
    if data is None or data.get("tool") != TOOL or not isinstance(data.get("files"), dict):
        return None
    return data


def _kind(command: str) -> str:
    name = command.removeprefix("gridplan ").strip()
    return _KIND_OF.get(name, name)


def _is_staging(entry: Path) -> bool:
    return entry.name.startswith(STAGING_PREFIX) and entry.is_dir() and (entry / MARKER).is_file()


def _user_entries(folder: Path) -> list[str]:
    """Names in ``folder`` other than gridplan's manifest, lock and staging folders.

    A staging folder counts as gridplan's by its name alone here (its marker is written a moment
    after it is made); only marked ones are ever removed.
    """
    out = []
    for entry in sorted(folder.iterdir()):
        if entry.name in (MANIFEST, LOCK) or (entry.name.startswith(STAGING_PREFIX) and entry.is_dir()):
            continue
        out.append(entry.name)
    return out


def _walk(root: Path) -> tuple[list[str], list[str]]:
    """Files and folders under ``root`` (relative POSIX paths), without the staging internals."""
    files: list[str] = []
    dirs: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d != BACKUP]
            filenames = [f for f in filenames if f not in (MARKER, MANIFEST + ".new")]
        else:
            dirs.append(rel.as_posix())
        files.extend((rel / f).as_posix() for f in filenames)
    return sorted(files), sorted(dirs)


def _relation(target: Path, folder: Path) -> str | None:
    if target == folder:
        return "is the input folder"
    if folder in target.parents:
        return "is inside the input folder"
    if target in folder.parents:
        return "contains the input folder"
    return None


def _check_inputs(target: Path, inputs: Iterable[str | Path], label: str) -> list[Problem]:
    problems = []
    for inp in inputs:
        folder = Path(inp).resolve()
        if not folder.is_dir():
            continue
        why = _relation(target, folder)
        if why:
            problems.append(Problem(label, f"{why} {folder}; gridplan never writes over its input",
                                    "choose an output folder outside the input folder, "
                                    f"e.g. {folder.parent / (folder.name + '-plan')}"))
    return problems


def make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return the folders created (deepest last)."""
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    if p.exists() and not p.is_dir():
        raise _error(p, "is a file, not a folder", "choose an output path whose folders are folders")
    created: list[Path] = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            for c in reversed(created):
                rmdir_quiet(c)
            raise _error(d, f"cannot be created ({exc.strerror})",
                         "choose a location you can write to (check permissions and that the "
                         "disk is not mounted read-only)") from None
        created.append(d)
    return created


def rmdir_quiet(folder: Path) -> None:
    """Remove ``folder`` if it is empty (nothing happens otherwise)."""
    with contextlib.suppress(OSError):
        folder.rmdir()


class Transaction(Protocol):
    """Something committed together with an output folder (a ``--store`` version).

    ``prepare`` runs before the swap (it may return extra manifest entries), ``commit`` after the
    swap succeeded and ``abort`` when anything failed (the folder is rolled back first).
    """

    def prepare(self, manifest: dict[str, Any]) -> dict[str, Any]: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


# --------------------------------------------------------------------------- output folders

class _Staged:
    """What an output folder and an output file share: a staging folder, a lock, folders made."""

    staging: Path | None
    _lock: FileLock | None
    _created: list[Path]
    _done: bool

    def open(self) -> Self:
        raise NotImplementedError

    def commit(self) -> object:
        raise NotImplementedError

    def close(self, *, failed: bool = False) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.open() if self._lock is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Commit when the block ended normally (a failed commit closes as failed), else close."""
        if exc_type is None and not self._done:
            try:
                self.commit()
            except BaseException:
                self.close(failed=True)
                raise
        self.close(failed=exc_type is not None or not self._done)

    def _drop_staging(self) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None

    def _release(self, *, failed: bool) -> None:
        """Release the lock; on failure also remove the folders :meth:`open` made."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if failed:
            for d in reversed(self._created):
                rmdir_quiet(d)


class OutputDir(_Staged):
    """An output folder written all at once (see the module docstring for the rules).

    Use :func:`open_output`: it checks the location and takes the lock (before planning); write
    the files into :attr:`staging`; :meth:`commit` swaps them in (a clean ``with`` exit commits).

    Parameters
    ----------
    target
        The output folder.
    command
        The command writing it (``"gridplan plan"``); outputs of the same kind may replace each
        other.
    inputs
        Input folders: the output may not be equal to, inside or above one of them.
    expect
        Files the command will write (relative paths): an existing file of that name that gridplan
        did not write is reported before planning.
    force
        Replace gridplan's earlier files even when they were changed since.
    label
        How the option is called in messages (``"--out"``).
    """

    def __init__(self, target: str | Path, *, command: str, inputs: Sequence[str | Path] = (),
                 expect: Sequence[str] = (), force: bool = False, label: str = "--out"):
        self.given = Path(target)
        self.path = Path(os.path.abspath(target))
        self.command = command
        self.kind = _kind(command)
        self.inputs = list(inputs)
        self.expect = list(expect)
        self.force = force
        self.label = label
        self.staging: Path | None = None
        self.folders: list[str] = []
        self.manifest: dict[str, Any] | None = None
        self._lock: FileLock | None = None
        self._created: list[Path] = []
        self._stub = False
        self._done = False

    # -- opening ------------------------------------------------------------------------------
    def open(self) -> Self:
        """Check the location, create it, take the lock, clean leftovers, make the staging folder.

        Raises
        ------
        OutputError
            Every reason the location cannot be used (nothing was touched).
        """
        real = self.path.resolve()
        problems = _check_inputs(real, self.inputs, f"{self.label} {self.given}")
        if problems:
            raise OutputError(problems)
        if real.exists() and not real.is_dir():
            raise _error(self.given, "is a file, not a folder",
                         f"give a folder for {self.label} (a new or empty one)")
        if real.exists():
            FileLock(real / LOCK, what=f"the output folder {self.given}", command=self.command).probe()
            self._check_existing(real, full=False)
        self._created = make_dirs(real)
        self.path = real
        try:
            self._lock = FileLock(real / LOCK, what=f"the output folder {self.given}",
                                  command=self.command).acquire()
            recover_folder(real, locked=True)
            self._check_existing(real, full=True)
            try:
                self.staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=real))
            except OSError as exc:
                raise _error(self.given, f"is not writable ({exc.strerror})",
                             "choose a location you can write to") from None
            self._marker({"state": "writing"})
            if read_manifest(real) is None:  # new or empty: mark it as gridplan's right away
                self._stub = True
                write_text_atomic(real / MANIFEST, _dumps(self._header({}, complete=False)),
                                  tmp_dir=self.staging)
        except BaseException:
            self.close(failed=True)
            raise
        return self

    def _check_existing(self, real: Path, *, full: bool) -> None:
        try:
            user = _user_entries(real)
        except OSError as exc:
            raise _error(self.given, f"cannot be read ({exc.strerror})",
                         "choose a location you can read and write") from None
        manifest = read_manifest(real)
        if manifest is None:
            if user:
                shown = ", ".join(user[:5]) + (f" … and {len(user) - 5} more" if len(user) > 5 else "")
                raise _error(self.given,
                             f"is not empty ({len(user)} {'entry' if len(user) == 1 else 'entries'}: "
                             f"{shown}) and is not an earlier "
                             f"gridplan output (it has no {MANIFEST}); gridplan does not write "
                             "into folders it did not make",
                             f"give a new or empty folder for {self.label}, e.g. "
                             f"{self.given / 'gridplan'} (or move those files away)")
            return
        kind = manifest.get("kind") or _kind(str(manifest.get("command", "")))
        if kind != self.kind:
            raise _error(self.given,
                         f"holds the output of `{manifest.get('command')}`, not of "
                         f"`{self.command}`",
                         f"give another folder for {self.label}")
        known = manifest.get("files", {})
        problems = []
        for rel in self.expect:
            p = real / rel
            ours = rel in known or any(k.startswith(rel + "/") for k in known)
            if not ours and (p.exists() or p.is_symlink()):
                problems.append(Problem(str(self.given / rel),
                                        "exists and was not written by gridplan; it would be replaced",
                                        "move or rename it, or choose another folder"))
        if full and not self.force:
            changed = [rel for rel, info in sorted(known.items())
                       if (real / rel).is_file() and sha256(real / rel) != info.get("sha256")]
            if changed:
                problems.append(Problem(
                    str(self.given), "files gridplan wrote earlier were changed since: "
                    f"{', '.join(changed)}; replacing them would lose those changes",
                    "copy the changed files elsewhere (or delete them) and run again, or pass "
                    "--force to replace them"))
        if problems:
            raise OutputError(problems)

    def _header(self, files: dict[str, Any], *, complete: bool = True) -> dict[str, Any]:
        head = {"tool": TOOL, "version": _version(), "command": self.command, "kind": self.kind,
                "complete": complete, "files": files}
        if self.folders:
            head["folders"] = sorted(set(self.folders))
        return head

    def _marker(self, extra: dict[str, Any]) -> None:
        assert self.staging is not None
        info = {"tool": TOOL, "version": _version(), "command": self.command,
                "target": str(self.path), "owner": _owner(), **extra}
        write_text_atomic(self.staging / MARKER, _dumps(info))

    # -- committing ---------------------------------------------------------------------------
    def add_folder(self, name: str) -> None:
        """Record a sub-folder written in place (not through the staging folder), e.g. a county."""
        self.folders.append(name)

    def commit(self, *, transaction: Transaction | None = None) -> dict[str, Any]:
        """Swap the staged files in (manifest last); commit ``transaction`` after the swap.

        Returns
        -------
        dict
            The new manifest.

        Raises
        ------
        OutputError
            A file to be written exists and is not gridplan's (nothing was swapped).
        """
        assert self.staging is not None, "open() first"
        assert not self._done, "commit once"
        files, dirs = _walk(self.staging)
        old = read_manifest(self.path)
        old_files = set((old or {}).get("files", {}))
        clash = [rel for rel in files if rel not in old_files
                 and ((self.path / rel).exists() or (self.path / rel).is_symlink())]
        if clash and not self.force:
            raise OutputError([Problem(str(self.given / rel), "exists and was not written by gridplan",
                                       "move or rename it, or choose another folder") for rel in clash])
        entries = {rel: {"sha256": sha256(self.staging / rel),
                         "bytes": (self.staging / rel).stat().st_size} for rel in files}
        manifest = self._header(entries)
        if dirs:
            manifest["dirs"] = dirs
        if transaction is not None:
            manifest.update(transaction.prepare(manifest))
        delete = sorted(old_files - set(files))
        old_dirs = sorted(set((old or {}).get("dirs", [])) - set(dirs))
        try:
            (self.staging / (MANIFEST + ".new")).write_text(_dumps(manifest), encoding="utf-8")
            self._marker({"state": "ready", "files": files, "delete": delete,
                          "old_dirs": old_dirs, "old_files": sorted(old_files),
                          "old_manifest": old})
            _swap(self.path, self.staging, files=files, delete=delete, old_dirs=old_dirs)
            self._marker({"state": "swapped"})
        except BaseException:
            _rollback(self.path, self.staging, files=files, delete=delete,
                      old_files=old_files, old=old)
            if transaction is not None:
                transaction.abort()
            raise
        if transaction is not None:
            try:
                transaction.commit()
            except BaseException:
                _rollback(self.path, self.staging, files=files, delete=delete,
                          old_files=old_files, old=old)
                transaction.abort()
                raise
        self.manifest = manifest
        self._done = True
        self._stub = False
        return manifest

    def close(self, *, failed: bool = False) -> None:
        """Remove the staging folder and release the lock (and, on failure, what open() made)."""
        self._drop_staging()
        stub = read_manifest(self.path) if failed and self._stub else None
        if stub is not None and not stub.get("complete", True) and not _user_entries(self.path):
            (self.path / MANIFEST).unlink(missing_ok=True)
        self._release(failed=failed)


def _swap(target: Path, staging: Path, *, files: Sequence[str], delete: Sequence[str],
          old_dirs: Sequence[str]) -> None:
    """Move staged files into ``target`` (replaced ones into the backup), manifest last.

    Every step can be repeated: a swap cut short is finished by calling this again.
    """
    backup = staging / BACKUP
    for rel in files:
        src, dst = staging / rel, target / rel
        if not src.exists():
            continue  # moved by an earlier attempt
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_file() and not (backup / rel).exists():
            (backup / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(dst, backup / rel)
        os.replace(src, dst)
    for rel in delete:
        dst = target / rel
        if dst.is_file() and not (backup / rel).exists():
            (backup / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(dst, backup / rel)
    for rel in sorted(old_dirs, key=lambda r: -r.count("/")):
        rmdir_quiet(target / rel)
    new = staging / (MANIFEST + ".new")
    if new.exists():
        os.replace(new, target / MANIFEST)


def _rollback(target: Path, staging: Path, *, files: Sequence[str], delete: Sequence[str],
              old_files: set[str], old: dict[str, Any] | None) -> None:
    """Undo a (partial) swap: put the replaced files back, remove the new ones."""
    backup = staging / BACKUP
    for rel in list(files) + list(delete):
        dst, kept = target / rel, backup / rel
        if kept.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(kept, dst)
        elif rel not in old_files and rel in files and dst.is_file():
            dst.unlink()
    if old is not None:
        write_text_atomic(target / MANIFEST, _dumps(old), tmp_dir=staging)
    log.info("output %s rolled back to its previous state", target)


def recover_folder(folder: str | Path, *, locked: bool = False, stores: bool = True) -> list[str]:
    """Clean up after killed runs in an output folder: finish or drop their staging folders.

    Only staging folders with a gridplan marker whose owning process is gone are touched. A
    staging folder killed before its swap began is removed; one killed during the swap has the
    swap finished (its files were complete); then the ``--store`` version it belongs to is
    committed too (when ``stores``).

    Parameters
    ----------
    folder
        The output folder.
    locked
        The caller holds the folder's lock (else it is taken here, or nothing is done when
        another run holds it).

    Returns
    -------
    list of str
        What was done, one line per staging folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    lock = None
    if not locked:
        try:
            lock = FileLock(folder / LOCK, what=f"the output folder {folder}",
                            command="gridplan (clean-up)").acquire()
        except OutputError:
            return []
    with recovering(folder, lock) as done:
        for entry in sorted(folder.iterdir()):
            if _is_staging(entry):
                done.extend(_recover_staging(folder, entry, stores=stores))
        stub = read_manifest(folder)
        if stub is not None and not stub.get("complete", True) \
                and not _user_entries(folder) and not any(_is_staging(e) for e in folder.iterdir()):
            (folder / MANIFEST).unlink(missing_ok=True)  # the stub of a run killed while planning
    return done


def _recover_staging(folder: Path, entry: Path, *, stores: bool) -> list[str]:
    """Finish or drop one staging folder of a killed run (untouched while its owner runs)."""
    info = _read_json(entry / MARKER) or {}
    if info.get("tool") != TOOL or owner_alive(info.get("owner")):
        return []
    done = []
    state = info.get("state")
    if state == "ready":
        _swap(folder, entry, files=info.get("files", []), delete=info.get("delete", []),
              old_dirs=info.get("old_dirs", []))
        state = "swapped"
        done.append(f"finished the interrupted swap of {entry.name}")
    if state == "swapped" and stores:
        _recover_transactions(read_manifest(folder) or {})
    shutil.rmtree(entry, ignore_errors=True)
    done.append(f"removed {entry.name} left by pid {info.get('owner', {}).get('pid')}")
    return done


@contextmanager
def recovering(where: Path, lock: FileLock | None) -> Iterator[list[str]]:
    """Hold ``lock`` (None: the caller holds one) while cleaning up after killed runs.

    Yields the list the clean-up appends what it did to (one line each); it is logged at the end.
    """
    done: list[str] = []
    try:
        yield done
    finally:
        if lock is not None:
            lock.release()
    for line in done:
        log.info("%s: %s", where, line)


#: How an interrupted transaction is resolved, by the manifest entry it leaves (``"store"``:
#: a ``--store`` version, registered by :mod:`gridplan.replan.store`).
_RECOVERY: dict[str, Callable[[str], Any]] = {}


def register_recovery(entry: str, recover: Callable[[str], Any]) -> None:
    """Resolve transactions of one kind after a killed swap: ``recover(path)`` is called with the
    ``path`` of the manifest entry ``entry`` (the transaction's own resource, e.g. a store).
    """
    _RECOVERY[entry] = recover


def _recover_transactions(manifest: dict[str, Any]) -> None:
    for entry, recover in sorted(_RECOVERY.items()):
        path = (manifest.get(entry) or {}).get("path")
        if not path:
            continue
        try:
            recover(path)
        except OutputError:
            log.info("%s %s is busy; its interrupted version is resolved on its next use", entry, path)


def open_output(target: str | Path, *, command: str, inputs: Sequence[str | Path] = (),
                expect: Sequence[str] = (), force: bool = False, label: str = "--out") -> OutputDir:
    """Check and lock an output folder (before planning); see :class:`OutputDir`.

    Use as ``with open_output(out, command="gridplan plan", inputs=[county_dir]) as o:`` and
    write into ``o.staging``; the clean end of the block commits.
    """
    return OutputDir(target, command=command, inputs=inputs, expect=expect, force=force,
                     label=label).open()


@contextmanager
def output_folder(out: str | Path | OutputDir, *, command: str, expect: Sequence[str] = (),
                  transaction: Transaction | None = None) -> Iterator[Path]:
    """Yield a staging folder for ``out``; swap its files in when the block ends cleanly.

    ``out`` is a path (checked, locked and closed here) or an :class:`OutputDir` the caller
    opened (it stays open: the caller closes it).
    """
    if isinstance(out, OutputDir):
        assert out.staging is not None, "open the OutputDir first"
        yield out.staging
        out.commit(transaction=transaction)
        return
    with open_output(out, command=command, expect=expect) as o:
        assert o.staging is not None
        yield o.staging
        o.commit(transaction=transaction)


# --------------------------------------------------------------------------- single files

def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.gridplan.json")


class OutputFile(_Staged):
    """A single output file (a wall map) written by one rename; see the module docstring.

    Use :func:`open_output_file`; render to :attr:`tmp`; :meth:`commit` moves it into place.
    """

    def __init__(self, target: str | Path, *, command: str, inputs: Sequence[str | Path] = (),
                 force: bool = False, label: str = "--out"):
        self.given = Path(target)
        self.path = Path(os.path.abspath(target))
        self.command = command
        self.inputs = list(inputs)
        self.force = force
        self.label = label
        self.staging: Path | None = None
        self._lock: FileLock | None = None
        self._created: list[Path] = []
        self._done = False

    @property
    def tmp(self) -> Path:
        """Where to write the file (inside the staging folder)."""
        assert self.staging is not None
        return self.staging / self.path.name

    def open(self) -> Self:
        """Check the path, take the lock, clean leftovers; raise :class:`OutputError` if unusable."""
        path = self.path
        for inp in self.inputs:
            if Path(inp).resolve() == path.resolve():
                raise _error(self.given, "is an input of this command; gridplan never writes over "
                             "its input", "choose another file name")
        if path.is_dir():
            raise _error(self.given, "is a folder", f"give a file name for {self.label}, e.g. S01.pdf")
        if path.exists() or path.is_symlink():
            self._check_ours()
        self._created = make_dirs(path.parent)
        try:
            self._lock = FileLock(path.with_name(f".{path.name}.gridplan.lock"),
                                  what=f"the file {self.given}", command=self.command).acquire()
            self._clean_leftovers()
            if path.exists() or path.is_symlink():
                self._check_ours()
            try:
                self.staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.gridplan-tmp-",
                                                     dir=path.parent))
            except OSError as exc:
                raise _error(path.parent, f"is not writable ({exc.strerror})",
                             "choose a location you can write to") from None
            write_text_atomic(self.staging / MARKER, _dumps(
                {"tool": TOOL, "command": self.command, "target": str(path), "owner": _owner()}))
        except BaseException:
            self.close(failed=True)
            raise
        return self

    def _check_ours(self) -> None:
        if self.force:
            return
        info = _read_json(_sidecar(self.path)) or {}
        known = {info.get("sha256"), info.get("previous")} - {None}
        if not self.path.is_file() or sha256(self.path) not in known:
            why = ("was changed since gridplan wrote it" if known
                   else "exists and was not written by gridplan")
            raise _error(self.given, f"{why}; it would be replaced",
                         "choose another file name, move the file away, or pass --force to "
                         "replace it")

    def _clean_leftovers(self) -> None:
        prefix = f".{self.path.name}.gridplan-tmp-"
        for entry in self.path.parent.iterdir():
            if entry.name.startswith(prefix) and _is_marked(entry):
                info = _read_json(entry / MARKER) or {}
                if not owner_alive(info.get("owner")):
                    shutil.rmtree(entry, ignore_errors=True)
                    log.info("removed %s left by a killed run", entry)

    def commit(self) -> Path:
        """Move the rendered file into place (sidecar first, so either content counts as ours)."""
        assert self.staging is not None
        assert not self._done
        if not self.tmp.is_file():
            raise FileNotFoundError(self.tmp)
        new = sha256(self.tmp)
        old = (_read_json(_sidecar(self.path)) or {}).get("sha256")
        write_text_atomic(_sidecar(self.path), _dumps(
            {"tool": TOOL, "version": _version(), "command": self.command, "file": self.path.name,
             "sha256": new, "previous": old}), tmp_dir=self.staging)
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.path)
        self._done = True
        return self.path

    def close(self, *, failed: bool = False) -> None:
        """Remove the staging folder and release the lock."""
        self._drop_staging()
        self._release(failed=failed)


def _is_marked(entry: Path) -> bool:
    return entry.is_dir() and (entry / MARKER).is_file()


def open_output_file(target: str | Path, *, command: str, inputs: Sequence[str | Path] = (),
                     force: bool = False, label: str = "--out") -> OutputFile:
    """Check and lock a single output file (before rendering); see :class:`OutputFile`."""
    return OutputFile(target, command=command, inputs=inputs, force=force, label=label).open()


# --------------------------------------------------------------------------- compatibility

class atomic_dir:
    """Context manager giving a staging folder whose files replace ``target``'s on success only.

    A thin wrapper of :class:`OutputDir` (same rules: refuses a non-empty folder that is not a
    gridplan output, keeps the user's files, locks); ``command`` names the kind of output.
    """

    def __init__(self, target: str | Path, *, command: str = "Plan.to_file",
                 inputs: Sequence[str | Path] = ()):
        self._out = OutputDir(target, command=command, inputs=inputs)

    def __enter__(self) -> Path:
        self._out.open()
        assert self._out.staging is not None
        return self._out.staging

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._out.__exit__(exc_type, exc, tb)
