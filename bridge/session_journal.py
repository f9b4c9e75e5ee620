"""The session's journal: one appended line per source change, beside the session file.

Why: ``set_source`` is the verb a DAW and a MIDI controller send many times a second, and
rewriting the whole session file for each (encode the plan, create a temp file, write, rename)
cost 0.8-0.9 ms of the daemon's 1.3 ms per request on the 2-core test machine, idle, and more
under load: the rename's freeing of the replaced file is kernel work that holds a core
(docs/daemon.md, issue 20).  Appending one line of JSON to a file that is already open costs a
few tens of microseconds.

The files
---------
* the session file (``stase-session.json``): a snapshot, the whole state, with ``"seq"`` (how
  many changes it holds) and ``"journal"`` (the name of its journal, a random token);
* its journal ``.<name>.journal-<token>`` (hidden, next to it): one line per change made since
  the snapshot, ``{"seq": n, "source": {...}}``, ``n`` counting on from the snapshot's ``seq``,
  ``source`` the changed source as ``Plan.to_dict`` writes one.

Rules
-----
* **A change is on disk before it is live**: the line is written (``os.write`` on the open
  file: the kernel holds it, a killed daemon loses nothing) before the session applies the
  change; the fsync that also survives power loss runs on the session's background thread, as
  for the snapshot.
* **Restoring** (:func:`replay`) applies the journal's lines with consecutive ``seq`` after the
  snapshot's, in order, to the snapshot's sources before anything is checked, so every rule of
  a restored file applies to the result.  The first line that is not one (a torn last line
  after a power cut, a gap) ends the replay with a problem; what follows it is not applied.
* **Every other change** (tracks, plan, selection, stems folder) writes a new snapshot, which
  starts a new journal; so does a journal of :data:`COMPACT_AFTER` lines (on the background
  thread) and a clean stop, so a stopped daemon leaves one complete JSON file.
* A journal whose token no snapshot names is stale (an older history, a crash between a
  snapshot and the removal of its predecessor's journal) and is removed at start when the
  session is locked.

Holds
-----
COMPACT_AFTER     journal lines after which the background thread writes a snapshot
Journal           the open journal of the current snapshot (append, sync, close)
journal_path      the journal file of a snapshot's token
journal_pattern   the names of journal files beside a session file
replay            a snapshot's state with its journal applied, and what was not applied
saved_state       what a restart would restore from a session file (snapshot + journal)
"""
from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

#: Journal lines after which the session writes a new snapshot on its background thread (so a
#: restart replays at most a few hundred lines and the journal stays a few tens of kB).
COMPACT_AFTER = 256
#: A journal longer than this is not ours (a line is a few hundred bytes).
MAX_JOURNAL_BYTES = 16 * 1024 * 1024


def new_token() -> str:
    """A fresh journal token (12 hex digits)."""
    return secrets.token_hex(6)


def journal_path(target: Path, token: str) -> Path:
    """The journal of the snapshot ``target`` whose ``"journal"`` is ``token``."""
    return target.with_name(f".{target.name}.journal-{token}")


def journal_pattern(target: Path) -> re.Pattern[str]:
    """The names of journal files beside ``target`` (any token)."""
    return re.compile(rf"\.{re.escape(target.name)}\.journal-[0-9a-f]{{12}}")


class Journal:
    """The open journal of one snapshot: appended lines, synced and closed by the session.

    Parameters
    ----------
    path : the journal file (created empty; an existing file of that name is truncated).
    seq : the ``seq`` of the snapshot it follows (the first line appended gets ``seq + 1``).
    """

    def __init__(self, path: Path, seq: int):
        self.path = Path(path)
        self.seq = int(seq)
        self.lines = 0
        self.broken = False
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self.fd: int | None = os.open(self.path, flags, 0o666)

    def append(self, source: dict[str, Any]) -> int:
        """Write one change (``source`` as ``Plan.to_dict`` writes a source); returns its ``seq``.

        ``OSError`` when the line could not be written whole: the journal is then ``broken`` (a
        part of a line may be in it) and takes no more lines; the session writes a snapshot
        for the next change instead.
        """
        if self.fd is None or self.broken:
            raise OSError("the journal is closed")
        seq = self.seq + 1
        data = memoryview((json.dumps({"seq": seq, "source": source}) + "\n").encode("utf-8"))
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError:
            self.broken = True
            raise
        self.seq = seq
        self.lines += 1
        return seq

    def in_place(self) -> bool:
        """True while the open file is still the one at :attr:`path` (not removed, renamed or
        replaced, e.g. with the project folder): a line written to a file no one will find is
        not saved."""
        if self.fd is None:
            return False
        try:
            info = os.fstat(self.fd)
            return info.st_nlink > 0 and os.path.samestat(info, os.stat(self.path))
        except OSError:
            return False

    def sync(self) -> None:
        """fdatasync the journal (after the latest line): survives power loss."""
        if self.fd is not None:
            os.fdatasync(self.fd) if hasattr(os, "fdatasync") else os.fsync(self.fd)

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


def replay(target: Path, data: dict[str, Any], raw_journal: bytes | None) -> tuple[dict[str, Any], int, list[str]]:
    """``data`` (a parsed snapshot) with the lines of its journal applied.

    Returns ``(data, lines applied, problems)``; ``data`` is a new dict when lines were applied.
    Lines apply in order while each is a JSON object whose ``seq`` is one more than the last and
    whose ``source`` is an object with a string ``track``; the source replaces the plan's source
    of the same ``track`` or is appended.  The values themselves are checked afterwards, with
    the rest of the file (``Session._restore``).
    """
    if not raw_journal:
        return data, 0, []
    seq = data.get("seq", 0)
    if isinstance(seq, bool) or not isinstance(seq, int):
        return data, 0, [f"session file: seq is not a count; its journal ({len(raw_journal)} bytes) "
                         "was not applied"]
    plan = data.get("plan") if isinstance(data.get("plan"), dict) else {}
    sources = plan.get("sources") if isinstance(plan.get("sources"), list) else []
    sources = list(sources)
    applied, problems = 0, []
    lines = raw_journal.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            record = None
        source = record.get("source") if isinstance(record, dict) else None
        if (not isinstance(record, dict) or record.get("seq") != seq + 1 or isinstance(record.get("seq"), bool)
                or not isinstance(source, dict) or not isinstance(source.get("track"), str)):
            left = sum(1 for rest in lines[number - 1:] if rest.strip())
            problems.append(f"journal line {number}: not the change after seq {seq} "
                            f"({'torn or unreadable' if record is None else 'out of order or malformed'}); "
                            f"it and the {left - 1} line(s) after it were not applied")
            break
        index = next((i for i, s in enumerate(sources)
                      if isinstance(s, dict) and s.get("track") == source["track"]), None)
        if index is None:
            sources.append(source)
        else:
            sources[index] = source
        seq += 1
        applied += 1
    if not applied:
        return data, 0, problems
    data = dict(data, seq=seq, plan=dict(plan, sources=sources))
    return data, applied, problems


def read_journal(target: Path, data: dict[str, Any]) -> bytes | None:
    """The raw journal named by the parsed snapshot ``data`` (None: it names none, or there is
    none; ``OSError`` / ``ValueError`` when it cannot be read or is too large)."""
    token = data.get("journal")
    if not isinstance(token, str) or not re.fullmatch(r"[0-9a-f]{12}", token):
        return None
    path = journal_path(target, token)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read(MAX_JOURNAL_BYTES + 1)
    if len(raw) > MAX_JOURNAL_BYTES:
        raise ValueError(f"its journal {path.name} is over {MAX_JOURNAL_BYTES} bytes")
    return raw


def saved_state(path: str | Path) -> dict[str, Any]:
    """What a daemon started on ``path`` would restore, before its checks: the snapshot with its
    journal applied (for tests and tools; the daemon itself goes through ``Session``)."""
    target = Path(os.path.realpath(Path(path)))
    data = json.loads(target.read_text(encoding="utf-8"))
    data, _, _ = replay(target, data, read_journal(target, data))
    return data
