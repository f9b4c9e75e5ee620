"""The daemon's session state, saved atomically on every change and restored on start.

What is kept (JSON, one file, default ``stase-session.json`` in the folder the daemon was started
from, i.e. next to the DAW project)::

    {"version": 1, "seq": 42, "journal": "<token>",       # changes held; the journal's name
     "tracks": [{"name": "Vox", "daw_id": 1}, ...],      # the DAW's track list (or ours)
     "selected": "Vox" | null,                           # target of MIDI control
     "plan": {... stase.core.plan.Plan ...},                    # room, roles, positions, gains, modes
     "stems_dir": null | "path"}

Rules
-----
* **A change is live only once it is on disk.**  Every mutation builds the new state, writes it
  and only then makes it the session's state: a source change (``set_source``, the frequent one)
  as one line appended to the session's journal, every other change as a new snapshot (temp
  file + ``os.replace``: a reader or a crash sees the old file or the new one, never half of
  one), which starts a new journal (:mod:`stase.bridge.session_journal`; restoring replays the
  journal onto its snapshot; a long journal and a clean stop write a snapshot).  A failed save changes nothing and raises a
  ``StaseError`` saying the change was not applied and why; ``writable`` and
  ``last_save_error`` say so in the daemon's ``status``.  What need not be on the caller's
  thread runs on the session's background thread: the fsync (``durable``) and the freeing of the
  replaced file, which the session holds open until then (the rename would otherwise free it,
  3-9 ms at p90-p99 on ext4 under load; :meth:`Session._hold_saved_file`).
* **Start-up checks the path** (:meth:`Session.__init__`): a folder, FIFO or other non-regular
  file, a folder that cannot be created, or one where a file cannot be created (read-only, no
  permission) is an ``InputError`` (``stase serve`` exits 2 with the message): a daemon whose
  changes could never be saved must not pretend to run.
* **No file content stops the daemon.**  A regular file that cannot be read or parsed (invalid
  UTF-8, not JSON, nesting deeper than the parser's recursion limit, larger than
  ``MAX_SESSION_BYTES``) is moved aside to ``<name>.corrupt-<time>`` with a warning and the daemon
  starts empty.  A parsed file is checked entry by entry against the same rules as a live change
  (:mod:`stase.core.placement` through ``Plan.from_dict``, ``track_name_problem``): invalid entries are
  dropped and logged, a copy of the original is kept as ``<name>.corrupt-<time>``.  A corrupt file
  that cannot be moved aside is a start-up error naming it (carrying on would overwrite it).
* **One daemon per session file** (``exclusive=True``, what the daemon uses): an ``flock`` on
  ``<name>.lock`` (holding the owner's pid) is taken at start, so a second daemon gets an
  ``InputError`` naming the file and the pid; :meth:`Session.close` releases it.  With the lock
  held, temp files of ours left by a kill -9 during a save (``.<name>.<hex>.tmp``) are stale and
  removed.
* A symlinked session file stays a link: its target is written (see
  :func:`stase.core.audio_io.atomic_write_text`), and new files get the usual ``0666 & ~umask`` mode.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import re
import secrets
import stat
import threading
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock (logged)
    fcntl = None  # type: ignore[assignment]

from stase.core.audio_io import atomic_write_text
from stase.core.errors import InputError, StaseError
from stase.core.placement import MAX_TRACK_NAME_CHARS, NUMERIC_FIELDS, check_placement_fields, track_name_problem
from stase.core.names import find_track, same_track, track_key
from stase.core.plan import Plan, SourcePlacement
from stase.bridge.session_journal import (COMPACT_AFTER, Journal, journal_path, journal_pattern,
                                          new_token, read_journal, replay)

log = logging.getLogger("stase.session")

SESSION_VERSION = 1
SOURCE_FIELDS = NUMERIC_FIELDS  # re-exported: the numeric placement fields
# A session of thousands of tracks is well under 1 MB; anything bigger is not ours, and reading
# it whole could exhaust memory before the parser complains.
MAX_SESSION_BYTES = 16 * 1024 * 1024
MAX_PATH_CHARS = 4096
MAX_LOGGED_PROBLEMS = 20
_DAW_ID_MAX = 2**31 - 1


def write_atomically(path: Path, text: str, durable: bool = True) -> None:
    """Write ``text`` via a temp file in the same folder and ``os.replace`` (see
    :func:`stase.core.audio_io.atomic_write_text`); ``durable`` also fsyncs."""
    atomic_write_text(Path(path), text, durable=durable)


def check_source_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate a partial source update against the one placement schema
    (:mod:`stase.core.placement`); returns the accepted fields or raises ``InputError``."""
    return check_placement_fields(fields)


def temp_file_pattern(target: Path) -> re.Pattern[str]:
    """The names :func:`stase.core.audio_io.atomic_write_text` gives its temp files for ``target``
    (``.<name>.<random>.tmp``; older versions used ``mkstemp``'s 8 characters of ``[a-z0-9_]``)."""
    return re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{6,32}}\.tmp")


def clean_tracks(tracks: Any, where: str = "tracks") -> tuple[list[dict[str, Any]], list[str]]:
    """Keep the well-formed entries of a track list; returns ``(tracks, problems)``.

    Each entry needs a ``name`` accepted by :func:`stase.core.placement.track_name_problem`; ``daw_id``
    is a non-negative int or None (anything else becomes None, with a problem noted).
    """
    if tracks is None:
        return [], []
    if not isinstance(tracks, list):
        return [], [f"{where}: must be a list, got {type(tracks).__name__}; ignored"]
    clean: list[dict[str, Any]] = []
    problems: list[str] = []
    for i, entry in enumerate(tracks):
        name = entry.get("name") if isinstance(entry, dict) else None
        problem = ("must be an object with a 'name'" if not isinstance(entry, dict)
                   else track_name_problem(name))
        if problem is not None:
            problems.append(f"{where}[{i}]: {problem}; dropped")
            continue
        daw_id = entry.get("daw_id")
        if daw_id is not None and (isinstance(daw_id, bool) or not isinstance(daw_id, int)
                                   or not 0 <= daw_id <= _DAW_ID_MAX):
            problems.append(f"{where}[{i}].daw_id: must be a track number or null; ignored")
            daw_id = None
        clean.append({"name": name, "daw_id": daw_id})
    return clean, problems


def restore_plan(data: Any, where: str = "plan") -> tuple[Plan, list[str]]:
    """A plan from a session file's ``plan`` entry, keeping every part that is valid.

    The whole plan goes through ``Plan.from_dict`` (the rules of a live change); when that
    refuses it, each source and each other field is tried on its own, so one bad value (say a
    ``gain_db`` saved before it was bounded) loses that entry, not the session.  Returns
    ``(plan, problems)``.
    """
    if data is None or data == {}:
        return Plan(), []
    if not isinstance(data, dict):
        return Plan(), [f"{where}: must be an object, got {type(data).__name__}; ignored"]
    try:
        plan = Plan.from_dict(data, source=where)
    except Exception:  # noqa: BLE001 - any failure is the file's; salvage below says what
        return _salvage_plan(data, where)
    problems: list[str] = []
    kept = []
    for i, s in enumerate(plan.sources):
        problem = track_name_problem(s.track)
        if problem is None:
            kept.append(s)
        else:
            problems.append(f"{where}.sources[{i}]: {problem}; dropped")
    if problems:
        plan = dataclasses.replace(plan, sources=kept)
    return plan, problems


def _salvage_plan(data: dict, where: str) -> tuple[Plan, list[str]]:
    problems: list[str] = []
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Plan):
        if f.name == "sources" or f.name not in data:
            continue
        try:
            values[f.name] = getattr(Plan.from_dict({f.name: data[f.name]}, source=where), f.name)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{where}.{f.name}: {_short(exc)}; reset to the default")
    sources = data.get("sources", [])
    if not isinstance(sources, list):
        problems.append(f"{where}.sources: must be a list; ignored")
        sources = []
    kept: list[SourcePlacement] = []
    seen: dict[str, str] = {}
    for i, s in enumerate(sources):
        try:
            placement = Plan.from_dict({"sources": [s]}, source=f"{where}.sources[{i}]").sources[0]
            problem = track_name_problem(placement.track)
            if problem is None and track_key(placement.track) in seen:
                earlier = seen[track_key(placement.track)]
                problem = f"track {placement.track!r} appears twice" + (
                    "" if earlier == placement.track else f" (the same track as {earlier!r})")
        except Exception as exc:  # noqa: BLE001
            problem = _short(exc)
        if problem is not None:
            problems.append(f"{where}.sources[{i}]: {problem}; dropped")
            continue
        seen.setdefault(track_key(placement.track), placement.track)
        kept.append(placement)
    return Plan(sources=kept, **values), problems


def _with_plan_tracks(names: list[str], plan: Plan) -> list[str]:
    """The DAW's track names, then the plan's sources that are none of them (one name rule)."""
    keys = {track_key(n) for n in names}
    return names + [s.track for s in plan.sources if track_key(s.track) not in keys]


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


class Session:
    """Thread-safe session state bound to a file.

    Parameters
    ----------
    path : the session file (created on the first change; restored from if it exists).  Its
        folder is created if missing.  ``InputError`` when the path can never be saved (a folder,
        a FIFO, a read-only folder...) or, with ``exclusive``, when another process holds it.
    durable : also fsync after every save, on a background thread (default True).
    exclusive : lock the file against a second daemon (``<name>.lock``) and remove our stale temp
        files; the daemon passes True.  Call :meth:`close` to release the lock.

    Attributes
    ----------
    writable : False after a failed save (True again after a successful one).
    last_save_error : what the latest failed save said (with its time), or None.
    """

    def __init__(self, path: str | Path, durable: bool = True, exclusive: bool = False):
        self.path = Path(path)
        self.durable = durable
        self.lock = threading.RLock()
        self.tracks: list[dict[str, Any]] = []
        self.selected: str | None = None
        self.plan = Plan()
        self.stems_dir: str | None = None
        self.saves = 0
        self.syncs = 0
        self.writable = True
        self.last_save_error: str | None = None
        self._need_sync = threading.Event()
        self._syncer: threading.Thread | None = None
        # the current file held open between saves (POSIX; see _hold_saved_file), and the
        # replaced ones the background thread is to close
        self._hold_files = os.name == "posix"
        self._held_fd: int | None = None
        self._to_close: list[int] = []
        self._background = threading.Event()
        # the journal of the latest snapshot (source changes are appended to it; see
        # stase.bridge.session_journal), the number of changes saved, and the journals of
        # replaced snapshots the background thread is to close and remove
        self.seq = 0
        self._journal: Journal | None = None
        self._retired: list[Journal] = []
        self._closed = False
        self._lock_fd: int | None = None
        self._lock_path: Path | None = None
        self._target = self._check_path()
        try:
            self._probe_writable()
            if exclusive:
                self._acquire_lock()
                self._remove_stale_temps()
            self.restored, replayed = self._load()
            if replayed:  # a snapshot of the restored state, with an empty journal
                try:
                    self.save()
                except StaseError as exc:
                    log.warning("could not write a snapshot of the restored session: %s", exc)
            if exclusive:
                self._remove_stale_journals()
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- start-up checks
    def _check_path(self) -> Path:
        """The file that saves replace (a symlink's target); ``InputError`` if it cannot be one."""
        p = self.path
        try:
            info = os.stat(p)
        except FileNotFoundError:
            info = None
        except OSError as exc:  # ELOOP, ENOTDIR (a parent is a file), EACCES...
            if exc.errno == errno.ENOTDIR:
                raise InputError(f"session path {p}: a part of it is a file, not a folder; "
                                 "give --session a file in a folder") from exc
            raise InputError(f"session path {p} cannot be used: {exc.strerror or exc}") from exc
        if info is not None and not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            hint = f" (e.g. --session {p / 'stase-session.json'})" if stat.S_ISDIR(info.st_mode) else ""
            raise InputError(f"session path {p} is {kind}; --session must name a JSON file{hint}. "
                             "It was left as it is")
        target = Path(os.path.realpath(p))
        folder = target.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the folder {folder} for the session file {p}: "
                             f"{exc.strerror or exc}") from exc
        if not folder.is_dir():
            raise InputError(f"session path {p}: {folder} is not a folder")
        return target

    def _probe_writable(self) -> None:
        """Create and remove a file next to the session file: saves would fail otherwise."""
        folder = self._target.parent
        # named like atomic_write_text's temp files, so a kill -9 right here leaves nothing new
        probe = self._target.with_name(f".{self._target.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise InputError(f"the session file {self.path} could never be saved: cannot create a "
                             f"file in {folder} ({exc.strerror or exc}); give --session a file in "
                             "a folder you can write") from exc

    def _acquire_lock(self) -> None:
        lock_path = self._target.with_name(self._target.name + ".lock")
        if fcntl is None:
            log.warning("no file locks on this system: nothing stops a second daemon on %s", self.path)
            return
        for _ in range(10):
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            except OSError as exc:
                raise InputError(f"cannot create the session lock {lock_path}: "
                                 f"{exc.strerror or exc}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                os.close(fd)
                who = f"pid {holder}" if holder.isdigit() else "another process"
                raise InputError(f"the session file {self.path} is in use by another stase daemon "
                                 f"({who}, lock {lock_path}); stop it, or give this daemon "
                                 "another --session") from None
            except OSError as exc:  # a file system without locks (some network mounts)
                os.close(fd)
                log.warning("cannot lock %s (%s): nothing stops a second daemon on %s", lock_path,
                            exc, self.path)
                return
            # a holder that was releasing may have unlinked the file we opened: lock the live one
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
                self._lock_fd, self._lock_path = fd, lock_path
                return
            os.close(fd)
        raise InputError(f"could not lock the session file {self.path} ({lock_path} keeps changing)")

    def _remove_stale_temps(self) -> None:
        """Remove temp files a killed save left (we hold the lock: none is being written)."""
        pattern = temp_file_pattern(self._target)
        removed = 0
        try:
            entries = list(os.scandir(self._target.parent))
        except OSError as exc:
            log.warning("cannot list %s to remove stale temp files: %s", self._target.parent, exc)
            return
        for entry in entries:
            if not pattern.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError as exc:
                log.warning("cannot remove the stale temp file %s: %s", entry.path, exc)
        if removed:
            log.info("removed %d temp file(s) left by an interrupted save of %s", removed, self.path)

    def close(self) -> None:
        """Write a snapshot if the journal holds changes (a stopped daemon leaves one complete
        file), release the session lock and the held file (the state stays readable; saves
        still work, as whole snapshots)."""
        with self.lock:
            journal = self._journal
            if journal is not None and journal.lines and self.writable and not self._closed:
                try:
                    self.save()
                    if self.durable:
                        self.sync()
                except StaseError as exc:  # said in the log; the journal stays for the next start
                    log.warning("could not write the session's snapshot at close: %s", exc)
            self._closed = True
            if self._journal is not None:
                if not self._journal.lines:  # empty: nothing to restore from it
                    self._retired.append(self._journal)
                else:
                    self._journal.close()
                self._journal = None
            self._hold_files = False
            held, self._held_fd = self._held_fd, None
            if held is not None:
                self._to_close.append(held)
        self._close_replaced()
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        # unlink while holding the lock, so a newcomer never locks a file we are about to remove
        try:
            if self._lock_path is not None:
                os.unlink(self._lock_path)
        except OSError:
            pass
        os.close(fd)

    # ---------------------------------------------------------------- persistence
    def _load(self) -> bool:
        target = self._target
        try:
            fd = os.open(target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return False, False
        except OSError as exc:  # unreadable (permissions): a regular file, checked at start
            self._move_aside(exc)
            return False, False
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):  # swapped since the start-up check
                raise InputError(f"session path {self.path} is not a regular file; left as it is")
            try:
                if info.st_size > MAX_SESSION_BYTES:
                    raise ValueError(f"{info.st_size} bytes, more than a session file holds "
                                     f"({MAX_SESSION_BYTES} at most)")
                raw = fh.read(MAX_SESSION_BYTES + 1)
                if len(raw) > MAX_SESSION_BYTES:
                    raise ValueError(f"more than {MAX_SESSION_BYTES} bytes")
                data = json.loads(raw.decode("utf-8"))
                journal, replayed, journal_problems = None, 0, []
                if isinstance(data, dict):
                    try:
                        journal = read_journal(self._target, data)
                    except (OSError, ValueError) as exc:
                        journal_problems = [f"its journal could not be read ({_short(exc)}); not applied"]
                    data, replayed, more = replay(self._target, data, journal)
                    journal_problems += more
                state, problems = self._restore(data)
                problems += journal_problems
            except Exception as exc:  # noqa: BLE001 - RecursionError, UnicodeDecodeError, ...: the file's
                corrupt = exc
            else:
                corrupt = None
        if corrupt is not None:
            self._move_aside(corrupt)
            return False, False
        if problems:
            shown = problems[:MAX_LOGGED_PROBLEMS]
            more = len(problems) - len(shown)
            log.warning("session file %s: %d invalid entr%s dropped:\n  - %s%s", self.path,
                        len(problems), "y" if len(problems) == 1 else "ies", "\n  - ".join(shown),
                        f"\n  (and {more} more)" if more else "")
            self._keep_copy(raw)
            if journal_problems and journal:
                self._keep_copy(journal, ".journal")
        self.tracks, self.selected, self.plan, self.stems_dir = state
        seq = data.get("seq", 0)
        self.seq = seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else 0
        log.info("restored session %s: %d tracks, %d sources%s", self.path, len(self.tracks),
                 len(self.plan.sources), f" ({replayed} change(s) from its journal)" if replayed else "")
        return True, bool(replayed or journal_problems)

    def _restore(self, data: Any) -> tuple[tuple, list[str]]:
        """The state held by a parsed session file, and what was dropped from it."""
        if not isinstance(data, dict):
            raise ValueError(f"top level is {type(data).__name__}, not an object")
        tracks, problems = clean_tracks(data.get("tracks"))
        plan, plan_problems = restore_plan(data.get("plan"))
        problems += plan_problems
        known = _with_plan_tracks([t["name"] for t in tracks], plan)
        selected = data.get("selected")
        if selected is not None:
            if isinstance(selected, str) and find_track(selected, known) is not None:
                selected = find_track(selected, known)
            else:
                problems.append("selected: not one of the tracks; cleared")
                selected = None
        stems_dir = data.get("stems_dir")
        if stems_dir is not None and (not isinstance(stems_dir, str) or not stems_dir
                                      or "\0" in stems_dir or len(stems_dir) > MAX_PATH_CHARS):
            problems.append("stems_dir: not a folder path; cleared")
            stems_dir = None
        return (tracks, selected, plan, stems_dir), problems

    def _aside_path(self) -> Path:
        base = self._target.with_name(f"{self._target.name}.corrupt-{int(time.time())}")
        aside, n = base, 1
        while os.path.lexists(aside):
            aside, n = base.with_name(f"{base.name}-{n}"), n + 1
        return aside

    def _move_aside(self, problem: BaseException) -> None:
        aside = self._aside_path()
        try:
            os.replace(self._target, aside)
        except OSError as exc:
            raise InputError(f"the session file {self.path} is unreadable ({_short(problem)}) and "
                             f"cannot be moved aside to {aside.name} ({exc.strerror or exc}); move "
                             "or delete it, or give another --session") from exc
        log.warning("session file %s is unreadable (%s); moved it to %s and started empty",
                    self.path, _short(problem), aside)

    def _keep_copy(self, raw: bytes, suffix: str = "") -> None:
        """Keep the original of a file we dropped entries from (the next save replaces it)."""
        aside = self._aside_path()
        aside = aside.with_name(aside.name + suffix)
        try:
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
        except OSError as exc:
            log.warning("could not keep a copy of %s as %s: %s", self.path, aside, exc)
            return
        log.warning("kept the original session file as %s", aside)

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return self._state_dict(self.tracks, self.selected, self.plan, self.stems_dir)

    @staticmethod
    def _state_dict(tracks: list[dict[str, Any]], selected: str | None, plan: Plan,
                    stems_dir: str | None) -> dict[str, Any]:
        return {"version": SESSION_VERSION, "tracks": [dict(t) for t in tracks],
                "selected": selected, "plan": plan.to_dict(), "stems_dir": stems_dir}

    def save(self) -> None:
        """Write the whole current state atomically; ``StaseError`` when it cannot be saved."""
        with self.lock:
            self._write(self.to_dict())

    def _write(self, state: dict[str, Any]) -> None:
        """Write ``state`` to the file, or raise ``StaseError`` saying the change was not applied.

        The write and rename happen before this returns, so a killed daemon loses nothing (the
        kernel holds the new file).  What need not happen on the caller's thread happens on the
        session's background thread moments later, keeping a request's round trip short: the
        fsync that also protects against power loss (it costs milliseconds; see
        bench/bridge.py), and freeing the replaced file (:meth:`_hold_saved_file`).
        """
        token = new_token()
        state = dict(state, seq=self.seq + 1, journal=token)
        try:
            text = json.dumps(state) + "\n"  # C encoder: no indent
        except (TypeError, ValueError, RecursionError) as exc:
            raise StaseError(f"change NOT applied: the session state cannot be written as JSON "
                             f"({_short(exc)})") from exc
        if self._hold_files and self._held_fd is None:  # the first save: hold what it replaces
            self._held_fd = self._open_saved_file()
        try:
            write_atomically(self.path, text, durable=False)
        except OSError as exc:
            self._save_failed(exc)
        self.writable = True
        self.saves += 1
        self.seq += 1
        replaced = self._hold_saved_file()
        self._start_journal(token)
        self._after_save(background=replaced or bool(self._retired))

    def _save_failed(self, exc: OSError) -> None:
        """Note a failed save and raise the ``StaseError`` that says the change was not applied."""
        self.writable = False
        self.last_save_error = (f"{time.strftime('%Y-%m-%d %H:%M:%S')}: "
                                f"{exc.strerror or exc} ({self.path})")
        log.error("could not save the session file %s: %s; the change was not applied",
                  self.path, exc)
        raise StaseError(f"change NOT applied: the session file {self.path} could not be saved "
                         f"({exc.strerror or exc}); the daemon keeps the previous state") from exc

    def _after_save(self, background: bool) -> None:
        """Wake the background thread for what a save leaves to it (fsync, frees, compaction)."""
        if self.durable:
            self._need_sync.set()
        if self.durable or background:
            self._background.set()
            if self._syncer is None:
                self._syncer = threading.Thread(target=self._sync_loop, name="stase-session-sync",
                                                daemon=True)
                self._syncer.start()

    def _start_journal(self, token: str) -> None:
        """Open the journal of the snapshot just written (named by ``token``); the previous one
        is retired: its changes are in the snapshot, the background thread removes it."""
        if self._journal is not None:
            self._retired.append(self._journal)
            self._journal = None
        if self._closed:
            return
        try:
            self._journal = Journal(journal_path(self._target, token), self.seq)
        except OSError as exc:  # the next change writes a snapshot again
            log.warning("cannot open the session journal %s: %s; changes are saved as whole "
                        "snapshots", journal_path(self._target, token).name, exc)

    def _append(self, source: SourcePlacement) -> bool:
        """Save one source change as a journal line; False when there is no journal to take
        it (write a snapshot instead).  ``StaseError`` (NOT applied) when the line failed."""
        journal = self._journal
        if journal is None:
            return False
        if journal.broken or not journal.in_place():
            self._retired.append(journal)
            self._journal = None
            return False
        entry = Plan(sources=[source]).to_dict()["sources"][0]
        try:
            self.seq = journal.append(entry)
        except OSError as exc:
            self._save_failed(exc)
        self.writable = True
        self.saves += 1
        self._after_save(background=journal.lines >= COMPACT_AFTER)
        return True

    def _open_saved_file(self) -> int | None:
        """The session file opened read-only (None: there is none yet, or it cannot be read)."""
        try:
            flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
            return os.open(self.path, flags)
        except OSError:
            return None

    def _hold_saved_file(self) -> bool:
        """Hold the file just saved open until the next save has replaced it; True when a
        replaced file was handed to the background thread to close.

        Why: the rename that replaces the session file drops the old file's last link, and when
        nothing else holds it open, ext4 frees its blocks inside the rename: 3-9 ms at p90-p99
        on the 2-core test machine under load, against 0.1-0.3 ms for a rename whose old file is
        still open (docs/daemon.md).  Held here, the old file is freed by the final close, on
        the background thread (:meth:`_close_replaced`), off the request's round trip.
        """
        if not self._hold_files:
            return False
        held, self._held_fd = self._held_fd, self._open_saved_file()
        if held is None:
            return False
        self._to_close.append(held)
        return True

    def _close_replaced(self) -> None:
        """Close the replaced files handed over by :meth:`_hold_saved_file` (frees them), and
        close and remove the journals of replaced snapshots."""
        with self.lock:
            closing, self._to_close = self._to_close, []
            retired, self._retired = self._retired, []
        for fd in closing:
            try:
                os.close(fd)
            except OSError:
                pass
        for journal in retired:
            try:
                journal.close()
                os.unlink(journal.path)
            except OSError:
                pass

    def _remove_stale_journals(self) -> None:
        """Remove journal files beside the session file that its snapshot does not name (we hold
        the lock: no other daemon writes them)."""
        pattern = journal_pattern(self._target)
        keep = self._journal.path.name if self._journal is not None else None
        try:
            entries = list(os.scandir(self._target.parent))
        except OSError as exc:
            log.warning("cannot list %s to remove stale journals: %s", self._target.parent, exc)
            return
        for entry in entries:
            if entry.name != keep and pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                except OSError as exc:
                    log.warning("cannot remove the stale session journal %s: %s", entry.path, exc)

    def _compact(self) -> None:
        """A new snapshot when the journal is long (on the background thread)."""
        with self.lock:
            if self._journal is None or self._journal.lines < COMPACT_AFTER or self._closed:
                return
            try:
                self.save()
            except StaseError:
                pass  # logged by the save; the journal goes on taking changes

    def _commit(self, **changes: Any) -> None:
        """Save the state with ``changes`` applied, then apply them (nothing changes on failure)."""
        with self.lock:
            state = {"tracks": self.tracks, "selected": self.selected, "plan": self.plan,
                     "stems_dir": self.stems_dir}
            state.update(changes)
            self._write(self._state_dict(**state))
            for key, value in changes.items():
                setattr(self, key, value)

    def _sync_loop(self) -> None:
        """The background thread: fsync after the latest save (``durable``), then free the
        replaced files."""
        while True:
            self._background.wait()
            self._background.clear()
            self._compact()
            if self._need_sync.is_set():
                self._need_sync.clear()
                self.sync()
            self._close_replaced()

    def sync(self) -> None:
        """fsync the session file, its journal and their folder (after the latest save)."""
        try:
            with self.lock:
                fd = os.open(self.path, os.O_RDONLY)
                journal_fd = os.dup(self._journal.fd) if self._journal is not None and self._journal.fd is not None else None
            try:
                os.fsync(fd)
                if journal_fd is not None:
                    os.fdatasync(journal_fd) if hasattr(os, "fdatasync") else os.fsync(journal_fd)
            finally:
                os.close(fd)
                if journal_fd is not None:
                    os.close(journal_fd)
            dir_fd = os.open(self._target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            self.syncs += 1
        except OSError as exc:
            log.warning("could not fsync the session file %s: %s", self.path, exc)

    # ---------------------------------------------------------------- queries
    def track_names(self) -> list[str]:
        with self.lock:
            return _with_plan_tracks([t["name"] for t in self.tracks], self.plan)

    def resolve_track(self, track: Any) -> str:
        """The canonical spelling of ``track`` (the one name rule,
        :func:`stase.core.names.find_track`: "gtr-l" is "Gtr L"); ``InputError`` if unknown or
        ambiguous (two tracks with that key and neither spelt so)."""
        if not isinstance(track, str) or not track.strip():
            raise InputError(f"track must be a non-empty string, got {track!r}")
        if len(track) > MAX_TRACK_NAME_CHARS:
            raise InputError(f"unknown track (a name of {len(track)} characters; track names have "
                             f"at most {MAX_TRACK_NAME_CHARS})")
        names = self.track_names()
        name = find_track(track, names)
        if name is not None:
            return name
        same = [n for n in names if same_track(n, track)]
        if len(same) > 1:
            raise InputError(f"track {track!r} is ambiguous: it could be any of {same}; spell it as one of them")
        raise InputError(f"unknown track {track!r}; known tracks: {self.track_names()}")

    def placement(self, track: str) -> SourcePlacement:
        """The plan's placement for a known track (a default one if the plan has none yet)."""
        with self.lock:
            try:
                return self.plan.source(track)
            except KeyError:
                return SourcePlacement(track=track)

    # ---------------------------------------------------------------- mutations
    # Each builds the new state beside the old, saves it, then swaps it in (``_commit``): a
    # failed save raises StaseError and leaves the live state as it was.
    def set_tracks(self, tracks: list[dict[str, Any]]) -> bool:
        """Replace the track list (from the DAW); True when it changed.

        Entries with an invalid name are dropped and logged (one odd DAW track must not stop the
        others from being followed).
        """
        clean, problems = clean_tracks(tracks)
        if problems:
            log.warning("track list: %d invalid entr%s dropped: %s", len(problems),
                        "y" if len(problems) == 1 else "ies", "; ".join(problems[:MAX_LOGGED_PROBLEMS]))
        with self.lock:
            if clean == self.tracks:
                return False
            self._commit(tracks=clean)
            return True

    def set_plan(self, plan: Plan) -> None:
        with self.lock:
            self._commit(plan=plan)

    def set_source(self, track: str, **fields: Any) -> SourcePlacement:
        """Update one source (adding it to the plan if needed); returns the new placement."""
        accepted = check_source_fields(fields)
        with self.lock:
            name = self.resolve_track(track)
            sources = list(self.plan.sources)
            planned = find_track(name, [s.track for s in sources])
            index = next((i for i, s in enumerate(sources) if s.track == planned), None)
            current = sources[index] if index is not None else SourcePlacement(track=name)
            updated = dataclasses.replace(current, provenance=dict(current.provenance))
            for key, value in accepted.items():
                setattr(updated, key, value)
                if key in SOURCE_FIELDS or key == "mode":
                    updated.provenance[key] = "manual"
            updated = updated.normalised()
            if index is None:
                sources.append(updated)
            else:
                sources[index] = updated
            plan = dataclasses.replace(self.plan, sources=sources)
            if self._append(updated):  # one journal line (the frequent change: a DAW's, a fader's)
                self.plan = plan
            else:
                self._commit(plan=plan)
            return updated

    def select(self, track: str | None) -> str | None:
        with self.lock:
            selected = None if track is None else self.resolve_track(track)
            self._commit(selected=selected)
            return self.selected

    def set_stems_dir(self, folder: str | None) -> None:
        with self.lock:
            self._commit(stems_dir=folder)
