"""The listener and other heads (issue 17): the generator's heads and head variation, the
confidence's calibration, reliability / ECE, and listen-back's "uncertain"."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from stase.agent.features import SAMPLE_RATE
from stase.core.errors import InputError
from stase.onnx_models.spatial_ast import data

TRAINING_HEADS = ("kemar", "ku100", "sonicom_a")


def _need(head):
    try:
        data.head_path(head)
    except InputError as exc:
        pytest.skip(f"the {head} HRTF set is not on this machine: {exc}")


def _itd_samples(hrir: np.ndarray, upsample: int = 32) -> float:
    """Interaural delay (samples, right after left positive) from the cross-correlation peak of the
    two ears, interpolated ``upsample`` times by FFT zero-padding."""
    n = 4 * hrir.shape[1]
    cross = np.fft.rfft(hrir[1], n) * np.conj(np.fft.rfft(hrir[0], n))
    cc = np.fft.irfft(cross, n * upsample)
    lag = int(np.argmax(cc))
    if lag > cc.size // 2:
        lag -= cc.size
    return lag / upsample


# ---- heads ------------------------------------------------------------------------------

def test_default_head_is_kemar_bit_for_bit():
    a = data.make_clip("test", 5, stage=1)
    b = data.make_clip("test", 5, stage=1, head="kemar")
    np.testing.assert_array_equal(a.audio, b.audio)


@pytest.mark.parametrize("head", ["ku100", "sonicom_a"])
def test_another_head_hears_the_same_recipe(head):
    _need(head)
    kemar, other = data.make_clip("test", 11, stage=1), data.make_clip("test", 11, stage=1, head=head)
    assert (other.azimuth_deg, other.elevation_deg, other.distance_m, other.roles, other.room) == \
        (kemar.azimuth_deg, kemar.elevation_deg, kemar.distance_m, kemar.roles, kemar.room)
    assert not np.allclose(other.audio, kemar.audio, atol=1e-3)
    np.testing.assert_array_equal(other.audio, data.make_clip("test", 11, stage=1, head=head).audio)


def test_unknown_head_and_varied_test_split_are_refused():
    with pytest.raises(InputError, match="head must be one of"):
        data.make_clip("test", 0, head="kemar2")
    with pytest.raises(ValueError, match="train split only"):
        data.make_clip("test", 0, head_variation=("kemar",))


# ---- head variation ---------------------------------------------------------------------

@pytest.mark.parametrize("scale", [0.9, 1.1])
def test_itd_scale_multiplies_the_onset_difference_exactly(rng, scale):
    delays = rng.uniform(1.0, 40.0, size=(50, 2))
    scaled = data.scale_itd(delays, scale)
    np.testing.assert_allclose(scaled[:, 0] - scaled[:, 1], scale * (delays[:, 0] - delays[:, 1]), rtol=1e-12)
    np.testing.assert_allclose(scaled.min(axis=1), delays.min(axis=1), rtol=1e-12)  # the earlier ear stays


@pytest.mark.parametrize("scale", [0.9, 1.1])
@pytest.mark.parametrize("azimuth_deg", [40.0, -70.0])
def test_itd_scale_changes_the_measured_itd_by_that_factor(scale, azimuth_deg):
    """Measured on the HRIR the renderer applies (cross-correlation), not on the stored delays."""
    flat = ((0.0,) * len(data.SPECTRAL_KNOTS_HZ),) * 2
    base = data.head_set("kemar")
    varied = data.varied_head("kemar", data.HeadVariation(itd_scale=scale, ear_gain_db=flat))
    itd_base = _itd_samples(base.hrir(azimuth_deg, 0.0))
    itd_varied = _itd_samples(varied.hrir(azimuth_deg, 0.0))
    assert abs(itd_base) > 10          # a lateral source: ~0.4-0.6 ms at 32 kHz
    np.testing.assert_allclose(itd_varied / itd_base, scale, atol=0.02)


def test_spectral_perturbation_stays_within_its_bound():
    rng = np.random.default_rng(3)
    f = np.geomspace(20.0, SAMPLE_RATE / 2, 2000)
    for _ in range(200):
        v = data.draw_variation(rng, "kemar", ("kemar",))
        gains = data.ear_gain_db(v, f)
        bound = np.max(np.abs(v.ear_gain_db))
        assert bound <= data.SPECTRAL_BOUND_DB
        assert np.max(np.abs(gains)) <= bound + 1e-12
        np.testing.assert_allclose(gains[:, [0, -1]],
                                   np.array(v.ear_gain_db)[:, [0, -1]], atol=1e-12)  # flat beyond the knots
        assert data.ITD_SCALE_RANGE[0] <= v.itd_scale <= data.ITD_SCALE_RANGE[1]
        assert v.mix_head is None    # one training head: nothing to mix with


def test_applied_spectral_gain_follows_the_drawn_curve():
    """The diffuse-field (all directions) power ratio of the varied to the measured filters is the
    drawn gain, within 0.3 dB between 200 Hz and 12 kHz (the zero-phase filtering is truncated to
    the filter length; the alternating +-2 dB knots are about the sharpest curve drawn)."""
    gains = ((2.0, -2.0, 1.0, -1.5, 0.5, 2.0, -2.0, 1.0), (-1.0, 1.0, 2.0, -2.0, 0.0, 1.5, -0.5, -2.0))
    v = data.HeadVariation(ear_gain_db=gains)
    base, varied = data.head_set("kemar"), data.varied_head("kemar", v)
    n = 4 * base.filter_length
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    power = lambda h: np.mean(np.abs(np.fft.rfft(h.aligned.astype(float), n, axis=-1)) ** 2, axis=0)  # noqa: E731
    ratio_db = 10 * np.log10(power(varied) / power(base))
    band = (f >= 200) & (f <= 12000)
    np.testing.assert_allclose(ratio_db[:, band], data.ear_gain_db(v, f)[:, band], atol=0.3)


@pytest.mark.parametrize("scale", [0.87, 1.12])
def test_frequency_scaling_moves_a_notch_by_that_factor(scale):
    """A closed form: a filter with one deep notch at 6 kHz (FIR zeros on the unit circle), scaled
    by s, has its notch at s x 6 kHz (Middlebrooks 1999's frequency scaling); the filter's power is
    kept."""
    n = 1024
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    w0 = 2 * np.pi * 6000.0 / SAMPLE_RATE
    fir = np.array([1.0, -2 * np.cos(w0), 1.0])   # zeros at e^{+-j w0}
    spectrum = np.fft.rfft(fir, n)
    db = data.frequency_scaled_db(spectrum[None], scale)[0]
    band = (f > 2000) & (f < 16000)
    notch_hz = f[band][np.argmin(db[band])]
    assert abs(notch_hz - scale * 6000.0) <= 2 * SAMPLE_RATE / n
    np.testing.assert_allclose(np.mean(10 ** (db / 10)), np.mean(np.abs(spectrum) ** 2), rtol=1e-9)


def test_frequency_scaled_head_follows_the_scaled_magnitude():
    """A varied KEMAR set with a frequency scale and no other variation: every filter's magnitude
    is the measured one read at f / s (within 1 dB at the median, 1-14 kHz; the minimum-phase
    rebuild is truncated to the filter length); the interaural delays are untouched, and a scale
    of 1 is the old path, bit for bit."""
    flat = ((0.0,) * len(data.SPECTRAL_KNOTS_HZ),) * 2
    base = data.head_set("kemar")
    varied = data.varied_head("kemar", data.HeadVariation(ear_gain_db=flat, frequency_scale=1.1))
    n = 4 * base.filter_length
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    mag_db = lambda h: 20 * np.log10(np.abs(np.fft.rfft(h.aligned.astype(float), n, axis=-1)) + 1e-12)  # noqa: E731
    expected = np.apply_along_axis(lambda row: np.interp(f / 1.1, f, row), -1, mag_db(base))
    band = (f > 1000) & (f < 14000)
    error = np.abs(mag_db(varied) - expected)[..., band]
    assert np.median(error) < 1.0
    np.testing.assert_array_equal(varied.delays, base.delays)
    same = data.varied_head("kemar", data.HeadVariation(ear_gain_db=flat, frequency_scale=1.0))
    np.testing.assert_array_equal(same.aligned, data.varied_head("kemar", data.HeadVariation(ear_gain_db=flat)).aligned)


def test_frequency_scale_is_drawn_last_and_within_its_range():
    """The scale is drawn after the rest of the variation, so a variation with scaling is the one
    without it plus a scale (sets rendered before keep their variations)."""
    for seed in range(50):
        plain = data.draw_variation(np.random.default_rng(seed), "kemar", ("kemar", "sonicom_a"))
        scaled = data.draw_variation(np.random.default_rng(seed), "kemar", ("kemar", "sonicom_a"), True)
        assert plain.frequency_scale == 1.0
        assert (scaled.itd_scale, scaled.ear_gain_db, scaled.mix_head, scaled.mix_weight) == \
            (plain.itd_scale, plain.ear_gain_db, plain.mix_head, plain.mix_weight)
        low, high = data.FREQUENCY_SCALE_RANGE
        assert low <= scaled.frequency_scale <= high
    with pytest.raises(ValueError, match="head_variation"):
        data.make_clip("train", 0, frequency_scaling=True)


def test_mixing_heads_interpolates_between_them():
    _need("ku100")
    flat = ((0.0,) * len(data.SPECTRAL_KNOTS_HZ),) * 2
    other_aligned, other_delays = data.head_on_grid("ku100", "kemar")
    full = data.varied_head("kemar", data.HeadVariation(ear_gain_db=flat, mix_head="ku100", mix_weight=1.0))
    half = data.varied_head("kemar", data.HeadVariation(ear_gain_db=flat, mix_head="ku100", mix_weight=0.5))
    np.testing.assert_allclose(full.delays, other_delays, atol=1e-9)
    np.testing.assert_allclose(full.aligned, other_aligned, atol=1e-6)
    base = data.head_set("kemar")
    np.testing.assert_allclose(half.delays, 0.5 * (base.delays + other_delays), atol=1e-9)
    np.testing.assert_allclose(half.aligned, 0.5 * (base.aligned + other_aligned), atol=1e-6)


def test_varied_clips_stay_a_pure_function_of_their_index():
    heads = ("kemar",)
    a = data.make_clip("train", 21, stage=1, head_variation=heads)
    b = data.make_clip("train", 21, stage=1, head_variation=heads)
    plain = data.make_clip("train", 21, stage=1)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert a.variation == b.variation and a.variation is not None
    # the variation has a stream of its own: the clip's recipe does not change
    assert (a.azimuth_deg, a.distance_m, a.roles, a.room) == (plain.azimuth_deg, plain.distance_m, plain.roles, plain.room)
    assert not np.array_equal(a.audio, plain.audio)
    # one varied head per group of VARIATION_GROUP clips, another for the next group
    group = data.VARIATION_GROUP
    first = (21 // group) * group
    assert data.make_clip("train", first, stage=1, head_variation=heads).variation == a.variation
    assert data.make_clip("train", first + group, stage=1, head_variation=heads).variation != a.variation
    # out of order (another group in between) gives the same bytes: the cache is not state
    np.testing.assert_array_equal(data.make_clip("train", 21, stage=1, head_variation=heads).audio, a.audio)


# ---- calibration ------------------------------------------------------------------------

def test_reliability_of_a_calibrated_sample_is_near_zero_and_of_an_overconfident_one_is_not():
    from bench.listener import reliability
    rng = np.random.default_rng(5)
    confidence = rng.uniform(0, 1, 20000)
    correct = rng.uniform(0, 1, confidence.size) < confidence
    assert reliability(confidence, correct)["ece"] < 0.02
    # closed form: always 0.9 sure, right half the time -> ECE 0.4
    assert reliability(np.full(1000, 0.9), np.arange(1000) % 2 == 0)["ece"] == pytest.approx(0.4, abs=1e-9)


def test_platt_fit_recovers_known_parameters():
    from bench.listener import fit_platt
    from stase.agent.listener import Calibration
    rng = np.random.default_rng(6)
    raw = rng.uniform(0.01, 0.99, 40000)
    truth = Calibration(0.6, -0.8).apply(raw)
    correct = rng.uniform(0, 1, raw.size) < truth
    a, b = fit_platt(raw, correct)
    np.testing.assert_allclose([a, b], [0.6, -0.8], atol=0.05)


def test_calibration_is_monotone_and_refuses_a_reversing_slope():
    from stase.agent.listener import Calibration
    c = Calibration(0.76, 0.41)
    out = c.apply(np.linspace(0, 1, 101))
    assert np.all(np.diff(out) >= 0) and 0 < out[0] < out[-1] < 1
    with pytest.raises(ValueError):
        Calibration(-1.0, 0.0)


@pytest.fixture
def model_copy(tmp_path):
    from stase.agent.listener import DEFAULT_MODEL
    assert DEFAULT_MODEL.is_file(), f"shipped model {DEFAULT_MODEL} is missing"
    path = tmp_path / "m.onnx"
    shutil.copyfile(DEFAULT_MODEL, path)
    return path


@pytest.mark.model
def test_listener_confidence_uses_the_calibration_fitted_for_its_model(model_copy):
    from stase.agent.listener import Calibration, Listener, calibration_path, model_sha256, write_calibration
    clip = data.make_clip("test", 3, stage=1).audio
    raw = Listener(model_copy, providers=["CPUExecutionProvider"], threads=1).listen_many(
        [(clip, SAMPLE_RATE)], with_raw_confidence=True)[0]
    assert raw["confidence"] == raw["confidence_raw"]           # no calibration file: raw
    write_calibration(calibration_path(model_copy), {"a": 0.5, "b": -1.0, "model_sha256": model_sha256(model_copy)})
    heard = Listener(model_copy, providers=["CPUExecutionProvider"], threads=1).listen(clip, SAMPLE_RATE)
    assert heard["confidence"] == pytest.approx(float(Calibration(0.5, -1.0).apply(raw["confidence_raw"])), abs=2e-3)  # raw is rounded to 1e-4
    # fitted for another model: not applied
    write_calibration(calibration_path(model_copy), {"a": 0.5, "b": -1.0, "model_sha256": "0" * 64})
    other = Listener(model_copy, providers=["CPUExecutionProvider"], threads=1)
    assert other.calibration is None and "another model" in other.calibration_record["status"]
    assert other.listen(clip, SAMPLE_RATE)["confidence"] == raw["confidence_raw"]


@pytest.mark.model
def test_a_broken_calibration_file_is_an_error_not_a_silent_default(model_copy):
    from stase.agent.listener import Listener, calibration_path
    from stase.core.errors import StaseError
    calibration_path(model_copy).write_text("{not json")
    with pytest.raises(StaseError, match="calibration"):
        Listener(model_copy, providers=["CPUExecutionProvider"], threads=1)


def test_shipped_calibration_matches_the_shipped_model():
    from stase.agent.listener import DEFAULT_MODEL, calibration_path, model_sha256
    record = json.loads(calibration_path(DEFAULT_MODEL).read_text())
    assert record["model_sha256"] == model_sha256(DEFAULT_MODEL)
    assert record["fitted_on"]["start"] >= 900_000            # validation indices, train seed
    assert record["fitted_on"]["seed"] == data.TRAIN_SEED


# ---- listen-back: uncertain, not wrong ---------------------------------------------------

@pytest.mark.model
@pytest.mark.parametrize("confidence, uncertain", [(0.2, True), (0.9, False)])
def test_listen_back_marks_a_low_confidence_track_uncertain_not_wrong(monkeypatch, confidence, uncertain):
    from stase.agent.listener import UNCERTAIN_BELOW, Listener
    from stase.core.plan import Plan, SourcePlacement
    listener = Listener(providers=["CPUExecutionProvider"], threads=1)
    heard = {"azimuth_deg": -100.0, "elevation_deg": 0.0, "distance_m": 1.5, "confidence": confidence,
             "classes": {}}                              # 180 deg from the plan: wrong if sure
    monkeypatch.setattr(listener, "listen_many", lambda items: [dict(heard) for _ in items])
    plan = Plan(room="dry_studio", sources=[SourcePlacement("Gtr", azimuth_deg=80.0, distance_m=1.5)])
    stems = {"Gtr": (np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 0.1).astype(np.float32)}
    report = listener.listen_back(stems, plan, SAMPLE_RATE)
    track = report["tracks"][0]
    assert (confidence < UNCERTAIN_BELOW) == uncertain
    assert track["uncertain"] is uncertain and track["flag"] is (not uncertain)
    assert ("uncertain" in report["summary"]) is uncertain
    assert ("far from the plan: Gtr" in report["summary"]) is (not uncertain)


def test_minimum_phase_spectrum_has_the_asked_magnitude_and_is_causal():
    n = 512
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    v = data.HeadVariation(ear_gain_db=((2.0, -2.0) * 4, (-1.0, 1.0) * 4))
    gain_db = data.ear_gain_db(v, f)
    spectrum = data.minimum_phase_spectrum(gain_db, n)
    np.testing.assert_allclose(20 * np.log10(np.abs(spectrum)), gain_db, atol=1e-9)
    impulse = np.fft.irfft(spectrum, n, axis=-1)
    # causal: the energy sits at the start, none wraps round to the end (negative time)
    assert np.all(np.sum(impulse[:, -n // 4:] ** 2, axis=1) < 1e-6 * np.sum(impulse ** 2, axis=1))
