"""DAW adapters: move the daemon's session to and from a DAW's OSC surface.

Every adapter follows :class:`DawAdapter`: ``start()``/``stop()``, a track list pushed to the
daemon through ``on_tracks([{"name", "daw_id"}, ...])``, ``apply(track, gain_db, pan)`` to set a
track's fader (dB) and stereo pan (-1 left .. +1 right, :func:`dsp.conventions.azimuth_to_stereo_pan`),
``select(track)``, and ``status()``.  Adapters only translate and move bytes; validation and
session state stay in the daemon.  :func:`make_adapter` builds one by name.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

log = logging.getLogger("stase.daw")

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
                "registrations": self.registrations, "tracks": len(self.tracks())}



class OscDawAdapter(DawAdapter):
    """A DAW reached over OSC/UDP: one endpoint on ``listen`` that talks to ``address``.

    Subclasses implement ``_on_message(address, args)`` and the DAW's own protocol.
    """

    def __init__(self, host: str, port: int, listen_host: str, listen_port: int, **base: Any):
        super().__init__(**base)
        self.address = (host, int(port))
        self.listen = (listen_host, int(listen_port))
        self.endpoint = None

    def _open(self) -> None:
        from bridge.osc_transport import OscEndpoint
        self.endpoint = OscEndpoint(self._on_message, self.listen[0], self.listen[1],
                                    name=self.kind).start()

    def _close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
            self.endpoint = None

    def _send(self, address: str, *args: Any) -> bool:
        return self.endpoint is not None and self.endpoint.send(address, list(args), self.address)


def make_adapter(kind: str, on_tracks: OnTracks | None = None, on_feedback: OnFeedback | None = None,
                 **options: Any) -> DawAdapter:
    """``"none"``, ``"reaper"`` or ``"ardour"``; ``options`` go to the adapter's constructor."""
    if kind == "ardour":
        from .ardour import ArdourAdapter
        return ArdourAdapter(on_tracks=on_tracks, on_feedback=on_feedback, **options)
    if kind == "reaper":
        from .reaper import ReaperAdapter
        return ReaperAdapter(on_tracks=on_tracks, on_feedback=on_feedback, **options)
    if kind == "none":
        return DawAdapter(on_tracks=on_tracks, on_feedback=on_feedback)
    raise ValueError(f"unknown DAW {kind!r}; accepted: {DAW_KINDS}")
