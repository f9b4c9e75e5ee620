"""Small numba kernels of the localisation renderer (pure functions of arrays and scalars).

Holds
-----
lagrange_coefficients(frac)      3rd-order Lagrange fractional-delay taps (nodes -1, 0, 1, 2)
delay_read(line, mask, write, d) read a circular delay line ``d`` samples back (fractional)
woodworth_itd_s(lateral_rad)     Woodworth's ITD (a/c)(theta + sin theta), seconds
head_shadow_alpha(angle_rad)     Brown & Duda (1998) head-shadow zero factor for one ear
head_shadow_coefficients(...)    that one-pole one-zero filter, bilinear transform -> (b0, b1, a1)
pan_gains(pan)                   constant-power sine/cosine law (-3 dB each side at centre)
air_pole(...)                    one-pole low-pass pole whose loss at f_ref equals a target in dB
find_face(...)                   triangle of an HRTF set crossed by a direction + barycentric weights
spherical_head_itd_s(lat, r)     ITD of a point source r metres away: path difference around a sphere
near_field_itd_change_s(lat, r)  that ITD less the one at the near-field reference distance (1 m)
near_field_shelf(...)            per-ear near-field shelf (b0, b1, a1) from ``stase.dsp.distance``'s table
sector_weights(az, sectors, wrap, out)  energy panning of a direction between early-reflection sectors
add_sector_pairs(early, m, out)  sum the sectors' (left, right) rows of a convolver's output

References
----------
Woodworth, R. S. & Schlosberg, H. (1954). Experimental Psychology, ITD of a rigid sphere.
Brown, C. P. & Duda, R. O. (1998). "A structural model for binaural sound synthesis".
IEEE Trans. Speech Audio Process. 6(5), 476-488 (head-shadow filter, eq. 2-3; alpha_min = 0.1,
theta_min = 150 degrees).
Duda, R. O. & Martens, W. L. (1998). "Range dependence of the response of a spherical head model".
J. Acoust. Soc. Am. 104(5), 3048-3058 (the near-field table behind ``near_field_shelf``).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from stase.core.conventions import HEAD_RADIUS_M, SPEED_OF_SOUND_M_S

#: Brown & Duda (1998): high-frequency gain floor and the angle where it is reached.
HEAD_SHADOW_ALPHA_MIN = 0.1
HEAD_SHADOW_THETA_MIN_RAD = math.radians(150.0)
#: Smallest delay the Lagrange reader supports (it reads one sample "ahead" of the integer part).
MIN_FRACTIONAL_DELAY = 1.0


@njit(cache=True, nogil=True)
def lagrange_coefficients(frac):
    """Taps ``(c_-1, c_0, c_1, c_2)`` for a delay of ``n + frac`` samples, 0 <= frac < 1.

    ``y[t] = c_-1 x[t-n+1] + c_0 x[t-n] + c_1 x[t-n-1] + c_2 x[t-n-2]``; frac = 0 gives the
    unit tap (exact integer delay).
    """
    f = frac
    out = np.empty(4)
    out[0] = -f * (f - 1.0) * (f - 2.0) / 6.0
    out[1] = (f + 1.0) * (f - 1.0) * (f - 2.0) / 2.0
    out[2] = -(f + 1.0) * f * (f - 2.0) / 2.0
    out[3] = (f + 1.0) * f * (f - 1.0) / 6.0
    return out


@njit(cache=True, nogil=True, inline="always")
def delay_read(line, mask, write, delay):
    """Sample ``delay`` (>= 1) samples before the one at index ``write`` of a circular line."""
    n = int(math.floor(delay))
    f = delay - n
    c0 = -f * (f - 1.0) * (f - 2.0) / 6.0
    c1 = (f + 1.0) * (f - 1.0) * (f - 2.0) / 2.0
    c2 = -(f + 1.0) * f * (f - 2.0) / 2.0
    c3 = (f + 1.0) * f * (f - 1.0) / 6.0
    i = write - n
    return (c0 * line[(i + 1) & mask] + c1 * line[i & mask]
            + c2 * line[(i - 1) & mask] + c3 * line[(i - 2) & mask])


@njit(cache=True, nogil=True)
def woodworth_itd_s(lateral_rad, head_radius_m=HEAD_RADIUS_M, speed_of_sound=SPEED_OF_SOUND_M_S):
    """Woodworth ITD in seconds for a lateral angle (radians, + = left); sign follows the angle."""
    t = abs(lateral_rad)
    itd = head_radius_m / speed_of_sound * (t + math.sin(t))
    return itd if lateral_rad >= 0.0 else -itd


@njit(cache=True, nogil=True)
def head_shadow_alpha(angle_from_ear_rad):
    """Brown-Duda zero factor alpha(theta): 2 at the ear (+6 dB), 0.1 at 150 degrees (-20 dB)."""
    a_min = HEAD_SHADOW_ALPHA_MIN
    return (1.0 + a_min / 2.0) + (1.0 - a_min / 2.0) * math.cos(
        angle_from_ear_rad / HEAD_SHADOW_THETA_MIN_RAD * math.pi)


@njit(cache=True, nogil=True)
def head_shadow_coefficients(angle_from_ear_rad, sample_rate, head_radius_m=HEAD_RADIUS_M,
                             speed_of_sound=SPEED_OF_SOUND_M_S):
    """Bilinear-transformed ``H(s) = (1 + alpha s / 2w0) / (1 + s / 2w0)``, w0 = c / a.

    Returns ``(b0, b1, a1)`` of ``y[n] = b0 x[n] + b1 x[n-1] - a1 y[n-1]``; gain 1 at DC and
    alpha at Nyquist.
    """
    alpha = head_shadow_alpha(angle_from_ear_rad)
    tk = 2.0 * sample_rate * head_radius_m / (2.0 * speed_of_sound)  # T * K, T = 1 / (2 w0)
    norm = 1.0 + tk
    return (1.0 + alpha * tk) / norm, (1.0 - alpha * tk) / norm, (1.0 - tk) / norm


@njit(cache=True, nogil=True)
def pan_gains(pan):
    """Constant-power law for pan in [-1 (left), +1 (right)]: ``(g_left, g_right)``.

    ``g_left**2 + g_right**2 == 1``; centre gives cos(pi/4) = -3.01 dB per side.
    """
    p = min(max(pan, -1.0), 1.0)
    theta = (p + 1.0) * math.pi / 4.0
    return math.cos(theta), math.sin(theta)


@njit(cache=True, nogil=True)
def air_pole(loss_db, omega_ref):
    """Pole p of ``y = (1 - p) x + p y[-1]`` whose magnitude at ``omega_ref`` is ``-loss_db``.

    Solves ``(1 - p)^2 = A^2 (1 - 2 p cos w + p^2)`` for the root in [0, 1); 0 when no loss.
    """
    if loss_db <= 1e-9:
        return 0.0
    a2 = 10.0 ** (-loss_db / 10.0)
    c = math.cos(omega_ref)
    q = 1.0 - a2
    half_b = 1.0 - a2 * c
    disc = half_b * half_b - q * q
    if disc < 0.0:
        disc = 0.0
    p = (half_b - math.sqrt(disc)) / q
    return min(max(p, 0.0), 0.999)


@njit(cache=True, nogil=True)
def face_weights(face_inverse, face, x, y, z, w):
    """Barycentric weights of direction (x, y, z) on ``face``; returns the smallest weight."""
    m = face_inverse[face]
    lo = 1e30
    for r in range(3):
        w[r] = m[r, 0] * x + m[r, 1] * y + m[r, 2] * z
        if w[r] < lo:
            lo = w[r]
    return lo


@njit(cache=True, nogil=True)
def find_face(face_inverse, direction, start_face, w):
    """Index of the triangle the ray ``direction`` crosses; its normalised weights go to ``w``.

    Tries ``start_face`` first (a moving source stays on one triangle for many blocks), then
    every triangle, keeping the one whose smallest weight is largest.
    """
    x, y, z = direction[0], direction[1], direction[2]
    best = start_face
    if face_weights(face_inverse, start_face, x, y, z, w) < -1e-9 or w[0] + w[1] + w[2] <= 0.0:
        best_lo = -1e30
        for f in range(face_inverse.shape[0]):
            lo = face_weights(face_inverse, f, x, y, z, w)
            if lo > best_lo and w[0] + w[1] + w[2] > 0.0:
                best_lo = lo
                best = f
        face_weights(face_inverse, best, x, y, z, w)
    total = 0.0
    for r in range(3):
        if w[r] < 0.0:
            w[r] = 0.0
        total += w[r]
    for r in range(3):
        w[r] /= total
    return best


@njit(cache=True, nogil=True)
def _path_to_ear(distance_m, angle_from_ear, head_radius_m):
    """Shortest path from a point source to a point of a sphere: straight, or tangent + arc."""
    r = max(distance_m, 1.01 * head_radius_m)
    a = head_radius_m
    tangent_angle = math.acos(a / r)
    if angle_from_ear <= tangent_angle:  # the ear sees the source
        return math.sqrt(max(r * r + a * a - 2.0 * a * r * math.cos(angle_from_ear), 0.0))
    return math.sqrt(r * r - a * a) + a * (angle_from_ear - tangent_angle)


@njit(cache=True, nogil=True)
def spherical_head_itd_s(lateral_rad, distance_m, head_radius_m=HEAD_RADIUS_M,
                         speed_of_sound=SPEED_OF_SOUND_M_S):
    """ITD (s, positive = left leads) of a point source ``distance_m`` from a spherical head.

    Ears on the interaural axis; each ear's path is straight when the source is visible from it,
    otherwise the tangent to the sphere plus the arc to the ear.  Tends to Woodworth's
    ``(a/c)(theta + sin theta)`` as the distance grows.
    """
    to_left = 0.5 * math.pi - lateral_rad
    to_right = 0.5 * math.pi + lateral_rad
    return (_path_to_ear(distance_m, to_right, head_radius_m)
            - _path_to_ear(distance_m, to_left, head_radius_m)) / speed_of_sound


@njit(cache=True, nogil=True)
def near_field_itd_change_s(lateral_rad, distance_m, reference_m):
    """``spherical_head_itd_s`` at ``distance_m`` less its value at ``reference_m`` (0 beyond it)."""
    if distance_m >= reference_m:
        return 0.0
    return spherical_head_itd_s(lateral_rad, distance_m) - spherical_head_itd_s(lateral_rad, reference_m)


@njit(cache=True, nogil=True)
def near_field_shelf(distance_m, angle_from_ear_rad, table, min_distance_m, log_step,
                     angle_step_rad, reference_m, sample_rate):
    """First-order shelf ``(b0, b1, a1)`` giving an ear the near-field level change.

    ``table`` (3, R, A): low-frequency gain (dB), high-frequency gain (dB) and half-way frequency
    (Hz) on distances ``min_distance_m * exp(log_step * i)`` and angles ``angle_step_rad * j``
    (``stase.dsp.distance.near_field_table``), interpolated bilinearly.  The analogue shelf
    ``G_hi (s + w_z) / (s + w_p)`` with ``w_p w_z = w_m^2`` and ``w_z / w_p = G_lo / G_hi`` passes
    G_lo at DC, G_hi at high frequencies and their geometric mean at ``w_m``; it is mapped by the
    bilinear transform with both corners pre-warped.  Identity at or beyond ``reference_m``.
    """
    if distance_m >= reference_m:
        return 1.0, 0.0, 0.0
    n_r = table.shape[1]
    n_a = table.shape[2]
    x = math.log(max(distance_m, min_distance_m) / min_distance_m) / log_step
    i = min(int(x), n_r - 2)
    fx = min(max(x - i, 0.0), 1.0)
    y = min(max(angle_from_ear_rad, 0.0), math.pi) / angle_step_rad
    j = min(int(y), n_a - 2)
    fy = min(max(y - j, 0.0), 1.0)
    vals = np.empty(3)
    for k in range(3):
        vals[k] = ((1.0 - fx) * ((1.0 - fy) * table[k, i, j] + fy * table[k, i, j + 1])
                   + fx * ((1.0 - fy) * table[k, i + 1, j] + fy * table[k, i + 1, j + 1]))
    g_lo = 10.0 ** (vals[0] / 20.0)
    g_hi = 10.0 ** (vals[1] / 20.0)
    nyquist_guard = 0.45 * sample_rate
    w_m = 2.0 * math.pi * min(max(vals[2], 20.0), nyquist_guard)
    w_p = w_m * math.sqrt(g_hi / g_lo)
    w_z = w_m * math.sqrt(g_lo / g_hi)
    k2 = 2.0 * sample_rate
    w_p = k2 * math.tan(min(w_p, 2.0 * math.pi * nyquist_guard) / k2)
    w_z = k2 * math.tan(min(w_z, 2.0 * math.pi * nyquist_guard) / k2)
    norm = k2 + w_p
    return g_hi * (k2 + w_z) / norm, g_hi * (w_z - k2) / norm, (w_p - k2) / norm


@njit(cache=True, nogil=True)
def sector_weights(azimuth_deg, sectors_deg, wrap, out):
    """Energy-panning weights (``sum w^2 = 1``) of a direction between early-reflection sectors.

    ``sectors_deg`` ascending azimuths (degrees).  ``wrap``: they go round the circle (the
    simulated rooms); otherwise they span the front only (a measured set) and a rear direction
    is folded onto its front mirror image (same lateral angle), beyond the outermost clamped to
    it.  At most two weights are non-zero: ``cos`` and ``sin`` of the fraction between neighbours.
    """
    n = sectors_deg.shape[0]
    for k in range(n):
        out[k] = 0.0
    if n == 0:
        return
    if n == 1:
        out[0] = 1.0
        return
    a = (azimuth_deg + 180.0) % 360.0 - 180.0
    if wrap:
        lo = n - 1
        for k in range(n):
            if sectors_deg[k] <= a:
                lo = k
        hi = (lo + 1) % n
        span = (sectors_deg[hi] - sectors_deg[lo]) % 360.0
        offset = (a - sectors_deg[lo]) % 360.0
    else:
        if a > 90.0:
            a = 180.0 - a
        elif a < -90.0:
            a = -180.0 - a
        if a <= sectors_deg[0]:
            out[0] = 1.0
            return
        if a >= sectors_deg[n - 1]:
            out[n - 1] = 1.0
            return
        lo = 0
        for k in range(n - 1):
            if sectors_deg[k] <= a:
                lo = k
        hi = lo + 1
        span = sectors_deg[hi] - sectors_deg[lo]
        offset = a - sectors_deg[lo]
    t = min(max(offset / span, 0.0), 1.0) if span > 0.0 else 0.0
    out[lo] = math.cos(0.5 * math.pi * t)
    out[hi] = math.sin(0.5 * math.pi * t)


@njit(cache=True, nogil=True)
def add_sector_pairs(early, m, out):
    """``out[e, :m] += sum_k early[2k + e, :m]``: the sectors' left and right ears summed."""
    for r in range(early.shape[0]):
        e = r & 1
        for i in range(m):
            out[e, i] += early[r, i]
