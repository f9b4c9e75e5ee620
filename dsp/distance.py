"""The distance model: level, air absorption and direct-to-reverberant balance.

Holds
-----
distance_gain(distance_m)                1/r amplitude, 0 dB at the reference distance (1 m)
air_absorption_db_per_m(f, ...)          ISO 9613-1:1993 pure-tone absorption coefficient
air_absorption_pole(distance_m, fs)      one-pole low-pass matching that loss at ``f_ref``
critical_distance_m(volume_m3, rt60_s, q)  Sabine critical distance (reverb = direct level)
reverb_send_gain(room)                   the room's send for an omnidirectional source (1 / r_c)
reflected_energy_decay(distance_m, rt60_s)  Barron's fall of the reflected energy with distance
drr_model_db(room, distance_m, q)        closed-form direct-to-reverberant ratio (Q, Barron)
spherical_head_response(rho, mu, theta)  Duda & Martens (1998) series: a point source by a rigid sphere
near_field_table()                       per-ear near-field shelf parameters (0.12-1 m, 0-180 deg)

Model
-----
* Direct sound falls as 1/r (inverse-square law in energy), clamped below ``MIN_DISTANCE_M``.
* Air absorbs high frequencies in proportion to the path length: ISO 9613-1 gives the
  coefficient alpha(f) in dB/m (20 degrees C, 50 % relative humidity, 101.325 kPa by default).
  The renderer applies a one-pole low-pass per source whose attenuation at the reference
  frequency (8 kHz, or 0.4 fs at low rates) equals ``alpha(f_ref) * r``, exactly.
* The reverberant field of a room is roughly the same everywhere in it (Sabine / Kuttruff): the
  direct-to-reverberant ratio falls by about 6 dB per doubling of distance and is 0 dB at the
  critical distance ``r_c = 0.057 sqrt(Q V / T60)`` (Kuttruff, Room Acoustics, 5th ed., eq. 5.42;
  Q is the source's directivity factor, :mod:`stase.dsp.directivity`, 1 for an omnidirectional one).
* Barron's revised theory (M. Barron & L.-J. Lee, "Energy relations in concert auditoriums. I",
  JASA 84(2), 1988, 618-628): the reverberation decays from the moment the sound is emitted, so
  by the time the direct sound arrives from ``r`` metres the reflected energy has already fallen
  by ``exp(-13.82 r / (c T))`` (``60 r / (c T)`` dB).  The scene applies it per source, so the
  reverberant level falls slowly with distance as in measured halls.  With both,
  ``DRR(r) = 20 log10(sqrt(Q) r_c / r) + 60 r / (c T)`` dB (:func:`drr_model_db`).
* Near field (below :data:`NEAR_FIELD_REFERENCE_M`): the head is a rigid sphere of radius
  ``a = HEAD_RADIUS_M`` and a point source at ``r`` gives each ear the pressure of Duda &
  Martens' series (R. O. Duda & W. L. Martens, "Range dependence of the response of a spherical
  head model", JASA 104(5), 1998, 3048-3058, eq. 3).  Relative to the source at 1 m the ear
  facing a close source gains level, most at low frequencies, and the far ear loses it: the
  ILD grows strongly below 0.5 m, as Brungart & Rabinowitz measured on KEMAR (D. S. Brungart &
  W. M. Rabinowitz, "Auditory localization of nearby sources. Head-related transfer functions",
  JASA 106(3), 1999, 1465-1479).  :func:`near_field_table` reduces that ratio per ear to a
  first-order shelf (low-frequency gain, high-frequency gain, mid-point frequency) on a grid of
  distances and angles from the ear; the scene interpolates it and filters each ear with it in
  ``itd_ild`` and ``hrtf`` modes.  The ITD of a close source is the path difference around the
  sphere (``stase.dsp.kernels.spherical_head_itd_s``), added as the change from 1 m.
"""
from __future__ import annotations

import math

import numpy as np

from stase.core.conventions import HEAD_RADIUS_M, MIN_DISTANCE_M, REFERENCE_DISTANCE_M, SPEED_OF_SOUND_M_S
from stase.dsp.kernels import air_pole

#: Reference frequency (Hz) at which the air-absorption low-pass matches ISO 9613-1.
AIR_REFERENCE_HZ = 8000.0
#: Critical distance used when no room (or no room figures) are known, metres.
DEFAULT_CRITICAL_DISTANCE_M = 3.0
#: ``ln(10^6)``: energy decay, in nepers of energy, over one reverberation time (60 dB).
DECAY_NEPERS = 6.0 * math.log(10.0)
#: Near-field cues apply below this distance (the far-field cues are those of a source here).
NEAR_FIELD_REFERENCE_M = 1.0
#: Closest distance of the near-field table; closer sources use it (1.4 head radii: 3 cm from the skin).
NEAR_FIELD_MIN_M = 0.12
NEAR_FIELD_DISTANCES = 24
NEAR_FIELD_ANGLE_STEP_DEG = 5.0
#: Frequencies of the shelf fit: the low-frequency gain is read at the first, the high-frequency
#: gain averaged over NEAR_FIELD_HIGH_BAND_HZ (above it the far ear's "bright spot" ripples).
NEAR_FIELD_FREQUENCIES_HZ = np.geomspace(50.0, 16000.0, 48)
NEAR_FIELD_HIGH_BAND_HZ = (4000.0, 12000.0)


def distance_gain(distance_m):
    """Direct-sound amplitude ``r_ref / r`` (r clamped to >= MIN_DISTANCE_M)."""
    r = np.maximum(np.asarray(distance_m, dtype=float), MIN_DISTANCE_M)
    g = REFERENCE_DISTANCE_M / r
    return float(g) if np.ndim(g) == 0 else g


def air_absorption_db_per_m(frequency_hz, temperature_c: float = 20.0,
                            relative_humidity_pct: float = 50.0, pressure_kpa: float = 101.325):
    """ISO 9613-1:1993 atmospheric absorption coefficient alpha in dB per metre (eq. 5, B.1)."""
    f = np.asarray(frequency_hz, dtype=float)
    t = temperature_c + 273.15
    t0, t01, pr = 293.15, 273.16, 101.325
    pa = pressure_kpa / pr
    psat = 10.0 ** (-6.8346 * (t01 / t) ** 1.261 + 4.6151)
    h = relative_humidity_pct * psat / pa  # molar concentration of water vapour, %
    fr_o = pa * (24.0 + 4.04e4 * h * (0.02 + h) / (0.391 + h))
    fr_n = pa * (t / t0) ** -0.5 * (9.0 + 280.0 * h * math.exp(-4.170 * ((t / t0) ** (-1.0 / 3.0) - 1.0)))
    alpha = 8.686 * f * f * (1.84e-11 / pa * (t / t0) ** 0.5 + (t / t0) ** -2.5 * (
        0.01275 * math.exp(-2239.1 / t) / (fr_o + f * f / fr_o)
        + 0.1068 * math.exp(-3352.0 / t) / (fr_n + f * f / fr_n)))
    return float(alpha) if np.ndim(alpha) == 0 else alpha


def air_reference_hz(sample_rate: float) -> float:
    """The frequency at which the low-pass matches ISO 9613-1 (below 0.4 fs)."""
    return min(AIR_REFERENCE_HZ, 0.4 * sample_rate)


def air_absorption_pole(distance_m: float, sample_rate: float) -> float:
    """Pole of the per-source air-absorption low-pass for a path of ``distance_m``."""
    f_ref = air_reference_hz(sample_rate)
    loss_db = air_absorption_db_per_m(f_ref) * max(float(distance_m), 0.0)
    return float(air_pole(loss_db, 2.0 * math.pi * f_ref / sample_rate))


def critical_distance_m(volume_m3: float, rt60_s: float, q: float = 1.0) -> float:
    """Sabine critical distance ``0.057 sqrt(Q V / T60)`` in metres (Q = 1: omnidirectional)."""
    if rt60_s <= 0.0 or volume_m3 <= 0.0:
        return math.inf
    return 0.057 * math.sqrt(q * volume_m3 / rt60_s)


def reflected_energy_decay(distance_m, rt60_s: float):
    """Barron's factor ``exp(-13.82 r / (c T))`` on the reflected energy of a source ``r`` away.

    Energy, not amplitude (the send uses its square root); 1 for ``rt60_s`` <= 0.
    """
    if rt60_s <= 0.0:
        return 1.0 if np.ndim(distance_m) == 0 else np.ones_like(np.asarray(distance_m, dtype=float))
    e = np.exp(-DECAY_NEPERS * np.asarray(distance_m, dtype=float) / (SPEED_OF_SOUND_M_S * rt60_s))
    return float(e) if np.ndim(e) == 0 else e


def drr_model_db(room: dict, distance_m, q: float = 1.0):
    """Closed-form direct-to-reverberant ratio (dB) of a source with directivity ``q``.

    ``20 log10(sqrt(q) r_c / r) + 60 r / (c T)``: Sabine's critical distance with the directivity
    factor and Barron's decay of the reflected energy with distance (see the module docstring).
    """
    r = np.maximum(np.asarray(distance_m, dtype=float), MIN_DISTANCE_M)
    rt60 = float(room["rt60_s"])
    r_c = critical_distance_m(float(np.prod(room["dimensions_m"])), rt60, q)
    d = 20.0 * np.log10(r_c / r) + 10.0 * np.log10(math.e) * DECAY_NEPERS * r / (SPEED_OF_SOUND_M_S * rt60)
    return float(d) if np.ndim(d) == 0 else d


def reverb_send_gain(room: dict | None) -> float:
    """Send amplitude so the reverb equals the direct sound at the room's critical distance.

    ``room`` is a validated room preset (``dimensions_m``, ``rt60_s``); None gives the default
    critical distance.  The send does not depend on the source distance.
    """
    r_c = DEFAULT_CRITICAL_DISTANCE_M
    if room:
        dims = room.get("dimensions_m")
        rt60 = room.get("rt60_s")
        if dims and rt60:
            r_c = critical_distance_m(float(np.prod(dims)), float(rt60))
    if not math.isfinite(r_c):
        return 0.0
    return REFERENCE_DISTANCE_M / max(r_c, MIN_DISTANCE_M)


# ---------------------------------------------------------------------------------------------
# near field: Duda & Martens' spherical head

def spherical_head_response(rho, mu, theta_rad, terms: int = 90) -> np.ndarray:
    """Pressure at a point of a rigid sphere's surface from a point source, Duda & Martens (1998).

    ``H = -(rho / mu) exp(-i mu rho) sum_m (2m + 1) P_m(cos theta) h_m(mu rho) / h'_m(mu)``, the
    pressure relative to the free-field pressure the source would give at the sphere's centre.

    Parameters
    ----------
    rho : (R,) source distances over the sphere radius (> 1).
    mu : (F,) normalised frequencies ``2 pi f a / c``.
    theta_rad : (A,) angles between the source and the surface point, seen from the centre.
    terms : terms of the series (90 converge to 1e-6 for rho >= 1.37 and f <= 16 kHz).

    Returns
    -------
    complex (R, A, F) (scalars count as length-1 axes).  Only the magnitude is used (the ILD);
    time convention e^{+i omega t}, h_m = j_m - i y_m.
    """
    from scipy.special import eval_legendre, spherical_jn, spherical_yn
    rho = np.atleast_1d(np.asarray(rho, dtype=float))
    mu = np.atleast_1d(np.asarray(mu, dtype=float))
    cos_theta = np.cos(np.atleast_1d(np.asarray(theta_rad, dtype=float)))
    x = rho[:, None] * mu[None, :]
    total = np.zeros((rho.size, cos_theta.size, mu.size), dtype=complex)
    for m in range(terms):
        ratio = (spherical_jn(m, x) - 1j * spherical_yn(m, x)) / (
            spherical_jn(m, mu, derivative=True) - 1j * spherical_yn(m, mu, derivative=True))
        total += ((2 * m + 1) * eval_legendre(m, cos_theta))[None, :, None] * ratio[:, None, :]
    return -(rho[:, None, None] / mu[None, None, :]) * np.exp(-1j * x)[:, None, :] * total


def near_field_gain_db(distance_m, angle_from_ear_rad, frequency_hz,
                       reference_m: float = NEAR_FIELD_REFERENCE_M):
    """Level change (dB) at an ear when a source moves from ``reference_m`` to ``distance_m``.

    The ratio of Duda & Martens' responses (the 1/r of the distance law already divided out);
    ``angle_from_ear_rad`` is the angle between the source and the ear seen from the head centre.
    Returns (R, A, F) for R distances, A angles and F frequencies.
    """
    a, c = HEAD_RADIUS_M, SPEED_OF_SOUND_M_S
    mu = 2.0 * math.pi * np.atleast_1d(np.asarray(frequency_hz, dtype=float)) * a / c
    near = spherical_head_response(np.asarray(distance_m, dtype=float) / a, mu, angle_from_ear_rad)
    far = spherical_head_response(reference_m / a, mu, angle_from_ear_rad)
    return 20.0 * np.log10(np.abs(near) / np.abs(far))


_NEAR_TABLE: tuple | None = None


def near_field_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-ear near-field shelf parameters on a (distance, angle-from-ear) grid (computed once).

    Returns
    -------
    distances_m (R,) log-spaced from :data:`NEAR_FIELD_MIN_M` to :data:`NEAR_FIELD_REFERENCE_M`;
    angles_deg (A,) 0..180 in :data:`NEAR_FIELD_ANGLE_STEP_DEG` steps;
    table (3, R, A) float64: low-frequency gain (dB, at 50 Hz), high-frequency gain (dB, mean over
    :data:`NEAR_FIELD_HIGH_BAND_HZ`) and the frequency (Hz) where the level change is half-way
    between the two.  A first-order shelf through these three numbers follows the series within
    about 1 dB at 0.25 m (the test checks octave bands at 0.25, 0.5 and 1 m).  At the reference
    distance all gains are 0 dB (no correction).
    """
    global _NEAR_TABLE
    if _NEAR_TABLE is None:
        distances = np.geomspace(NEAR_FIELD_MIN_M, NEAR_FIELD_REFERENCE_M, NEAR_FIELD_DISTANCES)
        angles = np.arange(0.0, 180.0 + 1e-9, NEAR_FIELD_ANGLE_STEP_DEG)
        f = NEAR_FIELD_FREQUENCIES_HZ
        gain = near_field_gain_db(distances, np.radians(angles), f)
        low = gain[..., 0]
        high_band = (f >= NEAR_FIELD_HIGH_BAND_HZ[0]) & (f <= NEAR_FIELD_HIGH_BAND_HZ[1])
        high = gain[..., high_band].mean(axis=-1)
        middle = 0.5 * (low + high)
        log_f = np.log(f)
        corner = np.full(low.shape, 1000.0)
        for i in range(distances.size):
            for j in range(angles.size):
                g = gain[i, j]
                if abs(low[i, j] - high[i, j]) < 0.05:
                    continue
                # first crossing of the half-way level, interpolated in log frequency
                side = np.sign(g - middle[i, j]) != np.sign(low[i, j] - middle[i, j])
                k = int(np.argmax(side))
                if k == 0:
                    continue
                t = (middle[i, j] - g[k - 1]) / (g[k] - g[k - 1])
                corner[i, j] = float(np.exp(log_f[k - 1] + t * (log_f[k] - log_f[k - 1])))
        low[-1] = high[-1] = 0.0  # the reference distance itself: exactly no correction
        _NEAR_TABLE = (distances, angles, np.stack([low, high, corner]))
    return _NEAR_TABLE
