"""Localisation kernels and the distance model against closed forms and SciPy references."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import freqz

from stase.core.conventions import HEAD_RADIUS_M, SPEED_OF_SOUND_M_S
from stase.dsp.distance import (air_absorption_db_per_m, air_absorption_pole, air_reference_hz,
                          critical_distance_m, distance_gain, reverb_send_gain)
from stase.dsp.kernels import (air_pole, delay_read, head_shadow_alpha, head_shadow_coefficients,
                         lagrange_coefficients, pan_gains, woodworth_itd_s)


def test_lagrange_integer_delay_is_exact():
    np.testing.assert_array_equal(lagrange_coefficients(0.0), [0.0, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("delay", [1.0, 3.25, 7.5, 20.9])
def test_fractional_delay_of_a_low_sine_matches_the_exact_delay(delay):
    fs, f = 48000.0, 500.0
    n = np.arange(400)
    x = np.sin(2 * np.pi * f * n / fs)
    line = np.zeros(256)
    out = np.zeros(len(n))
    for i, v in enumerate(x):
        line[i & 255] = v
        out[i] = delay_read(line, 255, i & 255, delay)
    expected = np.sin(2 * np.pi * f * (n - delay) / fs)
    # 3rd-order Lagrange error at 500 Hz / 48 kHz is far below 1e-4
    np.testing.assert_allclose(out[64:], expected[64:], atol=1e-4)


@pytest.mark.parametrize("deg", [0.0, 30.0, 60.0, 90.0])
def test_woodworth_itd_closed_form(deg):
    t = math.radians(deg)
    expected = HEAD_RADIUS_M / SPEED_OF_SOUND_M_S * (t + math.sin(t))
    assert woodworth_itd_s(t) == pytest.approx(expected, rel=1e-12)
    assert woodworth_itd_s(-t) == pytest.approx(-expected, rel=1e-12)
    if deg == 90.0:  # the classic maximum: about 0.656 ms for a 8.75 cm head
        assert expected == pytest.approx(6.56e-4, abs=5e-6)


def test_head_shadow_alpha_end_points():
    assert head_shadow_alpha(0.0) == pytest.approx(2.0)
    assert head_shadow_alpha(math.radians(150.0)) == pytest.approx(0.1)


@pytest.mark.parametrize("angle_deg", [0.0, 45.0, 90.0, 150.0, 180.0])
def test_head_shadow_filter_matches_brown_duda(angle_deg):
    fs = 48000.0
    angle = math.radians(angle_deg)
    b0, b1, a1 = head_shadow_coefficients(angle, fs)
    alpha = head_shadow_alpha(angle)
    w, h = freqz([b0, b1], [1.0, a1], worN=[0.0, 1000.0, fs / 2], fs=fs)
    assert abs(h[0]) == pytest.approx(1.0, rel=1e-9)      # no change at DC
    assert abs(h[2]) == pytest.approx(alpha, rel=1e-9)    # alpha at Nyquist (bilinear s -> inf)
    w0 = SPEED_OF_SOUND_M_S / HEAD_RADIUS_M
    s = 1j * 2 * np.pi * 1000.0
    analog = (1 + alpha * s / (2 * w0)) / (1 + s / (2 * w0))
    # bilinear warping at 1 kHz is tiny: within 0.05 dB of the analog prototype
    assert 20 * np.log10(abs(h[1])) == pytest.approx(20 * np.log10(abs(analog)), abs=0.05)


def test_constant_power_pan_law():
    pans = np.linspace(-1, 1, 41)
    g = np.array([pan_gains(p) for p in pans])
    np.testing.assert_allclose((g ** 2).sum(axis=1), 1.0, rtol=1e-12)
    left, right = pan_gains(0.0)
    assert 20 * np.log10(left) == pytest.approx(-3.0103, abs=1e-3)
    assert 20 * np.log10(right) == pytest.approx(-3.0103, abs=1e-3)
    np.testing.assert_allclose(pan_gains(-1.0), (1.0, 0.0), atol=1e-12)
    np.testing.assert_allclose(pan_gains(1.0), (0.0, 1.0), atol=1e-12)


@pytest.mark.parametrize("f, expected_db_per_km", [(500, 2.73), (1000, 4.66), (2000, 9.86)])
def test_iso_9613_1_table_values(f, expected_db_per_km):
    # ISO 9613-1:1993 Table 1, 20 degrees C, 50 % relative humidity, 101.325 kPa
    assert air_absorption_db_per_m(f) * 1000 == pytest.approx(expected_db_per_km, rel=0.01)


@pytest.mark.parametrize("distance_m", [1.0, 10.0, 40.0])
def test_air_low_pass_matches_iso_loss_at_reference(distance_m):
    fs = 48000
    p = air_absorption_pole(distance_m, fs)
    f_ref = air_reference_hz(fs)
    _, h = freqz([1 - p], [1, -p], worN=[f_ref], fs=fs)
    np.testing.assert_allclose(-20 * np.log10(abs(h[0])), air_absorption_db_per_m(f_ref) * distance_m,
                               rtol=1e-9)
    assert air_pole(0.0, 1.0) == 0.0


def test_distance_law_and_direct_to_reverberant_balance():
    np.testing.assert_allclose(distance_gain([1.0, 2.0, 4.0]), [1.0, 0.5, 0.25])
    room = {"dimensions_m": [20.0, 15.0, 8.0], "rt60_s": 1.5}
    r_c = critical_distance_m(2400.0, 1.5)
    assert r_c == pytest.approx(0.057 * math.sqrt(1600.0))
    send = reverb_send_gain(room)
    # direct equals the (distance-independent) send at the critical distance
    assert distance_gain(r_c) == pytest.approx(send)
    assert reverb_send_gain(None) > 0.0
