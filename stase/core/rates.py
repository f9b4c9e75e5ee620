"""Sample rates: the one sample-rate check and the one resampler of stase.

Every part that takes a rate from a user, a file or a model checks it here
(:func:`check_sample_rate`), and every change of rate goes through :func:`resample` (polyphase,
``scipy.signal.resample_poly`` with its default Kaiser-windowed filter, the ratio reduced by the
greatest common divisor of the two integer rates, so 44 100 -> 48 000 Hz is 160/147 exactly).

Functions
---------
check_sample_rate   an integer rate in [MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ] Hz, or InputError
resample_ratio      (up, down) of a rate change, reduced
resample            one array along one axis, float64 (float32 stays float32)
resample_stems      every stem of a dict, replaced one by one (one extra copy alive at a time)
"""
from __future__ import annotations

import math
from numbers import Integral

import numpy as np

from stase.core.errors import InputError

MIN_SAMPLE_RATE_HZ = 8000
MAX_SAMPLE_RATE_HZ = 384000


def check_sample_rate(rate, what: str = "sample rate") -> int:
    """``rate`` as an int if it is a whole number of Hz in [8000, 384000]; ``InputError`` naming
    ``what`` otherwise (NaN, a fraction, a bool, a string, out of range)."""
    ok = isinstance(rate, Integral) and not isinstance(rate, bool)
    if not ok and isinstance(rate, (float, np.floating)) and math.isfinite(rate) and float(rate).is_integer():
        ok, rate = True, int(rate)
    if not ok or not MIN_SAMPLE_RATE_HZ <= int(rate) <= MAX_SAMPLE_RATE_HZ:
        raise InputError(f"{what} must be a whole number of Hz between {MIN_SAMPLE_RATE_HZ} and "
                         f"{MAX_SAMPLE_RATE_HZ}, got {rate!r}")
    return int(rate)


def resample_ratio(from_rate: int, to_rate: int) -> tuple[int, int]:
    """``(up, down)`` with ``to_rate / from_rate = up / down`` in lowest terms."""
    from_rate, to_rate = int(from_rate), int(to_rate)
    if from_rate <= 0 or to_rate <= 0:
        raise InputError(f"cannot resample {from_rate} Hz -> {to_rate} Hz")
    g = math.gcd(from_rate, to_rate)
    return to_rate // g, from_rate // g


def resample(audio: np.ndarray, from_rate: int, to_rate: int, axis: int = -1) -> np.ndarray:
    """Polyphase-resample ``audio`` along ``axis`` from ``from_rate`` to ``to_rate`` (Hz).

    Returns ``audio`` itself when the rates are equal.  The output has
    ``ceil(n * to_rate / from_rate)`` samples along ``axis``.
    """
    if int(from_rate) == int(to_rate):
        return audio
    from scipy.signal import resample_poly
    up, down = resample_ratio(from_rate, to_rate)
    x = np.asarray(audio)
    if x.dtype != np.float32:
        x = x.astype(np.float64, copy=False)
    return resample_poly(x, up, down, axis=axis)


def resample_stems(stems: dict[str, np.ndarray], from_rate: int, to_rate: int,
                   dtype=np.float32) -> dict[str, np.ndarray]:
    """Resample every stem of ``stems`` (along its last axis) in place, as ``dtype``; returns the
    same dict.  Stems are replaced one by one, so only one stem exists twice at a time."""
    if int(from_rate) == int(to_rate):
        for name in list(stems):
            stems[name] = np.asarray(stems[name], dtype=dtype)
        return stems
    for name in list(stems):
        stems[name] = resample(np.asarray(stems[name], dtype=np.float64), from_rate, to_rate).astype(dtype)
    return stems
