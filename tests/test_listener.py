"""The listener at run time: Listener, answer(), `stase listen --json`, bench metrics, baseline."""
from __future__ import annotations

import json

import numpy as np
import pytest

from stase.agent.features import SAMPLE_RATE
from stase.agent.listener import DEFAULT_MODEL, Listener, describe, resample_to_model_rate, windows
from bench.listener import (average_precision, breakdown, broadband_ild_db, gcc_phat_itd_s, spatial_metrics,
                            woodworth_lateral_deg)
from stase.core.conventions import HEAD_RADIUS_M, SPEED_OF_SOUND_M_S
from stase.core.errors import InputError

def _require_shipped_model():
    """The model ships in the repository: its absence is a failure, not a skip."""
    assert DEFAULT_MODEL.is_file(), f"shipped model {DEFAULT_MODEL} is missing"


shipped = pytest.mark.usefixtures("shipped_model")


@pytest.fixture
def shipped_model():
    _require_shipped_model()


@pytest.fixture(scope="module")
def listener():
    _require_shipped_model()
    return Listener(providers=["CPUExecutionProvider"], threads=1)


def _rendered(azimuth_deg, elevation_deg=0.0, distance_m=1.5, seed=0, room="dry_studio"):
    """A noise burst rendered through our renderer (the data generator's path)."""
    from stase.onnx_models.spatial_ast import data
    rng = np.random.default_rng(seed)
    mono = rng.standard_normal(SAMPLE_RATE) * 0.1
    return data.render_source(mono, azimuth_deg, elevation_deg, distance_m, room).astype(np.float32)


# ---- classical baseline and metrics (closed forms, references) ------------------------------

@pytest.mark.parametrize("delay", [-12, -3, 0, 5, 14])
def test_gcc_phat_finds_an_integer_delay(rng, delay):
    left = rng.standard_normal(SAMPLE_RATE)
    right = np.roll(left, delay)          # right lags by `delay` -> the left ear leads
    itd = gcc_phat_itd_s(np.stack([left, right]), SAMPLE_RATE)
    assert itd == pytest.approx(delay / SAMPLE_RATE, abs=0.25 / SAMPLE_RATE)


def test_woodworth_inversion_round_trip():
    theta = np.radians(np.array([-80.0, -30.0, 0.0, 10.0, 45.0, 89.0]))
    itd = np.sign(theta) * HEAD_RADIUS_M / SPEED_OF_SOUND_M_S * (np.abs(theta) + np.sin(np.abs(theta)))
    np.testing.assert_allclose(woodworth_lateral_deg(itd), np.degrees(theta), atol=0.05)


def test_ild_of_a_6db_difference():
    x = np.ones((2, 100))
    x[1] *= 0.5
    assert broadband_ild_db(x) == pytest.approx(20 * np.log10(2), abs=1e-9)


def test_average_precision_matches_sklearn(rng):
    metrics = pytest.importorskip("sklearn.metrics")
    for _ in range(5):
        labels = (rng.random(200) < 0.3).astype(int)
        scores = np.round(rng.random(200) + 0.5 * labels, 2)   # ties included
        assert average_precision(scores, labels) == pytest.approx(metrics.average_precision_score(labels, scores), abs=1e-12)


def test_spatial_metrics_closed_form():
    true_az, true_el, true_d = np.array([0.0, 30.0, 150.0]), np.zeros(3), np.array([1.0, 2.0, 3.0])
    pred_az = np.array([10.0, 60.0, 30.0])     # errors 10, 30, 120 -> MAE 53.33, ER20 2/3
    out = spatial_metrics(pred_az, np.zeros(3), np.array([1.2, 3.0, 3.5]), true_az, true_el, true_d)
    assert out["mae_deg"] == pytest.approx(160 / 3)
    assert out["er20"] == pytest.approx(2 / 3)
    assert out["der"] == pytest.approx(1 / 3)                   # only the 1 m miss counts
    assert out["front_back_confusion"] == pytest.approx(1 / 3)  # 150 answered as 30
    assert out["der_bins"] == pytest.approx(1 / 3)              # bins 2/2, 6/4, 7/6: one >1 bin off
    # a 0.54 m miss is a DER error but only one 0.5 m bin off (bins 5 and 4): not a binned one
    near = spatial_metrics(np.zeros(1), np.zeros(1), np.array([2.74]), np.zeros(1), np.zeros(1), np.array([2.2]))
    assert near["der"] == 1.0 and near["der_bins"] == 0.0


def test_breakdown_splits_metrics_by_group():
    true_az, zeros = np.array([0.0, 30.0, 150.0, 40.0]), np.zeros(4)
    pred_az, dist = np.array([10.0, 60.0, 30.0, 40.0]), np.ones(4)
    out = breakdown(["a", "a", "b", "b"], pred_az, zeros, dist, true_az, zeros, dist)
    assert out["a"]["n"] == 2 and out["a"]["mae_deg"] == pytest.approx(20.0)
    assert out["b"]["mae_deg"] == pytest.approx(60.0) and out["b"]["front_back_confusion"] == pytest.approx(0.5)


# ---- listener plumbing ------------------------------------------------------------------------

def test_resampling_keeps_a_tone_and_sets_the_length():
    t = np.arange(48000) / 48000
    x = np.stack([np.sin(2 * np.pi * 1000 * t)] * 2)
    y = resample_to_model_rate(x, 48000)
    assert y.shape == (2, SAMPLE_RATE)
    t32 = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    np.testing.assert_allclose(y[:, 1000:-1000], np.stack([np.sin(2 * np.pi * 1000 * t32)] * 2)[:, 1000:-1000], atol=1e-3)


def test_windows_cover_long_audio_and_pad_short_audio(rng):
    chunks, w = windows(rng.standard_normal((2, 2 * SAMPLE_RATE + 100)) * 0.1)
    assert chunks.shape == (4, 2, SAMPLE_RATE) and w.shape == (4,)
    chunks, w = windows(rng.standard_normal((2, 5000)) * 0.1)
    assert chunks.shape == (1, 2, SAMPLE_RATE) and np.all(chunks[0, :, 5000:] == 0)
    with pytest.raises(InputError):
        windows(np.zeros((2, 5000)))


def test_describe_uses_our_convention():
    assert describe({"azimuth_deg": 60.0, "elevation_deg": 20.0}) == {
        "left_right": "left", "front_behind": "front", "above_below": "above"}
    assert describe({"azimuth_deg": -120.0, "elevation_deg": -5.0}) == {
        "left_right": "right", "front_behind": "behind", "above_below": "below"}


def test_bad_input_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        Listener(tmp_path / "missing.onnx")


# ---- the shipped model --------------------------------------------------------------------------

@pytest.mark.model
def test_shipped_model_hears_hard_left_on_the_left_and_hard_right_on_the_right(listener):
    left = listener.listen(_rendered(90.0), SAMPLE_RATE)
    right = listener.listen(_rendered(-90.0, seed=1), SAMPLE_RATE)
    assert describe(left)["left_right"] == "left" and left["azimuth_deg"] > 0
    assert describe(right)["left_right"] == "right" and right["azimuth_deg"] < 0
    assert set(left) == {"azimuth_deg", "elevation_deg", "distance_m", "confidence", "classes"}
    assert 0.0 <= left["confidence"] <= 1.0 and len(left["classes"]) == 24


@pytest.mark.model
def test_listen_accepts_other_rates(listener):
    from scipy.signal import resample_poly
    x = _rendered(70.0, seed=2)
    at_48k = resample_poly(x, 3, 2, axis=1)
    heard = listener.listen(at_48k, 48000)
    assert heard["azimuth_deg"] > 0


@pytest.mark.model
def test_answer_left_of_and_question_types(listener):
    sources = {"Vocal": _rendered(80.0, seed=3), "Bass": _rendered(-80.0, seed=4)}
    mix = sources["Vocal"] + sources["Bass"]
    assert listener.answer("Is the vocal to the left of the bass?", mix, sources)["value"] is True
    assert listener.answer("Is the bass left of the vocal?", mix, sources)["value"] is False
    assert listener.answer("Is the bass right of the vocal?", mix, sources)["value"] is True
    reply = listener.answer("Where is the vocal?", mix, sources)
    assert reply["type"] == "direction" and reply["value"]["left_right"] == "left"
    assert listener.answer("what is playing?", mix)["type"] == "detection"
    assert listener.answer("Which is closer, the vocal or the bass?", mix, sources)["value"] in ("Vocal", "Bass")


@pytest.mark.model
def test_cli_prints_one_json_object_per_file(listener, tmp_path, capsys):
    from stase.cli import main
    from stase.core.audio_io import write_audio
    files = []
    for k, az in enumerate((90.0, -90.0)):
        path = tmp_path / f"clip{k}.wav"
        write_audio(path, _rendered(az, seed=10 + k), SAMPLE_RATE)
        files.append(str(path))
    assert main(["listen", *files, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["file"] for line in lines] == files
    for line in lines:
        assert set(line) == {"file", "azimuth_deg", "elevation_deg", "distance_m", "confidence", "classes"}
        assert all(isinstance(line[k], float) for k in ("azimuth_deg", "elevation_deg", "distance_m", "confidence"))
        assert -180 < line["azimuth_deg"] <= 180 and -90 <= line["elevation_deg"] <= 90
    assert lines[0]["azimuth_deg"] > 0 > lines[1]["azimuth_deg"]


def test_cli_refuses_mono(tmp_path, capsys):
    from stase.cli import main
    from stase.core.audio_io import write_audio
    path = tmp_path / "mono.wav"
    write_audio(path, np.zeros(1000, np.float32), SAMPLE_RATE)
    assert main(["listen", str(path), "--json"]) == 2
    assert "binaural" in capsys.readouterr().err


@pytest.mark.model
def test_listen_back_reports_errors_per_track(listener, rng):
    from stase.core.plan import Plan, SourcePlacement
    stems = {"Left Gtr": (rng.standard_normal(SAMPLE_RATE) * 0.1).astype(np.float32),
             "Right Gtr": (rng.standard_normal(SAMPLE_RATE) * 0.1).astype(np.float32)}
    plan = Plan(room="dry_studio", sources=[SourcePlacement("Left Gtr", azimuth_deg=80.0, distance_m=1.5),
                                            SourcePlacement("Right Gtr", azimuth_deg=-80.0, distance_m=1.5)])
    report = listener.listen_back(stems, plan, SAMPLE_RATE)
    left, right = report["tracks"]
    assert left["perceived"]["azimuth_deg"] > 0 > right["perceived"]["azimuth_deg"]
    for t in report["tracks"]:
        # the reported error is the great-circle angle between plan and perception
        from stase.core.conventions import great_circle_deg
        expected = great_circle_deg(t["perceived"]["azimuth_deg"], t["perceived"]["elevation_deg"],
                                    t["planned"]["azimuth_deg"], t["planned"]["elevation_deg"])
        assert t["angular_error_deg"] == pytest.approx(expected, abs=0.06)
        from stase.agent.listener import UNCERTAIN_BELOW
        assert t["uncertain"] == (t["perceived"]["confidence"] < UNCERTAIN_BELOW)
        assert t["flag"] == (not t["uncertain"] and (t["angular_error_deg"] > 30 or abs(t["distance_error_m"]) > 2.0))
