"""Jot FDN: decay rate against its T60 (Schroeder), tone-corrected damping, streaming, stereo."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from stase.core.errors import InputError
from stase.dsp.fdn import FdnReverb, decay_time_s, fdn_delays, jot_absorption

RATE = 48000


def _impulse_response(fdn, seconds):
    x = np.zeros(int(seconds * RATE), dtype=np.float32)
    x[0] = 1.0
    fdn.reset()
    return fdn.process(x).astype(np.float64)


def _band(ir, lo, hi):
    sos = butter(4, [lo, hi], btype="band", fs=RATE, output="sos")
    return sosfiltfilt(sos, ir, axis=-1)


def test_decay_time_of_exact_exponential(rng):
    t60 = 1.3
    t = np.arange(int(2.0 * RATE)) / RATE
    ir = rng.standard_normal(t.size) * 10.0 ** (-3.0 * t / t60)  # -60 dB at t60 in amplitude
    assert decay_time_s(ir, RATE) == pytest.approx(t60, rel=0.03)
    assert decay_time_s(ir, RATE, fit_db=(-5.0, -25.0)) == pytest.approx(t60, rel=0.03)


@pytest.mark.parametrize("t60", [0.3, 1.0, 2.5])
def test_broadband_decay_matches_t60(t60):
    fdn = FdnReverb(RATE, t60, t60_high_s=t60)
    ir = _impulse_response(fdn, 1.2 * t60 + 0.1)
    np.testing.assert_allclose(decay_time_s(ir, RATE), t60, rtol=0.10)
    np.testing.assert_allclose(decay_time_s(ir, RATE, fit_db=(-5.0, -25.0)), t60, rtol=0.10)


def test_damped_decay_mid_band_and_high_band_closed_form():
    t60, t60_high = 2.0, 0.8
    fdn = FdnReverb(RATE, t60, t60_high_s=t60_high)
    ir = _impulse_response(fdn, 2.4)
    # mid band: the one-pole absorption is ~flat there, so the decay is the low T60
    np.testing.assert_allclose(decay_time_s(_band(ir, 355, 1414), RATE), t60, rtol=0.10)
    # 8 kHz: T60(w) = -3 m / (fs log10 |H(w)|) for H = g (1 - b) / (1 - b e^{-jw}) (Jot 1991)
    gains, poles, _ = jot_absorption(fdn.delays, RATE, t60, t60_high)
    w = 2 * math.pi * 8000 / RATE
    mag = gains * (1 - poles) / np.abs(1 - poles * np.exp(-1j * w))
    expected = np.mean(-3.0 * fdn.delays / (RATE * np.log10(mag)))
    measured = decay_time_s(_band(ir, 7000, 9000), RATE, fit_db=(-5.0, -25.0))
    np.testing.assert_allclose(measured, expected, rtol=0.15)
    assert expected < 0.8 * t60  # the closed form itself says the highs die sooner


@pytest.mark.parametrize("block", [1, 64, 65, 128, 8192, 8193])
def test_chunked_equals_whole(rng, block):
    fdn = FdnReverb(RATE, 0.8, predelay_ms=7.0)
    x = rng.standard_normal(20000 if block > 1 else 3000).astype(np.float32)
    whole = fdn.process(x).copy()
    fdn.reset()
    parts = [fdn.process(x[i:i + block]).copy() for i in range(0, x.size, block)]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


def test_predelay_and_determinism():
    a = _impulse_response(FdnReverb(RATE, 0.5, predelay_ms=10.0), 0.6)
    b = _impulse_response(FdnReverb(RATE, 0.5, predelay_ms=10.0), 0.6)
    np.testing.assert_array_equal(a, b)
    first = int(np.argmax(np.any(np.abs(a) > 0, axis=0)))
    shortest = int(FdnReverb(RATE, 0.5).delays.min())
    assert first == 480 + shortest  # 10 ms pre-delay, then the shortest line


def test_unit_energy_and_decorrelated_outputs():
    fdn = FdnReverb(RATE, 1.5)
    ir = _impulse_response(fdn, 2.5)
    np.testing.assert_allclose(np.mean(np.sum(ir ** 2, axis=1)), 1.0, rtol=0.05)
    broadband = np.corrcoef(ir)[0, 1]
    np.testing.assert_allclose(broadband, 0.0, atol=0.2)
    low = sosfiltfilt(butter(4, 120, fs=RATE, output="sos"), ir, axis=1)
    np.testing.assert_allclose(np.corrcoef(low)[0, 1], 1.0, atol=0.2)


def test_mid_band_level_option():
    from stase.dsp.brir import mid_band_energy_ratio
    fdn = FdnReverb(RATE, 1.0, level="mid_band")
    np.testing.assert_allclose(mid_band_energy_ratio(_impulse_response(fdn, 1.6), RATE), 1.0, rtol=0.02)
    fdn.scale_output(2.0)
    np.testing.assert_allclose(mid_band_energy_ratio(_impulse_response(fdn, 1.6), RATE), 4.0, rtol=0.02)


def test_tone_correction_is_jots_first_order_filter():
    """With and without correction the network is the same; the outputs differ exactly by
    (1 - beta z^-1) / (1 - beta), up to the energy normalisation."""
    from scipy.signal import lfilter
    with_tc = _impulse_response(FdnReverb(RATE, 1.0, t60_high_s=0.3), 1.0)
    plain = _impulse_response(FdnReverb(RATE, 1.0, t60_high_s=0.3, tone_correction=False), 1.0)
    beta = FdnReverb(RATE, 1.0, t60_high_s=0.3).tone_beta
    assert beta == pytest.approx((1 - 0.3) / (1 + 0.3))
    shaped = lfilter([1.0, -beta], [1.0 - beta], plain, axis=1)
    scale = np.sum(with_tc * shaped) / np.sum(shaped * shaped)
    np.testing.assert_allclose(with_tc, scale * shaped, rtol=0, atol=1e-5 * np.max(np.abs(with_tc)))


def test_delays_are_distinct_primes_and_dense_enough():
    d = fdn_delays(16, 500, 2000)
    assert len(set(d.tolist())) == 16
    assert all(all(int(v) % k for k in range(2, int(math.isqrt(int(v))) + 1)) for v in d)
    fdn = FdnReverb(RATE, 6.0)
    assert fdn.delays.sum() >= 0.15 * 6.0 * RATE * 0.95  # Schroeder modal density (range-capped)


def test_bad_arguments():
    with pytest.raises(InputError, match="t60_s"):
        FdnReverb(RATE, 0.0)
    with pytest.raises(InputError, match="power of two"):
        FdnReverb(RATE, 1.0, n_lines=12)
    with pytest.raises(InputError, match="sample_rate"):
        FdnReverb(float("nan"), 1.0)
    with pytest.raises(InputError, match="mono"):
        FdnReverb(RATE, 1.0).process(np.zeros((2, 16), dtype=np.float32))


def test_strided_output_view_gives_the_same_result(rng):
    x = rng.standard_normal(1000).astype(np.float32)
    ref = FdnReverb(RATE, 0.5).process(x)
    fdn = FdnReverb(RATE, 0.5)
    wide = np.zeros((2, 256), dtype=np.float32)
    got = []
    for i in range(0, x.size, 100):
        view = wide[:, :x[i:i + 100].size]
        fdn.process(x[i:i + 100], view)
        got.append(view.copy())
    np.testing.assert_array_equal(np.concatenate(got, axis=1), ref)
