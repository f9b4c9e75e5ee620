"""Binaural front end of the Spatial-AST listener, in NumPy (no torch at run time).

It computes what the torch model in ``onnx_models/spatial_ast/model.py`` computes before its
first learned layer, so the shipped ONNX graph can start at the feature map:

* STFT of each ear: ``n_fft`` 1024, hop 320 (10 ms at 32 kHz), periodic Hann window,
  centred frames with reflect padding (as torchlibrosa's ``STFT`` used by BAT's Spatial-AST);
* log-mel of each ear: ``10 log10(max(|X| @ W_mel, 1e-10))`` with a 128-band Slaney mel matrix,
  50 Hz - 14 kHz (BAT feeds the *magnitude* to its log-mel bank; we do the same);
* cos and sin of the interaural phase difference (right minus left, as BAT), projected by the
  same mel matrix.  We take them from the normalised cross-spectrum ``R conj(L) / |R conj(L)|``,
  which equals ``cos/sin(angle R - angle L)`` wherever the bin holds energy and is 0 (no phase
  information) in silent bins instead of ``atan2(0, 0)`` noise.

Output: float32 ``(4, frames, 128)`` = [logmel L, logmel R, cos IPD, sin IPD] with
``frames = 1 + samples // 320``.  Reference: Zheng et al., "BAT: Learning to Reason about Spatial
Sounds with Large Language Models", ICML 2024 (github.com/zszheng147/Spatial-AST).
"""
from __future__ import annotations

import numpy as np

from stase.core.errors import InputError

SAMPLE_RATE = 32_000
N_FFT = 1024
HOP = 320
N_MELS = 128
FMIN_HZ = 50.0
FMAX_HZ = 14_000.0
AMIN = 1e-10
#: Below this cross-spectrum magnitude a bin carries no phase information.
PHASE_EPS = 1e-10
#: One clip the model sees: 1 s at 32 kHz -> 101 frames.
CLIP_SAMPLES = SAMPLE_RATE
CLIP_FRAMES = 1 + CLIP_SAMPLES // HOP


def _hz_to_mel_slaney(freq_hz):
    """Slaney's auditory-toolbox mel scale (linear below 1 kHz, log above), as librosa's default."""
    f = np.asarray(freq_hz, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mel = f / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mel)


def _mel_to_hz_slaney(mel):
    m = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_matrix(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
               fmin_hz: float = FMIN_HZ, fmax_hz: float = FMAX_HZ) -> np.ndarray:
    """Slaney-normalised triangular mel filterbank, shape ``(n_fft // 2 + 1, n_mels)`` float64.

    The same construction as ``librosa.filters.mel(htk=False, norm="slaney")`` (each triangle has
    unit area in Hz), written out so the run time needs no librosa.
    """
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_points = np.linspace(_hz_to_mel_slaney(fmin_hz), _hz_to_mel_slaney(fmax_hz), n_mels + 2)
    hz_points = _mel_to_hz_slaney(mel_points)
    spacing = np.diff(hz_points)
    ramps = hz_points[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, fft_freqs.size))
    for i in range(n_mels):
        lower = -ramps[i] / spacing[i]
        upper = ramps[i + 2] / spacing[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_points[2:n_mels + 2] - hz_points[:n_mels]))[:, None]
    return weights.T.copy()


def hann_periodic(n: int = N_FFT) -> np.ndarray:
    """Periodic Hann window (``scipy.signal.get_window("hann", n, fftbins=True)``)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def stft(x: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Centred STFT with reflect padding: ``(..., samples)`` -> complex ``(..., frames, n_fft//2+1)``."""
    x = np.asarray(x, dtype=np.float64)
    pad = n_fft // 2
    if x.shape[-1] <= pad:
        raise InputError(f"audio too short for the listener: {x.shape[-1]} samples, need > {pad}")
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    frames = 1 + (padded.shape[-1] - n_fft) // hop
    view = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[..., ::hop, :][..., :frames, :]
    return np.fft.rfft(view * hann_periodic(n_fft), axis=-1)


_MEL_CACHE: dict[tuple, np.ndarray] = {}


def _cached_mel() -> np.ndarray:
    key = (SAMPLE_RATE, N_FFT, N_MELS, FMIN_HZ, FMAX_HZ)
    if key not in _MEL_CACHE:
        _MEL_CACHE[key] = mel_matrix().astype(np.float32)
    return _MEL_CACHE[key]


def binaural_features(binaural: np.ndarray) -> np.ndarray:
    """Spatial-AST input features of a 32 kHz binaural signal.

    Parameters
    ----------
    binaural : ``(2, samples)`` (or ``(batch, 2, samples)``) audio at 32 kHz, row 0 = left ear.

    Returns
    -------
    float32 ``(4, frames, 128)`` (or ``(batch, 4, frames, 128)``): log-mel left, log-mel right
    (dB), mel-projected cos IPD, mel-projected sin IPD; ``frames = 1 + samples // 320``.
    """
    x = np.asarray(binaural, dtype=np.float64)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[None]
    if x.ndim != 3 or x.shape[1] != 2:
        raise InputError(f"binaural_features needs (2, samples) or (batch, 2, samples), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("binaural audio contains NaN or Inf")
    spec = stft(x)                                   # (B, 2, T, F)
    cross = spec[:, 1] * np.conj(spec[:, 0])         # right x conj(left): phase = IPD
    mag = np.abs(cross)
    keep = mag > PHASE_EPS
    safe = np.where(keep, mag, 1.0)
    # One float32 matmul for the four channels (float32 keeps the dB values within ~1e-6).
    stacked = np.concatenate([np.abs(spec), np.where(keep, cross.real / safe, 0.0)[:, None],
                              np.where(keep, cross.imag / safe, 0.0)[:, None]], axis=1).astype(np.float32)
    out = stacked @ _cached_mel()
    out[:, :2] = 10.0 * np.log10(np.maximum(out[:, :2], AMIN))
    return out[0] if squeeze else out


def loudness_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Ungated, unweighted BS.1770-style level of ``(channels, samples)`` audio (LUFS-like dB).

    ``-0.691 + 10 log10(sum over channels of the mean square)``: BS.1770 without K-weighting and
    gating, so it is exact and deterministic for 1 s clips (training data and the listener both
    normalise with this one function).  ``sample_rate`` is accepted for the signature's sake.
    """
    x = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    return level_from_mean_squares(np.mean(x ** 2, axis=1))


def level_from_mean_squares(mean_squares) -> float:
    """``loudness_lufs`` from each channel's mean square (lets a stream measure it block by block)."""
    return -0.691 + 10.0 * np.log10(max(float(np.sum(mean_squares)), 1e-20))
