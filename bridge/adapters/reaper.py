"""REAPER's OSC control surface, spoken with the names of REAPER's ``Default.ReaperOSC``.

REAPER's usual OSC setup ("Control/OSC/web" > Add > OSC): it listens on port 8000 and sends
feedback to port 9000 on the device's address.  The patterns we use, as they appear in the
default pattern file (and in our trimmed ``reaper_scripts/stase.ReaperOSC``)::

    TRACK_NAME      s/track/@/name          feedback: each track's name
    TRACK_VOLUME    f/track/@/volume/db     raw dB, both ways
    TRACK_PAN       n/track/@/pan           normalised 0 (left) .. 0.5 (centre) .. 1 (right)
    TRACK_SELECT    b/track/@/select        1 = selected
    DEVICE_TRACK_COUNT         i/device/track/count         our bank size
    DEVICE_TRACK_BANK_SELECT   i/device/track/bank/select   bank 1 = tracks 1..bank size
    ACTION          i/action                41743 "Control surface: Refresh all surfaces"

``@`` is the track number within the current bank (1-based).  REAPER says nothing when nothing
changes, so silence does not mean it has gone: every ``keepalive_s`` the adapter re-sends its
bank size (cheap, idempotent); while it knows no track, and otherwise every ``refresh_s``, it
registers again and asks REAPER to refresh all surfaces, so a REAPER started or restarted after
the daemon is picked up (names, faders and pans re-read; renamed tracks followed).

Feedback is taken only from REAPER's address (``host``).  REAPER sends from a socket of its own
whose port is not part of its OSC settings, so the port is not checked unless ``feedback_port``
names it.  Track numbers outside our bank (1..``bank_size``, at most
:data:`stase.bridge.adapters.MAX_DAW_TRACKS`) are not REAPER's and are ignored (counted).
"""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from stase.bridge.adapters import MAX_DAW_TRACKS, OscDawAdapter, pan_to_position, position_to_pan

log = logging.getLogger("stase.daw.reaper")

#: The patterns this adapter sends or reads (checked against stase.ReaperOSC by the tests).
PATTERNS = {
    "TRACK_NAME": "s/track/@/name",
    "TRACK_VOLUME": "f/track/@/volume/db",
    "TRACK_PAN": "n/track/@/pan",
    "TRACK_SELECT": "b/track/@/select",
    "DEVICE_TRACK_COUNT": "i/device/track/count",
    "DEVICE_TRACK_BANK_SELECT": "i/device/track/bank/select",
    "ACTION": "i/action",
}
ACTION_REFRESH_ALL_SURFACES = 41743
_TRACK = re.compile(r"^/track/(\d{1,9})/(name|volume/db|pan|select)$")


class ReaperAdapter(OscDawAdapter):
    """Mirror and drive REAPER's tracks over its OSC control surface.

    Parameters
    ----------
    host, port : where REAPER listens (127.0.0.1:8000 by default).
    listen_host, listen_port : where REAPER sends feedback (our side; 9000 by default).
    bank_size : how many tracks we ask REAPER to report (DEVICE_TRACK_COUNT; 1..MAX_DAW_TRACKS).
    refresh_s : how often to ask for a full refresh (a REAPER restarted since is re-read).
    feedback_port : the port REAPER sends from, when known (None: any port of ``host``).
    """

    kind = "reaper"

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, listen_host: str = "127.0.0.1",
                 listen_port: int = 9000, bank_size: int = 64, keepalive_s: float = 2.0,
                 timeout_s: float = 5.0, refresh_s: float = 10.0, feedback_port: int | None = None,
                 **base: Any):
        super().__init__(host, port, listen_host, listen_port, feedback_port=feedback_port,
                         keepalive_s=keepalive_s, timeout_s=timeout_s, **base)
        if (isinstance(bank_size, bool) or not isinstance(bank_size, int)
                or not 1 <= bank_size <= MAX_DAW_TRACKS):
            from stase.core.errors import InputError
            raise InputError(f"reaper: bank_size must be 1..{MAX_DAW_TRACKS} tracks, got {bank_size!r}")
        self.bank_size = bank_size
        self.max_tracks = bank_size
        self._names_dirty = threading.Event()
        self.refresh_s = refresh_s
        self._last_refresh = time.monotonic()

    def register(self) -> None:
        self.registrations += 1
        self._send("/device/track/count", self.bank_size)
        self._send("/device/track/bank/select", 1)
        self._send("/action", ACTION_REFRESH_ALL_SURFACES)

    def tick(self) -> None:
        if self._names_dirty.is_set():
            self._names_dirty.clear()
            self.on_tracks(self.tracks())
        now = time.monotonic()
        if not self.tracks() or now - self._last_refresh >= self.refresh_s:
            self._last_refresh = now
            self.register()
        else:
            self._send("/device/track/count", self.bank_size)
        if self.connected and time.monotonic() - self.last_seen > self.timeout_s:
            self.connected = False  # only informative: REAPER is quiet when nothing changes

    def _on_message(self, address: str, args: list, sender: tuple) -> None:
        self._seen()
        m = _TRACK.match(address)
        if not m or not args:
            return
        number, what = int(m.group(1)), m.group(2)
        if not 1 <= number <= self.bank_size:
            # REAPER numbers tracks within our bank: anything else is not its feedback
            self.tracks_over_limit += 1
            return
        value = args[0]
        if what == "name":
            if not str(value).strip():
                # an empty slot of the bank (or a track renamed to nothing): no track there
                entry = self.feedback.get(number)
                if entry is not None and entry.get("name"):
                    entry["name"] = ""
                    self._names_dirty.set()
                return
            name = self._acceptable_name(value)
            entry = self._track_slot(number) if name is not None else None
            if entry is not None and entry.get("name") != name:
                entry["name"] = name
                self._names_dirty.set()
            return
        number_value = self._finite(value)
        if number_value is None:
            return
        entry = self._track_slot(number)
        if entry is None:
            return
        if what == "volume/db":
            entry["gain_db"] = number_value
        elif what == "pan":
            entry["pan_position"] = number_value
            entry["pan"] = position_to_pan(number_value)
        else:
            entry["selected"] = bool(number_value)
        if entry.get("name"):
            self.on_feedback(entry["name"], {k: entry[k] for k in ("gain_db", "pan", "selected") if k in entry})

    def flush_tracks(self) -> None:
        """Publish the track list now (instead of at the next keep-alive tick)."""
        self._names_dirty.clear()
        self.on_tracks(self.tracks())

    def apply(self, track: str, gain_db: float, pan: float) -> bool:
        number = self.daw_id(track)
        if number is None:
            return False
        ok = self._send(f"/track/{number}/volume/db", float(gain_db))
        return self._send(f"/track/{number}/pan", pan_to_position(pan)) and ok

    def select(self, track: str) -> bool:
        number = self.daw_id(track)
        return number is not None and self._send(f"/track/{number}/select", 1)

    def status(self) -> dict[str, Any]:
        out = super().status()
        out.update(address=f"{self.address[0]}:{self.address[1]}",
                   listen=f"{self.listen[0]}:{self.listen[1]}", bank_size=self.bank_size)
        return out
