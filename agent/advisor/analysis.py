"""Per-stem measurements the advisor reasons with; every number it prints starts here.

What this module holds
----------------------
* :func:`prepare_stems` - checks a ``{track: audio}`` mapping (NaN/Inf, empty, layout, lengths)
  and returns float32 ``(channels, samples)`` arrays of one length plus plain-language warnings.
* :func:`k_weight` / :func:`gating_block_powers` / :func:`gated_loudness` - ITU-R BS.1770-4
  loudness, vectorised.  The K-weighting biquads are pyloudnorm's (``pyloudnorm.IIRfilter`` with
  the parameters of its "K-weighting" meter); block powers come from one cumulative sum instead of
  pyloudnorm's per-block loop, and the tests check equality with ``pyloudnorm.Meter``.
* :func:`erb_band_edges_hz` / :func:`band_powers` - short-time band powers on a 1-Cam ERB-rate grid
  (Glasberg & Moore 1990, Hear. Res. 47:103-138), from a Hann STFT of about 85 ms.
* :func:`analyse_stems` -> :class:`MixAnalysis` - all of the above per stem, plus peak, crest
  factor, clipping, short-term loudness (3 s windows, EBU Tech 3341) and activity (where a stem
  plays).

Levels are dB relative to full scale (a full-scale sine has a mean square of 0.5, -3.01 dBFS
in power terms); loudness is LUFS; durations in seconds.  A stereo stem counts as the sum of its
channel powers, as BS.1770 does, so a mono stem panned centre with constant power measures the
same as the mono file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
import scipy.signal

from stase.core.errors import InputError
from stase.core.names import track_key
from stase.core.rates import check_sample_rate as check_rate

#: BS.1770-4 gating: 400 ms blocks, 75 % overlap, absolute gate -70 LUFS, relative gate -10 LU.
BLOCK_S = 0.400
BLOCK_OVERLAP = 0.75
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
#: EBU Tech 3341 short-term loudness window.
SHORT_TERM_S = 3.0
SHORT_TERM_HOP_S = 1.0
#: A sample at or above this magnitude, three in a row, counts as clipped.
CLIP_LEVEL = 0.999
#: Frames quieter than this (dB re full-scale mean square) are silence for activity.
ACTIVITY_FLOOR_DB = -70.0
#: ... and so are frames more than this far below the stem's loud (95th percentile) frames.
ACTIVITY_RANGE_DB = 40.0
MAX_CHANNELS = 5
#: FFT threads for the band analysis (the goal is stated for a 2-core machine).
FFT_WORKERS = max(1, min(2, os.cpu_count() or 1))  # BS.1770 channel weights exist for up to 5 channels
_CHANNEL_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.41, 1.41])
_TINY = 1e-20


def check_sample_rate(sample_rate) -> int:
    """The rate as an int, or ``InputError`` saying what is accepted (:func:`stase.core.rates.check_sample_rate`)."""
    return check_rate(sample_rate, "sample_rate")


def prepare_stems(stems, sample_rate, what: str = "stems") -> tuple[dict[str, np.ndarray], list[str]]:
    """Check a ``{track: audio}`` mapping and bring it to one layout.

    Parameters
    ----------
    stems : mapping of track name -> array, 1-D mono or ``(channels, samples)`` with 1..5 channels.
    sample_rate : Hz, shared by every stem.
    what : how messages name this set ("stems", "reference").

    Returns
    -------
    audio : {track: float32 (channels, samples)}, every stem zero-padded to the longest.
    warnings : plain-language notes (padding, clipping) for the report.

    Raises
    ------
    InputError : empty set, duplicate names, non-numeric/NaN/Inf audio, wrong layout, too short.
    """
    rate = check_sample_rate(sample_rate)
    if not isinstance(stems, dict) or not stems:
        raise InputError(f"{what}: expected a non-empty mapping of track name -> audio array, "
                         f"got {type(stems).__name__ if not isinstance(stems, dict) else 'an empty mapping'}")
    audio: dict[str, np.ndarray] = {}
    seen: dict[str, str] = {}
    for name, data in stems.items():
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{what}: track names must be non-empty strings, got {name!r}")
        key = track_key(name)  # the one track-name rule (stase.core.names)
        if key in seen:
            raise InputError(f"{what}: tracks {seen[key]!r} and {name!r} are the same track name "
                             "(they differ only in case, spaces or punctuation)")
        seen[key] = name
        try:
            a = np.asarray(data)
            if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
                a = a.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{what}: track {name!r} is not a numeric audio array ({exc})") from exc
        if np.issubdtype(a.dtype, np.integer):
            raise InputError(f"{what}: track {name!r} holds integers ({a.dtype}); pass float audio "
                             "in [-1, 1] (read files with stase.core.audio_io.read_audio)")
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2:
            raise InputError(f"{what}: track {name!r} has shape {a.shape}; expected (samples,) or "
                             "(channels, samples)")
        if a.shape[0] > MAX_CHANNELS:
            hint = " (it looks like (samples, channels); transpose it)" if a.shape[1] <= MAX_CHANNELS else ""
            raise InputError(f"{what}: track {name!r} has {a.shape[0]} channels; 1 to {MAX_CHANNELS} "
                             f"are accepted{hint}")
        if a.shape[1] < int(BLOCK_S * rate):
            raise InputError(f"{what}: track {name!r} is {a.shape[1] / rate:.3f} s long; loudness "
                             f"needs at least {BLOCK_S} s")
        if not np.all(np.isfinite(a)):
            raise InputError(f"{what}: track {name!r} contains NaN or Inf samples")
        audio[name] = np.ascontiguousarray(a, dtype=np.float32)
    warnings: list[str] = []
    longest = max(a.shape[1] for a in audio.values())
    for name, a in audio.items():
        if a.shape[1] < longest:
            warnings.append(f"{what}: {name} is {(longest - a.shape[1]) / rate:.2f} s shorter than the "
                            "longest stem; padded with silence at the end")
            audio[name] = np.pad(a, ((0, 0), (0, longest - a.shape[1])))
    return audio, warnings




def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """Second-order sections of the BS.1770 K-weighting (shelf then high-pass), as pyloudnorm."""
    import pyloudnorm
    shelf = pyloudnorm.IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate, "high_shelf")
    high_pass = pyloudnorm.IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass")
    return np.array([np.concatenate([shelf.b, shelf.a]), np.concatenate([high_pass.b, high_pass.a])])


def k_weight(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """K-weighted copy of ``(channels, samples)`` audio (float32).

    float32 filtering is four times faster than float64 here and changes loudness by far less
    than 0.01 dB (the tests compare with pyloudnorm's float64 meter).
    """
    sos = k_weighting_sos(sample_rate).astype(np.float32)
    return scipy.signal.sosfilt(sos, np.asarray(x, dtype=np.float32), axis=-1)


def _block_bounds(n_samples: int, sample_rate: int, block_s: float, overlap: float):
    """Lower/upper sample bounds of the gating blocks, exactly as pyloudnorm.Meter counts them."""
    step = 1.0 - overlap
    n_blocks = int(np.round(((n_samples / sample_rate) - block_s) / (block_s * step))) + 1
    j = np.arange(max(n_blocks, 0))
    lower = (block_s * (j * step) * sample_rate).astype(np.int64)
    upper = np.minimum((block_s * (j * step + 1) * sample_rate).astype(np.int64), n_samples)
    return lower, upper


def gating_block_powers(weighted: np.ndarray, sample_rate: int, block_s: float = BLOCK_S,
                        overlap: float = BLOCK_OVERLAP) -> np.ndarray:
    """Channel-weighted mean-square of each gating block of K-weighted audio, shape (blocks,).

    The signal is cut at every block edge; the pieces are summed once (``np.add.reduceat``)
    and a short float64 cumulative sum over the pieces gives every overlapping block,
    so the cost is one pass over the samples whatever the overlap.
    """
    w = np.atleast_2d(weighted)
    lower, upper = _block_bounds(w.shape[1], sample_rate, block_s, overlap)
    if len(lower) == 0:
        return np.zeros(0)
    cuts = np.unique(np.concatenate([lower, upper, [0]]))
    cuts = cuts[cuts < w.shape[1]]
    # float32 pieces of at most one hop (<= 0.1 s): rounding stays below 1e-4 dB
    pieces = np.add.reduceat(np.square(w, dtype=np.float32), cuts, axis=1).astype(np.float64)
    cumulative = np.zeros((w.shape[0], len(cuts) + 1))
    np.cumsum(pieces, axis=1, out=cumulative[:, 1:])
    edges = np.append(cuts, w.shape[1])  # cumulative[:, i] = sum of samples before edges[i]
    sums = cumulative[:, np.searchsorted(edges, upper)] - cumulative[:, np.searchsorted(edges, lower)]
    return (_CHANNEL_WEIGHTS[: w.shape[0], None] * sums).sum(axis=0) / (block_s * sample_rate)


def gated_loudness(block_powers: np.ndarray) -> float | None:
    """BS.1770-4 integrated loudness (LUFS) from gating-block powers; ``None`` when silent.

    Silent means no block reaches the absolute gate (-70 LUFS): there is no loudness to report.
    """
    z = np.asarray(block_powers, dtype=float)
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10.0 * np.log10(z)
    above_absolute = levels >= ABSOLUTE_GATE_LUFS
    if not np.any(above_absolute):
        return None
    relative_gate = -0.691 + 10.0 * np.log10(z[above_absolute].mean()) + RELATIVE_GATE_LU
    kept = (levels > relative_gate) & (levels > ABSOLUTE_GATE_LUFS)
    if not np.any(kept):
        return None
    return float(-0.691 + 10.0 * np.log10(z[kept].mean()))


def erb_number(frequency_hz):
    """ERB-rate (Cam) of a frequency: 21.4 log10(1 + 0.00437 f) (Glasberg & Moore 1990)."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(frequency_hz, dtype=float))


def erb_number_to_hz(cam):
    """Inverse of :func:`erb_number`."""
    return (10.0 ** (np.asarray(cam, dtype=float) / 21.4) - 1.0) / 0.00437


def erb_band_edges_hz(sample_rate: int, low_hz: float = 40.0, high_hz: float = 16_000.0,
                      step_cam: float = 1.0) -> np.ndarray:
    """Band edges (Hz) one ``step_cam`` apart on the ERB-rate scale, capped at 0.45 x the rate."""
    top = min(high_hz, 0.45 * sample_rate)
    cams = np.arange(erb_number(low_hz), erb_number(top) + 1e-9, step_cam)
    return erb_number_to_hz(cams)


def stft_size(sample_rate: int) -> int:
    """FFT size: the power of two nearest 85 ms (4096 at 44.1 and 48 kHz)."""
    return int(2 ** np.round(np.log2(0.085 * sample_rate)))


def _band_bins(edges_hz: np.ndarray, n_fft: int, sample_rate: int):
    """Start bin of each band (for ``np.add.reduceat``) and the edges actually used (Hz).

    Edges that fall on the same FFT bin are merged, so every band holds at least one bin.
    """
    bins = np.unique(np.clip(np.round(edges_hz * n_fft / sample_rate).astype(int), 1, n_fft // 2))
    return bins, bins * sample_rate / n_fft


def band_powers(x: np.ndarray, sample_rate: int, edges_hz: np.ndarray | None = None,
                chunk_frames: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Short-time band powers (mean square per band, summed over channels).

    A Hann STFT (:func:`stft_size`, hop = half) is squared and summed over the bins of each band,
    scaled so that the bands of a frame add up to the frame's windowed mean square (Parseval): a
    sine of amplitude A inside one band gives A^2/2 there.

    Returns
    -------
    powers : float32 (frames, bands)
    frame_times_s : float (frames,) centre of each frame
    edges_hz : float (bands + 1,) the band edges used
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    n_fft = stft_size(sample_rate)
    hop = n_fft // 2
    edges_hz = erb_band_edges_hz(sample_rate) if edges_hz is None else np.asarray(edges_hz, float)
    bins, used_edges = _band_bins(edges_hz, n_fft, sample_rate)
    n_frames = max(1, int(np.ceil(x.shape[1] / hop)))
    padded = np.zeros((x.shape[0], (n_frames - 1) * hop + n_fft), dtype=np.float32)
    padded[:, n_fft // 2: n_fft // 2 + x.shape[1]] = x  # frames centred on hop multiples
    window = scipy.signal.get_window("hann", n_fft, fftbins=True).astype(np.float32)
    # one-sided power -> mean square: 2 |X|^2 / (N sum w^2)  (Parseval, DC/Nyquist never in a band)
    scale = np.float32(2.0 / (n_fft * float(np.sum(window.astype(np.float64) ** 2))))
    out = np.zeros((n_frames, len(bins) - 1), dtype=np.float32)
    frames_view = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop]
    for start in range(0, n_frames, chunk_frames):
        stop = min(start + chunk_frames, n_frames)
        spectrum = scipy.fft.rfft(frames_view[:, start:stop] * window, axis=-1, workers=FFT_WORKERS)
        power = np.abs(spectrum[..., bins[0]:bins[-1]])
        power *= power
        out[start:stop] = np.add.reduceat(power.sum(axis=0), bins[:-1] - bins[0], axis=1) * scale
    return out, np.arange(n_frames) * hop / sample_rate, used_edges


@dataclass
class StemAnalysis:
    """Measurements of one stem (levels in dB re full scale, loudness in LUFS)."""

    track: str
    channels: int
    integrated_lufs: float | None        # None: silent (no block above -70 LUFS)
    short_term_lufs: np.ndarray          # 3 s windows every second; -inf where silent
    peak_dbfs: float
    rms_dbfs: float
    crest_db: float | None               # peak - RMS; None when silent
    clipped_fraction: float              # share of samples in runs of 3+ at full scale
    block_powers: np.ndarray             # K-weighted gating-block powers (see gated_loudness)
    band_db: np.ndarray                  # (frames, bands) float32, dB re full scale
    active: np.ndarray                   # (frames,) bool: the stem plays here
    activity: float                      # share of frames where it plays

    @property
    def silent(self) -> bool:
        return self.integrated_lufs is None

    @property
    def clipped(self) -> bool:
        return self.clipped_fraction > 0.0


@dataclass
class MixAnalysis:
    """Every stem of one set, on a shared time/band grid."""

    sample_rate: int
    duration_s: float
    stems: dict[str, StemAnalysis]
    frame_times_s: np.ndarray
    band_edges_hz: np.ndarray
    warnings: list[str] = field(default_factory=list)

    @property
    def band_centres_hz(self) -> np.ndarray:
        return np.sqrt(self.band_edges_hz[:-1] * self.band_edges_hz[1:])

    def loudness_of_sum(self, tracks, gains_db=None) -> float | None:
        """Integrated loudness of the sum of ``tracks`` with per-track gains (dB).

        Block powers add (the stems are treated as uncorrelated within a 400 ms block), so this
        is exact for gains on one stem and a close estimate for a sum of different instruments.
        """
        tracks = list(tracks)
        gains = np.zeros(len(tracks)) if gains_db is None else np.asarray(gains_db, dtype=float)
        total = sum(10.0 ** (g / 10.0) * self.stems[t].block_powers for t, g in zip(tracks, gains))
        return gated_loudness(total) if tracks else None


def activity_mask(frame_db: np.ndarray, floor_db: float = ACTIVITY_FLOOR_DB,
                  range_db: float = ACTIVITY_RANGE_DB, hold_frames: int = 2) -> np.ndarray:
    """Frames where a stem plays: within ``range_db`` of its loud frames and above ``floor_db``.

    A short hold (max over +-``hold_frames``, about +-85 ms) bridges the gaps between notes and
    drum hits so a groove counts as playing.
    """
    loud = np.percentile(frame_db, 95)
    threshold = max(floor_db, loud - range_db)
    held = _running_max(frame_db, hold_frames)
    return held > threshold


def _running_max(values: np.ndarray, half_width: int) -> np.ndarray:
    padded = np.pad(values, half_width, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half_width + 1)
    return windows.max(axis=1)


def analyse_stem(track: str, audio: np.ndarray, sample_rate: int,
                 edges_hz: np.ndarray | None = None) -> StemAnalysis:
    """All measurements of one checked ``(channels, samples)`` stem."""
    x = np.atleast_2d(audio)
    weighted = k_weight(x, sample_rate)
    blocks = gating_block_powers(weighted, sample_rate)
    short = gating_block_powers(weighted, sample_rate, SHORT_TERM_S,
                                1.0 - SHORT_TERM_HOP_S / SHORT_TERM_S) if x.shape[1] >= SHORT_TERM_S * sample_rate \
        else np.zeros(0)
    with np.errstate(divide="ignore"):
        short_term = -0.691 + 10.0 * np.log10(short)
    peak = float(max(x.max(), -x.min()))
    mean_square = float(np.mean(np.square(x), axis=1, dtype=np.float64).sum())
    clipped_fraction = 0.0
    if peak >= CLIP_LEVEL:  # only then look for runs of full-scale samples
        at_limit = np.abs(x) >= CLIP_LEVEL
        runs = at_limit[:, :-2] & at_limit[:, 1:-1] & at_limit[:, 2:]
        clipped_fraction = float(runs.sum()) / runs.size if runs.size else 0.0
    bands, _, _ = band_powers(x, sample_rate, edges_hz)
    band_db = (10.0 * np.log10(bands + _TINY)).astype(np.float32)
    frame_db = 10.0 * np.log10(bands.sum(axis=1, dtype=np.float64) + _TINY)
    integrated = gated_loudness(blocks)
    active = activity_mask(frame_db) if integrated is not None else np.zeros(len(frame_db), bool)
    peak_db = 20.0 * np.log10(max(peak, 1e-10))
    rms_db = 10.0 * np.log10(max(mean_square, 1e-20))
    return StemAnalysis(
        track=track, channels=x.shape[0], integrated_lufs=integrated, short_term_lufs=short_term,
        peak_dbfs=peak_db, rms_dbfs=rms_db,
        crest_db=(peak_db - rms_db) if integrated is not None else None,
        clipped_fraction=clipped_fraction, block_powers=blocks, band_db=band_db, active=active,
        activity=float(active.mean()) if active.size else 0.0)


def analyse_stems(stems, sample_rate, what: str = "stems") -> MixAnalysis:
    """Check and measure a set of stems (see :func:`prepare_stems` for what is accepted)."""
    audio, warnings = prepare_stems(stems, sample_rate, what)
    rate = check_sample_rate(sample_rate)
    edges = erb_band_edges_hz(rate)
    analysed = {name: analyse_stem(name, a, rate, edges) for name, a in audio.items()}
    any_stem = next(iter(audio.values()))
    _, used_edges = _band_bins(edges, stft_size(rate), rate)
    n_frames = next(iter(analysed.values())).band_db.shape[0]
    times = np.arange(n_frames) * (stft_size(rate) // 2) / rate
    for name, s in analysed.items():
        if s.silent:
            warnings.append(f"{what}: {name} is silent (below -70 LUFS); no level to advise on")
        if s.clipped:
            warnings.append(f"{what}: {name} is clipped ({100 * s.clipped_fraction:.2f} % of samples at "
                            "full scale); turning it down will not undo the distortion")
        elif s.peak_dbfs > 0.0:
            warnings.append(f"{what}: {name} peaks at {s.peak_dbfs:+.1f} dBFS (over full scale)")
    return MixAnalysis(sample_rate=rate, duration_s=any_stem.shape[1] / rate, stems=analysed,
                       frame_times_s=times, band_edges_hz=used_edges, warnings=warnings)
