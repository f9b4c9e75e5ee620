"""SceneRenderer: exact references, physics on the output, streaming equality, ramps, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import correlate, fftconvolve, lfilter

from stase.core.conventions import lateral_angle_deg
from stase.dsp.distance import air_absorption_pole
from stase.core.errors import InputError
from stase.dsp.hrtf import load_hrtf
from stase.dsp.kernels import woodworth_itd_s
from stase.dsp.scene import SceneRenderer

FS = 48000


@pytest.fixture(scope="module")
def kemar():
    return load_hrtf(sample_rate=FS)


def scene(kemar, **kw):
    return SceneRenderer(sample_rate=FS, block_size=128, room=None, hrtf=kemar, **kw)


def air(x, distance_m):
    p = air_absorption_pole(distance_m, FS)
    return lfilter([1 - p], [1, -p], x)


@pytest.mark.parametrize("az, el", [(30.0, 0.0), (33.3, 7.0), (-120.0, -20.0)])
def test_static_hrtf_render_equals_fftconvolve(kemar, rng, az, el):
    x = rng.standard_normal(3000).astype(np.float32)
    r = scene(kemar)
    r.add_source("s", az, el, distance_m=2.0, mode="hrtf", gain_db=-6.0)
    y = r.process(x[None, :])
    gain = 10 ** (-6 / 20) / 2.0
    h = kemar.hrir(az, el)
    for ear in range(2):
        ref = fftconvolve(air(x.astype(float), 2.0) * gain, h[ear])[:len(x)]
        np.testing.assert_allclose(y[ear], ref, atol=2e-5 * np.abs(ref).max())


@pytest.mark.parametrize("az", [-90, -60, -30, 0, 15, 45, 75, 90, 120, 150, 180, -135])
def test_itd_on_the_output_matches_woodworth(kemar, rng, az):
    x = rng.standard_normal(8192).astype(np.float32)
    r = scene(kemar)
    r.add_source("s", az, 0.0, 1.0, mode="itd_ild")
    y = r.process(x[None, :]).astype(float)
    lags = np.arange(-64, 65)
    xc = correlate(y[1], y[0], mode="full")[len(x) - 1 - 64:len(x) + 64]
    measured = lags[np.argmax(xc)]  # > 0: the right ear lags, the source is on the left
    expected = woodworth_itd_s(math.radians(lateral_angle_deg(az))) * FS
    assert abs(measured - expected) <= 1.0


def _ild_db(y):
    return 10 * np.log10((y[0].astype(float) ** 2).sum() / (y[1].astype(float) ** 2).sum())


@pytest.mark.parametrize("mode", ["itd_ild", "hrtf"])
def test_ild_sign_and_growth_with_lateral_angle(kemar, rng, mode):
    """ILD (broadband energy, left over right) is 0 in front, positive on the left, grows up to
    60 degrees and stays large at 90; beyond about 60 the far ear's "bright spot" (Brown & Duda's
    alpha rises again past 150 degrees from the ear; KEMAR shows the same) may shrink it a bit."""
    x = rng.standard_normal(8192).astype(np.float32)
    ilds = []
    for az in (0, 20, 40, 60, 90):
        r = scene(kemar)
        r.add_source("s", az, 0.0, 1.0, mode=mode)
        ilds.append(_ild_db(r.process(x[None, :])))
        r = scene(kemar)
        r.add_source("s", -az, 0.0, 1.0, mode=mode)
        mirrored = _ild_db(r.process(x[None, :]))
        assert mirrored == pytest.approx(-ilds[-1], abs=0.3 if mode == "hrtf" else 1e-3)
    assert abs(ilds[0]) < 0.3
    assert np.all(np.diff(ilds[:4]) > 0.5)   # left louder, and more so as the source goes left
    assert ilds[-1] > 3.0


def test_pan_mode_energy_law(kemar):
    n = np.arange(4096)
    x = np.sin(2 * np.pi * 100 * n / FS).astype(np.float32)  # low: air absorption negligible
    energies = []
    for az in (-90, -45, 0, 30, 90):
        r = scene(kemar)
        r.add_source("s", az, 0.0, 1.0, mode="pan")
        y = r.process(x[None, :]).astype(float)
        energies.append((y ** 2).sum(axis=1))
        if az == 0:
            ref = (x.astype(float) ** 2).sum()
            np.testing.assert_allclose(10 * np.log10(energies[-1] / ref), -3.0103, atol=0.01)
    total = np.array([e.sum() for e in energies])
    np.testing.assert_allclose(total, total[2], rtol=2e-3)
    assert energies[-1][0] / energies[-1].sum() > 0.999   # +90 = hard left


def test_distance_gain_is_one_over_r(kemar):
    n = np.arange(4096)
    x = np.sin(2 * np.pi * 200 * n / FS).astype(np.float32)
    rms = []
    for d in (1.0, 4.0):
        r = scene(kemar)
        r.add_source("s", 0.0, 0.0, d, mode="pan")
        rms.append(np.sqrt(np.mean(r.process(x[None, :])[:, 1000:].astype(float) ** 2)))
    assert rms[1] / rms[0] == pytest.approx(0.25, rel=2e-3)


def _streamed(kemar, x, block):
    r = scene(kemar)
    r.add_source("a", 40.0, 10.0, 1.5, mode="hrtf")
    r.add_source("b", -70.0, 0.0, 3.0, mode="itd_ild", gain_db=-3.0)
    r.add_source("c", 10.0, 0.0, 2.0, mode="pan")
    out = np.zeros((2, x.shape[1]), dtype=np.float32)
    r.process(x[:, :100], out[:, :100])
    r.move_source("a", azimuth_deg=-20.0, distance_m=1.0)      # ramps run while streaming
    r.move_source("b", azimuth_deg=80.0)
    r.move_source("c", mode="hrtf")                            # a mode crossfade
    for start in range(100, x.shape[1], block):
        stop = min(start + block, x.shape[1])
        r.process(x[:, start:stop], out[:, start:stop])
    return out


@pytest.mark.parametrize("block", [1, 64, 65, 128, 1000, 8193])
def test_chunked_equals_whole(kemar, rng, block):
    x = rng.standard_normal((3, 100 + 2 * 8193)).astype(np.float32)
    whole = _streamed(kemar, x, x.shape[1])
    chunked = _streamed(kemar, x, block)
    np.testing.assert_allclose(chunked, whole, atol=1e-5 * np.abs(whole).max())


def test_moving_source_has_no_discontinuity(kemar):
    """A 500 Hz tone swept once around the head (one move per 128-sample block) through two mode
    changes.  Stated bounds: (1) the largest sample step stays within 1.25x the largest step of
    the tone rendered static in any of the modes used; (2) what leaks above 3 kHz (clicks,
    zipper noise) stays 60 dB below the output peak."""
    from scipy.signal import butter, sosfilt
    n = np.arange(FS)
    x = (0.5 * np.sin(2 * np.pi * 500 * n / FS)).astype(np.float32)
    static_steps = []
    for az, mode, dist in ((90.0, "hrtf", 1.0), (-90.0, "hrtf", 1.0), (90.0, "itd_ild", 1.0),
                           (-90.0, "itd_ild", 1.0), (0.0, "pan", 3.0), (90.0, "pan", 3.0)):
        r = scene(kemar)
        r.add_source("s", az, 0.0, dist, mode=mode)
        static_steps.append(np.abs(np.diff(r.process(x[None, :]), axis=1)).max())
    r = scene(kemar)
    r.add_source("s", 90.0, 0.0, 1.0, mode="hrtf")
    out = np.zeros((2, len(x)), dtype=np.float32)
    for b, start in enumerate(range(0, len(x), 128)):
        r.move_source("s", azimuth_deg=90.0 - 360.0 * start / len(x))
        if b == 200:
            r.move_source("s", mode="itd_ild")
        if b == 300:
            r.move_source("s", mode="pan", distance_m=3.0)
        r.process(x[None, start:start + 128], out[:, start:start + 128])
    assert np.all(np.isfinite(out))
    assert np.abs(np.diff(out, axis=1)).max() <= 1.25 * max(static_steps)
    high = sosfilt(butter(8, 3000, "hp", fs=FS, output="sos"), out.astype(float), axis=1)
    assert np.abs(high[:, 2000:]).max() < 1e-3 * np.abs(out).max()


def test_remove_and_add_while_streaming(kemar, rng):
    x = rng.standard_normal((2, 1280)).astype(np.float32)
    r = scene(kemar)
    r.add_source("a", 30.0, 0.0, 1.0)
    r.add_source("b", -30.0, 0.0, 1.0)
    r.process(x)
    r.remove_source("a")
    assert r.source_ids == ["b"]
    r.add_source("c", 0.0, 0.0, 1.0, mode="pan")
    assert r.source_ids == ["b", "c"]
    silence = np.zeros((2, 128 * 12), dtype=np.float32)
    tail = r.process(silence)
    assert np.all(np.isfinite(tail))
    assert np.abs(tail[:, -128:]).max() == 0.0        # every tail has rung out
    assert (r._voices["active"] != 0).sum() == 2               # the removed voice's slot was freed


def test_output_is_finite_for_nan_input(kemar):
    x = np.ones((1, 512), dtype=np.float32)
    x[0, 100:120] = np.nan
    x[0, 300] = np.inf
    r = scene(kemar)
    r.add_source("s", 10.0, 0.0, 1.0)
    assert np.all(np.isfinite(r.process(x)))


def test_bad_calls_give_clear_errors(kemar):
    r = scene(kemar)
    r.add_source("Vox", 0.0)
    with pytest.raises(InputError, match="already exists"):
        r.add_source("vox")
    with pytest.raises(InputError, match="mode"):
        r.add_source("x", mode="surround")
    with pytest.raises(InputError, match="finite"):
        r.add_source("x", azimuth_deg=float("nan"))
    with pytest.raises(InputError, match="no source"):
        r.move_source("drums", azimuth_deg=3)
    with pytest.raises(InputError, match="rows"):
        r.process(np.zeros((2, 64), dtype=np.float32))
    with pytest.raises(InputError, match="48000|44100"):
        SceneRenderer(sample_rate=44100, room=None, hrtf=kemar)


def test_shared_room_reverb_follows_barrons_decay_with_distance(kemar, rng):
    """The wet part of the output is the room's response to the send; the send falls with
    distance as Barron & Lee's reflected energy does, exp(-decay_per_m * r) in amplitude (the
    direct sound falls as 1/r), scaled by the source's directivity and the mode's diffuse gain."""
    import math
    from stase.dsp.brir import mode_diffuse_gains
    from stase.dsp.directivity import send_scale
    from stase.dsp.rooms import RoomReverb
    x = (0.1 * rng.standard_normal(2048)).astype(np.float32)
    wets = {}
    for d in (1.0, 4.0):
        dry = scene(kemar)
        dry.add_source("s", 20.0, 0.0, d)
        wet = SceneRenderer(sample_rate=FS, block_size=128, room="dry_studio",
                            reverb_engine="fdn", hrtf=kemar)
        wet.add_source("s", 20.0, 0.0, d)
        wets[d] = wet.process(x[None, :]) - dry.process(x[None, :])
    reverb = RoomReverb("dry_studio", FS, 128, engine="fdn")
    assert reverb.decay_per_m > 0
    head = math.sqrt(mode_diffuse_gains(kemar, FS)["hrtf"])
    for d, got in wets.items():
        gain = reverb.send_gain * send_scale(None, reverb.reference_q) * head * math.exp(-reverb.decay_per_m * d)
        reference = RoomReverb("dry_studio", FS, 128, engine="fdn").process(
            x * np.float32(gain), np.zeros((2, len(x)), np.float32))
        np.testing.assert_allclose(got, reference, atol=1e-5 * np.abs(reference).max() + 1e-7)
    ratio = np.sqrt(np.sum(wets[4.0] ** 2) / np.sum(wets[1.0] ** 2))
    np.testing.assert_allclose(ratio, math.exp(-reverb.decay_per_m * 3.0), rtol=1e-4)


def test_reset_restarts_from_silence(kemar, rng):
    x = rng.standard_normal((2, 700)).astype(np.float32)
    r = scene(kemar)
    r.add_source("a", 60.0, 0.0, 1.0)
    r.add_source("b", -10.0, 0.0, 2.0, mode="itd_ild")
    first = r.process(x).copy()
    r.move_source("a", azimuth_deg=-60.0)
    r.move_source("b", mode="pan")
    r.process(x)
    r.move_source("b", mode="itd_ild")
    r.process(x[:, :300])
    r.reset()
    assert (r._voices["active"] != 0).sum() == 2   # only the two sources' current voices are left
    r.move_source("a", azimuth_deg=60.0)   # before streaming again: takes effect at once
    np.testing.assert_allclose(r.process(x), first, atol=1e-6)


@pytest.mark.parametrize("rate", [44100, 96000])
def test_other_session_rates(rng, rate):
    hrtf = load_hrtf(sample_rate=rate)
    x = rng.standard_normal(4096).astype(np.float32)
    r = SceneRenderer(sample_rate=rate, room=None, hrtf=hrtf)
    r.add_source("h", -25.0, 12.0, 1.0, mode="hrtf")
    r.add_source("i", 70.0, 0.0, 1.0, mode="itd_ild")
    silent = np.zeros_like(x)
    y = r.process(np.stack([x, silent]))
    p = air_absorption_pole(1.0, rate)
    h = hrtf.hrir(-25.0, 12.0)
    for ear in range(2):
        ref = fftconvolve(lfilter([1 - p], [1, -p], x.astype(float)), h[ear])[:len(x)]
        np.testing.assert_allclose(y[ear], ref, atol=2e-5 * np.abs(ref).max())
    r.reset()
    y = r.process(np.stack([silent, x])).astype(float)
    xc = correlate(y[1], y[0], mode="full")[len(x) - 1 - 128:len(x) + 128]
    expected = woodworth_itd_s(math.radians(70.0)) * rate
    assert abs(np.argmax(xc) - 128 - expected) <= 1.0
