"""Ardour's OSC control surface (default UDP port 3819).

Registration, as Ardour's OSC manual describes it::

    /set_surface bank_size strip_types feedback fader_mode send_page_size plugin_page_size port

* bank_size 0 = every strip; strip_types 3 = audio + MIDI tracks;
* feedback = 2 (variable controls: /strip/name, /strip/gain, /strip/pan_stereo_position ...)
  + 8 (a /heartbeat each second, so we notice when Ardour goes away)
  + 16384 (answer with OSC 1.0 ``/reply`` instead of ``#reply``, which is not a valid OSC address
  and which python-osc cannot parse);
* fader_mode 0: gains travel in dB; port 0: Ardour replies to the port the request came from,
  so we bind one ephemeral UDP port and both send and receive on it.

Then ``/strip/list`` answers one ``/reply`` per strip
``(type "AT"|"MT"|..., name, n_inputs, n_outputs, mute, solo, ssid[, rec])`` and a closing
``/reply "end_route_list" sample_rate last_sample ...``.  Feedback keeps the mirror current:
``/strip/name ssid name``, ``/strip/gain ssid dB``, ``/strip/pan_stereo_position ssid 0..1``.
We apply with ``/strip/gain ssid dB`` and ``/strip/pan_stereo_position ssid position``
(0 = left, 1 = right, the 1-in-2-out panner's azimuth).

When no message (heartbeat or other) arrives for ``timeout_s``, the adapter marks Ardour
disconnected and registers again every ``keepalive_s`` until it answers: a restarted Ardour is
picked up without restarting the daemon.

Feedback is taken only from Ardour's surface address and port (``host``:``port``: Ardour
answers and sends feedback from its surface's own socket); anything else is counted in
``status()["feedback_rejected"]``.  At most :data:`stase.bridge.adapters.MAX_DAW_TRACKS` strips are
mirrored (the rest are counted in ``tracks_over_limit``).
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from stase.bridge.adapters import OscDawAdapter, pan_to_position, position_to_pan

log = logging.getLogger("stase.daw.ardour")

STRIP_TYPES_TRACKS = 1 | 2           # audio tracks, MIDI tracks
FEEDBACK = 2 | 8 | 16384             # variable controls, heartbeat, /reply instead of #reply
FADER_MODE_DB = 0
REPLY_TO_SENDER = 0
TRACK_TYPES = ("AT", "MT")


class ArdourAdapter(OscDawAdapter):
    """Mirror and drive Ardour's tracks over its OSC surface.

    Parameters
    ----------
    host, port : Ardour's OSC surface (127.0.0.1:3819 by default).
    listen_host : our side of the conversation (an ephemeral port on this address).
    keepalive_s, timeout_s : re-registration cadence and the silence that counts as gone.
    """

    kind = "ardour"

    def __init__(self, host: str = "127.0.0.1", port: int = 3819, listen_host: str = "127.0.0.1",
                 keepalive_s: float = 1.0, timeout_s: float = 3.0, **base: Any):
        # port 0: an ephemeral port, Ardour replies to the sender, from its surface port
        super().__init__(host, port, listen_host, 0, feedback_port=port, keepalive_s=keepalive_s,
                         timeout_s=timeout_s, **base)
        self.sample_rate: int | None = None
        self._listing: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.list_complete = threading.Event()

    def register(self) -> None:
        """Ask for feedback (see the module docstring) and for the strip list."""
        self.registrations += 1
        self._send("/set_surface", 0, STRIP_TYPES_TRACKS, FEEDBACK, FADER_MODE_DB, 0, 0,
                   REPLY_TO_SENDER)
        self.request_list()

    def request_list(self) -> None:
        with self._lock:
            self._listing = {}
        self.list_complete.clear()
        self._send("/strip/list")

    def tick(self) -> None:
        silent_for = time.monotonic() - self.last_seen if self.last_seen else math.inf
        if silent_for > self.timeout_s:
            if self.connected:
                log.warning("ardour: no message for %.1f s; registering again until it answers",
                            silent_for)
                self.connected = False
            self.register()

    # -- incoming
    def _on_message(self, address: str, args: list, sender: tuple) -> None:
        self._seen()
        if address == "/reply" and args:
            self._on_reply(args)
        elif address == "/strip/name" and len(args) >= 2:
            name = self._acceptable_name(args[1])
            if name is not None:
                self._update(args[0], name=name)
        elif address == "/strip/gain" and len(args) >= 2:
            gain_db = self._finite(args[1])
            if gain_db is not None:
                self._update(args[0], gain_db=gain_db)
        elif address == "/strip/pan_stereo_position" and len(args) >= 2:
            position = self._finite(args[1])
            if position is not None:
                self._update(args[0], pan_position=position, pan=position_to_pan(position))

    def _on_reply(self, args: list) -> None:
        kind = args[0]
        if kind == "end_route_list":
            if len(args) > 1 and isinstance(args[1], int):
                self.sample_rate = int(args[1])
            with self._lock:
                listing = dict(self._listing)
            changed = False
            for ssid, entry in listing.items():
                old = self.feedback.setdefault(ssid, {})
                changed |= old.get("name") != entry["name"]
                old.update(entry)
            for ssid in [k for k in self.feedback if k not in listing]:
                del self.feedback[ssid]
                changed = True
            self.list_complete.set()
            if changed or listing:
                self.on_tracks(self.tracks())
            return
        if kind in TRACK_TYPES and len(args) >= 7 and isinstance(args[6], int):
            name = self._acceptable_name(args[1])
            if name is None:
                return
            with self._lock:
                if args[6] not in self._listing and len(self._listing) >= self.max_tracks:
                    self._over_limit()
                    return
                self._listing[int(args[6])] = {"name": name, "type": kind}

    def _over_limit(self) -> None:
        self.tracks_over_limit += 1
        if not self._limit_warned:
            self._limit_warned = True
            log.warning("ardour: more than %d strips; the others are ignored (counted in status: "
                        "tracks_over_limit)", self.max_tracks)

    def _update(self, ssid: Any, **values: Any) -> None:
        if isinstance(ssid, bool) or not isinstance(ssid, int) or ssid < 1:
            return
        entry = self._track_slot(int(ssid))
        if entry is None:
            return
        renamed = "name" in values and entry.get("name") != values["name"]
        entry.update(values)
        if entry.get("name"):
            self.on_feedback(entry["name"], dict(values))
        if renamed:
            self.on_tracks(self.tracks())

    # -- outgoing
    def apply(self, track: str, gain_db: float, pan: float) -> bool:
        ssid = self.daw_id(track)
        if ssid is None:
            return False
        ok = self._send("/strip/gain", int(ssid), float(gain_db))
        return self._send("/strip/pan_stereo_position", int(ssid), pan_to_position(pan)) and ok

    def select(self, track: str) -> bool:
        ssid = self.daw_id(track)
        return ssid is not None and self._send("/strip/select", int(ssid), 1)

    def status(self) -> dict[str, Any]:
        out = super().status()
        out.update(address=f"{self.address[0]}:{self.address[1]}",
                   listen_port=self.endpoint.port if self.endpoint else None,
                   sample_rate=self.sample_rate)
        return out
