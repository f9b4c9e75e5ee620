"""The numba kernel behind :class:`dsp.scene.SceneRenderer`: every voice, every sample, one call.

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
"""
from __future__ import annotations

import math

import numpy as np
import rocket_fft
from numba import njit

from .kernels import (air_pole, delay_read, find_face, head_shadow_coefficients, pan_gains,
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
 F_LP, F_XL, F_YL, F_XR, F_YR, F_FX, F_FY, F_FZ) = range(44)
N_FLOAT = 44
# int parameters per voice ---------------------------------------------------------------
(I_ACTIVE, I_MODE, I_ROW, I_RAMP, I_FADE_LEFT, I_DRAIN, I_FACE, I_CUR, I_XFADE, I_WRITE,
 I_FREE_AFTER_FADE) = range(11)
N_INT = 11
# global state / configuration ----------------------------------------------------------
G_FRAME_POS, G_FDL_POS, G_PARTS = range(3)
(C_RATE, C_SEND, C_AIR_DB_PER_M, C_AIR_OMEGA, C_UPDATE_COS, C_BASE_DELAY, C_REF_DIST,
 C_MIN_DIST) = range(8)


@njit(cache=True, nogil=True)
def _wrap180(a):
    a = (a + 180.0) % 360.0 - 180.0
    return 180.0 if a == -180.0 else a


@njit(cache=True, nogil=True)
def voice_params(v, fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, tmp_w,
                 tmp_d, force_filter):
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
    fp[v, F_S1] = level * cfg[C_SEND]
    fp[v, F_P1] = air_pole(cfg[C_AIR_DB_PER_M] * fp[v, F_DIST], cfg[C_AIR_OMEGA])
    mode = ip[v, I_MODE]
    lateral = math.asin(min(max(y, -1.0), 1.0))
    if mode == MODE_PAN:
        gl, gr = pan_gains(-lateral / (0.5 * math.pi))
        fp[v, F_GL1] = gl
        fp[v, F_GR1] = gr
        return False
    if mode == MODE_ITD_ILD:
        itd = woodworth_itd_s(lateral) * rate
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
def _frame_start(fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, tmp_w, tmp_d):
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
            ip[v, I_RAMP] = ramp - 1
        fade = ip[v, I_FADE_LEFT]
        if fade > 0:
            fp[v, F_FADE] += (fp[v, F_FADE_TGT] - fp[v, F_FADE]) / fade
            ip[v, I_FADE_LEFT] = fade - 1
            if fade == 1 and ip[v, I_FREE_AFTER_FADE] > 0:
                # silent from the end of this frame on; free the slot once its tail has rung out
                ip[v, I_DRAIN] = ip[v, I_FREE_AFTER_FADE]
        for f0 in (F_G0, F_S0, F_P0, F_DL0, F_DR0, F_GL0, F_GR0, F_BL0_0, F_BL1_0, F_AL_0,
                   F_BR0_0, F_BR1_0, F_AR_0):
            fp[v, f0] = fp[v, f0 + 1]
        changed = voice_params(v, fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf,
                               tmp_w, tmp_d, False)
        ip[v, I_XFADE] = 1 if changed else 0


@njit(cache=True, nogil=True)
def init_voice(v, fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, dline,
               ear_in, fdl, tmp_w, tmp_d):
    """Clear a voice's states and compute its parameters with no ramp (``*_0 == *_1``)."""
    dline[v, :] = 0.0
    ear_in[v] = 0.0
    fdl[:, v] = 0.0
    for f in (F_LP, F_XL, F_YL, F_XR, F_YR):
        fp[v, f] = 0.0
    fp[v, F_FX] = 2.0  # no filter yet: any direction differs
    ip[v, I_XFADE] = 0
    ip[v, I_WRITE] = 0
    voice_params(v, fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, tmp_w, tmp_d,
                 True)
    hbuf[v, 1 - ip[v, I_CUR]] = hbuf[v, ip[v, I_CUR]]
    ip[v, I_XFADE] = 0
    for f0 in (F_G0, F_S0, F_P0, F_DL0, F_DR0, F_GL0, F_GR0, F_BL0_0, F_BL1_0, F_AL_0,
               F_BR0_0, F_BR1_0, F_AR_0):
        fp[v, f0] = fp[v, f0 + 1]


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
    write = ip[v, I_WRITE]
    line = dline[v]
    for i in range(seg):
        t = (fpos + i + 1) * inv_b
        x = 0.0
        if row >= 0:
            x = inputs[row, pos + i]
            if not math.isfinite(x):
                x = 0.0
        send[pos + i] += (s0 + ds * t) * x
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
    ip[v, I_WRITE] = write


@njit(cache=True, nogil=True)
def render(inputs, n, out, send, fp, ip, gi, cfg, dline, ear_in, fdl, hbuf, hrtf_spec,
           hrtf_delays, face_inverse, faces, acc, ytime, tmp_w, tmp_d, axes):
    """Render ``n`` samples of every active voice into ``out[:, :n]`` (overwritten).

    ``send[:n]`` receives the mono reverb send.  Output samples are always finite.
    """
    frame = ear_in.shape[2] // 2
    parts = fdl.shape[0]
    for e in range(2):
        for i in range(n):
            out[e, i] = 0.0
    for i in range(n):
        send[i] = 0.0
    pos = 0
    while pos < n:
        fpos = gi[G_FRAME_POS]
        if fpos == 0:
            _frame_start(fp, ip, cfg, hrtf_delays, face_inverse, faces, hrtf_spec, hbuf, tmp_w,
                         tmp_d)
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
