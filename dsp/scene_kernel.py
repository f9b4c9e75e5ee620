"""The numba kernel behind :class:`stase.dsp.scene.SceneRenderer`: every voice, every sample, one call.

Layout
------
All state is named (numpy structured dtypes, which numba compiles to fixed-offset loads, as fast
as a column constant into a wide table):

* :data:`VOICE`, one record per voice slot ``v`` (``state.voices[v]``): where the voice is and
  where it is going (``azimuth_deg`` / ``azimuth_target_deg``, ...), the values derived from
  them at the start and the end of the current frame (``direct_gain_start`` /
  ``direct_gain_end``, ``delay_left_*``, ``shadow_left_b0_*``, ``near_left_a1_*``, ...; samples
  interpolate linearly between the two), the filter states (``air_state``, ``shadow_left_x``,
  ...) and its flags and counters (``active``, ``mode``, ``row``, ``ramp_left``, ...).  The up
  to :data:`MAX_VOICE_SECTORS` early-reflection sectors a voice feeds in a frame are small
  sub-arrays indexed by a computed slot: ``sectors[j]``, ``sector_gain_start[j]``,
  ``sector_gain_end[j]``.
* :data:`SCENE`, one record (``state.scene[0]``): the stream's position (frame, FDL slot), the
  scene's ramped send gain, ramp and tail lengths in frames.
* :data:`CONFIG`, one record (``tables.config[0]``): constants fixed at set-up (sample rate, air
  absorption, distance law, near-field table axes, diffuse-field gains of the modes, ...).

The kernels take three named bundles of arrays (``collections.namedtuple``, a numba argument
type) besides a block's input and output:

* :class:`SceneState`: ``voices``, ``scene``, per voice a circular ``delay_lines`` row, for
  ``hrtf`` voices an overlap-save window per ear (``ear_windows``), a frequency-domain delay
  line of input spectra (``spectra_history``, FDL) and two sets of partitioned HRTF spectra
  (``filters``: current and previous, for crossfades), each voice's last gain per sector
  (``sector_gains``) and the voice handout each slot last started (``voice_started``, the
  control side's half of the slot handshake).
* :class:`SceneTables` (read only): ``config``, the HRTF set (``hrtf_spectra``, ``hrtf_delays``,
  ``face_inverse``, ``faces``), the room's ``sector_azimuths`` and the ``near_table``.
* :class:`SceneScratch`: FFT accumulators and outputs, and a few small work arrays.

Functions: :func:`render` (one block of every voice), :func:`apply_commands` (the audio side of
:data:`COMMAND` records), :func:`init_voice`, :func:`voice_params`, :func:`add_wet`.  The
per-block calls go through :func:`render_spread` and :func:`apply_commands_spread`, the same with
the bundles' fields spread by :func:`spread_arguments` (the records as int64 views): numba
unboxes a namedtuple argument about 6 us slower per call than its arrays passed alone.

Processing runs in frames of ``B`` samples (128).  At each frame start the ramped parameters
(direction, distance, gain, voice fade) step towards their targets and everything derived from
them is recomputed; within the frame, gains, delays and filter coefficients are interpolated
linearly per sample.  A call of any length is cut at frame boundaries; a partial frame is
computed from the samples it has (zero latency), so the output does not depend on how a stream
is cut into calls.

``hrtf`` voices (uniformly partitioned overlap-save, Wefers 2015, ch. 5): the mono signal is
delayed per ear (interpolated onset delay, Lagrange), each ear's window is transformed once per
frame, multiplied with the voice's interpolated HRTF partitions and *accumulated over all voices*;
one inverse FFT per ear per frame serves every voice.  When a voice's filter changes, its old and
new products go to separate accumulators whose outputs are crossfaded over the frame (three
inverse FFTs per ear instead of one, still shared by all voices).

Reverb sends (``send`` rows): row 0 feeds the room's shared diffuse tail (or, for a room
response without direction sectors, the whole response); row ``1 + k`` feeds early-reflection
sector ``k`` (:mod:`stase.dsp.brir`).  Each voice sends to row 0 with Barron's distance factor
``exp(-D r)`` and to the two sectors nearest its azimuth (energy panning,
``stase.dsp.kernels.sector_weights``) with ``exp(-D (r - r_ring))``; both carry the voice's level,
its directivity and wetness scale (``send_scale``) and the diffuse-field gain of the voice's mode
(``CONFIG.head_gain_*``: what the mode's ear filters give a diffuse field, so direct and
reverberant sound keep their physical balance).  Sector gains ramp per sample between frame
starts; a voice feeds at most four sectors in a frame (two before and two after a move across a
sector).

Commands (:data:`COMMAND`, :func:`apply_commands`): a change made while streaming arrives as a
fixed-size typed record the control side filled (validated, normalised, its voice slot chosen);
applying it copies numbers into the voice state (and clears a voice it starts), nothing else, so
the audio thread allocates nothing for it.  Targets then ramp over ``SCENE.ramp_frames`` frames;
the scene's send gain ramps the same way (``send_gain`` towards ``send_gain_target``).

Near field (``itd_ild`` and ``hrtf``): below the reference distance each ear's signal passes a
first-order shelf (``stase.dsp.kernels.near_field_shelf``, Duda & Martens' spherical head) and the
ITD grows by the sphere's path difference; beyond it the shelf is skipped.
"""
from __future__ import annotations

import collections
import math

import numpy as np
import rocket_fft
from numba import njit

from stase.dsp.kernels import (air_pole, delay_read, find_face, head_shadow_coefficients,
                               near_field_itd_change_s, near_field_shelf, pan_gains,
                               sector_weights, woodworth_itd_s)

MODE_PAN, MODE_ITD_ILD, MODE_HRTF = 0, 1, 2
MODE_CODES = {"pan": MODE_PAN, "itd_ild": MODE_ITD_ILD, "hrtf": MODE_HRTF}
FRAME = 128
DELAY_LINE = 256  # power of two, > MAX_ONSET_DELAY + ITD + 3
#: Most sectors a voice feeds within one frame (two on each side of a move across a sector).
MAX_VOICE_SECTORS = 4

# the per-frame ramped values: each has a ``_start`` (frame start) and an ``_end`` (frame end)
# field, in this order; ``_shift_frame_values`` moves end to start at each frame start
_RAMPED = ("direct_gain",            # linear, level * 1/r
           "tail_send",              # linear gain into send row 0
           "air_pole",               # one-pole low-pass coefficient of the air absorption
           "delay_left", "delay_right",  # fractional delay per ear, samples
           "pan_left", "pan_right",      # pan-mode gains, linear
           "shadow_left_b0", "shadow_left_b1", "shadow_left_a1",     # head shadow, left ear
           "shadow_right_b0", "shadow_right_b1", "shadow_right_a1",  # head shadow, right ear
           "near_left_b0", "near_left_b1", "near_left_a1",           # near-field shelf, left
           "near_right_b0", "near_right_b1", "near_right_a1")        # near-field shelf, right

#: One voice's state (see the module docstring).  Angles in degrees, distances in metres,
#: gains linear unless named ``_db``; counters (``*_left``) in frames.
VOICE = np.dtype(
    [("azimuth_deg", np.float64), ("elevation_deg", np.float64), ("distance_m", np.float64),
     ("gain_db", np.float64),
     ("azimuth_target_deg", np.float64), ("elevation_target_deg", np.float64),
     ("distance_target_m", np.float64), ("gain_target_db", np.float64),
     ("fade", np.float64), ("fade_target", np.float64),        # voice fade in/out, 0..1
     ("send_scale", np.float64), ("send_scale_target", np.float64),  # directivity and wetness
     ]
    + [(f"{name}_{end}", np.float64) for name in _RAMPED for end in ("start", "end")]
    + [("air_state", np.float64),                               # air low-pass output
       ("shadow_left_x", np.float64), ("shadow_left_y", np.float64),    # head-shadow states
       ("shadow_right_x", np.float64), ("shadow_right_y", np.float64),
       ("near_left_x", np.float64), ("near_left_y", np.float64),        # near-field states
       ("near_right_x", np.float64), ("near_right_y", np.float64),
       # unit vector of the direction the current HRTF filter was interpolated for
       ("filter_x", np.float64), ("filter_y", np.float64), ("filter_z", np.float64),
       ("sector_gain_start", np.float64, (MAX_VOICE_SECTORS,)),
       ("sector_gain_end", np.float64, (MAX_VOICE_SECTORS,)),
       ("active", np.int64),            # 1 while the slot renders
       ("mode", np.int64),              # MODE_*
       ("row", np.int64),               # input row, -1 once its source is removed
       ("ramp_left", np.int64),         # frames until direction, distance, gain reach targets
       ("fade_left", np.int64),         # frames until ``fade`` reaches ``fade_target``
       ("drain_left", np.int64),        # frames until a silent voice's tail has rung out
       ("free_after_fade", np.int64),   # ``drain_left`` to start when a fade-out ends (0: none)
       ("face", np.int64),              # HRTF triangle of the last direction
       ("filter_slot", np.int64),       # which of the two ``filters`` sets is current
       ("crossfade", np.int64),         # 1 while the filter crossfades in this frame
       ("write_index", np.int64),       # last written index of the delay line
       ("near_field_on", np.int64),     # 1 while the near-field shelf must run
       ("sector_count", np.int64),      # sectors fed in this frame (<= MAX_VOICE_SECTORS)
       ("sectors", np.int64, (MAX_VOICE_SECTORS,))],   # their sector indices
    align=True)

#: The stream's state, one record.
SCENE = np.dtype([("frame_pos", np.int64),       # samples into the current frame
                  ("fdl_pos", np.int64),         # newest slot of the FDL
                  ("started", np.int64),         # 1 once rendering began: commands then ramp
                  ("send_ramp_left", np.int64),  # frames until send_gain reaches its target
                  ("ramp_frames", np.int64),     # length of every parameter ramp and fade
                  ("tail_frames", np.int64),     # frames a stopped voice needs to ring out
                  ("send_gain", np.float64),     # the scene's send into the room, linear
                  ("send_gain_target", np.float64)], align=True)

#: Constants of a scene, one record (fixed at set-up).
CONFIG = np.dtype([("sample_rate", np.float64),          # Hz
                   ("air_db_per_m", np.float64),         # air absorption at the reference frequency
                   ("air_omega", np.float64),            # that frequency, rad/sample
                   ("update_cos", np.float64),           # cos of the filter update angle
                   ("base_delay", np.float64),           # near ear's delay, samples
                   ("reference_distance_m", np.float64),  # 0 dB distance of the 1/r law
                   ("min_distance_m", np.float64),
                   ("tail_send", np.float64),            # 1: the room has a separate tail
                   ("decay_per_m", np.float64),          # Barron's D, 1/m
                   ("ring_m", np.float64),               # distance the sectors were made at
                   ("head_gain_pan", np.float64),        # diffuse-field gain of each mode
                   ("head_gain_itd_ild", np.float64),
                   ("head_gain_hrtf", np.float64),
                   ("near_reference_m", np.float64),     # near field below this distance
                   ("near_min_m", np.float64),           # near-field table: first distance,
                   ("near_log_step", np.float64),        # log distance step,
                   ("near_angle_step_rad", np.float64),  # angle step
                   ("sector_wrap", np.int64)],           # 1: the sectors go all round
                  align=True)

SceneState = collections.namedtuple(
    "SceneState", "voices scene delay_lines ear_windows spectra_history filters sector_gains "
                  "voice_started")
SceneState.__doc__ = """What a scene's kernels change (see the module docstring for each array)."""
SceneTables = collections.namedtuple(
    "SceneTables", "config hrtf_spectra hrtf_delays face_inverse faces sector_azimuths "
                   "near_table")
SceneTables.__doc__ = """What a scene's kernels read only (see the module docstring)."""
SceneScratch = collections.namedtuple(
    "SceneScratch", "accumulators frame_outputs face_weights direction sector_shares fft_axes")
SceneScratch.__doc__ = """Work arrays of a scene's kernels (contents meaningless between calls)."""

# commands: control side -> audio side ----------------------------------------------------
#: One scene command, a fixed-size typed record (the control side fills it, :func:`apply_commands`
#: copies its numbers into the voice state).  ``op``: :data:`OP_PLACE` (retarget ``voice``, or,
#: when ``new_voice >= 0``, start ``new_voice`` with handout ``generation`` and fade ``voice`` out:
#: a new source or a mode change), :data:`OP_REMOVE` (the source at input ``row``),
#: :data:`OP_SCENE_SEND` (the scene's send gain ``scene_send``, linear, ramped).  Placements come
#: normalised (azimuth wrapped, elevation and distance clamped); ``send_scale`` is the source's
#: directivity and wetness factor (linear); ``enqueued_at_s`` is ``time.perf_counter()`` at the
#: push (0: not timed).
COMMAND = np.dtype([("op", np.int64), ("row", np.int64), ("voice", np.int64),
                    ("new_voice", np.int64), ("generation", np.int64), ("mode", np.int64),
                    ("azimuth_deg", np.float64), ("elevation_deg", np.float64),
                    ("distance_m", np.float64), ("gain_db", np.float64),
                    ("send_scale", np.float64), ("scene_send", np.float64),
                    ("enqueued_at_s", np.float64)], align=True)
OP_PLACE, OP_REMOVE, OP_SCENE_SEND = 1, 2, 3
#: ``counts`` of :func:`apply_commands`: commands applied, latencies recorded.
COUNT_APPLIED, COUNT_LATENCIES = 0, 1


@njit(cache=True, nogil=True)
def _wrap180(a):
    a = (a + 180.0) % 360.0 - 180.0
    return 180.0 if a == -180.0 else a


@njit(cache=True, nogil=True)
def _near_field_is_identity(voice):
    """Both ears' near-field shelves pass the signal unchanged at the frame's start and end."""
    return (voice.near_left_b0_start == 1.0 and voice.near_left_b0_end == 1.0
            and voice.near_right_b0_start == 1.0 and voice.near_right_b0_end == 1.0
            and voice.near_left_b1_start == 0.0 and voice.near_left_b1_end == 0.0
            and voice.near_left_a1_start == 0.0 and voice.near_left_a1_end == 0.0
            and voice.near_right_b1_start == 0.0 and voice.near_right_b1_end == 0.0
            and voice.near_right_a1_start == 0.0 and voice.near_right_a1_end == 0.0)


@njit(cache=True, nogil=True)
def _near_field(voice, config, near_table, y, dist):
    """Frame-end near-field shelves of both ears; ``near_field_on`` says whether they must run."""
    rate = config.sample_rate
    if dist < config.near_reference_m:
        args = (near_table, config.near_min_m, config.near_log_step, config.near_angle_step_rad,
                config.near_reference_m, rate)
        b0, b1, a1 = near_field_shelf(dist, math.acos(min(max(y, -1.0), 1.0)), *args)
        voice.near_left_b0_end, voice.near_left_b1_end, voice.near_left_a1_end = b0, b1, a1
        b0, b1, a1 = near_field_shelf(dist, math.acos(min(max(-y, -1.0), 1.0)), *args)
        voice.near_right_b0_end, voice.near_right_b1_end, voice.near_right_a1_end = b0, b1, a1
    else:
        voice.near_left_b0_end, voice.near_left_b1_end, voice.near_left_a1_end = 1.0, 0.0, 0.0
        voice.near_right_b0_end, voice.near_right_b1_end, voice.near_right_a1_end = 1.0, 0.0, 0.0
    identity = _near_field_is_identity(voice)
    if identity and voice.near_field_on != 0:  # leaving the near field: no stale filter state
        voice.near_left_x = 0.0
        voice.near_left_y = 0.0
        voice.near_right_x = 0.0
        voice.near_right_y = 0.0
    voice.near_field_on = 0 if identity else 1


@njit(cache=True, nogil=True)
def _sends(voice, send_gain, config, sector_azimuths, sector_gains, weights, level, dist):
    """Frame-end reverb sends: the tail row and up to four sector gains (start values kept).

    ``sector_gains``: the voice's last gain per sector (updated); ``weights``: scratch, one per
    sector.
    """
    scale = level * send_gain * voice.send_scale
    mode = voice.mode
    if mode == MODE_HRTF:
        scale *= config.head_gain_hrtf
    elif mode == MODE_PAN:
        scale *= config.head_gain_pan
    else:
        scale *= config.head_gain_itd_ild
    decay = config.decay_per_m
    voice.tail_send_end = scale * config.tail_send * math.exp(-decay * dist)
    n_sectors = sector_azimuths.shape[0]
    if n_sectors == 0:
        voice.sector_count = 0
        return
    early = scale * math.exp(-decay * (dist - config.ring_m))
    sector_weights(voice.azimuth_deg, sector_azimuths, config.sector_wrap != 0, weights)
    count = 0
    for k in range(n_sectors):
        new = early * weights[k]
        old = sector_gains[k]
        if (new != 0.0 or old != 0.0) and count < MAX_VOICE_SECTORS:
            voice.sectors[count] = k
            voice.sector_gain_start[count] = old
            voice.sector_gain_end[count] = new
            count += 1
        sector_gains[k] = new
    voice.sector_count = count


@njit(cache=True, nogil=True)
def voice_params(v, state, tables, scratch, force_filter):
    """Recompute voice ``v``'s frame-end values (``*_end``) from its current direction and level.

    Returns True when the HRTF filter changed (the caller crossfades it).
    """
    voice = state.voices[v]
    config = tables.config[0]
    rate = config.sample_rate
    az = math.radians(voice.azimuth_deg)
    el = math.radians(voice.elevation_deg)
    x = math.cos(el) * math.cos(az)
    y = math.cos(el) * math.sin(az)
    z = math.sin(el)
    level = voice.fade * 10.0 ** (voice.gain_db / 20.0)
    dist = max(voice.distance_m, config.min_distance_m)
    voice.direct_gain_end = level * config.reference_distance_m / dist
    _sends(voice, state.scene[0].send_gain, config, tables.sector_azimuths, state.sector_gains[v],
           scratch.sector_shares, level, dist)
    voice.air_pole_end = air_pole(config.air_db_per_m * voice.distance_m, config.air_omega)
    mode = voice.mode
    lateral = math.asin(min(max(y, -1.0), 1.0))
    if mode == MODE_PAN:
        gl, gr = pan_gains(-lateral / (0.5 * math.pi))
        voice.pan_left_end = gl
        voice.pan_right_end = gr
        return False
    _near_field(voice, config, tables.near_table, y, dist)
    near_itd = near_field_itd_change_s(lateral, dist, config.near_reference_m) * rate
    if mode == MODE_ITD_ILD:
        itd = woodworth_itd_s(lateral) * rate + near_itd
        base = config.base_delay
        voice.delay_left_end = base + max(-itd, 0.0)
        voice.delay_right_end = base + max(itd, 0.0)
        b0, b1, a1 = head_shadow_coefficients(math.acos(min(max(y, -1.0), 1.0)), rate)
        voice.shadow_left_b0_end = b0
        voice.shadow_left_b1_end = b1
        voice.shadow_left_a1_end = a1
        b0, b1, a1 = head_shadow_coefficients(math.acos(min(max(-y, -1.0), 1.0)), rate)
        voice.shadow_right_b0_end = b0
        voice.shadow_right_b1_end = b1
        voice.shadow_right_a1_end = a1
        return False
    direction = scratch.direction
    weights = scratch.face_weights
    direction[0] = x
    direction[1] = y
    direction[2] = z
    face = find_face(tables.face_inverse, direction, voice.face, weights)
    voice.face = face
    faces = tables.faces
    delays = tables.hrtf_delays
    a, b, c = faces[face, 0], faces[face, 1], faces[face, 2]
    wa, wb, wc = weights[0], weights[1], weights[2]
    voice.delay_left_end = wa * delays[a, 0] + wb * delays[b, 0] + wc * delays[c, 0]
    voice.delay_right_end = wa * delays[a, 1] + wb * delays[b, 1] + wc * delays[c, 1]
    if near_itd > 0.0:    # a close source on the left: the right ear's path grows
        voice.delay_right_end += near_itd
    else:
        voice.delay_left_end -= near_itd
    cos_moved = x * voice.filter_x + y * voice.filter_y + z * voice.filter_z
    at_rest = voice.ramp_left == 0 and cos_moved < 1.0 - 1e-12
    if not (force_filter or cos_moved < config.update_cos or at_rest):
        return False
    slot = 1 - voice.filter_slot
    fwa, fwb, fwc = np.float32(wa), np.float32(wb), np.float32(wc)
    spectra = tables.hrtf_spectra
    filters = state.filters
    for ear in range(2):
        for part in range(spectra.shape[2]):
            dst = filters[v, slot, ear, part]
            sa = spectra[a, ear, part]
            sb = spectra[b, ear, part]
            sc = spectra[c, ear, part]
            for k in range(dst.shape[0]):
                dst[k] = fwa * sa[k] + fwb * sb[k] + fwc * sc[k]
    voice.filter_slot = slot
    voice.filter_x = x
    voice.filter_y = y
    voice.filter_z = z
    return True


@njit(cache=True, nogil=True)
def _shift_frame_values(voice):
    """Frame-start values (``*_start``) take the previous frame's end values (``*_end``)."""
    voice.direct_gain_start = voice.direct_gain_end
    voice.tail_send_start = voice.tail_send_end
    voice.air_pole_start = voice.air_pole_end
    voice.delay_left_start = voice.delay_left_end
    voice.delay_right_start = voice.delay_right_end
    voice.pan_left_start = voice.pan_left_end
    voice.pan_right_start = voice.pan_right_end
    voice.shadow_left_b0_start = voice.shadow_left_b0_end
    voice.shadow_left_b1_start = voice.shadow_left_b1_end
    voice.shadow_left_a1_start = voice.shadow_left_a1_end
    voice.shadow_right_b0_start = voice.shadow_right_b0_end
    voice.shadow_right_b1_start = voice.shadow_right_b1_end
    voice.shadow_right_a1_start = voice.shadow_right_a1_end
    voice.near_left_b0_start = voice.near_left_b0_end
    voice.near_left_b1_start = voice.near_left_b1_end
    voice.near_left_a1_start = voice.near_left_a1_end
    voice.near_right_b0_start = voice.near_right_b0_end
    voice.near_right_b1_start = voice.near_right_b1_end
    voice.near_right_a1_start = voice.near_right_a1_end


@njit(cache=True, nogil=True)
def _frame_start(state, tables, scratch):
    scene = state.scene[0]
    ramp = scene.send_ramp_left
    if ramp > 0:  # the scene's wetness: a linear ramp in frames, then per sample within each
        scene.send_gain += (scene.send_gain_target - scene.send_gain) / ramp
        scene.send_ramp_left = ramp - 1
    voices = state.voices
    for v in range(voices.shape[0]):
        voice = voices[v]
        if voice.active == 0:
            continue
        if voice.drain_left > 0:
            voice.drain_left -= 1
            if voice.drain_left == 0:
                voice.active = 0
                continue
        ramp = voice.ramp_left
        if ramp > 0:
            voice.azimuth_deg = _wrap180(
                voice.azimuth_deg + _wrap180(voice.azimuth_target_deg - voice.azimuth_deg) / ramp)
            voice.elevation_deg += (voice.elevation_target_deg - voice.elevation_deg) / ramp
            voice.distance_m += (voice.distance_target_m - voice.distance_m) / ramp
            voice.gain_db += (voice.gain_target_db - voice.gain_db) / ramp
            voice.send_scale += (voice.send_scale_target - voice.send_scale) / ramp
            voice.ramp_left = ramp - 1
        fade = voice.fade_left
        if fade > 0:
            voice.fade += (voice.fade_target - voice.fade) / fade
            voice.fade_left = fade - 1
            if fade == 1 and voice.free_after_fade > 0:
                # silent from the end of this frame on; free the slot once its tail has rung out
                voice.drain_left = voice.free_after_fade
        _shift_frame_values(voice)
        changed = voice_params(v, state, tables, scratch, False)
        voice.crossfade = 1 if changed else 0


@njit(cache=True, nogil=True)
def init_voice(v, state, tables, scratch):
    """Clear voice ``v``'s states and compute its parameters with no ramp (``*_start == *_end``)."""
    state.delay_lines[v, :] = 0.0
    state.ear_windows[v] = 0.0
    state.spectra_history[:, v] = 0.0
    state.sector_gains[v, :] = 0.0
    voice = state.voices[v]
    voice.air_state = 0.0
    voice.shadow_left_x = 0.0
    voice.shadow_left_y = 0.0
    voice.shadow_right_x = 0.0
    voice.shadow_right_y = 0.0
    voice.near_left_x = 0.0
    voice.near_left_y = 0.0
    voice.near_right_x = 0.0
    voice.near_right_y = 0.0
    # no near-field filter yet: start values are the identity, end values come next
    voice.near_left_b0_end = 1.0
    voice.near_right_b0_end = 1.0
    voice.near_left_b1_end = 0.0
    voice.near_left_a1_end = 0.0
    voice.near_right_b1_end = 0.0
    voice.near_right_a1_end = 0.0
    _shift_frame_values(voice)
    voice.near_field_on = 0
    voice.filter_x = 2.0  # no filter yet: any direction differs
    voice.crossfade = 0
    voice.write_index = 0
    voice_params(v, state, tables, scratch, True)
    filters = state.filters
    filters[v, 1 - voice.filter_slot] = filters[v, voice.filter_slot]
    voice.crossfade = 0
    _shift_frame_values(voice)
    for j in range(voice.sector_count):
        voice.sector_gain_start[j] = voice.sector_gain_end[j]
    # the start values now equal the end values: decide afresh whether the filter runs
    voice.near_field_on = 0 if _near_field_is_identity(voice) else 1


@njit(cache=True, nogil=True, inline="always")
def _add_send(row, x, pos, fpos, seg, g0, dg, inv_b):
    """``row[pos + i] += (g0 + dg t_i) x[pos + i]`` over a segment, NaN/Inf input as silence."""
    if g0 == 0.0 and dg == 0.0:
        return
    for i in range(seg):
        value = x[pos + i]
        if math.isfinite(value):
            row[pos + i] += (g0 + dg * ((fpos + i + 1) * inv_b)) * value


@njit(cache=True, nogil=True)
def _samples(voice, inputs, pos, fpos, seg, out, send, line, ear_window, frame):
    """Per-sample stage of one voice for ``seg`` samples starting at frame position ``fpos``.

    ``line``: the voice's delay line; ``ear_window``: its (2, 2 frame) overlap-save windows.
    """
    row = voice.row
    mode = voice.mode
    mask = line.shape[0] - 1
    inv_b = 1.0 / frame
    g0, dg = voice.direct_gain_start, voice.direct_gain_end - voice.direct_gain_start
    s0, ds = voice.tail_send_start, voice.tail_send_end - voice.tail_send_start
    p0, dp = voice.air_pole_start, voice.air_pole_end - voice.air_pole_start
    lp = voice.air_state
    gl0, dgl = voice.pan_left_start, voice.pan_left_end - voice.pan_left_start
    gr0, dgr = voice.pan_right_start, voice.pan_right_end - voice.pan_right_start
    dl0, ddl = voice.delay_left_start, voice.delay_left_end - voice.delay_left_start
    dr0, ddr = voice.delay_right_start, voice.delay_right_end - voice.delay_right_start
    bl0, dbl0 = voice.shadow_left_b0_start, voice.shadow_left_b0_end - voice.shadow_left_b0_start
    bl1, dbl1 = voice.shadow_left_b1_start, voice.shadow_left_b1_end - voice.shadow_left_b1_start
    al, dal = voice.shadow_left_a1_start, voice.shadow_left_a1_end - voice.shadow_left_a1_start
    br0, dbr0 = (voice.shadow_right_b0_start,
                 voice.shadow_right_b0_end - voice.shadow_right_b0_start)
    br1, dbr1 = (voice.shadow_right_b1_start,
                 voice.shadow_right_b1_end - voice.shadow_right_b1_start)
    ar, dar = voice.shadow_right_a1_start, voice.shadow_right_a1_end - voice.shadow_right_a1_start
    xl, yl = voice.shadow_left_x, voice.shadow_left_y
    xr, yr = voice.shadow_right_x, voice.shadow_right_y
    near = voice.near_field_on != 0
    nlb0, dnlb0 = voice.near_left_b0_start, voice.near_left_b0_end - voice.near_left_b0_start
    nlb1, dnlb1 = voice.near_left_b1_start, voice.near_left_b1_end - voice.near_left_b1_start
    nla, dnla = voice.near_left_a1_start, voice.near_left_a1_end - voice.near_left_a1_start
    nrb0, dnrb0 = voice.near_right_b0_start, voice.near_right_b0_end - voice.near_right_b0_start
    nrb1, dnrb1 = voice.near_right_b1_start, voice.near_right_b1_end - voice.near_right_b1_start
    nra, dnra = voice.near_right_a1_start, voice.near_right_a1_end - voice.near_right_a1_start
    nxl, nyl = voice.near_left_x, voice.near_left_y
    nxr, nyr = voice.near_right_x, voice.near_right_y
    write = voice.write_index
    if row >= 0:
        # the sends first, one contiguous pass per row (vectorisable), then the voice itself
        _add_send(send[0], inputs[row], pos, fpos, seg, s0, ds, inv_b)
        for j in range(voice.sector_count):
            g_start = voice.sector_gain_start[j]
            _add_send(send[1 + voice.sectors[j]], inputs[row], pos, fpos, seg, g_start,
                      voice.sector_gain_end[j] - g_start, inv_b)
    for i in range(seg):
        t = (fpos + i + 1) * inv_b
        x = 0.0
        if row >= 0:
            x = inputs[row, pos + i]
            if not math.isfinite(x):
                x = 0.0
        p = p0 + dp * t
        lp = (1.0 - p) * (g0 + dg * t) * x + p * lp
        if mode == MODE_PAN:
            out[0, pos + i] += (gl0 + dgl * t) * lp
            out[1, pos + i] += (gr0 + dgr * t) * lp
            continue
        write = (write + 1) & mask
        line[write] = lp
        left = delay_read(line, mask, write, dl0 + ddl * t)
        right = delay_read(line, mask, write, dr0 + ddr * t)
        if near:
            y_near = (nlb0 + dnlb0 * t) * left + (nlb1 + dnlb1 * t) * nxl - (nla + dnla * t) * nyl
            nxl = left
            nyl = y_near
            left = y_near
            y_near = (nrb0 + dnrb0 * t) * right + (nrb1 + dnrb1 * t) * nxr - (nra + dnra * t) * nyr
            nxr = right
            nyr = y_near
            right = y_near
        if mode == MODE_HRTF:
            ear_window[0, frame + fpos + i] = left
            ear_window[1, frame + fpos + i] = right
        else:
            yl = (bl0 + dbl0 * t) * left + (bl1 + dbl1 * t) * xl - (al + dal * t) * yl
            yr = (br0 + dbr0 * t) * right + (br1 + dbr1 * t) * xr - (ar + dar * t) * yr
            xl = left
            xr = right
            out[0, pos + i] += yl
            out[1, pos + i] += yr
    # flush denormals so silent voices stay cheap
    voice.air_state = lp if abs(lp) > 1e-30 else 0.0
    voice.shadow_left_x = xl if abs(xl) > 1e-30 else 0.0
    voice.shadow_left_y = yl if abs(yl) > 1e-30 else 0.0
    voice.shadow_right_x = xr if abs(xr) > 1e-30 else 0.0
    voice.shadow_right_y = yr if abs(yr) > 1e-30 else 0.0
    voice.near_left_x = nxl if abs(nxl) > 1e-30 else 0.0
    voice.near_left_y = nyl if abs(nyl) > 1e-30 else 0.0
    voice.near_right_x = nxr if abs(nxr) > 1e-30 else 0.0
    voice.near_right_y = nyr if abs(nyr) > 1e-30 else 0.0
    voice.write_index = write


@njit(cache=True, nogil=True)
def render(inputs, n, out, send, state, tables, scratch):
    """Render ``n`` samples of every active voice into ``out[:, :n]`` (overwritten).

    ``inputs`` float32 (rows, >= n), one row per source; ``send[:, :n]`` receives the reverb
    sends (row 0 the tail, row 1 + k sector k); ``state``, ``tables``, ``scratch``: the scene's
    :class:`SceneState`, :class:`SceneTables`, :class:`SceneScratch`.  Output samples are always
    finite.
    """
    voices = state.voices
    scene = state.scene[0]
    ear_windows = state.ear_windows
    frame = ear_windows.shape[2] // 2
    parts = state.spectra_history.shape[0]
    scene.started = 1  # from now on, commands ramp
    for e in range(2):
        for i in range(n):
            out[e, i] = 0.0
    for r in range(send.shape[0]):
        for i in range(n):
            send[r, i] = 0.0
    pos = 0
    while pos < n:
        fpos = scene.frame_pos
        if fpos == 0:
            _frame_start(state, tables, scratch)
        seg = min(frame - fpos, n - pos)
        n_hrtf = 0
        n_xfade = 0
        for v in range(voices.shape[0]):
            voice = voices[v]
            if voice.active == 0:
                continue
            _samples(voice, inputs, pos, fpos, seg, out, send, state.delay_lines[v],
                     ear_windows[v], frame)
            if voice.mode == MODE_HRTF:
                n_hrtf += 1
                n_xfade += voice.crossfade
        if n_hrtf > 0:
            _hrtf_segment(pos, fpos, seg, out, state, scratch, n_xfade > 0)
        pos += seg
        fpos += seg
        if fpos == frame:
            for v in range(voices.shape[0]):
                if voices[v].active != 0 and voices[v].mode == MODE_HRTF:
                    for e in range(2):
                        for i in range(frame):
                            ear_windows[v, e, i] = ear_windows[v, e, frame + i]
            scene.fdl_pos = (scene.fdl_pos + 1) % parts
            fpos = 0
        scene.frame_pos = fpos
    for e in range(2):
        for i in range(n):
            if not math.isfinite(out[e, i]):
                out[e, i] = 0.0


@njit(cache=True, nogil=True)
def _hrtf_segment(pos, fpos, seg, out, state, scratch, any_xfade):
    voices = state.voices
    ear_windows = state.ear_windows
    fdl = state.spectra_history
    filters = state.filters
    acc = scratch.accumulators
    ytime = scratch.frame_outputs
    axes = scratch.fft_axes
    frame = ear_windows.shape[2] // 2
    parts = fdl.shape[0]
    bins = fdl.shape[3]
    cur_slot = state.scene[0].fdl_pos
    acc[:] = 0.0
    for v in range(voices.shape[0]):
        voice = voices[v]
        if voice.active == 0 or voice.mode != MODE_HRTF:
            continue
        cur = voice.filter_slot
        xfade = voice.crossfade != 0
        for e in range(2):
            rocket_fft.r2c(ear_windows[v, e], fdl[cur_slot, v, e], axes, True, 1.0, 1)
            for p in range(parts):
                spec = fdl[(cur_slot - p) % parts, v, e]
                new = filters[v, cur, e, p]
                if xfade:
                    old = filters[v, 1 - cur, e, p]
                    acc_old = acc[1, e]
                    acc_new = acc[2, e]
                    for k in range(bins):
                        acc_old[k] += spec[k] * old[k]
                        acc_new[k] += spec[k] * new[k]
                else:
                    acc_steady = acc[0, e]
                    for k in range(bins):
                        acc_steady[k] += spec[k] * new[k]
    scale = 1.0 / (2 * frame)
    n_acc = 3 if any_xfade else 1
    for a in range(n_acc):
        for e in range(2):
            rocket_fft.c2r(acc[a, e], ytime[a, e], axes, False, scale, 1)
    inv_b = 1.0 / frame
    for e in range(2):
        for i in range(seg):
            j = frame + fpos + i
            y = ytime[0, e, j]
            if any_xfade:
                w = (fpos + i + 1) * inv_b
                y += (1.0 - w) * ytime[1, e, j] + w * ytime[2, e, j]
            out[e, pos + i] += y


@njit(cache=True, nogil=True)
def add_wet(out, wet, start, m):
    """``out[:, start:start + m] += wet[:, :m]``, replacing any non-finite result by 0."""
    for e in range(2):
        for i in range(m):
            y = out[e, start + i] + wet[e, i]
            out[e, start + i] = y if math.isfinite(y) else 0.0


@njit(cache=True)
def apply_commands(ring, first, stop, now, latencies, counts, state, tables, scratch):
    """Apply the :data:`COMMAND` records ``ring[first % len(ring) .. (stop - 1) % len(ring)]``.

    The audio side's half of a command: it copies numbers into the voice state and clears the
    states of a voice it starts; it validates, allocates and looks up nothing (the control side
    did).  Before the first ``render`` (``SCENE.started == 0``) changes take effect at once,
    afterwards they ramp over ``SCENE.ramp_frames`` frames.  For each record with an
    ``enqueued_at_s``, ``now - enqueued_at_s`` (seconds) goes into the ring ``latencies``;
    ``counts[COUNT_APPLIED]`` and ``counts[COUNT_LATENCIES]`` count.  A voice a record starts
    gets its handout ``generation`` in ``state.voice_started``.  Runs holding the GIL, so a
    control thread never sees a voice half started (see ``SceneRenderer._free_voice``).
    """
    size = ring.shape[0]
    scene = state.scene[0]
    for k in range(first, stop):
        command = ring[k % size]
        op = command.op
        if op == OP_PLACE:
            _apply_place(command, state, tables, scratch)
        elif op == OP_REMOVE:
            _apply_remove(command.row, state.voices, scene)
        elif op == OP_SCENE_SEND:
            scene.send_gain_target = command.scene_send
            if scene.started != 0:
                scene.send_ramp_left = scene.ramp_frames
            else:
                scene.send_gain = command.scene_send
                scene.send_ramp_left = 0
                for v in range(state.voices.shape[0]):
                    if state.voices[v].active != 0:
                        init_voice(v, state, tables, scratch)
        counts[COUNT_APPLIED] += 1
        if command.enqueued_at_s > 0.0 and latencies.shape[0] > 0:
            latencies[counts[COUNT_LATENCIES] % latencies.shape[0]] = now - command.enqueued_at_s
            counts[COUNT_LATENCIES] += 1


@njit(cache=True)
def _apply_place(command, state, tables, scratch):
    voices = state.voices
    scene = state.scene[0]
    started = scene.started != 0
    old = command.voice
    v = command.new_voice
    if v < 0:  # same voice, new targets
        v = old
        voice = voices[v]
        voice.azimuth_target_deg = command.azimuth_deg
        voice.elevation_target_deg = command.elevation_deg
        voice.distance_target_m = command.distance_m
        voice.gain_target_db = command.gain_db
        voice.send_scale_target = command.send_scale
        if started:
            voice.ramp_left = scene.ramp_frames
        else:
            voice.azimuth_deg = command.azimuth_deg
            voice.elevation_deg = command.elevation_deg
            voice.distance_m = command.distance_m
            voice.gain_db = command.gain_db
            voice.send_scale = command.send_scale
            init_voice(v, state, tables, scratch)
        return
    if old >= 0:  # a mode change: the old voice fades out and rings out, the new one fades in
        fading = voices[old]
        if started:
            fading.fade_target = 0.0
            fading.fade_left = scene.ramp_frames
            fading.free_after_fade = scene.tail_frames
        else:
            fading.active = 0
    _clear_voice(voices, v)
    voice = voices[v]
    voice.mode = command.mode
    voice.row = command.row
    voice.azimuth_deg = command.azimuth_deg
    voice.azimuth_target_deg = command.azimuth_deg
    voice.elevation_deg = command.elevation_deg
    voice.elevation_target_deg = command.elevation_deg
    voice.distance_m = command.distance_m
    voice.distance_target_m = command.distance_m
    voice.gain_db = command.gain_db
    voice.gain_target_db = command.gain_db
    voice.send_scale = command.send_scale
    voice.send_scale_target = command.send_scale
    voice.fade_target = 1.0
    if started:
        voice.fade = 0.0
        voice.fade_left = scene.ramp_frames
    else:
        voice.fade = 1.0
    init_voice(v, state, tables, scratch)
    voice.active = 1
    # after the voice is live: the control side may reuse it once it ends
    state.voice_started[v] = command.generation


@njit(cache=True, nogil=True)
def _clear_voice(voices, v):
    """Every field of ``voices[v]`` to 0 (all :data:`VOICE` fields are 8 bytes wide; +0.0 is
    all zero bits)."""
    raw = voices.view(np.int64)
    width = raw.shape[0] // voices.shape[0]
    raw[v * width:(v + 1) * width] = 0


@njit(cache=True)
def _apply_remove(row, voices, scene):
    """The source at input ``row`` goes (what it fed rings out); later rows move up by one."""
    started = scene.started != 0
    for v in range(voices.shape[0]):
        voice = voices[v]
        if voice.active == 0:
            continue
        r = voice.row
        if r == row:  # the source's voice, and a voice still fading out of a mode change
            voice.row = -1
            if started:
                if voice.drain_left == 0:
                    voice.drain_left = scene.tail_frames
            else:
                voice.active = 0
        elif r > row:
            voice.row = r - 1


# -- entry points with the bundles spread ----------------------------------------------------
# Numba unboxes a namedtuple argument several times slower than the same arrays passed alone
# (measured: +6 us per call for these three bundles, more than an empty block costs), and types
# a structured array ~0.2 us slower than a plain one.  So the per-block calls take the bundles'
# fields spread, record arrays as their int64 view (:func:`spread_arguments`), and rebuild the
# bundles by name; tests/test_scene_state.py checks that their parameters are the bundles'
# fields in order.
def spread_arguments(state, tables, scratch) -> tuple:
    """``(*state, *tables, *scratch)`` as :func:`render_spread` and :func:`apply_commands_spread`
    take them: the record arrays (``voices``, ``scene``, ``config``) as int64 views of the same
    memory."""
    return tuple(a.view(np.int64) if a.dtype.names else a for a in (*state, *tables, *scratch))


@njit(cache=True, nogil=True)
def render_spread(inputs, n, out, send,
                  voices, scene, delay_lines, ear_windows, spectra_history, filters, sector_gains,
                  voice_started,
                  config, hrtf_spectra, hrtf_delays, face_inverse, faces, sector_azimuths,
                  near_table,
                  accumulators, frame_outputs, face_weights, direction, sector_shares, fft_axes):
    """:func:`render` with the bundles spread by :func:`spread_arguments` (the cheap call)."""
    render(inputs, n, out, send,
           SceneState(voices=voices.view(VOICE), scene=scene.view(SCENE),
                      delay_lines=delay_lines, ear_windows=ear_windows,
                      spectra_history=spectra_history, filters=filters,
                      sector_gains=sector_gains, voice_started=voice_started),
           SceneTables(config=config.view(CONFIG), hrtf_spectra=hrtf_spectra,
                       hrtf_delays=hrtf_delays, face_inverse=face_inverse, faces=faces,
                       sector_azimuths=sector_azimuths, near_table=near_table),
           SceneScratch(accumulators=accumulators, frame_outputs=frame_outputs,
                        face_weights=face_weights, direction=direction,
                        sector_shares=sector_shares, fft_axes=fft_axes))


@njit(cache=True)
def apply_commands_spread(ring, first, stop, now, latencies, counts,
                          voices, scene, delay_lines, ear_windows, spectra_history, filters,
                          sector_gains, voice_started,
                          config, hrtf_spectra, hrtf_delays, face_inverse, faces, sector_azimuths,
                          near_table,
                          accumulators, frame_outputs, face_weights, direction, sector_shares,
                          fft_axes):
    """:func:`apply_commands` with the bundles spread by :func:`spread_arguments` (the cheap
    call)."""
    apply_commands(ring, first, stop, now, latencies, counts,
                   SceneState(voices=voices.view(VOICE), scene=scene.view(SCENE),
                              delay_lines=delay_lines, ear_windows=ear_windows,
                              spectra_history=spectra_history, filters=filters,
                              sector_gains=sector_gains, voice_started=voice_started),
                   SceneTables(config=config.view(CONFIG), hrtf_spectra=hrtf_spectra,
                               hrtf_delays=hrtf_delays, face_inverse=face_inverse, faces=faces,
                               sector_azimuths=sector_azimuths, near_table=near_table),
                   SceneScratch(accumulators=accumulators, frame_outputs=frame_outputs,
                                face_weights=face_weights, direction=direction,
                                sector_shares=sector_shares, fft_axes=fft_axes))
