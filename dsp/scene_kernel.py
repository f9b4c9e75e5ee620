"""The numba kernel behind :class:`stase.dsp.scene.SceneRenderer`: every voice, every sample, one call.

Layout
------
Voices live in slots ``v`` of preallocated arrays: ``fp[v, F_*]`` (float64 parameters and filter
states), ``ip[v, I_*]`` (int64 flags), a circular delay line per voice, and for ``hrtf`` voices an
overlap-save window per ear, a frequency-domain delay line (FDL) of input spectra and two sets of
partitioned HRTF spectra (current and previous, for crossfades).

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
``stase.dsp.kernels.sector_weights``) with ``exp(-D (r - r_ring))``; both carry the voice's level, its
directivity and wetness scale (``F_SCALE``) and the diffuse-field gain of the voice's mode
(``C_HEAD_*``: what the mode's ear filters give a diffuse field, so direct and reverberant sound
keep their physical balance).  Sector gains ramp per sample between frame starts; a voice feeds at most four sectors in a
frame (two before and two after a move across a sector).

Commands (:data:`COMMAND`, :func:`apply_commands`): a change made while streaming arrives as a
fixed-size typed record the control side filled (validated, normalised, its voice slot chosen);
applying it copies numbers into the voice state (and clears a voice it starts), nothing else, so
the audio thread allocates nothing for it.  Targets then ramp over ``gi[G_RAMP_FRAMES]`` frames;
the scene's send gain ramps the same way (``C_SEND`` towards ``C_SEND_TGT``).

Near field (``itd_ild`` and ``hrtf``): below the reference distance each ear's signal passes a
first-order shelf (``stase.dsp.kernels.near_field_shelf``, Duda & Martens' spherical head) and the
ITD grows by the sphere's path difference; beyond it the shelf is skipped.
"""
from __future__ import annotations

import math

import numpy as np
import rocket_fft
from numba import njit

from stase.dsp.kernels import (air_pole, delay_read, find_face, head_shadow_coefficients,
                      near_field_itd_change_s, near_field_shelf, pan_gains, sector_weights,
                      woodworth_itd_s)

MODE_PAN, MODE_ITD_ILD, MODE_HRTF = 0, 1, 2
MODE_CODES = {"pan": MODE_PAN, "itd_ild": MODE_ITD_ILD, "hrtf": MODE_HRTF}
FRAME = 128
DELAY_LINE = 256  # power of two, > MAX_ONSET_DELAY + ITD + 3

# float parameters per voice -------------------------------------------------------------
(F_AZ, F_EL, F_DIST, F_GAIN_DB, F_AZ_TGT, F_EL_TGT, F_DIST_TGT, F_GAIN_DB_TGT,
 F_FADE, F_FADE_TGT,
 F_G0, F_G1, F_S0, F_S1, F_P0, F_P1, F_DL0, F_DL1, F_DR0, F_DR1, F_GL0, F_GL1, F_GR0, F_GR1,
 F_BL0_0, F_BL0_1, F_BL1_0, F_BL1_1, F_AL_0, F_AL_1, F_BR0_0, F_BR0_1, F_BR1_0, F_BR1_1,
 F_AR_0, F_AR_1,
 F_LP, F_XL, F_YL, F_XR, F_YR, F_FX, F_FY, F_FZ,
 F_SCALE, F_SCALE_TGT,
 F_NLB0_0, F_NLB0_1, F_NLB1_0, F_NLB1_1, F_NLA_0, F_NLA_1,
 F_NRB0_0, F_NRB0_1, F_NRB1_0, F_NRB1_1, F_NRA_0, F_NRA_1,
 F_NXL, F_NYL, F_NXR, F_NYR,
 F_SG0_0, F_SG0_1, F_SG0_2, F_SG0_3, F_SG1_0, F_SG1_1, F_SG1_2, F_SG1_3) = range(70)
N_FLOAT = 70
#: Most sectors a voice feeds within one frame (two on each side of a move across a sector).
MAX_VOICE_SECTORS = 4
# int parameters per voice ---------------------------------------------------------------
(I_ACTIVE, I_MODE, I_ROW, I_RAMP, I_FADE_LEFT, I_DRAIN, I_FACE, I_CUR, I_XFADE, I_WRITE,
 I_FREE_AFTER_FADE, I_NEAR, I_NSEC, I_SEC0, I_SEC1, I_SEC2, I_SEC3) = range(17)
N_INT = 17
# global state / configuration ----------------------------------------------------------
(G_FRAME_POS, G_FDL_POS, G_PARTS, G_STARTED, G_SEND_RAMP, G_RAMP_FRAMES,
 G_TAIL_FRAMES) = range(7)
N_GLOBAL = 7
(C_RATE, C_SEND, C_AIR_DB_PER_M, C_AIR_OMEGA, C_UPDATE_COS, C_BASE_DELAY, C_REF_DIST,
 C_MIN_DIST, C_TAIL_SEND, C_DECAY_PER_M, C_RING_M, C_HEAD_HRTF, C_NEAR_REF_M, C_NEAR_MIN_M,
 C_NEAR_LOG_STEP, C_NEAR_ANGLE_STEP, C_SECTOR_WRAP, C_HEAD_PAN, C_HEAD_ITD_ILD,
 C_SEND_TGT) = range(20)
N_CFG = 20

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
def _near_field(v, fp, ip, cfg, near_table, y, dist):
    """Frame-end near-field shelves of both ears; ``I_NEAR`` says whether the filter must run."""
    rate = cfg[C_RATE]
    if dist < cfg[C_NEAR_REF_M]:
        args = (near_table, cfg[C_NEAR_MIN_M], cfg[C_NEAR_LOG_STEP], cfg[C_NEAR_ANGLE_STEP],
                cfg[C_NEAR_REF_M], rate)
        b0, b1, a1 = near_field_shelf(dist, math.acos(min(max(y, -1.0), 1.0)), *args)
        fp[v, F_NLB0_1], fp[v, F_NLB1_1], fp[v, F_NLA_1] = b0, b1, a1
        b0, b1, a1 = near_field_shelf(dist, math.acos(min(max(-y, -1.0), 1.0)), *args)
        fp[v, F_NRB0_1], fp[v, F_NRB1_1], fp[v, F_NRA_1] = b0, b1, a1
    else:
        fp[v, F_NLB0_1], fp[v, F_NLB1_1], fp[v, F_NLA_1] = 1.0, 0.0, 0.0
        fp[v, F_NRB0_1], fp[v, F_NRB1_1], fp[v, F_NRA_1] = 1.0, 0.0, 0.0
    identity = True
    for f in (F_NLB1_0, F_NLB1_1, F_NLA_0, F_NLA_1, F_NRB1_0, F_NRB1_1, F_NRA_0, F_NRA_1):
        if fp[v, f] != 0.0:
            identity = False
    for f in (F_NLB0_0, F_NLB0_1, F_NRB0_0, F_NRB0_1):
        if fp[v, f] != 1.0:
            identity = False
    if identity and ip[v, I_NEAR] != 0:
        for f in (F_NXL, F_NYL, F_NXR, F_NYR):  # leaving the near field: no stale filter state
            fp[v, f] = 0.0
    ip[v, I_NEAR] = 0 if identity else 1


@njit(cache=True, nogil=True)
def _sends(v, fp, ip, cfg, sector_az, sector_w, tmp_k, level, dist):
    """Frame-end reverb sends: the tail row and up to four sector gains (start values kept)."""
    scale = level * cfg[C_SEND] * fp[v, F_SCALE]
    mode = ip[v, I_MODE]
    if mode == MODE_HRTF:
        scale *= cfg[C_HEAD_HRTF]
    elif mode == MODE_PAN:
        scale *= cfg[C_HEAD_PAN]
    else:
        scale *= cfg[C_HEAD_ITD_ILD]
    decay = cfg[C_DECAY_PER_M]
    fp[v, F_S1] = scale * cfg[C_TAIL_SEND] * math.exp(-decay * dist)
    n_sectors = sector_az.shape[0]
    if n_sectors == 0:
        ip[v, I_NSEC] = 0
        return
    early = scale * math.exp(-decay * (dist - cfg[C_RING_M]))
    sector_weights(fp[v, F_AZ], sector_az, cfg[C_SECTOR_WRAP] != 0.0, tmp_k)
    count = 0
    for k in range(n_sectors):
        new = early * tmp_k[k]
        old = sector_w[v, k]
        if (new != 0.0 or old != 0.0) and count < MAX_VOICE_SECTORS:
            ip[v, I_SEC0 + count] = k
            fp[v, F_SG0_0 + count] = old
            fp[v, F_SG1_0 + count] = new
            count += 1
        sector_w[v, k] = new
    ip[v, I_NSEC] = count


@njit(cache=True, nogil=True)
def voice_params(v, fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, tmp_w,
                 tmp_d, force_filter, sector_az, sector_w, tmp_k, near_table):
    """Recompute a voice's frame-end values (``*_1``) from its current direction and level.

    Returns True when the HRTF filter changed (the caller crossfades it).
    """
    rate = cfg[C_RATE]
    az = math.radians(fp[v, F_AZ])
    el = math.radians(fp[v, F_EL])
    x = math.cos(el) * math.cos(az)
    y = math.cos(el) * math.sin(az)
    z = math.sin(el)
    level = fp[v, F_FADE] * 10.0 ** (fp[v, F_GAIN_DB] / 20.0)
    dist = max(fp[v, F_DIST], cfg[C_MIN_DIST])
    fp[v, F_G1] = level * cfg[C_REF_DIST] / dist
    _sends(v, fp, ip, cfg, sector_az, sector_w, tmp_k, level, dist)
    fp[v, F_P1] = air_pole(cfg[C_AIR_DB_PER_M] * fp[v, F_DIST], cfg[C_AIR_OMEGA])
    mode = ip[v, I_MODE]
    lateral = math.asin(min(max(y, -1.0), 1.0))
    if mode == MODE_PAN:
        gl, gr = pan_gains(-lateral / (0.5 * math.pi))
        fp[v, F_GL1] = gl
        fp[v, F_GR1] = gr
        return False
    _near_field(v, fp, ip, cfg, near_table, y, dist)
    near_itd = near_field_itd_change_s(lateral, dist, cfg[C_NEAR_REF_M]) * rate
    if mode == MODE_ITD_ILD:
        itd = woodworth_itd_s(lateral) * rate + near_itd
        base = cfg[C_BASE_DELAY]
        fp[v, F_DL1] = base + max(-itd, 0.0)
        fp[v, F_DR1] = base + max(itd, 0.0)
        b0, b1, a1 = head_shadow_coefficients(math.acos(min(max(y, -1.0), 1.0)), rate)
        fp[v, F_BL0_1] = b0
        fp[v, F_BL1_1] = b1
        fp[v, F_AL_1] = a1
        b0, b1, a1 = head_shadow_coefficients(math.acos(min(max(-y, -1.0), 1.0)), rate)
        fp[v, F_BR0_1] = b0
        fp[v, F_BR1_1] = b1
        fp[v, F_AR_1] = a1
        return False
    tmp_d[0] = x
    tmp_d[1] = y
    tmp_d[2] = z
    face = find_face(face_inverse, tmp_d, ip[v, I_FACE], tmp_w)
    ip[v, I_FACE] = face
    a, b, c = faces[face, 0], faces[face, 1], faces[face, 2]
    wa, wb, wc = tmp_w[0], tmp_w[1], tmp_w[2]
    fp[v, F_DL1] = wa * hrtf_delays[a, 0] + wb * hrtf_delays[b, 0] + wc * hrtf_delays[c, 0]
    fp[v, F_DR1] = wa * hrtf_delays[a, 1] + wb * hrtf_delays[b, 1] + wc * hrtf_delays[c, 1]
    if near_itd > 0.0:    # a close source on the left: the right ear's path grows
        fp[v, F_DR1] += near_itd
    else:
        fp[v, F_DL1] -= near_itd
    cos_moved = x * fp[v, F_FX] + y * fp[v, F_FY] + z * fp[v, F_FZ]
    at_rest = ip[v, I_RAMP] == 0 and cos_moved < 1.0 - 1e-12
    if not (force_filter or cos_moved < cfg[C_UPDATE_COS] or at_rest):
        return False
    slot = 1 - ip[v, I_CUR]
    fwa, fwb, fwc = np.float32(wa), np.float32(wb), np.float32(wc)
    for ear in range(2):
        for part in range(hrtf_spec.shape[2]):
            dst = hbuf[v, slot, ear, part]
            sa = hrtf_spec[a, ear, part]
            sb = hrtf_spec[b, ear, part]
            sc = hrtf_spec[c, ear, part]
            for k in range(dst.shape[0]):
                dst[k] = fwa * sa[k] + fwb * sb[k] + fwc * sc[k]
    ip[v, I_CUR] = slot
    fp[v, F_FX] = x
    fp[v, F_FY] = y
    fp[v, F_FZ] = z
    return True


@njit(cache=True, nogil=True)
def _shift_frame_values(fp, v):
    """Frame-start values (``*_0``) take the previous frame's end values (``*_1``)."""
    for f0 in (F_G0, F_S0, F_P0, F_DL0, F_DR0, F_GL0, F_GR0, F_BL0_0, F_BL1_0, F_AL_0,
               F_BR0_0, F_BR1_0, F_AR_0, F_NLB0_0, F_NLB1_0, F_NLA_0, F_NRB0_0, F_NRB1_0, F_NRA_0):
        fp[v, f0] = fp[v, f0 + 1]


@njit(cache=True, nogil=True)
def _frame_start(fp, ip, gi, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, tmp_w, tmp_d,
                 sector_az, sector_w, tmp_k, near_table):
    ramp = gi[G_SEND_RAMP]
    if ramp > 0:  # the scene's wetness: a linear ramp in frames, then per sample within each
        cfg[C_SEND] += (cfg[C_SEND_TGT] - cfg[C_SEND]) / ramp
        gi[G_SEND_RAMP] = ramp - 1
    for v in range(fp.shape[0]):
        if ip[v, I_ACTIVE] == 0:
            continue
        if ip[v, I_DRAIN] > 0:
            ip[v, I_DRAIN] -= 1
            if ip[v, I_DRAIN] == 0:
                ip[v, I_ACTIVE] = 0
                continue
        ramp = ip[v, I_RAMP]
        if ramp > 0:
            fp[v, F_AZ] = _wrap180(fp[v, F_AZ] + _wrap180(fp[v, F_AZ_TGT] - fp[v, F_AZ]) / ramp)
            fp[v, F_EL] += (fp[v, F_EL_TGT] - fp[v, F_EL]) / ramp
            fp[v, F_DIST] += (fp[v, F_DIST_TGT] - fp[v, F_DIST]) / ramp
            fp[v, F_GAIN_DB] += (fp[v, F_GAIN_DB_TGT] - fp[v, F_GAIN_DB]) / ramp
            fp[v, F_SCALE] += (fp[v, F_SCALE_TGT] - fp[v, F_SCALE]) / ramp
            ip[v, I_RAMP] = ramp - 1
        fade = ip[v, I_FADE_LEFT]
        if fade > 0:
            fp[v, F_FADE] += (fp[v, F_FADE_TGT] - fp[v, F_FADE]) / fade
            ip[v, I_FADE_LEFT] = fade - 1
            if fade == 1 and ip[v, I_FREE_AFTER_FADE] > 0:
                # silent from the end of this frame on; free the slot once its tail has rung out
                ip[v, I_DRAIN] = ip[v, I_FREE_AFTER_FADE]
        _shift_frame_values(fp, v)
        changed = voice_params(v, fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf,
                               tmp_w, tmp_d, False, sector_az, sector_w, tmp_k, near_table)
        ip[v, I_XFADE] = 1 if changed else 0


@njit(cache=True, nogil=True)
def init_voice(v, fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, dline,
               ear_in, fdl, tmp_w, tmp_d, sector_az, sector_w, tmp_k, near_table):
    """Clear a voice's states and compute its parameters with no ramp (``*_0 == *_1``)."""
    dline[v, :] = 0.0
    ear_in[v] = 0.0
    fdl[:, v] = 0.0
    sector_w[v, :] = 0.0
    for f in (F_LP, F_XL, F_YL, F_XR, F_YR, F_NXL, F_NYL, F_NXR, F_NYR):
        fp[v, f] = 0.0
    # no near-field filter yet: start values are the identity, end values come next
    fp[v, F_NLB0_1] = fp[v, F_NRB0_1] = 1.0
    fp[v, F_NLB1_1] = fp[v, F_NLA_1] = fp[v, F_NRB1_1] = fp[v, F_NRA_1] = 0.0
    _shift_frame_values(fp, v)
    ip[v, I_NEAR] = 0
    fp[v, F_FX] = 2.0  # no filter yet: any direction differs
    ip[v, I_XFADE] = 0
    ip[v, I_WRITE] = 0
    voice_params(v, fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, tmp_w, tmp_d,
                 True, sector_az, sector_w, tmp_k, near_table)
    hbuf[v, 1 - ip[v, I_CUR]] = hbuf[v, ip[v, I_CUR]]
    ip[v, I_XFADE] = 0
    _shift_frame_values(fp, v)
    for j in range(ip[v, I_NSEC]):
        fp[v, F_SG0_0 + j] = fp[v, F_SG1_0 + j]
    # the start values now equal the end values: decide afresh whether the filter runs
    _near_field_flag(v, fp, ip)


@njit(cache=True, nogil=True)
def _near_field_flag(v, fp, ip):
    identity = (fp[v, F_NLB0_0] == 1.0 and fp[v, F_NLB0_1] == 1.0 and fp[v, F_NRB0_0] == 1.0
                and fp[v, F_NRB0_1] == 1.0)
    for f in (F_NLB1_0, F_NLB1_1, F_NLA_0, F_NLA_1, F_NRB1_0, F_NRB1_1, F_NRA_0, F_NRA_1):
        if fp[v, f] != 0.0:
            identity = False
    ip[v, I_NEAR] = 0 if identity else 1


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
def _samples(v, inputs, pos, fpos, seg, out, send, fp, ip, dline, ear_in, frame):
    """Per-sample stage of one voice for ``seg`` samples starting at frame position ``fpos``."""
    row = ip[v, I_ROW]
    mode = ip[v, I_MODE]
    mask = dline.shape[1] - 1
    inv_b = 1.0 / frame
    g0, dg = fp[v, F_G0], fp[v, F_G1] - fp[v, F_G0]
    s0, ds = fp[v, F_S0], fp[v, F_S1] - fp[v, F_S0]
    p0, dp = fp[v, F_P0], fp[v, F_P1] - fp[v, F_P0]
    lp = fp[v, F_LP]
    gl0, dgl = fp[v, F_GL0], fp[v, F_GL1] - fp[v, F_GL0]
    gr0, dgr = fp[v, F_GR0], fp[v, F_GR1] - fp[v, F_GR0]
    dl0, ddl = fp[v, F_DL0], fp[v, F_DL1] - fp[v, F_DL0]
    dr0, ddr = fp[v, F_DR0], fp[v, F_DR1] - fp[v, F_DR0]
    bl0, dbl0 = fp[v, F_BL0_0], fp[v, F_BL0_1] - fp[v, F_BL0_0]
    bl1, dbl1 = fp[v, F_BL1_0], fp[v, F_BL1_1] - fp[v, F_BL1_0]
    al, dal = fp[v, F_AL_0], fp[v, F_AL_1] - fp[v, F_AL_0]
    br0, dbr0 = fp[v, F_BR0_0], fp[v, F_BR0_1] - fp[v, F_BR0_0]
    br1, dbr1 = fp[v, F_BR1_0], fp[v, F_BR1_1] - fp[v, F_BR1_0]
    ar, dar = fp[v, F_AR_0], fp[v, F_AR_1] - fp[v, F_AR_0]
    xl, yl, xr, yr = fp[v, F_XL], fp[v, F_YL], fp[v, F_XR], fp[v, F_YR]
    near = ip[v, I_NEAR] != 0
    nlb0, dnlb0 = fp[v, F_NLB0_0], fp[v, F_NLB0_1] - fp[v, F_NLB0_0]
    nlb1, dnlb1 = fp[v, F_NLB1_0], fp[v, F_NLB1_1] - fp[v, F_NLB1_0]
    nla, dnla = fp[v, F_NLA_0], fp[v, F_NLA_1] - fp[v, F_NLA_0]
    nrb0, dnrb0 = fp[v, F_NRB0_0], fp[v, F_NRB0_1] - fp[v, F_NRB0_0]
    nrb1, dnrb1 = fp[v, F_NRB1_0], fp[v, F_NRB1_1] - fp[v, F_NRB1_0]
    nra, dnra = fp[v, F_NRA_0], fp[v, F_NRA_1] - fp[v, F_NRA_0]
    nxl, nyl, nxr, nyr = fp[v, F_NXL], fp[v, F_NYL], fp[v, F_NXR], fp[v, F_NYR]
    write = ip[v, I_WRITE]
    line = dline[v]
    if row >= 0:
        # the sends first, one contiguous pass per row (vectorisable), then the voice itself
        _add_send(send[0], inputs[row], pos, fpos, seg, s0, ds, inv_b)
        for j in range(ip[v, I_NSEC]):
            g_start = fp[v, F_SG0_0 + j]
            _add_send(send[1 + ip[v, I_SEC0 + j]], inputs[row], pos, fpos, seg, g_start,
                      fp[v, F_SG1_0 + j] - g_start, inv_b)
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
            ear_in[v, 0, frame + fpos + i] = left
            ear_in[v, 1, frame + fpos + i] = right
        else:
            yl = (bl0 + dbl0 * t) * left + (bl1 + dbl1 * t) * xl - (al + dal * t) * yl
            yr = (br0 + dbr0 * t) * right + (br1 + dbr1 * t) * xr - (ar + dar * t) * yr
            xl = left
            xr = right
            out[0, pos + i] += yl
            out[1, pos + i] += yr
    # flush denormals so silent voices stay cheap
    fp[v, F_LP] = lp if abs(lp) > 1e-30 else 0.0
    fp[v, F_XL] = xl if abs(xl) > 1e-30 else 0.0
    fp[v, F_YL] = yl if abs(yl) > 1e-30 else 0.0
    fp[v, F_XR] = xr if abs(xr) > 1e-30 else 0.0
    fp[v, F_YR] = yr if abs(yr) > 1e-30 else 0.0
    fp[v, F_NXL] = nxl if abs(nxl) > 1e-30 else 0.0
    fp[v, F_NYL] = nyl if abs(nyl) > 1e-30 else 0.0
    fp[v, F_NXR] = nxr if abs(nxr) > 1e-30 else 0.0
    fp[v, F_NYR] = nyr if abs(nyr) > 1e-30 else 0.0
    ip[v, I_WRITE] = write


@njit(cache=True, nogil=True)
def render(inputs, n, out, send, fp, ip, gi, cfg, dline, ear_in, fdl, hbuf, hrtf_spec,
           hrtf_delays, face_inverse, faces, acc, ytime, tmp_w, tmp_d, axes, sector_az,
           sector_w, tmp_k, near_table):
    """Render ``n`` samples of every active voice into ``out[:, :n]`` (overwritten).

    ``send[:, :n]`` receives the reverb sends (row 0 the tail, row 1 + k sector k).  Output
    samples are always finite.
    """
    frame = ear_in.shape[2] // 2
    parts = fdl.shape[0]
    gi[G_STARTED] = 1  # from now on, commands ramp
    for e in range(2):
        for i in range(n):
            out[e, i] = 0.0
    for r in range(send.shape[0]):
        for i in range(n):
            send[r, i] = 0.0
    pos = 0
    while pos < n:
        fpos = gi[G_FRAME_POS]
        if fpos == 0:
            _frame_start(fp, ip, gi, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, tmp_w,
                         tmp_d, sector_az, sector_w, tmp_k, near_table)
        seg = min(frame - fpos, n - pos)
        n_hrtf = 0
        n_xfade = 0
        for v in range(fp.shape[0]):
            if ip[v, I_ACTIVE] == 0:
                continue
            _samples(v, inputs, pos, fpos, seg, out, send, fp, ip, dline, ear_in, frame)
            if ip[v, I_MODE] == MODE_HRTF:
                n_hrtf += 1
                n_xfade += ip[v, I_XFADE]
        if n_hrtf > 0:
            _hrtf_segment(pos, fpos, seg, out, fp, ip, gi, ear_in, fdl, hbuf, acc, ytime, axes,
                          n_xfade > 0)
        pos += seg
        fpos += seg
        if fpos == frame:
            for v in range(fp.shape[0]):
                if ip[v, I_ACTIVE] != 0 and ip[v, I_MODE] == MODE_HRTF:
                    for e in range(2):
                        for i in range(frame):
                            ear_in[v, e, i] = ear_in[v, e, frame + i]
            gi[G_FDL_POS] = (gi[G_FDL_POS] + 1) % parts
            fpos = 0
        gi[G_FRAME_POS] = fpos
    for e in range(2):
        for i in range(n):
            if not math.isfinite(out[e, i]):
                out[e, i] = 0.0


@njit(cache=True, nogil=True)
def _hrtf_segment(pos, fpos, seg, out, fp, ip, gi, ear_in, fdl, hbuf, acc, ytime, axes, any_xfade):
    frame = ear_in.shape[2] // 2
    parts = fdl.shape[0]
    bins = fdl.shape[3]
    cur_slot = gi[G_FDL_POS]
    acc[:] = 0.0
    for v in range(fp.shape[0]):
        if ip[v, I_ACTIVE] == 0 or ip[v, I_MODE] != MODE_HRTF:
            continue
        cur = ip[v, I_CUR]
        xfade = ip[v, I_XFADE] != 0
        for e in range(2):
            rocket_fft.r2c(ear_in[v, e], fdl[cur_slot, v, e], axes, True, 1.0, 1)
            for p in range(parts):
                spec = fdl[(cur_slot - p) % parts, v, e]
                new = hbuf[v, cur, e, p]
                if xfade:
                    old = hbuf[v, 1 - cur, e, p]
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
def apply_commands(ring, first, stop, now, latencies, counts, fp, ip, gi, cfg, voice_applied,
                   hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, dline, ear_in, fdl, tmp_w,
                   tmp_d, sector_az, sector_w, tmp_k, near_table):
    """Apply the :data:`COMMAND` records ``ring[first % len(ring) .. (stop - 1) % len(ring)]``.

    The audio side's half of a command: it copies numbers into the voice state and clears the
    states of a voice it starts; it validates, allocates and looks up nothing (the control side
    did).  Before the first ``render`` (``gi[G_STARTED] == 0``) changes take effect at once,
    afterwards they ramp over ``gi[G_RAMP_FRAMES]`` frames.  For each record with an
    ``enqueued_at_s``, ``now - enqueued_at_s`` (seconds) goes into the ring ``latencies``;
    ``counts[COUNT_APPLIED]`` and ``counts[COUNT_LATENCIES]`` count.  Runs holding the GIL, so a
    control thread never sees a voice half started (see ``SceneRenderer._free_voice``).
    """
    size = ring.shape[0]
    for k in range(first, stop):
        command = ring[k % size]
        op = command.op
        if op == OP_PLACE:
            _apply_place(command, fp, ip, gi, cfg, voice_applied, hrtf_delays, face_inverse, faces,
                         hrtf_spec, hbuf, dline, ear_in, fdl, tmp_w, tmp_d, sector_az, sector_w,
                         tmp_k, near_table)
        elif op == OP_REMOVE:
            _apply_remove(command.row, ip, gi)
        elif op == OP_SCENE_SEND:
            cfg[C_SEND_TGT] = command.scene_send
            if gi[G_STARTED] != 0:
                gi[G_SEND_RAMP] = gi[G_RAMP_FRAMES]
            else:
                cfg[C_SEND] = command.scene_send
                gi[G_SEND_RAMP] = 0
                for v in range(ip.shape[0]):
                    if ip[v, I_ACTIVE] != 0:
                        init_voice(v, fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec,
                                   hbuf, dline, ear_in, fdl, tmp_w, tmp_d, sector_az, sector_w,
                                   tmp_k, near_table)
        counts[COUNT_APPLIED] += 1
        if command.enqueued_at_s > 0.0 and latencies.shape[0] > 0:
            latencies[counts[COUNT_LATENCIES] % latencies.shape[0]] = now - command.enqueued_at_s
            counts[COUNT_LATENCIES] += 1


@njit(cache=True)
def _apply_place(command, fp, ip, gi, cfg, voice_applied, hrtf_delays, face_inverse, faces,
                 hrtf_spec, hbuf, dline, ear_in, fdl, tmp_w, tmp_d, sector_az, sector_w, tmp_k,
                 near_table):
    started = gi[G_STARTED] != 0
    old = command.voice
    v = command.new_voice
    if v < 0:  # same voice, new targets
        v = old
        fp[v, F_AZ_TGT] = command.azimuth_deg
        fp[v, F_EL_TGT] = command.elevation_deg
        fp[v, F_DIST_TGT] = command.distance_m
        fp[v, F_GAIN_DB_TGT] = command.gain_db
        fp[v, F_SCALE_TGT] = command.send_scale
        if started:
            ip[v, I_RAMP] = gi[G_RAMP_FRAMES]
        else:
            fp[v, F_AZ] = command.azimuth_deg
            fp[v, F_EL] = command.elevation_deg
            fp[v, F_DIST] = command.distance_m
            fp[v, F_GAIN_DB] = command.gain_db
            fp[v, F_SCALE] = command.send_scale
            init_voice(v, fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, dline,
                       ear_in, fdl, tmp_w, tmp_d, sector_az, sector_w, tmp_k, near_table)
        return
    if old >= 0:  # a mode change: the old voice fades out and rings out, the new one fades in
        if started:
            fp[old, F_FADE_TGT] = 0.0
            ip[old, I_FADE_LEFT] = gi[G_RAMP_FRAMES]
            ip[old, I_FREE_AFTER_FADE] = gi[G_TAIL_FRAMES]
        else:
            ip[old, I_ACTIVE] = 0
    for f in range(fp.shape[1]):
        fp[v, f] = 0.0
    for f in range(ip.shape[1]):
        ip[v, f] = 0
    ip[v, I_MODE] = command.mode
    ip[v, I_ROW] = command.row
    fp[v, F_AZ] = fp[v, F_AZ_TGT] = command.azimuth_deg
    fp[v, F_EL] = fp[v, F_EL_TGT] = command.elevation_deg
    fp[v, F_DIST] = fp[v, F_DIST_TGT] = command.distance_m
    fp[v, F_GAIN_DB] = fp[v, F_GAIN_DB_TGT] = command.gain_db
    fp[v, F_SCALE] = fp[v, F_SCALE_TGT] = command.send_scale
    fp[v, F_FADE_TGT] = 1.0
    if started:
        fp[v, F_FADE] = 0.0
        ip[v, I_FADE_LEFT] = gi[G_RAMP_FRAMES]
    else:
        fp[v, F_FADE] = 1.0
    init_voice(v, fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, dline, ear_in,
               fdl, tmp_w, tmp_d, sector_az, sector_w, tmp_k, near_table)
    ip[v, I_ACTIVE] = 1
    voice_applied[v] = command.generation  # after the voice is live: the control side may reuse it once it ends


@njit(cache=True)
def _apply_remove(row, ip, gi):
    """The source at input ``row`` goes (what it fed rings out); later rows move up by one."""
    started = gi[G_STARTED] != 0
    for v in range(ip.shape[0]):
        if ip[v, I_ACTIVE] == 0:
            continue
        r = ip[v, I_ROW]
        if r == row:  # the source's voice, and a voice still fading out of a mode change
            ip[v, I_ROW] = -1
            if started:
                if ip[v, I_DRAIN] == 0:
                    ip[v, I_DRAIN] = gi[G_TAIL_FRAMES]
            else:
                ip[v, I_ACTIVE] = 0
        elif r > row:
            ip[v, I_ROW] = r - 1
