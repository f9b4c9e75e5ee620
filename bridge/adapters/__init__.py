"""DAW adapters: move the daemon's session to and from a DAW's OSC surface.

Every adapter follows :class:`DawAdapter`: ``start()``/``stop()``, a track list pushed to the
daemon through ``on_tracks([{"name", "daw_id"}, ...])``, ``apply(track, gain_db, pan)`` to set a
track's fader (dB) and stereo pan (-1 left .. +1 right, :func:`stase.core.conventions.azimuth_to_stereo_pan`),
``select(track)``, and ``status()``.  Adapters only translate and move bytes; validation and
session state stay in the daemon.  :func:`make_adapter` builds one by name.

Feedback is trusted only from the DAW: an OSC adapter's endpoint takes datagrams from the
configured DAW address (and, where the DAW sends from a known port, that port) and counts the
others (``status()["feedback_rejected"]``) without parsing them.  At most
:data:`MAX_DAW_TRACKS` tracks are mirrored; feedback for more is ignored, counted
(``tracks_over_limit``) and logged once, so a flood of fake tracks cannot grow the session.
On loopback, any local process can still send from 127.0.0.1; the filter keeps out other hosts
and other loopback addresses, not a hostile process on the DAW's own machine.
"""
from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from typing import Any, Callable

from stase.core.placement import MAX_TRACKS

log = logging.getLogger("stase.daw")

#: the most tracks an adapter mirrors (more are ignored with a warning and counted)
MAX_DAW_TRACKS = MAX_TRACKS  # the one limit (stase.core.placement), shared with the session

OnTracks = Callable[[list[dict[str, Any]]], None]
OnFeedback = Callable[[str, dict[str, Any]], None]

DAW_KINDS = ("none", "reaper", "ardour")


def pan_to_position(pan: float) -> float:
    """Stereo pan -1 (left) .. +1 (right) to a 0 (left) .. 1 (right) position (REAPER ``n``, Ardour)."""
    return min(max((float(pan) + 1.0) * 0.5, 0.0), 1.0)


def position_to_pan(position: float) -> float:
    return min(max(2.0 * float(position) - 1.0, -1.0), 1.0)


class DawAdapter:
    """Base class: bookkeeping shared by the adapters (no DAW: the ``none`` adapter)."""

    kind = "none"

    def __init__(self, on_tracks: OnTracks | None = None, on_feedback: OnFeedback | None = None,
                 keepalive_s: float = 1.0, timeout_s: float = 3.0):
        self.on_tracks = on_tracks or (lambda tracks: None)
        self.on_feedback = on_feedback or (lambda track, values: None)
        self.keepalive_s = keepalive_s
        self.timeout_s = timeout_s
        self.connected = False
        self.last_seen = 0.0
        self.registrations = 0
        self.feedback: dict[int, dict[str, Any]] = {}   # daw_id -> {"name", "gain_db", "pan", ...}
        self.max_tracks = MAX_DAW_TRACKS
        self.tracks_over_limit = 0       # feedback messages ignored: they named a track too many
        self.values_refused = 0          # names or numbers we would not take (too long, NaN, ...)
        self._limit_warned = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> "DawAdapter":
        self._stop.clear()
        self._open()
        self.register()
        self._thread = threading.Thread(target=self._keepalive_loop, name=f"stase-{self.kind}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        self._close()

    def _keepalive_loop(self) -> None:
        while not self._stop.wait(self.keepalive_s):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - logged; the loop must survive a bad tick
                log.exception("%s adapter: keep-alive tick failed", self.kind)

    # -- hooks for subclasses
    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def register(self) -> None:
        pass

    def tick(self) -> None:
        pass

    def _track_slot(self, daw_id: int) -> dict[str, Any] | None:
        """The mirror entry for ``daw_id``, created if there is room; None past the limit."""
        entry = self.feedback.get(daw_id)
        if entry is not None:
            return entry
        if len(self.feedback) >= self.max_tracks:
            self.tracks_over_limit += 1
            if not self._limit_warned:
                self._limit_warned = True
                log.warning("%s: more than %d tracks reported; the others are ignored (counted in "
                            "status: tracks_over_limit)", self.kind, self.max_tracks)
            return None
        entry = self.feedback[daw_id] = {}
        return entry

    def _acceptable_name(self, name: Any) -> str | None:
        """The track name stripped, or None (counted) when the placement schema refuses it."""
        from stase.core.placement import track_name_problem
        text = str(name).strip()
        problem = track_name_problem(text)
        if problem is not None:
            self.values_refused += 1
            log.debug("%s: ignored a track name from the DAW: %s", self.kind, problem)
            return None
        return text

    def _finite(self, value: Any) -> float | None:
        """``value`` as a float, or None (counted) for a NaN, an infinity or a non-number."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.values_refused += 1
            return None
        return float(value)

    def _seen(self) -> None:
        self.last_seen = time.monotonic()
        if not self.connected:
            self.connected = True
            log.info("%s: connected", self.kind)

    # -- the daemon's calls
    def tracks(self) -> list[dict[str, Any]]:
        return [{"name": v["name"], "daw_id": k} for k, v in sorted(self.feedback.items())
                if v.get("name")]

    def daw_id(self, track: str) -> int | None:
        for k, v in self.feedback.items():
            if str(v.get("name", "")).lower() == track.lower():
                return k
        return None

    def apply(self, track: str, gain_db: float, pan: float) -> bool:
        """Set the DAW track's fader and pan; False when the DAW has no such track."""
        return False

    def select(self, track: str) -> bool:
        return False

    def status(self) -> dict[str, Any]:
        return {"kind": self.kind, "connected": self.connected,
                "last_seen_s_ago": round(time.monotonic() - self.last_seen, 2) if self.last_seen else None,
                "registrations": self.registrations, "tracks": len(self.tracks()),
                "max_tracks": self.max_tracks, "tracks_over_limit": self.tracks_over_limit,
                "values_refused": self.values_refused}


class OscDawAdapter(DawAdapter):
    """A DAW reached over OSC/UDP: one endpoint on ``listen`` that talks to ``address``.

    Subclasses implement ``_on_message(address, args)`` and the DAW's own protocol.

    Parameters
    ----------
    host, port : the DAW's OSC address (where we send).
    listen_host, listen_port : where we receive.
    feedback_port : the UDP port the DAW sends from, when it is known (None: any port of the
        DAW's address).  Datagrams from any other sender are counted and dropped.
    """

    def __init__(self, host: str, port: int, listen_host: str, listen_port: int,
                 feedback_port: int | None = None, **base: Any):
        from stase.bridge.osc_transport import check_host, check_port, resolve_ipv4
        super().__init__(**base)
        host = check_host(host, f"{self.kind}: the DAW's address (--daw-host)")
        self.address = (host, check_port(port, f"{self.kind}: the DAW's port (--daw-port)",
                                         allow_zero=False))
        self.listen = (check_host(listen_host, f"{self.kind}: the address to listen on", bind=True),
                       check_port(listen_port, f"{self.kind}: the feedback port (--daw-listen-port)"))
        self.feedback_port = (None if feedback_port is None else
                              check_port(feedback_port, f"{self.kind}: the DAW's sending port",
                                         allow_zero=False))
        self.daw_addresses = resolve_ipv4(host)
        if any(ipaddress.ip_address(a).is_unspecified for a in self.daw_addresses):
            # sending to 0.0.0.0 reaches this machine, whose answers come from loopback
            self.daw_addresses.add("127.0.0.1")
        self.last_rejected_from: str | None = None
        self._rejected_before = 0        # by endpoints closed since (a restart keeps the count)
        self.endpoint = None

    def from_daw(self, sender: tuple) -> bool:
        """Whether a datagram from ``sender`` (ip, port) may be feedback from our DAW."""
        ok = sender[0] in self.daw_addresses and (self.feedback_port is None
                                                  or sender[1] == self.feedback_port)
        if not ok:
            self.last_rejected_from = f"{sender[0]}:{sender[1]}"
        return ok

    def _open(self) -> None:
        from stase.bridge.osc_transport import OscEndpoint
        self.endpoint = OscEndpoint(self._on_message, self.listen[0], self.listen[1],
                                    name=self.kind, accept_from=self.from_daw).start()

    def _close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
            self._rejected_before += self.endpoint.stats["rejected"]
            self.endpoint = None

    def _send(self, address: str, *args: Any) -> bool:
        return self.endpoint is not None and self.endpoint.send(address, list(args), self.address)

    def status(self) -> dict[str, Any]:
        out = super().status()
        rejected = self._rejected_before + (self.endpoint.stats["rejected"]
                                            if self.endpoint is not None else 0)
        out.update(feedback_from=sorted(self.daw_addresses),
                   feedback_port=self.feedback_port, feedback_rejected=rejected,
                   last_rejected_from=self.last_rejected_from)
        return out


def make_adapter(kind: str, on_tracks: OnTracks | None = None, on_feedback: OnFeedback | None = None,
                 **options: Any) -> DawAdapter:
    """``"none"``, ``"reaper"`` or ``"ardour"``; ``options`` go to the adapter's constructor."""
    if kind == "ardour":
        from stase.bridge.adapters.ardour import ArdourAdapter
        return ArdourAdapter(on_tracks=on_tracks, on_feedback=on_feedback, **options)
    if kind == "reaper":
        from stase.bridge.adapters.reaper import ReaperAdapter
        return ReaperAdapter(on_tracks=on_tracks, on_feedback=on_feedback, **options)
    if kind == "none":
        return DawAdapter(on_tracks=on_tracks, on_feedback=on_feedback)
    raise ValueError(f"unknown DAW {kind!r}; accepted: {DAW_KINDS}")
