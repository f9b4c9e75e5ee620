"""Head tracking: a head tracker's orientation over OSC turns the scene, never the plan.

Holds
-----
ypr_to_rotation(yaw_deg, pitch_deg, roll_deg) -> (3, 3)
quaternion_to_rotation(w, x, y, z) -> (3, 3)
rotation_to_ypr(rotation) -> (yaw_deg, pitch_deg, roll_deg)
head_relative(rotation, azimuth_deg, elevation_deg) -> (azimuth_deg, elevation_deg)
    The closed forms (pure NumPy, no state).
ADDRESSES
    The accepted OSC messages as data: address -> (what it sets, number of arguments).
HeadTracker(target, host="127.0.0.1", port=0, block_period_s=256 / 48000)
    A UDP server (its own receive thread, :class:`stase.bridge.osc_transport.OscEndpoint`) that
    keeps the latest orientation, and a second thread that hands it to the live monitor
    (``target()``, :meth:`stase.bridge.monitor.LiveMonitor.set_head_rotation`) at most once per
    audio block.  ``start()``, ``close()``, ``status()``, ``rotation``, ``handle(address, args)``.

Convention (stated once, here)
------------------------------
Axes as :mod:`stase.core.conventions`: x to the front, y to the left, z up (right-handed).  The
head's orientation is a proper rotation ``R = Rz(yaw) @ Ry(-pitch) @ Rx(roll)``: yaw about the
vertical first, then pitch about the head's own interaural axis, then roll about its own front
axis (intrinsic z-y'-x'', as SPARTA's and IEM SceneRotator's yaw-pitch-roll), all in degrees:

* **yaw positive = the head turns left** (counter-clockwise seen from above, the same sense as
  our azimuth), so a frontal source moves towards the RIGHT ear: yaw = 90 maps azimuth 0 to -90;
* **pitch positive = nose up**, so a frontal source goes below: pitch = 30 maps elevation 0 to -30;
* **roll positive = the left ear goes up** (a right-handed turn about the front axis; the head
  tilts to the right shoulder): roll = 30 maps a source at (90, 0) to (90, -30).

A quaternion ``(w, x, y, z)`` is the same rotation ``R`` in the same axes (normalised here).  A
source's head-relative direction is ``R.T @ d`` for its plan (world) direction ``d``; the plan is
never changed, so the session, the DAW and the offline render keep the listener facing front.

Accepted messages (SPARTA's binauraliser / rotator and ADM-OSC's listener): ``/ypr y p r``,
``/adm/lis/ypr y p r``, ``/yaw y``, ``/pitch p``, ``/roll r``, ``/quaternion w x y z`` (numbers:
OSC int, float or double).  A message that is not one of them, has the wrong number of
arguments, carries a non-number, NaN or Inf, an angle outside [-360, 360] degrees or a quaternion
whose norm is outside [0.5, 2] is counted in ``status()["malformed"]`` (by reason) and ignored,
never raised; unparseable datagrams are counted by the endpoint and shown there too.

Throttle: a tracker sends 100-1000 messages a second; each is only remembered.  The delivery
thread wakes on a new orientation and, once the monitor has rendered a block since the last
batch, turns the *latest* one into one batch of ``OP_PLACE`` records (one per source), so at
most one batch per audio block reaches the queue whatever the message rate.  The scene's own
ramps (``ramp_s``) smooth every batch: no step, no click.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable

import numpy as np

from stase.core.conventions import cartesian_to_spherical, spherical_to_cartesian

log = logging.getLogger("stase.head_tracking")

#: The accepted addresses: what each sets and how many numbers it carries.
ADDRESSES: dict[str, tuple[str, int]] = {
    "/ypr": ("ypr", 3),
    "/adm/lis/ypr": ("ypr", 3),
    "/yaw": ("yaw", 1),
    "/pitch": ("pitch", 1),
    "/roll": ("roll", 1),
    "/quaternion": ("quaternion", 4),
}
#: Angles beyond this magnitude (degrees) are refused (covers -180..180 and 0..360 trackers).
MAX_ANGLE_DEG = 360.0
#: A quaternion's norm must lie in this range before it is normalised (0 or garbage refused).
QUATERNION_NORM_RANGE = (0.5, 2.0)
#: The longest wait between looks at the monitor's block counter while a batch waits (s).
MAX_POLL_S = 0.05
MALFORMED_REASONS = ("unknown_address", "arity", "not_a_number", "not_finite", "out_of_range")


# ------------------------------------------------------------------ closed forms
def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def ypr_to_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """The head's rotation ``Rz(yaw) @ Ry(-pitch) @ Rx(roll)`` (see the module's convention).

    Parameters
    ----------
    yaw_deg : degrees, positive = head turned left.
    pitch_deg : degrees, positive = nose up.
    roll_deg : degrees, positive = left ear up.
    """
    return _rz(math.radians(yaw_deg)) @ _ry(-math.radians(pitch_deg)) @ _rx(math.radians(roll_deg))


def quaternion_to_rotation(w: float, x: float, y: float, z: float) -> np.ndarray:
    """The rotation matrix of the unit quaternion ``(w, x, y, z)`` (normalised first)."""
    q = np.array([w, x, y, z], dtype=float)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def rotation_to_ypr(rotation: np.ndarray) -> tuple[float, float, float]:
    """``(yaw_deg, pitch_deg, roll_deg)`` of a rotation made by :func:`ypr_to_rotation`
    (pitch in [-90, 90]; at +-90 the yaw and roll share one angle and roll is reported 0)."""
    r = np.asarray(rotation, dtype=float)
    pitch = math.degrees(math.asin(min(1.0, max(-1.0, r[2, 0]))))
    if abs(r[2, 0]) > 1.0 - 1e-12:
        return math.degrees(math.atan2(-r[0, 1], r[1, 1])), pitch, 0.0
    return (math.degrees(math.atan2(r[1, 0], r[0, 0])), pitch,
            math.degrees(math.atan2(r[2, 1], r[2, 2])))


def head_relative(rotation: np.ndarray | None, azimuth_deg: Any, elevation_deg: Any
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Head-relative ``(azimuth_deg, elevation_deg)`` of plan directions for a head at ``rotation``.

    ``R.T @ d`` per direction (arrays broadcast; azimuth wrapped to (-180, 180], elevation in
    [-90, 90]).  ``rotation`` None: the head faces front, the directions come back unchanged.
    """
    az = np.asarray(azimuth_deg, dtype=float)
    el = np.asarray(elevation_deg, dtype=float)
    if rotation is None:
        return az.copy(), el.copy()
    world = np.stack(np.broadcast_arrays(*spherical_to_cartesian(az, el)), axis=-1)
    head = world @ np.asarray(rotation, dtype=float)  # row-wise R.T @ d
    rel_az, rel_el, _ = cartesian_to_spherical(head[..., 0], head[..., 1], head[..., 2])
    return np.asarray(rel_az, dtype=float), np.asarray(rel_el, dtype=float)


# ------------------------------------------------------------------ the tracker
class HeadTracker:
    """Receive a head tracker's OSC, keep the latest orientation, rotate the live scene.

    Parameters
    ----------
    target : ``target() -> monitor or None``: the live monitor to rotate (called on each
        delivery, so a restarted monitor is picked up); it needs ``blocks`` (blocks rendered)
        and ``set_head_rotation(rotation) -> bool``.
    host, port : where to listen (UDP; port 0 = any free port, see :attr:`port`).
    block_period_s : the audio block's period, seconds (the throttle's unit).
    """

    def __init__(self, target: Callable[[], Any], host: str = "127.0.0.1", port: int = 0,
                 block_period_s: float = 256 / 48000):
        from stase.bridge.osc_transport import OscEndpoint
        self._target = target
        self._poll_s = max(1e-4, float(block_period_s) / 4.0)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ypr = [0.0, 0.0, 0.0]
        self._rotation: np.ndarray | None = None
        self._version = 0           # bumps with every accepted orientation
        self._delivered_version = 0
        self._last_monitor: Any = None
        self._last_block = -1
        self._last_message_at: float | None = None
        self.accepted = 0
        self.batches = 0
        self.batches_deferred = 0   # the monitor's queue had no room for a whole batch
        self.malformed = {reason: 0 for reason in MALFORMED_REASONS}
        self._thread: threading.Thread | None = None
        self.endpoint = OscEndpoint(self.handle, host, port, name="head-tracking")

    @property
    def port(self) -> int:
        return self.endpoint.port

    @property
    def rotation(self) -> np.ndarray | None:
        """The latest head rotation (None: facing front, as at start)."""
        with self._lock:
            return None if self._rotation is None else self._rotation.copy()

    def start(self) -> "HeadTracker":
        self.endpoint.start()
        self._thread = threading.Thread(target=self._deliver_loop, name="stase-head-rotation",
                                        daemon=True)
        self._thread.start()
        log.info("head tracking on udp %s:%d (/ypr, /yaw, /pitch, /roll, /quaternion, "
                 "/adm/lis/ypr)", self.endpoint.host, self.port)
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self.endpoint.close()
        if self._thread is not None:
            self._thread.join(1.0)

    # -------------------------------------------------------------- parsing (receive thread)
    def handle(self, address: str, args: list, sender: Any = None) -> bool:
        """Take one OSC message; True when it changed the orientation (never raises for bad input)."""
        rule = ADDRESSES.get(address)
        if rule is None:
            return self._refuse("unknown_address")
        kind, arity = rule
        if len(args) != arity:
            return self._refuse("arity")
        if any(isinstance(a, bool) or not isinstance(a, (int, float)) for a in args):
            return self._refuse("not_a_number")
        values = [float(a) for a in args]
        if not all(math.isfinite(v) for v in values):
            return self._refuse("not_finite")
        if kind == "quaternion":
            norm = math.sqrt(sum(v * v for v in values))
            if not QUATERNION_NORM_RANGE[0] <= norm <= QUATERNION_NORM_RANGE[1]:
                return self._refuse("out_of_range")
            rotation = quaternion_to_rotation(*values)
            with self._lock:
                self._set(rotation, list(rotation_to_ypr(rotation)))
        else:
            if any(abs(v) > MAX_ANGLE_DEG for v in values):
                return self._refuse("out_of_range")
            with self._lock:
                ypr = list(self._ypr)
                if kind == "ypr":
                    ypr = values
                else:
                    ypr[("yaw", "pitch", "roll").index(kind)] = values[0]
                self._set(ypr_to_rotation(*ypr), ypr)
        self._wake.set()
        return True

    def _set(self, rotation: np.ndarray, ypr: list[float]) -> None:
        """Under ``_lock``: the new orientation (an exact identity is kept as None: facing front)."""
        self._rotation = None if np.array_equal(rotation, np.eye(3)) else rotation
        self._ypr = ypr
        self._version += 1
        self.accepted += 1
        self._last_message_at = time.monotonic()

    def _refuse(self, reason: str) -> bool:
        self.malformed[reason] += 1
        return False

    # -------------------------------------------------------------- delivery (its own thread)
    def _deliver_loop(self) -> None:
        while not self._stop.is_set():
            if not self._wake.wait(0.25):
                continue
            self._wake.clear()
            try:
                self._deliver()
            except Exception:  # noqa: BLE001 - a monitor bug must not end head tracking
                log.exception("head tracking: rotating the scene failed")

    def _deliver(self) -> None:
        """Hand the latest orientation to the monitor, at most once per rendered block."""
        wait = self._poll_s
        while not self._stop.is_set():
            monitor = self._target()
            if monitor is None:
                return  # the daemon gives a new monitor the current rotation when it starts it
            if monitor is not self._last_monitor or monitor.blocks != self._last_block:
                break
            self._stop.wait(wait)      # the last batch is not rendered yet: coalesce
            wait = min(2.0 * wait, MAX_POLL_S)
        else:
            return
        with self._lock:
            rotation, version = self._rotation, self._version
        if version == self._delivered_version and monitor is self._last_monitor:
            return
        if monitor.set_head_rotation(rotation):
            self._last_monitor, self._last_block = monitor, monitor.blocks
            self._delivered_version = version
            self.batches += 1
        else:
            self.batches_deferred += 1
        if self._delivered_version != self._version:
            self._wake.set()  # newer (or refused) orientation: next block

    # -------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        """Port, message counts, the last orientation and the batches handed to the monitor."""
        with self._lock:
            ypr = [round(v, 3) for v in self._ypr]
            last = self._last_message_at
        stats = self.endpoint.stats
        malformed = dict(self.malformed, unparseable=stats["parse_errors"])
        return {"port": self.port, "messages": stats["messages"], "accepted": self.accepted,
                "malformed": sum(malformed.values()), "malformed_by_reason": malformed,
                "last_ypr_deg": ypr,
                "last_message_age_s": None if last is None else round(time.monotonic() - last, 3),
                "batches": self.batches, "batches_deferred": self.batches_deferred}
