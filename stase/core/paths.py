"""Where stase keeps what it computes once: the one user cache folder rule.

``user_cache_dir(*parts)``: ``$STASE_CACHE`` when set, else ``$XDG_CACHE_HOME/stase``, else
``~/.cache/stase`` (the XDG base-directory rule), with ``parts`` appended.  Everything cached —
the sentence encoder's ONNX export and embeddings, room responses, the realistic benchmark's
renders — lives under it, so one variable moves (or clears) all of it.  Nothing is created here;
writers create their folder when they write (atomically, :mod:`stase.core.audio_io`).

Housekeeping: a cache entry is named by what it was computed from, so a new model, new texts or a
new room never meet old results, and old entries would pile up (twelve 87 MB exports of the
sentence encoder after a day of reinstalls).  Each writer calls :func:`prune_cache` after it
writes, keeping the few newest entries of that family, and :func:`mark_used` on a hit, so the
entries in use are the newest.

Functions
---------
user_cache_dir(*parts)                 the folder
prune_cache(folder, pattern, keep)     delete all but the ``keep`` newest files matching ``pattern``
mark_used(path)                        a cache hit: the entry becomes the newest of its family
"""
from __future__ import annotations

import os
import time
from pathlib import Path


def user_cache_dir(*parts: str) -> Path:
    """The user cache folder of stase, with ``parts`` appended (see the module's rule)."""
    if os.environ.get("STASE_CACHE"):
        base = Path(os.environ["STASE_CACHE"])
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = Path(xdg) / "stase"
    return base.joinpath(*parts)


def prune_cache(folder: Path, pattern: str, keep: int, spare: Path | None = None) -> list[Path]:
    """Delete all but the ``keep`` most recently written (or used, :func:`mark_used`) files of
    ``folder`` matching the glob ``pattern``, never ``spare`` (the entry just written); returns
    what was deleted.  A file that cannot be deleted (another process, a read-only cache) is left:
    housekeeping never fails a job."""
    def age(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return float("inf")   # vanished meanwhile: nothing to do
    try:
        entries = sorted((p for p in Path(folder).glob(pattern) if p.is_file()), key=age, reverse=True)
    except OSError:
        return []
    spare = Path(spare) if spare is not None else None
    kept = 1 if spare is not None and spare in entries else 0
    deleted = []
    for path in entries:
        if path == spare:
            continue
        if kept < keep:
            kept += 1
            continue
        try:
            path.unlink()
            deleted.append(path)
        except OSError:
            pass
    return deleted


def mark_used(path: Path) -> None:
    """Set ``path``'s modification time to now (a cache hit), so :func:`prune_cache` keeps it."""
    try:
        now = time.time()
        os.utime(path, (now, now))
    except OSError:
        pass
