"""The one source of truth for stase's coordinate convention and physical constants.

Convention (as SOFA / AES69 spherical coordinates)
--------------------------------------------------
* azimuth in degrees, 0 = straight ahead, **positive = to the listener's left** (counter-clockwise
  seen from above), wrapped to the range (-180, 180];
* elevation in degrees, 0 = ear level, positive = up, range [-90, 90];
* distance in metres from the centre of the head;
* gains in dB;
* Cartesian axes: x to the front, y to the left, z up (right-handed, SOFA "cartesian").
* Stereo pan as DAWs use it: -1 = hard left, 0 = centre, +1 = hard right.
"""
from __future__ import annotations

import numpy as np

DEFAULT_SAMPLE_RATE = 48_000
#: Speed of sound in air at about 20 degrees C, m/s.
SPEED_OF_SOUND_M_S = 343.0
#: Head radius used by the analytic ITD/ILD model (Woodworth; Brown & Duda 1998 use 8.75 cm).
HEAD_RADIUS_M = 0.0875
#: Reference distance at which the 1/r distance gain is 0 dB.
REFERENCE_DISTANCE_M = 1.0
MIN_DISTANCE_M = 0.1
MAX_DISTANCE_M = 100.0
LOCALISATION_MODES = ("pan", "itd_ild", "hrtf")


def wrap_azimuth_deg(azimuth_deg):
    """Wrap azimuth(s) to (-180, 180] degrees (scalar in, scalar out)."""
    if type(azimuth_deg) is float or type(azimuth_deg) is int:  # plain maths: a live move asks per block
        a = (azimuth_deg + 180.0) % 360.0 - 180.0
        return 180.0 if a == -180.0 else float(a)
    a = np.mod(np.asarray(azimuth_deg, dtype=float) + 180.0, 360.0) - 180.0
    a = np.where(a == -180.0, 180.0, a)
    return float(a) if np.ndim(a) == 0 else a


def clamp_elevation_deg(elevation_deg):
    """Clamp elevation(s) to [-90, 90] degrees."""
    e = np.clip(np.asarray(elevation_deg, dtype=float), -90.0, 90.0)
    return float(e) if np.ndim(e) == 0 else e


def spherical_to_cartesian(azimuth_deg, elevation_deg, distance_m=1.0):
    """Return (x, y, z) in metres: x front, y left, z up."""
    az = np.radians(azimuth_deg)
    el = np.radians(elevation_deg)
    r = np.asarray(distance_m, dtype=float)
    return (r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az), r * np.sin(el))


def cartesian_to_spherical(x, y, z):
    """Return (azimuth_deg, elevation_deg, distance_m) from x front, y left, z up."""
    x, y, z = (np.asarray(v, dtype=float) for v in (x, y, z))
    r = np.sqrt(x * x + y * y + z * z)
    az = wrap_azimuth_deg(np.degrees(np.arctan2(y, x)))
    el = np.degrees(np.arctan2(z, np.sqrt(x * x + y * y)))
    if np.ndim(r) == 0:
        return float(az), float(el), float(r)
    return az, el, r


def lateral_angle_deg(azimuth_deg, elevation_deg=0.0):
    """Interaural-polar lateral angle in degrees: +90 = fully left, -90 = fully right.

    Sources on a cone of confusion (front/back mirror images) share this angle, so it is what
    ITD and ILD alone can convey.
    """
    az = np.radians(azimuth_deg)
    el = np.radians(elevation_deg)
    lat = np.degrees(np.arcsin(np.clip(np.sin(az) * np.cos(el), -1.0, 1.0)))
    return float(lat) if np.ndim(lat) == 0 else lat


def azimuth_to_stereo_pan(azimuth_deg, elevation_deg=0.0):
    """DAW stereo pan (-1 left .. +1 right) for a direction: linear in lateral angle.

    Rear sources fold onto the front (a stereo panner cannot say "behind").
    """
    pan = -np.asarray(lateral_angle_deg(azimuth_deg, elevation_deg)) / 90.0
    pan = np.clip(pan, -1.0, 1.0)
    return float(pan) if np.ndim(pan) == 0 else pan


def stereo_pan_to_azimuth(pan):
    """Inverse of :func:`azimuth_to_stereo_pan` for frontal sources (pan -1 -> +90 deg)."""
    az = -np.clip(np.asarray(pan, dtype=float), -1.0, 1.0) * 90.0
    return float(az) if np.ndim(az) == 0 else az


def great_circle_deg(az1_deg, el1_deg, az2_deg, el2_deg):
    """Great-circle angle between two directions, degrees (0..180)."""
    a1, e1, a2, e2 = (np.radians(v) for v in (az1_deg, el1_deg, az2_deg, el2_deg))
    cos_angle = np.sin(e1) * np.sin(e2) + np.cos(e1) * np.cos(e2) * np.cos(a1 - a2)
    ang = np.degrees(np.arccos(np.clip(cos_angle, -1.0, 1.0)))
    return float(ang) if np.ndim(ang) == 0 else ang


def db_to_gain(gain_db):
    """Amplitude factor for a gain in dB."""
    g = 10.0 ** (np.asarray(gain_db, dtype=float) / 20.0)
    return float(g) if np.ndim(g) == 0 else g


def gain_to_db(gain, floor_db=-200.0):
    """Gain in dB for an amplitude factor (floored so silence stays finite)."""
    g = np.maximum(np.abs(np.asarray(gain, dtype=float)), 10.0 ** (floor_db / 20.0))
    d = 20.0 * np.log10(g)
    return float(d) if np.ndim(d) == 0 else d
