"""Live binaural monitoring: DAW tracks in (one input channel per track), headphones out.

The daemon opens one sounddevice (PortAudio) duplex stream: ``len(tracks)`` input channels,
routed from the DAW over JACK or a loopback device, and 2 output channels.  The callback renders
the current plan with :class:`stase.dsp.scene.SceneRenderer`.  Position changes from OSC and MIDI
arrive through a bounded lock-free :class:`~stase.bridge.command_queue.CommandQueue` drained at the
start of each block; the renderer ramps them (``move_source`` never steps).

The callback obeys sounddevice's rules: it reads preallocated buffers, creates no arrays, takes
no lock, does no logging or I/O and never waits.  PortAudio's status flags (input overflow,
output underflow: JACK's xrun callback raises both) count as xruns, and a block whose render
took longer than the block period counts as a callback overrun (ours, not the server's); an
exception inside the render (a bug) is counted, the block
is silenced and the stream keeps running.

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
import time
from typing import Any, Iterable

import numpy as np
from numba import njit

from stase.core.conventions import LOCALISATION_MODES
from stase.core.errors import InputError, StaseError
from stase.core.placement import check_placement_fields

from stase.bridge.command_queue import NAN, OP_MOVE, WIDTH, CommandQueue

log = logging.getLogger("stase.monitor")

LATENCY_HISTORY = 4096
#: The live output's peak ceiling, dBFS, and the limiter's release time constant, seconds.
CEILING_DBFS = -0.1
LIMITER_RELEASE_S = 0.05
#: Limiter state: current gain (linear), count of non-finite samples silenced.
LIMITER_GAIN, LIMITER_NONFINITE = 0, 1


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


def _value(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


class LiveMonitor:
    """Render the DAW's tracks binaurally, live.

    Parameters
    ----------
    tracks : track names, in input-channel order.
    placements : ``{track: {"azimuth_deg", "elevation_deg", "distance_m", "gain_db", "mode"}}``
        starting positions (missing tracks start at 0 deg, 2 m, hrtf).
    sample_rate : Hz.
    block_size : frames per callback (fixed: the renderer is prepared for it).
    room, reverb_engine : passed to the renderer.
    renderer : an object with the SceneRenderer interface (default: a new ``SceneRenderer``).
    """

    def __init__(self, tracks: Iterable[str], placements: dict[str, dict[str, Any]] | None = None,
                 sample_rate: int = 48000, block_size: int = 256, room: str = "dry_studio",
                 reverb_engine: str = "convolution", renderer: Any = None,
                 queue_capacity: int = 1024):
        self.tracks = [str(t) for t in tracks]
        if not self.tracks:
            raise InputError("the live monitor needs at least one track (one input channel per track)")
        if block_size < 1 or sample_rate < 1:
            raise InputError(f"block_size and sample_rate must be positive, got {block_size}, {sample_rate}")
        self.sample_rate, self.block_size = int(sample_rate), int(block_size)
        self.slots = {name.lower(): i for i, name in enumerate(self.tracks)}
        self.queue = CommandQueue(queue_capacity)
        if renderer is None:
            from stase.dsp.scene import SceneRenderer  # lazy: the renderer may load an HRTF set
            renderer = SceneRenderer(sample_rate=self.sample_rate, block_size=self.block_size,
                                     room=room, reverb_engine=reverb_engine)
        self.renderer = renderer
        placements = {k.lower(): v for k, v in (placements or {}).items()}
        for name in self.tracks:
            p = placements.get(name.lower(), {})
            self.renderer.add_source(name, **{k: p[k] for k in
                                              ("azimuth_deg", "elevation_deg", "distance_m", "mode", "gain_db")
                                              if k in p})
        order = list(getattr(self.renderer, "source_ids", self.tracks))
        if [o.lower() for o in order] != [t.lower() for t in self.tracks]:
            raise StaseError(f"renderer source order {order} does not match the tracks {self.tracks}")
        # preallocated state for the callback
        self._inputs = np.zeros((len(self.tracks), self.block_size), dtype=np.float32)
        self._out = np.zeros((2, self.block_size), dtype=np.float32)
        self._record = np.zeros(WIDTH, dtype=np.float64)
        self._limiter = np.array([1.0, 0.0], dtype=np.float64)
        self._ceiling = float(10.0 ** (CEILING_DBFS / 20.0))
        self._release = float(1.0 - math.exp(-1.0 / (LIMITER_RELEASE_S * self.sample_rate)))
        self.limited_blocks = 0          # blocks in which the safety limiter turned the output down
        self.latencies_s = np.zeros(LATENCY_HISTORY, dtype=np.float64)
        self.latency_count = 0
        self.blocks = 0
        self.xruns = 0
        self.input_overflows = 0
        self.output_underflows = 0
        self.irregular_blocks = 0
        self.callback_errors = 0
        self.last_callback_error: BaseException | None = None
        self.commands_applied = 0
        self.callback_overruns = 0      # blocks whose render took longer than the block period
        self.max_callback_s = 0.0
        self._period_s = self.block_size / self.sample_rate
        self.stream: Any = None

    # ---------------------------------------------------------------- control side
    def set_source(self, track: str, azimuth_deg: float | None = None, elevation_deg: float | None = None,
                   distance_m: float | None = None, gain_db: float | None = None,
                   mode: str | None = None) -> bool:
        """Queue a move for the callback; False when the track is not monitored or the queue is full.

        ``InputError`` for a value :mod:`stase.core.placement` refuses (e.g. ``gain_db`` above +24 dB).
        """
        slot = self.slots.get(str(track).lower())
        if slot is None:
            return False
        check_placement_fields({k: v for k, v in (("azimuth_deg", azimuth_deg), ("elevation_deg", elevation_deg),
                                                  ("distance_m", distance_m), ("gain_db", gain_db))
                                if v is not None})  # the one schema: no value it refuses reaches the callback
        mode_index = -1 if mode is None else LOCALISATION_MODES.index(mode)
        return self.queue.push(OP_MOVE, slot,
                               NAN if azimuth_deg is None else float(azimuth_deg),
                               NAN if elevation_deg is None else float(elevation_deg),
                               NAN if distance_m is None else float(distance_m),
                               NAN if gain_db is None else float(gain_db),
                               mode_index, time.perf_counter())

    # ---------------------------------------------------------------- audio side
    def _drain(self) -> float:
        """Apply queued moves; returns the oldest enqueue time seen (0.0 when none)."""
        record = self._record
        oldest = 0.0
        while self.queue.pop_into(record):
            slot = int(record[1])
            mode_index = int(record[6])
            self.renderer.move_source(
                self.tracks[slot], azimuth_deg=_value(record[2]), elevation_deg=_value(record[3]),
                distance_m=_value(record[4]), gain_db=_value(record[5]),
                mode=None if mode_index < 0 else LOCALISATION_MODES[mode_index])
            self.commands_applied += 1
            if oldest == 0.0:
                oldest = record[7]
        return oldest

    def process_block(self, indata: np.ndarray, outdata: np.ndarray) -> None:
        """The callback's work on one block: ``indata`` (frames, tracks), ``outdata`` (frames, 2)."""
        frames = outdata.shape[0]
        if frames != self.block_size or indata.shape[1] != self._inputs.shape[0]:
            self.irregular_blocks += 1
            outdata.fill(0.0)
            return
        oldest = self._drain()
        np.copyto(self._inputs, indata.T)
        self.renderer.process(self._inputs, self._out)
        if limit_block(self._out, self._ceiling, self._release, self._limiter):
            self.limited_blocks += 1
        np.copyto(outdata, self._out.T)
        self.blocks += 1
        if oldest:
            self.latencies_s[self.latency_count % LATENCY_HISTORY] = time.perf_counter() - oldest
            self.latency_count += 1

    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        if status:
            if status.input_overflow:
                self.input_overflows += 1
            if status.output_underflow:
                self.output_underflows += 1
            self.xruns += 1
        started = time.perf_counter()
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
        self.renderer.reset()
        self._out.fill(0.0)
        self._limiter[LIMITER_GAIN] = 1.0

    def stop(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.stop()
            stream.close()

    def status(self) -> dict[str, Any]:
        n = min(self.latency_count, LATENCY_HISTORY)
        lat = self.latencies_s[:n]
        return {"running": bool(self.stream is not None and self.stream.active),
                "tracks": len(self.tracks), "sample_rate": self.sample_rate,
                "block_size": self.block_size, "blocks": self.blocks, "xruns": self.xruns,
                "input_overflows": self.input_overflows, "output_underflows": self.output_underflows,
                "cpu_load": round(float(self.stream.cpu_load), 4) if self.stream is not None else 0.0,
                "callback_errors": self.callback_errors, "callback_overruns": self.callback_overruns,
                "max_callback_ms": round(self.max_callback_s * 1e3, 3),
                "last_callback_error": repr(self.last_callback_error) if self.last_callback_error else None,
                "commands_applied": self.commands_applied, "commands_dropped": self.queue.dropped,
                "limited_blocks": self.limited_blocks,
                "nonfinite_samples_silenced": int(self._limiter[LIMITER_NONFINITE]),
                "limiter_gain_db": round(20.0 * math.log10(max(float(self._limiter[LIMITER_GAIN]), 1e-12)), 2),
                "move_to_block_ms_median": round(float(np.median(lat)) * 1e3, 3) if n else None}


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
