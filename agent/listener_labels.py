"""Label bins of the Spatial-AST heads and their decoding (NumPy only; used at run time).

Our convention (stase/core/conventions.py): azimuth degrees, 0 = front, positive = LEFT, (-180, 180];
elevation positive up.  Bins: azimuth bin ``i`` = ``i`` degrees mod 360 (360 bins), elevation bin
``j`` = ``j - 90`` degrees (180 bins), distance bin ``k`` = ``0.5 k`` m (21 bins, 0-10 m), as
BAT's Spatial-AST heads (github.com/zszheng147/Spatial-AST).
"""
from __future__ import annotations

import numpy as np

ROLES = ("lead_vocal", "backing_vocals", "choir", "drums", "percussion", "hand_drums", "bass",
         "double_bass", "electric_guitar", "acoustic_guitar", "piano", "organ", "synth_lead",
         "synth_pad", "violins", "violas", "cellos", "strings", "brass", "trumpet", "saxophone",
         "woodwinds", "flute", "plucked")
N_DISTANCE_BINS = 21
DISTANCE_STEP_M = 0.5
N_AZIMUTH_BINS = 360
N_ELEVATION_BINS = 180


def azimuth_to_bin(azimuth_deg):
    return np.mod(np.rint(np.asarray(azimuth_deg, dtype=float)), 360).astype(np.int64)


def elevation_to_bin(elevation_deg):
    return np.clip(np.rint(np.asarray(elevation_deg, dtype=float)) + 90, 0, N_ELEVATION_BINS - 1).astype(np.int64)


def distance_to_bin(distance_m):
    return np.clip(np.rint(np.asarray(distance_m, dtype=float) / DISTANCE_STEP_M), 0, N_DISTANCE_BINS - 1).astype(np.int64)


def bin_to_azimuth(index):
    a = np.mod(np.asarray(index, dtype=float) + 180.0, 360.0) - 180.0
    return np.where(a == -180.0, 180.0, a)


def softmax(logits, axis=-1):
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(logits):
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


#: Half-width (bins = degrees) of the box over which ``decode_direction`` pools probability before
#: picking the peak; chosen on the train-seed validation split (``valid_s1``), see the model card:
#: pooling helped the less certain run-4 model (MAE 37.6 -> 34.4 deg at 50 bins) but not the
#: shipped run-5 model (8.3 deg at 0, 8.8 at 20), so the default is BAT's plain argmax.
DECODE_POOL_BINS = 0


def _pooled(prob: np.ndarray, half: int, circular: bool) -> np.ndarray:
    """Sum of ``prob`` over the ``2 half + 1`` bins around each bin (circular or zero-padded)."""
    if half <= 0:
        return prob
    n = prob.shape[1]
    padded = np.concatenate([prob[:, -half:], prob, prob[:, :half]], axis=1) if circular else \
        np.pad(prob, ((0, 0), (half, half)))
    cumulative = np.concatenate([np.zeros((prob.shape[0], 1)), np.cumsum(padded, axis=1)], axis=1)
    return cumulative[:, 2 * half + 1: 2 * half + 1 + n] - cumulative[:, :n]


def _triangle_pooled(prob: np.ndarray, half: int, circular: bool) -> np.ndarray:
    """``prob`` weighted by a triangle of half-width ~``half`` bins (two box sums), so a plateau
    or a one-hot keeps a single, central maximum."""
    box = half // 2
    return _pooled(_pooled(prob, box, circular), box, circular)


def decode_direction(azimuth_prob, elevation_prob, window_bins: int = 5, pool_bins: int = DECODE_POOL_BINS):
    """Azimuth and elevation (deg) from bin probabilities ``(B, 360)``, ``(B, 180)``.

    The peak is the bin with the most probability within ``+-pool_bins`` (triangle-weighted,
    circular for azimuth):
    BAT reads the plain argmax (``pool_bins=0``), but when front and back compete, a broad mode
    holding more mass than a narrow spike is the better answer for ER20 / MAE.  The peak is then
    refined by the probability-weighted mean of the raw bins within ``window_bins`` of it.
    Returns ``(azimuth_deg, elevation_deg, mass)`` where ``mass`` is the azimuth probability
    within +-10 degrees of the answer (a confidence).
    """
    az_p = np.atleast_2d(np.asarray(azimuth_prob, dtype=float))
    el_p = np.atleast_2d(np.asarray(elevation_prob, dtype=float))
    offsets = np.arange(-window_bins, window_bins + 1)
    az_peak = _triangle_pooled(az_p, pool_bins, circular=True).argmax(axis=1)
    idx = np.mod(az_peak[:, None] + offsets[None], N_AZIMUTH_BINS)
    w = np.take_along_axis(az_p, idx, axis=1)
    az = az_peak + (w * offsets).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)
    el_peak = _triangle_pooled(el_p, pool_bins, circular=False).argmax(axis=1)
    idx = np.clip(el_peak[:, None] + offsets[None], 0, N_ELEVATION_BINS - 1)
    w = np.take_along_axis(el_p, idx, axis=1)
    el = np.where(w.sum(axis=1) > 1e-12, (w * idx).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12),
                  el_peak) - 90.0
    near = np.mod(az_peak[:, None] + np.arange(-10, 11)[None], N_AZIMUTH_BINS)
    mass = np.take_along_axis(az_p, near, axis=1).sum(axis=1)
    return bin_to_azimuth(az), el, mass


def decode_distance(distance_prob):
    """Expected distance (m) over the bins within one bin of the argmax (BAT reads the argmax)."""
    p = np.atleast_2d(distance_prob)
    peak = p.argmax(axis=1)
    idx = np.clip(peak[:, None] + np.arange(-1, 2)[None], 0, N_DISTANCE_BINS - 1)
    w = np.take_along_axis(p, idx, axis=1) * (np.abs(idx - peak[:, None]) <= 1)
    return (w * idx).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12) * DISTANCE_STEP_M
