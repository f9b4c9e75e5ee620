"""A block-streaming binaural scene: sources with exclusive localisation modes and a shared room.

Holds
-----
SceneRenderer(sample_rate=48000, block_size=128, room="dry_studio", reverb_engine="convolution",
              hrtf=None, max_sources=256, reverb_db=0.0)
    ``add_source`` / ``move_source`` / ``remove_source`` at any time, ``process(inputs, out)``
    for any block length (1 .. anything), ``reset()``, ``set_reverb_db``.  Parameters are ramped
    over ``ramp_s`` (20 ms); a mode change crossfades two voices; a removed source's filters ring
    out.
    Live use, two halves: ``command_move`` / ``command_reverb_db`` (control thread: validate,
    resolve the source, take a free voice for a mode change) fill a fixed-size
    ``scene_kernel.COMMAND`` record; ``apply_commands`` (audio thread, one numba call, no
    allocation) copies the records' numbers into the voice state.  ``move_source`` and
    ``set_reverb_db`` are the two halves at once.

Sources are named by their track; two spellings of one track (``"Gtr L"``, ``"gtr-l"``) are the
same source (:func:`stase.core.names.track_key`, the project's one rule), so adding the second
is refused and either spelling moves it.

State (all named, :mod:`stase.dsp.scene_kernel`): ``_state`` (a ``SceneState``: the voice
records ``_voices``, ``scene_kernel.VOICE`` per slot, the stream's ``SCENE`` record ``_scene``,
delay lines, FFT windows and filters), ``_tables`` (``SceneTables``: the ``CONFIG`` record and the
HRTF set) and ``_kernel_scratch``; the control side reads voices by field
(``_voices["active"]``) and hands the kernel the bundles spread (``_kernel_args``, one numba call
per block).

Signal flow per source (all in :mod:`stase.dsp.scene_kernel`, one numba call per block)::

    x -> gain * 1/r (stase.dsp.distance) -> air-absorption low-pass -> localisation (one mode)
      -> near-field shelf per ear (below 1 m; itd_ild, hrtf) -> out
    x -> gain * send -> tail send + the two nearest early-reflection sectors -> room reverb -> out

The send of a source (``stase.dsp.distance``, ``stase.dsp.directivity``): the room's ``1 / r_c`` times
``sqrt(Q_ref / Q)`` for the source's role (directional sources feed the room less), Barron's
``exp(-6.91 r / (c T))`` for its distance (the tail) or relative to the sectors' distance (the
early reflections), the diffuse-field gain of the source's mode (``stase.dsp.brir.mode_diffuse_gains``),
and the wetness ``reverb_db`` of the scene plus that of the source (0 dB = the room's physical
level).

Localisation modes are exclusive per source, so no cue is counted twice: ``pan`` (constant-power
sine/cosine law on the lateral angle), ``itd_ild`` (Woodworth ITD as a fractional delay on the
far ear + Brown-Duda head shadow per ear, no HRTF), ``hrtf`` (interpolated HRIR convolution,
with the interpolated onset delays as fractional delays).

Changes made before the first ``process`` call after construction or ``reset`` take effect at
once (an offline render starts exactly where the plan says); later ones take effect at the next
128-sample frame boundary and are ramped.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from stase.core.conventions import (LOCALISATION_MODES, MAX_DISTANCE_M, MIN_DISTANCE_M, REFERENCE_DISTANCE_M,
                                   wrap_azimuth_deg)
from stase.dsp.distance import air_absorption_db_per_m, air_reference_hz
from stase.core.errors import InputError, StaseError
from stase.core.names import track_key
from stase.core.rates import check_sample_rate
from stase.dsp.hrtf import HrtfSet, load_hrtf
from stase.dsp import scene_kernel as K

#: Degrees a source must move before its HRTF filter is re-interpolated (and crossfaded).
FILTER_UPDATE_DEG = 1.0
_UNSET = object()


def reverb_db_problem(value, name: str = "reverb_db") -> str | None:
    """What is wrong with a wetness value (None when acceptable); bounds from stase.core.placement."""
    from stase.core.placement import REVERB_DB_RANGE
    low, high = REVERB_DB_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return (f"{name} must be a number of dB in [{low:g}, {high:g}] (wetness relative to the "
                f"room's physical level), got {type(value).__name__} {str(value)[:40]!r}")
    if not math.isfinite(float(value)) or not low <= float(value) <= high:
        return (f"{name} must be in [{low:g}, {high:g}] dB (wetness relative to the room's "
                f"physical level; 0 = as the room sounds), got {float(value):g}")
    return None


def check_reverb_db(value, name: str = "reverb_db") -> float:
    """``value`` as a float, or ``InputError`` saying what a wetness accepts."""
    problem = reverb_db_problem(value, name)
    if problem is not None:
        raise InputError(problem)
    return float(value)


class SceneRenderer:
    """Render mono source blocks to a binaural (2, n) block; see the module docstring.

    Parameters
    ----------
    sample_rate : Hz.
    block_size : the usual host block (the room reverb is prepared for it); any length works.
    room : room preset id, a measured room ("seminar_measured"), path of a RIR file, or None
        (also "dry"/"none") for no reverb; resolved by :func:`stase.dsp.rooms.resolve_room`.
    reverb_engine : "convolution" or "fdn" (passed to :class:`stase.dsp.rooms.RoomReverb`).
    hrtf : an :class:`HrtfSet`, a SOFA path, or None for the shipped KEMAR set.
    max_sources : most sources at once.
    ramp_s : duration of parameter ramps and mode crossfades, seconds.
    reverb_db : wetness of the whole scene relative to the room's physical level, dB in
        ``stase.core.placement.REVERB_DB_RANGE`` (each source adds its own).
    """

    def __init__(self, sample_rate: int = 48000, block_size: int = 128, room: str | None = "dry_studio",
                 reverb_engine: str = "convolution", hrtf: HrtfSet | str | Path | None = None,
                 max_sources: int = 256, ramp_s: float = 0.02, reverb_db: float = 0.0):
        sample_rate = check_sample_rate(sample_rate, "sample_rate")
        if not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise InputError(f"block_size must be a positive integer, got {block_size!r}")
        if not isinstance(max_sources, (int, np.integer)) or max_sources < 1:
            raise InputError(f"max_sources must be a positive integer, got {max_sources!r}")
        self.sample_rate = int(sample_rate)
        self.block_size = int(block_size)
        self.max_sources = int(max_sources)
        self.frame = K.FRAME
        self.ramp_frames = max(1, int(math.ceil(ramp_s * self.sample_rate / self.frame)))
        if isinstance(hrtf, HrtfSet):
            if hrtf.sample_rate != self.sample_rate:
                raise InputError(f"the HRTF set is at {hrtf.sample_rate} Hz but the scene runs at "
                                 f"{self.sample_rate} Hz; load it with load_hrtf(path, {self.sample_rate})")
            self.hrtf = hrtf
        else:
            self.hrtf = load_hrtf(hrtf, self.sample_rate)
        self.reverb_db = check_reverb_db(reverb_db)
        self.room_id = room
        self.reverb_engine = reverb_engine
        self._reverb = _make_reverb(room, reverb_engine, self.sample_rate, self.block_size)
        self._allocate()
        self._tracks: list[str] = []          # input rows, in order
        # control side: what was last asked per source, and its current voice slot
        # (keyed by stase.core.names.track_key: one spelling rule for the whole project)
        self._voice_of: dict[str, int] = {}   # track key -> voice slot
        self._row_of: dict[str, int] = {}     # track key -> input row
        self._placement: dict[str, dict] = {}  # track key -> normalised placement
        self._track_keys: dict[str, str] = {}  # spelling -> track key (a cache)

    # -- set-up --------------------------------------------------------------------------
    def _allocate(self) -> None:
        from stase.dsp.brir import mode_diffuse_gains
        from stase.dsp.distance import NEAR_FIELD_REFERENCE_M, near_field_table
        spec = self.hrtf.partition_spectra(self.frame)
        n_voices = 2 * self.max_sources + 8  # mode crossfades and ringing tails need spare slots
        parts, bins = spec.shape[2], spec.shape[3]
        reverb = self._reverb
        f_ref = air_reference_hz(self.sample_rate)
        # the room responses are for a head of unit diffuse-field mid-band energy: each mode's
        # sends carry its own ear responses' diffuse-field gain (stase.dsp.brir.mode_diffuse_gains)
        gains = mode_diffuse_gains(self.hrtf, self.sample_rate)
        distances, angles, table = near_field_table()
        constants = {"sample_rate": self.sample_rate,
                     "air_db_per_m": air_absorption_db_per_m(f_ref),
                     "air_omega": 2.0 * math.pi * f_ref / self.sample_rate,
                     "update_cos": math.cos(math.radians(FILTER_UPDATE_DEG)),
                     "base_delay": 1.0,
                     "reference_distance_m": REFERENCE_DISTANCE_M,
                     "min_distance_m": MIN_DISTANCE_M,
                     "tail_send": 1.0 if reverb is not None and reverb.has_tail else 0.0,
                     "decay_per_m": 0.0 if reverb is None else reverb.decay_per_m,
                     "ring_m": 0.0 if reverb is None else reverb.ring_m,
                     "head_gain_pan": math.sqrt(gains["pan"]),
                     "head_gain_itd_ild": math.sqrt(gains["itd_ild"]),
                     "head_gain_hrtf": math.sqrt(gains["hrtf"]),
                     "near_reference_m": NEAR_FIELD_REFERENCE_M,
                     "near_min_m": distances[0],
                     "near_log_step": math.log(distances[1] / distances[0]),
                     "near_angle_step_rad": math.radians(angles[1] - angles[0]),
                     "sector_wrap": 1 if reverb is None or reverb.sector_wrap else 0}
        config = np.zeros(1, dtype=K.CONFIG)
        config[0] = tuple(constants[name] for name in K.CONFIG.names)  # every field, by name
        sector_azimuths = np.ascontiguousarray(
            np.zeros(0) if reverb is None else reverb.sector_azimuths_deg, dtype=np.float64)
        n_sectors = sector_azimuths.size
        self._n_sends = 1 + n_sectors
        # tail after a voice stops: FDL partitions + longest delay, in frames
        self._tail_frames = parts + K.DELAY_LINE // self.frame + 2
        scene = np.zeros(1, dtype=K.SCENE)
        scene["ramp_frames"] = self.ramp_frames
        scene["tail_frames"] = self._tail_frames
        scene["send_gain"] = scene["send_gain_target"] = self._scene_send(self.reverb_db)
        self._state = K.SceneState(
            voices=np.zeros(n_voices, dtype=K.VOICE),
            scene=scene,
            delay_lines=np.zeros((n_voices, K.DELAY_LINE), dtype=np.float32),
            ear_windows=np.zeros((n_voices, 2, 2 * self.frame), dtype=np.float32),
            spectra_history=np.zeros((parts, n_voices, 2, bins), dtype=np.complex64),
            filters=np.zeros((n_voices, 2, 2, parts, bins), dtype=np.complex64),
            sector_gains=np.zeros((n_voices, max(n_sectors, 1))),
            # voice handouts: the control side counts them (``_voice_handed``), the audio side
            # echoes the count it started
            voice_started=np.zeros(n_voices, dtype=np.int64))
        self._tables = K.SceneTables(
            config=config,
            hrtf_spectra=np.ascontiguousarray(spec),
            hrtf_delays=np.ascontiguousarray(self.hrtf.delays, dtype=np.float64),
            face_inverse=np.ascontiguousarray(self.hrtf.face_inverse),
            faces=np.ascontiguousarray(self.hrtf.faces),
            sector_azimuths=sector_azimuths,
            near_table=np.ascontiguousarray(table))
        self._kernel_scratch = K.SceneScratch(
            accumulators=np.zeros((3, 2, bins), dtype=np.complex64),
            frame_outputs=np.zeros((3, 2, 2 * self.frame), dtype=np.float32),
            face_weights=np.zeros(3),
            direction=np.zeros(3),
            sector_shares=np.zeros(max(n_sectors, 1)),
            fft_axes=np.array([0], dtype=np.int64))
        # the per-block calls take the bundles spread (scene_kernel.render_spread: cheaper to unbox)
        self._kernel_args = K.spread_arguments(self._state, self._tables, self._kernel_scratch)
        # named views the control side reads
        self._voices = self._state.voices
        self._scene = scene[0]
        self._send = np.zeros((self._n_sends, max(self.block_size, self.frame)), dtype=np.float32)
        self._reverb_out = np.zeros(2 * max(self.block_size, self.frame), dtype=np.float32)
        self._scratch = np.zeros(2 * self.block_size, dtype=np.float32)  # flat: (2, n) views stay contiguous
        self._voice_handed = np.zeros(n_voices, dtype=np.int64)
        self._voice_applied = self._state.voice_started
        # this object's own commands (move_source, ...): applied together at the next process
        # (one numba call however many), or at once when the ring is full
        self._direct = np.zeros(2 * self.max_sources + 8, dtype=K.COMMAND)
        self._record_scratch = np.zeros(1, dtype=K.COMMAND)   # one record, filled whole by _place
        self._send_scales: dict[tuple, float] = {}             # (role, reverb_db) -> send factor
        self._direct_pending = 0
        self._direct_latencies = np.zeros(0)
        self._direct_counts = np.zeros(2, dtype=np.int64)

    # -- sources -------------------------------------------------------------------------
    @property
    def source_ids(self) -> list[str]:
        """Track names in the order of the rows ``process`` expects."""
        return list(self._tracks)

    def add_source(self, track: str, azimuth_deg: float = 0.0, elevation_deg: float = 0.0,
                   distance_m: float = 2.0, mode: str = "hrtf", gain_db: float = 0.0,
                   role: str | None = None, reverb_db: float = 0.0) -> None:
        """Add a source as the last input row (faded in over ``ramp_s`` once streaming).

        ``role`` sets the source's directivity (``stase.dsp.directivity``; None: a typical instrument);
        ``reverb_db`` its wetness relative to the scene's, dB.  Set-up, not for a running stream:
        the rows ``process`` expects change at once.
        """
        if not isinstance(track, str) or not track.strip():
            raise InputError(f"track must be a non-empty string, got {track!r}")
        key = self._key(track)
        if key in self._voice_of:
            existing = self._tracks[self._row_of[key]]
            same = "" if existing == track else f" (the same track as {existing!r})"
            raise InputError(f"source {track!r} already exists{same}; use move_source to change it")
        if len(self._tracks) >= self.max_sources:
            raise InputError(f"the scene holds at most {self.max_sources} sources (max_sources)")
        az, el, dist, gain, mode = _checked(azimuth_deg, elevation_deg, distance_m, gain_db, mode)
        placement = {"azimuth_deg": az, "elevation_deg": el, "distance_m": dist, "gain_db": gain,
                     "mode": mode, "role": _checked_role(role), "reverb_db": check_reverb_db(reverb_db)}
        command = self._direct_slot()
        self._place(command, len(self._tracks), -1, placement, new_voice=True)
        self._row_of[key] = len(self._tracks)
        self._tracks.append(track)
        self._voice_of[key] = int(command["new_voice"])
        self._placement[key] = placement
        self._direct_pending += 1

    def move_source(self, track: str, azimuth_deg: float | None = None, elevation_deg: float | None = None,
                    distance_m: float | None = None, gain_db: float | None = None,
                    mode: str | None = None, role=_UNSET, reverb_db: float | None = None) -> None:
        """Change a source; values ramp over ``ramp_s``; a new mode crossfades from the old one.

        ``role`` (None is a valid role: "unknown") and ``reverb_db`` change its send.  The same
        two halves as a live change (:meth:`command_move`, then :meth:`apply_commands`): the
        record waits in this object's own ring and is applied with the others at the next
        ``process`` (one numba call per block however many moves).  For the thread that calls
        ``process``; another thread uses :meth:`command_move` and a queue (``stase.bridge.monitor``).
        """
        self.command_move(track, azimuth_deg, elevation_deg, distance_m, gain_db, mode, role,
                          reverb_db, out=self._direct_slot())
        self._direct_pending += 1

    def set_reverb_db(self, reverb_db: float) -> None:
        """Wetness of the whole scene relative to the room's physical level (dB); ramps over
        ``ramp_s`` from the next frame on."""
        self.command_reverb_db(reverb_db, out=self._direct_slot())
        self._direct_pending += 1

    def remove_source(self, track: str) -> None:
        """Remove a source; later rows move up by one; what it already fed rings out.  Set-up,
        not for a running stream (the rows ``process`` expects change at once)."""
        self._voice(track)
        key = self._key(track)
        row = self._row_of[key]
        command = self._direct_slot()
        command["op"], command["row"], command["enqueued_at_s"] = K.OP_REMOVE, row, 0.0
        del self._voice_of[key]
        del self._placement[key]
        self._tracks.pop(row)
        self._row_of = {self._key(t): i for i, t in enumerate(self._tracks)}
        self._direct_pending += 1

    # -- commands: the control side makes them, the audio side applies them ----------------
    def command_move(self, track: str, azimuth_deg: float | None = None, elevation_deg: float | None = None,
                     distance_m: float | None = None, gain_db: float | None = None,
                     mode: str | None = None, role=_UNSET, reverb_db: float | None = None, *,
                     out) -> None:
        """Control side of a change: validate, resolve the source, fill the record ``out``.

        ``out`` is one :data:`stase.dsp.scene_kernel.COMMAND` record (e.g. a slot of a command
        ring); :meth:`apply_commands` applies it in the audio thread.  Fields left None keep the
        last value asked for.  A mode change takes a free voice here, so applying it allocates
        nothing.  Raises ``InputError`` (nothing changes) for a value the scene refuses.  One
        control thread at a time; every record made must be applied, in order.
        """
        v = self._voice(track)
        key = self._key(track)
        last = self._placement[key]
        if (elevation_deg is None and distance_m is None and gain_db is None and mode is None
                and role is _UNSET and reverb_db is None and type(azimuth_deg) is float
                and math.isfinite(azimuth_deg)):
            # the common live move, a new azimuth alone: nothing else to check or work out
            placement = dict(last, azimuth_deg=wrap_azimuth_deg(azimuth_deg))
            self._place(out, self._row_of[key], v, placement, new_voice=False)
            self._placement[key] = placement
            return
        az, el, dist, gain, new_mode = _checked(
            last["azimuth_deg"] if azimuth_deg is None else azimuth_deg,
            last["elevation_deg"] if elevation_deg is None else elevation_deg,
            last["distance_m"] if distance_m is None else distance_m,
            last["gain_db"] if gain_db is None else gain_db,
            last["mode"] if mode is None else mode)
        placement = {"azimuth_deg": az, "elevation_deg": el, "distance_m": dist, "gain_db": gain,
                     "mode": new_mode,
                     "role": last["role"] if role is _UNSET else _checked_role(role),
                     "reverb_db": last["reverb_db"] if reverb_db is None else check_reverb_db(reverb_db)}
        row = self._row_of[key]
        self._place(out, row, v, placement, new_voice=new_mode != last["mode"])
        self._placement[key] = placement
        if out["new_voice"] >= 0:
            self._voice_of[key] = int(out["new_voice"])

    def command_reverb_db(self, reverb_db: float, *, out) -> None:
        """Control side of :meth:`set_reverb_db`: validate, fill the record ``out``."""
        self.reverb_db = check_reverb_db(reverb_db)
        out["op"], out["scene_send"], out["enqueued_at_s"] = K.OP_SCENE_SEND, self._scene_send(self.reverb_db), 0.0

    def apply_commands(self, ring: np.ndarray, first: int, stop: int, now: float = 0.0,
                       latencies: np.ndarray | None = None, counts: np.ndarray | None = None) -> None:
        """Audio side: apply the records ``ring[first .. stop - 1]`` (indices modulo ``len(ring)``).

        Allocation-free and without Python objects per record (one numba call):
        ``latencies`` (float64 ring, seconds) receives ``now - enqueued_at_s`` per timed record,
        ``counts`` (int64, 2) counts applied records and recorded latencies
        (``scene_kernel.COUNT_*``).  This object's own pending commands (``add_source``,
        ``move_source``, ... made earlier on the same thread) go first.
        """
        if self._direct_pending:
            self._apply_direct()
        K.apply_commands_spread(ring, first, stop, now,
                         self._direct_latencies if latencies is None else latencies,
                         self._direct_counts if counts is None else counts,
                         *self._kernel_args)

    def _direct_slot(self) -> np.void:
        """The next free record of this object's own command ring (applied first when full)."""
        if self._direct_pending == len(self._direct):
            self._apply_direct()
        return self._direct[self._direct_pending]

    def _apply_direct(self) -> None:
        """Apply this object's own pending commands (before a block, a reset, a voice search)."""
        if self._direct_pending:
            count, self._direct_pending = self._direct_pending, 0
            self.apply_commands(self._direct, 0, count)

    def _place(self, out, row: int, voice: int, placement: dict, new_voice: bool) -> None:
        new, generation = -1, -1
        if new_voice:
            w = self._free_voice()
            self._voice_handed[w] += 1
            new, generation = w, int(self._voice_handed[w])
        # the whole record at once (field by field on a numpy record is ~8x slower, and a live
        # move makes one per block per moving source)
        scratch = self._record_scratch
        scratch[0] = (K.OP_PLACE, row, voice, new, generation, K.MODE_CODES[placement["mode"]],
                      placement["azimuth_deg"], placement["elevation_deg"], placement["distance_m"],
                      placement["gain_db"], self._send_scale(placement), 0.0, 0.0)
        if isinstance(out, np.void):
            out.setfield(scratch.view(_RAW_COMMAND)[0], _RAW_COMMAND, 0)
        else:
            out[...] = scratch[0]

    def _free_voice(self) -> int:
        """A voice slot no source uses, handed out by the control side.

        A slot is free once the audio side has started its last handout (``_voice_applied``
        caught up with ``_voice_handed``) and the kernel has since ended it (inactive).  The
        kernel only ever ends voices, and starts them holding the GIL, so reading ``_voices`` while a
        block renders can only see a slot as busy for longer, never free too early.
        """
        free = np.flatnonzero((self._voice_applied == self._voice_handed) & (self._voices["active"] == 0))
        if len(free) == 0 and self._direct_pending:
            self._apply_direct()  # a voice its own pending commands end before streaming is freed
            free = np.flatnonzero((self._voice_applied == self._voice_handed) & (self._voices["active"] == 0))
        if len(free) == 0:
            raise StaseError("no free voice slot (too many sources changing mode at once)")
        return int(free[0])

    def _scene_send(self, reverb_db: float) -> float:
        """The scene's send gain into the room (linear): the room's level times the wetness."""
        return 0.0 if self._reverb is None else self._reverb.send_gain * 10.0 ** (reverb_db / 20.0)

    def _send_scale(self, extra: dict) -> float:
        """A source's send factor: directivity against the room's reference source, wetness
        (worked out once per role and wetness: a live move asks for it every block)."""
        key = (extra["role"], extra["reverb_db"])
        scale = self._send_scales.get(key)
        if scale is None:
            from stase.dsp.directivity import send_scale
            reference_q = 1.0 if self._reverb is None else self._reverb.reference_q
            scale = send_scale(extra["role"], reference_q) * 10.0 ** (extra["reverb_db"] / 20.0)
            if len(self._send_scales) < 1024:
                self._send_scales[key] = scale
        return scale

    def source(self, track: str) -> dict:
        """The placement last asked for a source: azimuth_deg, elevation_deg, distance_m,
        gain_db, mode, role and reverb_db (normalised)."""
        self._voice(track)
        return dict(self._placement[self._key(track)])

    def _key(self, track) -> str:
        """The source's identity, :func:`stase.core.names.track_key` ("Gtr L" is "gtr-l"),
        remembered per spelling: a live move asks for it every block."""
        key = self._track_keys.get(track) if isinstance(track, str) else None
        if key is None:
            key = track_key(track)
            if isinstance(track, str) and len(self._track_keys) < 4096:
                self._track_keys[track] = key
        return key

    def _voice(self, track: str) -> int:
        try:
            return self._voice_of[self._key(track)]
        except KeyError:
            raise InputError(f"no source {track!r} in the scene; sources: {self._tracks}") from None

    def _init(self, v: int) -> None:
        K.init_voice(v, self._state, self._tables, self._kernel_scratch)

    # -- streaming -----------------------------------------------------------------------
    def process(self, inputs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Render one block.

        Parameters
        ----------
        inputs : float32 (n_sources, n), one row per ``source_ids`` entry (1-D allowed for one
            source).  NaN/Inf samples are treated as silence.
        out : float32 (2, n) to write into (allocated if None).
        """
        x = inputs
        if x.ndim == 1:
            x = x[None, :]
        self._apply_direct()
        if x.shape[0] != len(self._tracks):
            raise InputError(f"inputs has {x.shape[0]} rows but the scene has {len(self._tracks)} "
                             f"sources ({self._tracks})")
        n = x.shape[1]
        if out is None:
            out = np.zeros((2, n), dtype=np.float32)
        elif out.shape != (2, n) or out.dtype != np.float32:
            raise InputError(f"out must be float32 (2, {n}), got {out.dtype} {out.shape}")
        # One compiled specialisation (C-contiguous float32): views are copied, not recompiled.
        if x.dtype != np.float32 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=np.float32)
        if self._send.shape[1] < n:
            self._send = np.zeros((self._n_sends, n), dtype=np.float32)
        target = out
        if not out.flags.c_contiguous:
            if self._scratch.size < 2 * n:
                self._scratch = np.zeros(2 * n, dtype=np.float32)
            out = self._scratch[:2 * n].reshape(2, n)
        K.render_spread(x, n, out, self._send, *self._kernel_args)
        if self._reverb is not None:
            self._add_reverb(out, n)
        if target is not out:
            target[:] = out
        return target

    def _add_reverb(self, out: np.ndarray, n: int) -> None:
        step = self.block_size
        for start in range(0, n, step):
            m = min(step, n - start)
            wet = self._reverb_out[:2 * m].reshape(2, m)
            self._reverb.process(self._send[:, start:start + m], wet)
            K.add_wet(out, wet, start, m)

    def reset(self) -> None:
        """Silence every state (filters, delay lines, reverb) and finish all ramps at their targets."""
        self._apply_direct()
        scene, voices = self._scene, self._voices
        scene["send_gain"] = scene["send_gain_target"]
        scene["send_ramp_left"] = 0
        for v in np.flatnonzero(voices["active"]):
            voice = voices[v]  # a view: writing its fields writes the voice's state
            # voices on their way out (removed, faded out by a mode change, ringing out) go now
            if voice["row"] < 0 or voice["fade_target"] == 0.0 or voice["drain_left"] > 0:
                voice["active"] = 0
                continue
            for current, target in _RAMPED_PAIRS:
                voice[current] = voice[target]
            voice["ramp_left"] = voice["fade_left"] = voice["drain_left"] = 0
            self._init(v)
        scene["frame_pos"] = 0
        scene["fdl_pos"] = 0
        if self._reverb is not None:
            self._reverb.reset()
        scene["started"] = 0


_NUMBER_TYPES = (int, float, np.integer, np.floating)
#: a voice's ramped values: (current, target) fields of ``scene_kernel.VOICE``
_RAMPED_PAIRS = (("azimuth_deg", "azimuth_target_deg"), ("elevation_deg", "elevation_target_deg"),
                 ("distance_m", "distance_target_m"), ("gain_db", "gain_target_db"),
                 ("fade", "fade_target"), ("send_scale", "send_scale_target"))
#: a COMMAND record as raw bytes, to copy one whole record into a ring slot
_RAW_COMMAND = np.dtype((np.void, K.COMMAND.itemsize))


def _checked(azimuth_deg, elevation_deg, distance_m, gain_db, mode):
    """Validate and normalise a placement (plain-float maths: this runs per move)."""
    for name, value in (("azimuth_deg", azimuth_deg), ("elevation_deg", elevation_deg),
                        ("distance_m", distance_m), ("gain_db", gain_db)):
        if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES) or not math.isfinite(value):
            raise InputError(f"{name} must be a finite number, got {value!r}")
    if distance_m <= 0:
        raise InputError(f"distance_m must be > 0, got {distance_m}")
    if mode not in K.MODE_CODES:
        raise InputError(f"mode {mode!r} is not one of {LOCALISATION_MODES}")
    az = wrap_azimuth_deg(float(azimuth_deg))
    return (az, min(max(float(elevation_deg), -90.0), 90.0),
            min(max(float(distance_m), MIN_DISTANCE_M), MAX_DISTANCE_M), float(gain_db), mode)


def _checked_role(role):
    from stase.core.placement import field_problem
    problem = field_problem("role", role)
    if problem is not None:
        raise InputError(problem)
    return role


def _make_reverb(room, engine, sample_rate, block_size):
    """The room's :class:`stase.dsp.rooms.RoomReverb`, or None for no room.

    ``room`` is what :func:`stase.dsp.rooms.resolve_room` accepts (the same rules as an offline
    render: ``""`` and a file without an audio extension are errors, not "dry").
    """
    try:
        from stase.dsp.rooms import RoomReverb, resolve_room
    except ImportError as exc:
        raise StaseError("room reverb needs stase.dsp.rooms, which is not available; "
                         "use room=None for a dry render") from exc
    if resolve_room(room) is None:
        return None
    return RoomReverb(room, sample_rate, block_size, engine=engine)
