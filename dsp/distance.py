"""The distance model: level, air absorption and direct-to-reverberant balance.

Holds
-----
distance_gain(distance_m)                1/r amplitude, 0 dB at the reference distance (1 m)
air_absorption_db_per_m(f, ...)          ISO 9613-1:1993 pure-tone absorption coefficient
air_absorption_pole(distance_m, fs)      one-pole low-pass matching that loss at ``f_ref``
critical_distance_m(volume_m3, rt60_s)   Sabine critical distance (reverb = direct level)
reverb_send_gain(room)                   the per-source send, constant with distance

Model
-----
* Direct sound falls as 1/r (inverse-square law in energy), clamped below ``MIN_DISTANCE_M``.
* Air absorbs high frequencies in proportion to the path length: ISO 9613-1 gives the
  coefficient alpha(f) in dB/m (20 degrees C, 50 % relative humidity, 101.325 kPa by default).
  The renderer applies a one-pole low-pass per source whose attenuation at the reference
  frequency (8 kHz, or 0.4 fs at low rates) equals ``alpha(f_ref) * r``, exactly.
* The reverberant field of a room is roughly the same everywhere in it (Sabine / Kuttruff), so
  the reverb send does not fall with distance: the direct-to-reverberant ratio falls by 6 dB per
  doubling of distance and is 0 dB at the critical distance ``r_c = 0.057 sqrt(V / T60)``
  (Kuttruff, Room Acoustics, 5th ed., eq. 5.42, omnidirectional source).
"""
from __future__ import annotations

import math

import numpy as np

from .conventions import MIN_DISTANCE_M, REFERENCE_DISTANCE_M
from .kernels import air_pole

#: Reference frequency (Hz) at which the air-absorption low-pass matches ISO 9613-1.
AIR_REFERENCE_HZ = 8000.0
#: Critical distance used when no room (or no room figures) are known, metres.
DEFAULT_CRITICAL_DISTANCE_M = 3.0


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


def critical_distance_m(volume_m3: float, rt60_s: float) -> float:
    """Sabine critical distance ``0.057 sqrt(V / T60)`` in metres (omnidirectional source)."""
    if rt60_s <= 0.0 or volume_m3 <= 0.0:
        return math.inf
    return 0.057 * math.sqrt(volume_m3 / rt60_s)


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
