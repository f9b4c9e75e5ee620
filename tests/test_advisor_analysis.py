"""Advisor analysis: BS.1770 loudness against pyloudnorm and closed forms, ERB band powers against
Parseval and a per-frame NumPy loop, input checks."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from stase.agent.advisor import analysis as A
from stase.core.errors import InputError


@pytest.mark.parametrize("rate,seconds,channels", [(48000, 2.37, 1), (44100, 1.9, 2), (22050, 1.0, 1),
                                                   (96000, 0.61, 2)])
def test_integrated_loudness_matches_pyloudnorm(rng, rate, seconds, channels):
    import pyloudnorm
    n = int(seconds * rate) + 7
    x = rng.standard_normal((channels, n)) * 0.1 * np.linspace(0.001, 1.0, n)  # exercises both gates
    reference = pyloudnorm.Meter(rate).integrated_loudness(x.T.copy())
    ours = A.gated_loudness(A.gating_block_powers(A.k_weight(x, rate), rate))
    np.testing.assert_allclose(ours, reference, atol=2e-3)


def test_block_powers_equal_a_plain_loop(rng):
    rate = 8000
    for n in (3201, 4000, 9999):
        w = rng.standard_normal((2, n)).astype(np.float32)
        lower, upper = A._block_bounds(n, rate, 0.4, 0.75)
        loop = np.array([(w[:, lo:up].astype(np.float64) ** 2).sum() / (0.4 * rate) for lo, up in zip(lower, upper)])
        np.testing.assert_allclose(A.gating_block_powers(w, rate), loop, rtol=1e-5)


def test_full_scale_1khz_sine_reads_minus_3_lufs():
    # BS.1770: a 0 dBFS 1 kHz sine in one channel reads -3.01 LUFS (K-weighting ~0 dB at 1 kHz)
    rate = 48000
    t = np.arange(3 * rate) / rate
    x = np.sin(2 * np.pi * 1000 * t)
    np.testing.assert_allclose(A.gated_loudness(A.gating_block_powers(A.k_weight(x[None], rate), rate)),
                               -3.01, atol=0.05)


def test_silence_has_no_loudness():
    rate = 48000
    quiet = np.full((1, rate), 1e-6)  # -120 dBFS: below the absolute gate
    assert A.gated_loudness(A.gating_block_powers(A.k_weight(quiet, rate), rate)) is None
    s = A.analyse_stem("x", np.zeros((1, rate), np.float32), rate)
    assert s.silent and s.crest_db is None and s.activity == 0.0


def test_erb_scale_round_trip_and_closed_form():
    np.testing.assert_allclose(A.erb_number(1000.0), 21.4 * np.log10(1 + 4.37), rtol=1e-12)
    f = np.array([50.0, 440.0, 3000.0, 15000.0])
    np.testing.assert_allclose(A.erb_number_to_hz(A.erb_number(f)), f, rtol=1e-10)
    edges = A.erb_band_edges_hz(48000)
    np.testing.assert_allclose(np.diff(A.erb_number(edges)), 1.0, atol=1e-9)


def test_sine_band_power_is_half_amplitude_squared():
    rate, amplitude = 48000, 0.3
    edges = A.erb_band_edges_hz(rate)
    _, used = A._band_bins(edges, A.stft_size(rate), rate)
    band = int(np.searchsorted(used, 2000.0)) - 1
    f = np.sqrt(used[band] * used[band + 1])
    x = amplitude * np.sin(2 * np.pi * f * np.arange(2 * rate) / rate)
    powers, _, _ = A.band_powers(x, rate, edges)
    steady = powers[4:-4, band]
    np.testing.assert_allclose(steady, amplitude ** 2 / 2, rtol=0.02)


def test_white_noise_band_power_follows_bandwidth(rng):
    rate = 16000
    x = rng.standard_normal(rate * 4) * 0.1
    powers, _, used = A.band_powers(x, rate)
    expected = 0.01 * np.diff(used) / (rate / 2)
    np.testing.assert_allclose(powers.mean(axis=0), expected, rtol=0.15)


def test_band_powers_equal_a_per_frame_loop(rng):
    rate = 8000
    x = rng.standard_normal((2, 4321)).astype(np.float32)
    powers, _, used = A.band_powers(x, rate, chunk_frames=3)
    n_fft = A.stft_size(rate)
    hop = n_fft // 2
    window = scipy.signal.get_window("hann", n_fft)
    bins = np.round(used * n_fft / rate).astype(int)
    padded = np.zeros((2, x.shape[1] + 2 * n_fft))
    padded[:, n_fft // 2: n_fft // 2 + x.shape[1]] = x
    for frame in range(powers.shape[0]):
        seg = padded[:, frame * hop: frame * hop + n_fft] * window
        p = (np.abs(np.fft.rfft(seg, axis=-1)) ** 2).sum(axis=0) * 2 / (n_fft * np.sum(window ** 2))
        expected = [p[bins[b]:bins[b + 1]].sum() for b in range(len(bins) - 1)]
        np.testing.assert_allclose(powers[frame], expected, rtol=1e-3, atol=1e-9)


def test_gain_on_one_stem_shifts_loudness_of_sum_exactly(rng):
    rate = 16000
    x = rng.standard_normal(rate * 2).astype(np.float32) * 0.1
    a = A.analyse_stems({"a": x}, rate)
    np.testing.assert_allclose(a.loudness_of_sum(["a"], [4.5]), a.stems["a"].integrated_lufs + 4.5, atol=1e-9)


def test_activity_follows_where_the_stem_plays(rng):
    rate = 16000
    x = np.zeros(rate * 4, np.float32)
    x[rate: 3 * rate] = rng.standard_normal(2 * rate) * 0.1
    s = A.analyse_stem("x", x[None], rate)
    np.testing.assert_allclose(s.activity, 0.5, atol=0.06)


@pytest.mark.parametrize("stems,message", [
    ({}, "non-empty"),
    ({"a": np.array([np.nan] * 48000)}, "NaN"),
    ({"a": np.zeros((2, 2, 48000))}, "shape"),
    ({"a": np.zeros((48000, 2))}, "transpose"),
    ({"a": np.zeros(100)}, "at least 0.4 s"),
    ({"Gtr": np.zeros(48000), "gtr": np.zeros(48000)}, "same track name"),
    ({"a": ["x"] * 48000}, "numeric"),
    ({"a": np.zeros(48000, dtype=np.int16)}, "integers"),
])
def test_bad_stems_are_refused_clearly(stems, message):
    with pytest.raises(InputError, match=message):
        A.prepare_stems(stems, 48000)


def test_bad_rate_is_refused():
    with pytest.raises(InputError, match="sample_rate"):
        A.prepare_stems({"a": np.zeros(48000)}, 44100.5)


def test_lengths_are_padded_and_clipping_reported(rng):
    rate = 16000
    loud = np.clip(rng.standard_normal(rate * 2) * 2.0, -1.0, 1.0).astype(np.float32)
    mix = A.analyse_stems({"short": np.ones(rate, np.float32) * 0.1, "loud": loud}, rate)
    assert mix.stems["short"].band_db.shape == mix.stems["loud"].band_db.shape
    assert any("short" in w and "padded" in w for w in mix.warnings)
    assert mix.stems["loud"].clipped and any("clipped" in w for w in mix.warnings)


def test_resampling_keeps_loudness(rng):
    rate = 48000
    # band-limited to 8 kHz so nothing is lost above the new Nyquist frequency
    lowpass = scipy.signal.butter(8, 8000, fs=rate, output="sos")
    x = (scipy.signal.sosfilt(lowpass, rng.standard_normal(rate * 2)) * 0.05).astype(np.float32)
    from stase.core.rates import resample_stems
    down = resample_stems({"x": x[None]}, rate, 44100)["x"]
    assert down.shape[-1] == 88200
    np.testing.assert_allclose(A.analyse_stems({"x": down}, 44100).stems["x"].integrated_lufs,
                               A.analyse_stems({"x": x}, rate).stems["x"].integrated_lufs, atol=0.05)
