"""Live binaural monitoring: DAW tracks in (one input channel per track), headphones out.

The daemon opens one sounddevice (PortAudio) duplex stream: ``len(tracks)`` input channels,
routed from the DAW over JACK or a loopback device, and 2 output channels.  The callback renders
the current plan with :class:`stase.dsp.scene.SceneRenderer`.  Changes from OSC and MIDI (position,
gain, mode, role, per-source ``reverb_db``; the scene's ``reverb_db``) are split in two: on the
control side :meth:`LiveMonitor.set_source` / :meth:`LiveMonitor.set_reverb_db` validate them
(:mod:`stase.core.placement`), resolve the source and, for a mode change, take a free voice
(``SceneRenderer.command_move``), writing one typed record
(:data:`stase.dsp.scene_kernel.COMMAND`) into a bounded lock-free
:class:`~stase.bridge.command_queue.CommandQueue`; at the start of each block the callback applies
every pending record in one numba call (``SceneRenderer.apply_commands``), which only copies
numbers into preallocated voice state.  The renderer ramps every change (never a step).

Head tracking (:mod:`stase.bridge.head_tracking`) rotates the scene, not the plan: the monitor
keeps each source's plan (world) direction, and :meth:`LiveMonitor.set_head_rotation` queues one
``OP_PLACE`` record per source with its head-relative direction (``R.T @ d``); every later
``set_source`` move is rotated the same way.  With no rotation (facing front) moves pass through
untouched.  The control side is shared by the daemon's handlers and the tracker's thread, so it
takes one control lock (never the callback, which stays lock-free).

The callback obeys sounddevice's rules: it reads preallocated buffers, creates no arrays (a
queued command adds no allocation to a block: ``tests/test_monitor_callback.py``), takes no lock,
handles no strings, does no logging or I/O and never waits.  PortAudio's status flags (input overflow,
output underflow: JACK's xrun callback raises both) count as xruns, and a block whose render
took longer than the block period counts as a callback overrun (ours, not the server's), and
as ``callback_overruns_waiting`` too when the callback thread's own CPU time for it
(``time.thread_time``) stayed under the period: the block was late because the thread waited
(for a core, the hypervisor, or the GIL), not because the render needed more than a block; an
exception inside the render (a bug) is counted, the block
is silenced and the stream keeps running.

Meters: after the limiter, each ear's peak is held in :attr:`LiveMonitor.output_peaks` (linear)
by :func:`meter_block`, falling 20 dB in 1.7 s like an IEC 60268-10 type I programme meter;
``status`` reports it in dBFS.  The same class runs inside the real-time engine's own process
(:mod:`stase.bridge.rt_engine`), which passes each request's daemon-side time as
``enqueued_at_s`` so the move-to-block latency counts the crossing too.

Safety limiter: the last stage of every block is :func:`limit_block`, a peak limiter with an
instant attack and a smooth release, so the headphones never get more than :data:`CEILING_DBFS`
(-0.1 dBFS) whatever a plan, a move or the DAW's routing asks for, and a sample that is not
finite (a bug upstream) is silenced rather than sent.  Below the ceiling it is an exact
pass-through (gain 1).  ``sounddevice`` is imported only when a stream is
opened, so the daemon runs without PortAudio when ``--no-audio`` is given.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Iterable

import numpy as np
from numba import njit

from stase.core.conventions import LOCALISATION_MODES
from stase.core.errors import InputError, StaseError
from stase.core.names import track_key
from stase.core.rates import check_sample_rate
from stase.core.placement import check_placement_fields
from stase.dsp.scene_kernel import COMMAND, COUNT_APPLIED, COUNT_LATENCIES

from stase.bridge.command_queue import CommandQueue
from stase.bridge.head_tracking import head_relative

log = logging.getLogger("stase.monitor")

LATENCY_HISTORY = 4096
#: The live output's peak ceiling, dBFS, and the limiter's release time constant, seconds.
CEILING_DBFS = -0.1
LIMITER_RELEASE_S = 0.05
#: Limiter state: current gain (linear), count of non-finite samples silenced.
LIMITER_GAIN, LIMITER_NONFINITE = 0, 1
#: The peak meter's fall, dB over seconds (IEC 60268-10 type I: 20 dB in 1.7 s).
METER_FALL_DB, METER_FALL_S = 20.0, 1.7


def track_slots(tracks: Iterable[str]) -> dict[str, int]:
    """``{track key: input slot}``: how a request's track name finds its monitor input (both
    engines, :class:`LiveMonitor` and :class:`stase.bridge.rt_engine.EngineMonitor`)."""
    return {track_key(name): i for i, name in enumerate(tracks)}


def check_monitor_setup(tracks: Iterable[str], sample_rate: int, block_size: int) -> list[str]:
    """The track list as strings; ``InputError`` for no track, a sample rate
    :func:`stase.core.rates.check_sample_rate` refuses or a block size that is not a positive
    number of frames."""
    names = [str(t) for t in tracks]
    if not names:
        raise InputError("the live monitor needs at least one track (one input channel per track)")
    check_sample_rate(sample_rate, "sample_rate")
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise InputError(f"block_size must be a positive number of frames, got {block_size!r}")
    return names


def check_head_rotation(rotation: Any) -> np.ndarray | None:
    """``rotation`` as a float64 3x3 array (None stays None: facing front); ``InputError`` for
    anything but a finite proper rotation (orthonormal, determinant +1, within 1e-6)."""
    if rotation is None:
        return None
    try:
        rotation = np.array(rotation, dtype=np.float64)
    except (TypeError, ValueError):
        rotation = np.zeros(0)
    if (rotation.shape != (3, 3) or not np.all(np.isfinite(rotation))
            or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6)
            or not np.isclose(np.linalg.det(rotation), 1.0, atol=1e-6)):
        raise InputError("a head rotation must be a finite 3x3 proper rotation matrix "
                         "(orthonormal, determinant +1)")
    return rotation


@njit(cache=True, nogil=True)
def meter_block(out: np.ndarray, fall: float, peaks: np.ndarray) -> None:
    """Hold each channel's peak of ``out`` (channels, frames) in ``peaks`` (linear), falling by
    the factor ``fall`` per block when the block is quieter.  Allocates nothing."""
    channels, frames = out.shape
    for c in range(channels):
        peak = 0.0
        for i in range(frames):
            v = abs(out[c, i])
            if v > peak:
                peak = v
        held = peaks[c] * fall
        peaks[c] = peak if peak > held else held


@njit(cache=True, nogil=True)
def limit_block(out: np.ndarray, ceiling: float, release: float, state: np.ndarray) -> int:
    """Peak-limit ``out`` (channels, frames) in place; returns how many frames were turned down.

    Per frame, the gain needed to keep the loudest channel at ``ceiling`` (linear) is taken at
    once when it is lower than the current gain (no overshoot, no look-ahead latency); otherwise
    the gain recovers towards it by ``release`` (a one-pole coefficient per sample) and snaps to
    it once within 1e-4 (0.001 dB), so a quiet signal is again passed through exactly.  A frame
    holding NaN or Inf is silenced and counted in ``state[LIMITER_NONFINITE]``;
    ``state[LIMITER_GAIN]`` carries the gain across blocks.  Allocates nothing.
    """
    gain = state[LIMITER_GAIN]
    channels, frames = out.shape
    limit = ceiling * (1.0 - 1e-6)  # float32 rounding of the product must stay under the ceiling
    reduced = 0
    for i in range(frames):
        peak = 0.0
        finite = True
        for c in range(channels):
            v = out[c, i]
            if not np.isfinite(v):
                finite = False
            elif abs(v) > peak:
                peak = abs(v)
        if not finite:
            for c in range(channels):
                out[c, i] = 0.0
            state[LIMITER_NONFINITE] += 1.0
            continue
        target = limit / peak if peak > limit else 1.0
        if target < gain:
            gain = target
        else:
            gain += (target - gain) * release
            if gain > target - 1e-4:  # within 0.001 dB: an inaudible last step to exactly 1
                gain = target
        if gain < 1.0:
            for c in range(channels):
                out[c, i] = out[c, i] * gain
            reduced += 1
    state[LIMITER_GAIN] = gain
    return reduced


_UNSET = object()


class LiveMonitor:
    """Render the DAW's tracks binaurally, live.

    Parameters
    ----------
    tracks : track names, in input-channel order.
    placements : ``{track: {"azimuth_deg", "elevation_deg", "distance_m", "gain_db", "mode",
        "role", "reverb_db"}}`` starting placements (missing tracks start at 0 deg, 2 m, hrtf).
    sample_rate : Hz.
    block_size : frames per callback (fixed: the renderer is prepared for it).
    room, reverb_engine, reverb_db : passed to the renderer (``reverb_db``: the scene's wetness,
        dB relative to the room's physical level).
    renderer : an object with the SceneRenderer interface (default: a new ``SceneRenderer``); one
        without the command half (``command_move``, ``apply_commands``; a test double) gets its
        ``move_source`` called in the callback instead.
    """

    def __init__(self, tracks: Iterable[str], placements: dict[str, dict[str, Any]] | None = None,
                 sample_rate: int = 48000, block_size: int = 256, room: str = "dry_studio",
                 reverb_engine: str = "convolution", renderer: Any = None,
                 queue_capacity: int = 1024, reverb_db: float = 0.0):
        self.tracks = check_monitor_setup(tracks, sample_rate, block_size)
        self.sample_rate, self.block_size = int(sample_rate), int(block_size)
        self.slots = track_slots(self.tracks)
        self.queue = CommandQueue(queue_capacity, COMMAND)
        if renderer is None:
            from stase.dsp.scene import SceneRenderer  # lazy: the renderer may load an HRTF set
            renderer = SceneRenderer(sample_rate=self.sample_rate, block_size=self.block_size,
                                     room=room, reverb_engine=reverb_engine, reverb_db=reverb_db)
        elif not hasattr(renderer, "apply_commands"):
            renderer = _CallbackMoves(renderer)
        self.renderer = renderer
        placements = {track_key(k): v for k, v in (placements or {}).items()}
        for name in self.tracks:
            p = placements.get(track_key(name), {})
            self.renderer.add_source(name, **{k: p[k] for k in
                                              ("azimuth_deg", "elevation_deg", "distance_m", "mode",
                                               "gain_db", "role", "reverb_db")
                                              if k in p})
        order = list(getattr(self.renderer, "source_ids", self.tracks))
        if [track_key(o) for o in order] != [track_key(t) for t in self.tracks]:
            raise StaseError(f"renderer source order {order} does not match the tracks {self.tracks}")
        # the plan (world) direction of every source, degrees: head tracking rotates from these
        self._world = np.zeros((len(self.tracks), 2), dtype=np.float64)
        for slot, name in enumerate(self.tracks):
            p = placements.get(track_key(name), {})
            self._world[slot] = tuple(0.0 if p.get(k) is None else float(p[k])
                                      for k in ("azimuth_deg", "elevation_deg"))
        self._head_rotation: np.ndarray | None = None
        self.head_batches = 0           # rotations queued (one record per source each)
        self.head_batches_deferred = 0  # rotations refused: no room in the queue for a whole batch
        self._control = threading.Lock()  # the producers' side of the SPSC queue is one at a time
        # preallocated state for the callback
        self._inputs = np.zeros((len(self.tracks), self.block_size), dtype=np.float32)
        self._out = np.zeros((2, self.block_size), dtype=np.float32)
        self._counts = np.zeros(2, dtype=np.int64)  # commands applied, latencies recorded
        self._limiter = np.array([1.0, 0.0], dtype=np.float64)
        self._ceiling = float(10.0 ** (CEILING_DBFS / 20.0))
        self._release = float(1.0 - math.exp(-1.0 / (LIMITER_RELEASE_S * self.sample_rate)))
        self.limited_blocks = 0          # blocks in which the safety limiter turned the output down
        self.output_peaks = np.zeros(2, dtype=np.float64)  # held peak per ear, linear (meter_block)
        # the fall per block: METER_FALL_DB over METER_FALL_S
        self._meter_fall = float(10.0 ** (-METER_FALL_DB / 20.0 * (self.block_size / self.sample_rate)
                                          / METER_FALL_S))
        self.latencies_s = np.zeros(LATENCY_HISTORY, dtype=np.float64)  # enqueue -> applied, s
        self.blocks = 0
        self.xruns = 0
        self.input_overflows = 0
        self.output_underflows = 0
        self.irregular_blocks = 0
        self.callback_errors = 0
        self.last_callback_error: BaseException | None = None
        self.callback_overruns = 0      # blocks whose render took longer than the block period
        self.callback_overruns_waiting = 0  # ... of which the thread's own CPU time was under it
        self.max_callback_s = 0.0
        self._period_s = self.block_size / self.sample_rate
        self.stream: Any = None

    # ---------------------------------------------------------------- control side
    def set_source(self, track: str, azimuth_deg: float | None = None, elevation_deg: float | None = None,
                   distance_m: float | None = None, gain_db: float | None = None,
                   mode: str | None = None, role: Any = _UNSET, reverb_db: float | None = None,
                   *, enqueued_at_s: float | None = None) -> bool:
        """Queue a change of one source for the callback; False when the track is not monitored
        or the queue is full (counted in ``commands_dropped``).  ``enqueued_at_s``: when the
        change was asked for (``time.perf_counter()``; default now), the start of its
        move-to-block latency.

        Everything but copying numbers happens here: the schema check (``InputError`` for a
        value :mod:`stase.core.placement` refuses, e.g. ``gain_db`` above +24 dB), the source's
        slot, the normalised placement, the send factor of ``role`` / ``reverb_db`` and, for a
        mode change, the new voice.  ``role``: a string or None ("unknown"); left out: unchanged.
        """
        slot = self.slots.get(track_key(track))
        if slot is None:
            return False
        fields = {k: v for k, v in (("azimuth_deg", azimuth_deg), ("elevation_deg", elevation_deg),
                                    ("distance_m", distance_m), ("gain_db", gain_db), ("mode", mode),
                                    ("reverb_db", reverb_db)) if v is not None}
        if role is not _UNSET:
            fields["role"] = role
        accepted = check_placement_fields(fields)  # the one schema: nothing it refuses gets queued
        name = self.tracks[slot]
        with self._control:
            world = self._world[slot].copy()
            if "azimuth_deg" in accepted:
                world[0] = accepted["azimuth_deg"]
            if "elevation_deg" in accepted:
                world[1] = accepted["elevation_deg"]
            moved = dict(accepted)
            if self._head_rotation is not None and ("azimuth_deg" in moved or "elevation_deg" in moved):
                az, el = head_relative(self._head_rotation, world[0], world[1])
                moved["azimuth_deg"], moved["elevation_deg"] = float(az), float(el)

            def fill(record: np.void) -> None:
                self.renderer.command_move(name, **moved, out=record)
                record["enqueued_at_s"] = time.perf_counter() if enqueued_at_s is None else enqueued_at_s
            queued = self.queue.push(fill)
            if queued:
                self._world[slot] = world
            return queued

    def set_head_rotation(self, rotation: np.ndarray | None, *,
                          enqueued_at_s: float | None = None) -> bool:
        """Turn the scene for a head at ``rotation`` (a 3x3 proper rotation, the convention of
        :mod:`stase.bridge.head_tracking`; None: facing front); False when the queue has no room
        for one record per source (nothing is queued, nothing changes; try at the next block).

        Every source's plan direction becomes its head-relative one, queued as ``OP_PLACE``
        records the renderer ramps over its ``ramp_s``; distance, gain and mode stay.
        ``InputError`` for a matrix that is not a finite proper rotation
        (:func:`check_head_rotation`).  ``enqueued_at_s`` as for :meth:`set_source`.
        """
        rotation = check_head_rotation(rotation)
        asked_at = time.perf_counter() if enqueued_at_s is None else enqueued_at_s
        with self._control:
            if self.queue.capacity - len(self.queue) < len(self.tracks):
                self.head_batches_deferred += 1
                return False
            azimuths, elevations = head_relative(rotation, self._world[:, 0], self._world[:, 1])
            for slot, name in enumerate(self.tracks):
                az, el = float(azimuths[slot]), float(elevations[slot])

                def fill(record: np.void, name=name, az=az, el=el) -> None:
                    self.renderer.command_move(name, azimuth_deg=az, elevation_deg=el, out=record)
                    record["enqueued_at_s"] = asked_at
                self.queue.push(fill)
            self._head_rotation = rotation
            self.head_batches += 1
            return True

    @property
    def head_rotation(self) -> np.ndarray | None:
        """The head rotation the scene is turned for (None: facing front)."""
        return None if self._head_rotation is None else self._head_rotation.copy()

    def set_reverb_db(self, reverb_db: float, *, enqueued_at_s: float | None = None) -> bool:
        """Queue the scene's wetness (dB relative to the room's physical level, ramped over the
        renderer's ``ramp_s``); False when the queue is full.  ``InputError`` for a value the
        schema refuses.  ``enqueued_at_s`` as for :meth:`set_source`."""
        value = check_placement_fields({"reverb_db": reverb_db})["reverb_db"]

        def fill(record: np.void) -> None:
            self.renderer.command_reverb_db(value, out=record)
            record["enqueued_at_s"] = time.perf_counter() if enqueued_at_s is None else enqueued_at_s
        with self._control:
            return self.queue.push(fill)

    @property
    def commands_applied(self) -> int:
        return int(self._counts[COUNT_APPLIED])

    @property
    def latency_count(self) -> int:
        return int(self._counts[COUNT_LATENCIES])

    # ---------------------------------------------------------------- audio side
    def _drain(self) -> None:
        """Apply every queued command: one call, no Python object per command."""
        ring, first, stop = self.queue.pending()
        self.renderer.apply_commands(ring, first, stop, time.perf_counter(), self.latencies_s,
                                     self._counts)
        self.queue.release(stop)

    def process_block(self, indata: np.ndarray, outdata: np.ndarray) -> None:
        """The callback's work on one block: ``indata`` (frames, tracks), ``outdata`` (frames, 2)."""
        frames = outdata.shape[0]
        if frames != self.block_size or indata.shape[1] != self._inputs.shape[0]:
            self.irregular_blocks += 1
            outdata.fill(0.0)
            return
        self._drain()
        np.copyto(self._inputs, indata.T)
        self.renderer.process(self._inputs, self._out)
        if limit_block(self._out, self._ceiling, self._release, self._limiter):
            self.limited_blocks += 1
        meter_block(self._out, self._meter_fall, self.output_peaks)
        np.copyto(outdata, self._out.T)
        self.blocks += 1

    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        if status:
            if status.input_overflow:
                self.input_overflows += 1
            if status.output_underflow:
                self.output_underflows += 1
            self.xruns += 1
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            self.process_block(indata, outdata)
        except Exception as exc:  # noqa: BLE001 - counted; the stream must not die in a show
            self.callback_errors += 1
            self.last_callback_error = exc
            outdata.fill(0.0)
        spent = time.perf_counter() - started
        if spent > self.max_callback_s:
            self.max_callback_s = spent
        if spent > self._period_s:
            self.callback_overruns += 1
            if time.thread_time() - started_cpu < self._period_s:
                self.callback_overruns_waiting += 1

    # ---------------------------------------------------------------- stream
    def start(self, device: Any = None, hostapi: str | None = None) -> "LiveMonitor":
        """Open and start the duplex stream (``device``: a sounddevice device id/name or an
        ``(input, output)`` pair; ``hostapi``: e.g. ``"JACK"`` to pick that host API's default)."""
        try:
            import sounddevice as sd
        except OSError as exc:
            raise StaseError("live monitoring needs PortAudio (Debian: libportaudio2)") from exc
        if device is None and hostapi:
            device = find_hostapi_device(sd, hostapi)
        self.warm_up()
        try:
            self.stream = sd.Stream(samplerate=self.sample_rate, blocksize=self.block_size,
                                    device=device, channels=(len(self.tracks), 2),
                                    dtype="float32", callback=self._callback,
                                    prime_output_buffers_using_stream_callback=False)
            self.stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudio errors come in several types
            self.stream = None
            raise StaseError(f"cannot open the audio stream ({len(self.tracks)} in, 2 out, "
                             f"{self.sample_rate} Hz, block {self.block_size}) on device "
                             f"{device!r}: {exc}") from exc
        log.info("live monitor running: %d tracks in, stereo out, %d Hz, block %d",
                 len(self.tracks), self.sample_rate, self.block_size)
        return self

    def warm_up(self) -> None:
        """Render one silent block and reset, so first-call costs (JIT dispatch, first touch of
        the buffers) are not paid inside the first real-time callback."""
        self.renderer.process(self._inputs, self._out)
        limit_block(self._out, self._ceiling, self._release, self._limiter)  # compiled here, not live
        meter_block(self._out, self._meter_fall, self.output_peaks)
        self.renderer.reset()
        self._out.fill(0.0)
        self._limiter[LIMITER_GAIN] = 1.0
        self.output_peaks.fill(0.0)

    def stop(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.stop()
            stream.close()

    def status(self) -> dict[str, Any]:
        n = min(self.latency_count, LATENCY_HISTORY)
        lat = self.latencies_s[:n]
        return {"engine": "thread", "running": bool(self.stream is not None and self.stream.active),
                "tracks": len(self.tracks), "sample_rate": self.sample_rate,
                "block_size": self.block_size, "blocks": self.blocks, "xruns": self.xruns,
                "input_overflows": self.input_overflows, "output_underflows": self.output_underflows,
                "cpu_load": round(float(self.stream.cpu_load), 4) if self.stream is not None else 0.0,
                "callback_errors": self.callback_errors, "callback_overruns": self.callback_overruns,
                "callback_overruns_waiting": self.callback_overruns_waiting,
                "max_callback_ms": round(self.max_callback_s * 1e3, 3),
                "last_callback_error": repr(self.last_callback_error) if self.last_callback_error else None,
                "commands_applied": self.commands_applied, "commands_dropped": self.queue.dropped,
                "limited_blocks": self.limited_blocks,
                "head_rotated": self._head_rotation is not None, "head_batches": self.head_batches,
                "head_batches_deferred": self.head_batches_deferred,
                "nonfinite_samples_silenced": int(self._limiter[LIMITER_NONFINITE]),
                "limiter_gain_db": round(20.0 * math.log10(max(float(self._limiter[LIMITER_GAIN]), 1e-12)), 2),
                "output_peak_dbfs": peak_dbfs(self.output_peaks),
                "move_to_block_ms_median": round(float(np.median(lat)) * 1e3, 3) if n else None}


def peak_dbfs(peaks: np.ndarray) -> list[float | None]:
    """Held peaks (linear) as dBFS, rounded to 0.1 dB; None for silence."""
    return [round(20.0 * math.log10(float(p)), 1) if p > 0.0 else None for p in peaks]


class _CallbackMoves:
    """A stand-in renderer without the command half (a test double), adapted: its records
    carry the change by number and its own ``move_source`` runs in the callback, so it is as
    real-time safe as the stand-in is.  SceneRenderer never takes this path."""

    def __init__(self, renderer: Any):
        self._renderer = renderer
        self._modes: list[str] = []
        self._tracks: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._renderer, name)

    def add_source(self, name: str, **placement: Any) -> None:
        self._renderer.add_source(name, **placement)
        self._tracks.append(name)

    def command_move(self, track: str, azimuth_deg=None, elevation_deg=None, distance_m=None,
                     gain_db=None, mode=None, role=_UNSET, reverb_db=None, *, out) -> None:
        out["row"] = [track_key(t) for t in self._tracks].index(track_key(track))
        for key, value in (("azimuth_deg", azimuth_deg), ("elevation_deg", elevation_deg),
                           ("distance_m", distance_m), ("gain_db", gain_db)):
            out[key] = math.nan if value is None else float(value)
        out["mode"] = -1 if mode is None else LOCALISATION_MODES.index(mode)

    def command_reverb_db(self, reverb_db: float, *, out) -> None:
        out["row"] = -1

    def apply_commands(self, ring, first, stop, now=0.0, latencies=None, counts=None) -> None:
        for k in range(first, stop):
            record = ring[k % len(ring)]
            if record["row"] < 0:
                continue
            values = {key: float(record[key]) for key in ("azimuth_deg", "elevation_deg", "distance_m", "gain_db")
                      if not math.isnan(record[key])}
            mode = int(record["mode"])
            self._renderer.move_source(self._tracks[int(record["row"])],
                                       mode=None if mode < 0 else LOCALISATION_MODES[mode], **values)
            if counts is not None:
                counts[COUNT_APPLIED] += 1


def find_hostapi_device(sd: Any, hostapi: str) -> tuple[int, int]:
    """``(input, output)`` default device ids of the host API whose name contains ``hostapi``."""
    for api in sd.query_hostapis():
        if hostapi.lower() in api["name"].lower():
            inp, out = api["default_input_device"], api["default_output_device"]
            if inp < 0 or out < 0:
                raise StaseError(f"host API {api['name']!r} has no default input/output device")
            return inp, out
    names = [a["name"] for a in sd.query_hostapis()]
    raise StaseError(f"no audio host API matching {hostapi!r}; available: {names} "
                     "(for JACK, start jackd first; PortAudio only lists JACK when a server runs)")
