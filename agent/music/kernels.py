"""Numba kernels of the synth voices: band-limited sawtooth, time-varying state-variable filter,
Karplus-Strong string.

Each kernel is a pure function of arrays that writes into a caller's ``out`` (STYLE.md rule 1) and
has a plain NumPy/Python reference in ``tests/test_music.py``.  Signatures are given explicitly so
numba compiles each kernel once, at import time of first use, and caches the machine code
(``cache=True``) for the next run.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit("float64(float64[:], float64, float64, float64[:])", cache=True, nogil=True)
def polyblep_saw(freq_hz, sample_rate, phase, out):
    """Band-limited rising sawtooth (-1..1) with a per-sample frequency; returns the end phase.

    PolyBLEP (Välimäki & Huovilainen, "Antialiasing oscillators in subtractive synthesis",
    IEEE SPM 2007): the naive ramp minus a two-sample polynomial residual around each wrap.

    Parameters
    ----------
    freq_hz : instantaneous frequency per output sample, Hz (0 < f < sample_rate / 2).
    sample_rate : Hz.
    phase : start phase in cycles, [0, 1).
    out : float64 array of the same length, overwritten.
    """
    for n in range(out.shape[0]):
        dt = freq_hz[n] / sample_rate
        value = 2.0 * phase - 1.0
        if phase < dt:
            t = phase / dt
            value -= t + t - t * t - 1.0
        elif phase > 1.0 - dt:
            t = (phase - 1.0) / dt
            value -= t * t + t + t + 1.0
        out[n] = value
        phase += dt
        if phase >= 1.0:
            phase -= 1.0
    return phase


@njit("void(float64[:], float64[:], float64, float64, int64, float64[:])", cache=True, nogil=True)
def svf_filter(x, cutoff_hz, resonance, sample_rate, mode, out):
    """Topology-preserving state-variable filter with a per-sample cutoff (zero initial state).

    Zavalishin, "The Art of VA Filter Design" (2012), ch. 4: g = tan(pi fc / fs), k = 1/Q.
    ``mode`` 0 = low-pass, 1 = band-pass (unity peak gain), 2 = high-pass.  Stable for any
    cutoff below Nyquist, so envelopes may sweep it freely.
    """
    ic1 = 0.0
    ic2 = 0.0
    k = 1.0 / resonance
    nyquist_guard = 0.49 * sample_rate
    for n in range(x.shape[0]):
        fc = cutoff_hz[n]
        if fc > nyquist_guard:
            fc = nyquist_guard
        elif fc < 1.0:
            fc = 1.0
        g = np.tan(np.pi * fc / sample_rate)
        a1 = 1.0 / (1.0 + g * (g + k))
        a2 = g * a1
        a3 = g * a2
        v3 = x[n] - ic2
        v1 = a1 * ic1 + a2 * v3
        v2 = ic2 + a2 * ic1 + a3 * v3
        ic1 = 2.0 * v1 - ic1
        ic2 = 2.0 * v2 - ic2
        if mode == 0:
            out[n] = v2
        elif mode == 1:
            out[n] = k * v1
        else:
            out[n] = x[n] - k * v1 - v2


@njit("void(float64[:], float64, float64, float64, float64[:])", cache=True, nogil=True)
def karplus_strong(excitation, period_samples, feedback, brightness, out):
    """Plucked string (Karplus & Strong 1983, with Jaffe & Smith's 1983 tuning and damping).

    y[n] = e[n] + feedback * ((1 - b) * y[n - P] + b * y[n - P - 1]), the delayed value read with
    linear interpolation at the fractional delay P = period - b so the loop delay is exactly one
    period at low frequencies (the two-tap loop filter adds b samples of delay).

    Parameters
    ----------
    excitation : the pluck, added at the start (zero-padded to ``out``'s length).
    period_samples : sample_rate / f0 (> 2).
    feedback : loop gain per period, < 1 (sets the decay time).
    brightness : b in [0, 0.5]; 0.5 = darkest (Karplus-Strong's average), smaller = brighter.
    out : overwritten with the string's output.
    """
    n_out = out.shape[0]
    n_exc = excitation.shape[0]
    delay = period_samples - brightness
    whole = int(np.floor(delay))
    frac = delay - whole
    for n in range(n_out):
        y = excitation[n] if n < n_exc else 0.0
        i0 = n - whole
        if i0 - 2 >= 0:
            d0 = (1.0 - frac) * out[i0] + frac * out[i0 - 1]
            d1 = (1.0 - frac) * out[i0 - 1] + frac * out[i0 - 2]
            y += feedback * ((1.0 - brightness) * d0 + brightness * d1)
        out[n] = y


@njit("void(float64[:], float64[:], float64[:], float64[:], float64, float64[:])", cache=True, nogil=True)
def decaying_partials(freq_hz, amplitude, tau_s, phase, sample_rate, out):
    """Add sum_k a_k exp(-t / tau_k) sin(2 pi f_k t + phi_k) into ``out`` (t = n / sample_rate).

    Each partial runs as a complex rotation with a per-sample decay factor, so the cost is a few
    multiplies per sample and partial (no transcendental calls in the loop).  ``tau_s <= 0`` means
    no decay.  Partials at or above Nyquist are skipped.
    """
    n_out = out.shape[0]
    for k in range(freq_hz.shape[0]):
        if freq_hz[k] >= 0.5 * sample_rate or freq_hz[k] <= 0.0:
            continue
        w = 2.0 * np.pi * freq_hz[k] / sample_rate
        rot_re = np.cos(w)
        rot_im = np.sin(w)
        re = np.cos(phase[k])
        im = np.sin(phase[k])
        a = amplitude[k]
        g = np.exp(-1.0 / (tau_s[k] * sample_rate)) if tau_s[k] > 0.0 else 1.0
        for n in range(n_out):
            out[n] += a * im
            re, im = re * rot_re - im * rot_im, re * rot_im + im * rot_re
            a *= g
