"""The daemon's session state, saved atomically on every change and restored on start.

What is kept (JSON, one file, default ``stase-session.json`` in the folder the daemon was started
from, i.e. next to the DAW project)::

    {"version": 1,
     "tracks": [{"name": "Vox", "daw_id": 1}, ...],      # the DAW's track list (or ours)
     "selected": "Vox" | null,                           # target of MIDI control
     "plan": {... dsp.plan.Plan ...},                    # room, roles, positions, gains, modes
     "stems_dir": null | "path"}

Every mutation goes through a method that validates, changes the state and writes the file with
a temp file + ``os.replace`` (a reader or a crash sees the old file or the new one, never half of
one).  An unreadable session file is moved aside to ``<name>.corrupt-<time>`` with a warning, so a
bad file never stops the daemon and is never silently overwritten.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from dsp.audio_io import atomic_write_text
from dsp.errors import InputError
from dsp.placement import NUMERIC_FIELDS, check_placement_fields
from dsp.plan import Plan, SourcePlacement

log = logging.getLogger("stase.session")

SESSION_VERSION = 1
SOURCE_FIELDS = NUMERIC_FIELDS  # re-exported: the numeric placement fields


def write_atomically(path: Path, text: str, durable: bool = True) -> None:
    """Write ``text`` via a temp file in the same folder and ``os.replace`` (see
    :func:`dsp.audio_io.atomic_write_text`); ``durable`` also fsyncs."""
    atomic_write_text(Path(path), text, durable=durable)


def check_source_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate a partial source update against the one placement schema
    (:mod:`dsp.placement`); returns the accepted fields or raises ``InputError``."""
    return check_placement_fields(fields)


class Session:
    """Thread-safe session state bound to a file.

    Parameters
    ----------
    path : the session file (created on the first change; restored from if it exists).
    durable : also fsync after every save, on a background thread (default True).
    """

    def __init__(self, path: str | Path, durable: bool = True):
        self.path = Path(path)
        self.durable = durable
        self.lock = threading.RLock()
        self.tracks: list[dict[str, Any]] = []
        self.selected: str | None = None
        self.plan = Plan()
        self.stems_dir: str | None = None
        self.saves = 0
        self.syncs = 0
        self._need_sync = threading.Event()
        self._syncer: threading.Thread | None = None
        self.restored = self._load()

    # ---------------------------------------------------------------- persistence
    def _load(self) -> bool:
        if not self.path.exists():
            return False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise InputError(f"top level is {type(data).__name__}, not an object")
            tracks = [{"name": str(t["name"]), "daw_id": t.get("daw_id")}
                      for t in data.get("tracks", [])]
            plan = Plan.from_dict(data.get("plan") or {}, source=str(self.path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            os.replace(self.path, aside)
            log.warning("session file %s is unreadable (%s); moved it to %s and started empty",
                        self.path, exc, aside)
            return False
        self.tracks, self.plan = tracks, plan
        self.selected = data.get("selected") if isinstance(data.get("selected"), str) else None
        self.stems_dir = data.get("stems_dir") if isinstance(data.get("stems_dir"), str) else None
        log.info("restored session %s: %d tracks, %d sources", self.path, len(tracks),
                 len(plan.sources))
        return True

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"version": SESSION_VERSION, "tracks": [dict(t) for t in self.tracks],
                    "selected": self.selected, "plan": self.plan.to_dict(),
                    "stems_dir": self.stems_dir}

    def save(self) -> None:
        """Write the whole state atomically (called by every mutation).

        The write and rename happen before this returns, so a killed daemon loses nothing (the
        kernel holds the new file).  The fsync that also protects against power loss runs on a
        background thread moments later, keeping a request's round trip short (an fsync costs
        milliseconds; see bench/bridge.py).
        """
        with self.lock:
            write_atomically(self.path, json.dumps(self.to_dict()) + "\n", durable=False)  # C encoder: no indent
            self.saves += 1
        if self.durable:
            self._need_sync.set()
            if self._syncer is None:
                self._syncer = threading.Thread(target=self._sync_loop, name="stase-session-sync",
                                                daemon=True)
                self._syncer.start()

    def _sync_loop(self) -> None:
        while True:
            self._need_sync.wait()
            self._need_sync.clear()
            self.sync()

    def sync(self) -> None:
        """fsync the session file and its folder (after the latest save)."""
        try:
            with self.lock:
                fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
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
            names = [t["name"] for t in self.tracks]
            known = {n.lower() for n in names}
            return names + [s.track for s in self.plan.sources if s.track.lower() not in known]

    def resolve_track(self, track: Any) -> str:
        """The canonical spelling of ``track`` (case-insensitive); ``InputError`` if unknown."""
        if not isinstance(track, str) or not track.strip():
            raise InputError(f"track must be a non-empty string, got {track!r}")
        for name in self.track_names():
            if name.lower() == track.lower():
                return name
        raise InputError(f"unknown track {track!r}; known tracks: {self.track_names()}")

    def placement(self, track: str) -> SourcePlacement:
        """The plan's placement for a known track (a default one if the plan has none yet)."""
        with self.lock:
            try:
                return self.plan.source(track)
            except KeyError:
                return SourcePlacement(track=track)

    # ---------------------------------------------------------------- mutations
    def set_tracks(self, tracks: list[dict[str, Any]]) -> bool:
        """Replace the track list (from the DAW); True when it changed."""
        clean = [{"name": str(t["name"]), "daw_id": t.get("daw_id")} for t in tracks]
        with self.lock:
            if clean == self.tracks:
                return False
            self.tracks = clean
            self.save()
            return True

    def set_plan(self, plan: Plan) -> None:
        with self.lock:
            self.plan = plan
            self.save()

    def set_source(self, track: str, **fields: Any) -> SourcePlacement:
        """Update one source (adding it to the plan if needed); returns the new placement."""
        accepted = check_source_fields(fields)
        with self.lock:
            name = self.resolve_track(track)
            try:
                current = self.plan.source(name)
            except KeyError:
                current = SourcePlacement(track=name)
                self.plan.sources.append(current)
            for key, value in accepted.items():
                setattr(current, key, value)
                if key in SOURCE_FIELDS or key == "mode":
                    current.provenance[key] = "manual"
            normal = current.normalised()
            for key in SOURCE_FIELDS:
                setattr(current, key, getattr(normal, key))
            self.save()
            return current

    def select(self, track: str | None) -> str | None:
        with self.lock:
            self.selected = None if track is None else self.resolve_track(track)
            self.save()
            return self.selected

    def set_stems_dir(self, folder: str | None) -> None:
        with self.lock:
            self.stems_dir = folder
            self.save()
