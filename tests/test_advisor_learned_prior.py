"""The learned part prior (agent/advisor/learned_prior.py, part_prior.json, tools/fit_part_prior.py).

Gain invariance of the features (a fader move must not move its own target), the ridge fit
against a NumPy least-squares reference, a melody part predicted above the parts that sustain,
the coefficients file's validation, and the fall-back to the fixed part targets (closed form)
where the learned prior does not apply.  Synthetic tones only: no FluidSynth needed.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from stase.agent.advisor import learned_prior as lp
from stase.agent.advisor.analysis import analyse_stems
from stase.agent.advisor.ensembles import PART_TARGETS, ensemble_gains, ensemble_parts
from stase.agent.advisor.priors import prior_gains, resolve_roles
from stase.core.errors import InputError

RATE = 16_000


def _melody(seconds: float, low_hz: float, rng, amplitude: float = 0.2) -> np.ndarray:
    """Short decaying notes on random pitches (an active, moving part)."""
    notes = int(2 * seconds)
    per = int(RATE * seconds) // notes
    freq = np.repeat(low_hz * 2 ** (rng.integers(0, 12, notes) / 12), per)
    ramp = np.minimum(1.0, np.arange(per) / 200.0) * np.exp(-3.0 * np.arange(per) / RATE)
    envelope = np.tile(ramp, notes)
    return (amplitude * envelope * np.sin(2 * np.pi * np.cumsum(freq) / RATE)).astype(np.float32)


def _sustain(seconds: float, hz: float, amplitude: float = 0.1) -> np.ndarray:
    n = (int(RATE * seconds) // int(2 * seconds)) * int(2 * seconds)
    t = np.arange(n) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t) + 0.3 * amplitude * np.sin(4 * np.pi * hz * t)).astype(np.float32)


def _ensemble(names_hz: dict[str, float], melody: str, seconds: float = 20.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    return {n: _melody(seconds, hz, rng) if n == melody else _sustain(seconds, hz) for n, hz in names_hz.items()}


CHOIR = {"Soprano": 523.0, "Alto": 330.0, "Tenor": 220.0, "Bass": 110.0}
QUARTET = {"Violin 1": 660.0, "Violin 2": 440.0, "Viola": 262.0, "Cello": 98.0}


# -- features -------------------------------------------------------------------------------------

def test_stem_features_are_gain_invariant():
    """Band powers x 0.01 (a stem x 0.1) give the same features to 1e-9 (float64 kernel)."""
    rng = np.random.default_rng(3)
    power = rng.gamma(0.5, 1.0, size=(400, 30)) * np.exp(rng.normal(0, 2, (400, 1)))
    power[:40] = 0.0                                       # a rest
    blocks = rng.gamma(1.0, 1e-3, size=120)
    a = lp.stem_features(power, 0.0425, np.arange(30) + 3.0, blocks)
    b = lp.stem_features(power * 0.01, 0.0425, np.arange(30) + 3.0, blocks * 0.01)
    assert set(a) == set(lp.FEATURE_NAMES)
    for name in lp.FEATURE_NAMES:
        np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-9, err_msg=name)
    assert 0.8 < a["active_share"] < 0.95  # the rest is not playing: the gate is relative


def test_ensemble_features_do_not_move_when_one_stem_is_scaled():
    stems = _ensemble(CHOIR, "Soprano")
    base = lp.analysis_features(analyse_stems(stems, RATE), list(stems))
    scaled = dict(stems, Alto=stems["Alto"] * np.float32(0.1))
    moved = lp.analysis_features(analyse_stems(scaled, RATE), list(stems))
    for track in stems:
        for name in lp.ALL_FEATURE_NAMES:
            # the analysis keeps float32 band levels: 1e-5 dB / 1e-5 Cam of rounding, no more
            np.testing.assert_allclose(moved[track][name], base[track][name], rtol=0, atol=1e-5,
                                       err_msg=f"{track} {name}")


def test_melody_part_leads_and_is_the_top_register():
    stems = _ensemble(QUARTET, "Violin 1")
    features = lp.analysis_features(analyse_stems(stems, RATE), list(stems))
    relative = lp.relative_features(features)
    assert relative["Violin 1"]["top_register"] == 1.0
    assert features["Violin 1"]["lead_share"] > 0.9
    assert features["Violin 1"]["onset_rate_hz"] > features["Viola"]["onset_rate_hz"] + 1.0
    for name in lp.ALL_FEATURE_NAMES:  # relative features sum to zero over the parts
        assert abs(sum(relative[t][f"rel_{name}"] for t in stems)) < 1e-9


# -- the fit ---------------------------------------------------------------------------------------

def test_ridge_fit_matches_numpy_least_squares():
    """Per-part intercepts (unpenalised) + shared ridge slopes = lstsq on the augmented system."""
    rng = np.random.default_rng(7)
    rows, k, groups = 83, 3, 4
    x = rng.normal(size=(rows, k))
    g = rng.integers(0, groups, rows)
    y = np.array([1.0, -0.5, 0.2, 2.0])[g] + x @ np.array([0.7, -1.2, 0.0]) + 0.1 * rng.normal(size=rows)
    for alpha in (0.0, 0.5, 10.0):
        intercepts, coef = lp.ridge_fit(x, g, y, alpha, groups)
        design = np.hstack([np.eye(groups)[g], x])
        penalty = np.hstack([np.zeros((k, groups)), np.sqrt(alpha) * np.eye(k)])
        reference, *_ = np.linalg.lstsq(np.vstack([design, penalty]), np.concatenate([y, np.zeros(k)]),
                                        rcond=None)
        np.testing.assert_allclose(intercepts, reference[:groups], atol=1e-10)
        np.testing.assert_allclose(coef, reference[groups:], atol=1e-10)


# -- the model file --------------------------------------------------------------------------------

def _model_data(**changes) -> dict:
    model = {"features": ["rel_lead_share", "top_register@violin2"], "mean": [0.0, 0.25], "scale": [0.3, 0.43],
             "coef_lu": [1.5, -0.4],
             "intercepts_lu": {"violin1": 1.0, "violin2": 1.0, "viola": -1.0, "cello": -1.0},
             "tolerance_lu": {"violin1": 1.5, "violin2": 1.5, "viola": 1.2, "cello": 2.0},
             "confidence": {"violin1": 0.5, "violin2": 0.5, "viola": 0.6, "cello": 0.4},
             "rows": 136, "cv_error_lu": 1.8, "min_seconds": 10.0,
             "feature_range": [[-1.0, 0.0], [1.0, 1.0]]}
    model.update(changes)
    return {"models": {"string_quartet": model}}


def test_shipped_coefficients_load_and_are_valid():
    data = json.loads(lp.MODEL_FILE.read_text())
    models = lp.check_model_data(data, lp.MODEL_FILE)
    assert models == lp.load_models()
    for ensemble, model in models.items():
        assert set(model.parts) == set(PART_TARGETS[ensemble])
        assert model.rows > 100 and model.min_seconds > 0 and len(model.features) <= 4
        assert "tuning" in data["about"].lower()


@pytest.mark.parametrize("changes, words", [
    ({"coef_lu": [1.5]}, "coef_lu: expected 2 finite numbers"),
    ({"features": ["rel_loudness", "top_register"]}, "unknown ['rel_loudness']"),
    ({"confidence": {"violin1": 1.5, "violin2": 0.5, "viola": 0.6, "cello": 0.4}}, "confidence"),
    ({"tolerance_lu": {"violin1": 1.5}}, "tolerance_lu"),
    ({"scale": [0.0, 0.4]}, "scale must be > 0"),
    ({"mean": [float("nan"), 0.0]}, "mean: expected 2 finite numbers"),
    ({"feature_range": [[1.0, 0.0], [0.0, 1.0]]}, "feature_range"),
])
def test_a_bad_coefficients_file_gets_a_clear_error(tmp_path, changes, words):
    path = tmp_path / "part_prior.json"
    path.write_text(json.dumps(_model_data(**changes)))
    with pytest.raises(InputError) as info:
        lp.load_models(path)
    assert str(path) in str(info.value) and words in str(info.value), str(info.value)


def test_unreadable_or_missing_coefficients_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not readable JSON"):
        lp.load_models(bad)
    with pytest.raises(InputError, match="no such part-prior file"):
        lp.load_models(tmp_path / "missing.json")
    with pytest.raises(InputError, match="models"):
        lp.check_model_data({"model": {}}, "x.json")


# -- what the learned prior predicts ---------------------------------------------------------------

def test_a_quartet_melody_part_gets_a_higher_target():
    """Violin 1 plays the melody (moving notes, top register), the others sustain: with a model
    whose terms a reader can check (+1.5 LU per SD of relative lead share), Violin 1's target is
    above every other part's, and it is the terms that put it there."""
    models = lp.check_model_data(_model_data())
    stems = _ensemble(QUARTET, "Violin 1")
    analysis = analyse_stems(stems, RATE)
    ensemble, parts, how = ensemble_parts(analysis, stems, resolve_roles(stems))
    assert ensemble == "string_quartet"
    targets = lp.learned_targets(analysis, parts, ensemble, models)
    assert targets is not None
    top = targets["Violin 1"][0]
    assert all(top > targets[t][0] + 1.0 for t in stems if t != "Violin 1"), targets
    assert targets["Violin 1"][3]["rel_lead_share"] > 1.0
    # through the advisor's own path: details say the target was learned, and from what
    _, details = ensemble_gains(analysis, ensemble, parts, how, models=models)
    assert details["Violin 1"]["target_from"] == "learned"
    np.testing.assert_allclose(details["Violin 1"]["target_lu"], top)


def test_shipped_choir_model_puts_the_moving_top_part_above_the_sustained_ones():
    model = lp.default_models().get("choir")
    if model is None:
        pytest.skip("no choir model adopted in part_prior.json")
    stems = _ensemble(CHOIR, "Soprano")
    analysis = analyse_stems(stems, RATE)
    _, parts, _ = ensemble_parts(analysis, stems, resolve_roles(stems))
    targets = lp.learned_targets(analysis, parts, "choir")
    assert targets is not None
    assert all(targets["Soprano"][0] > targets[t][0] for t in ("Alto", "Tenor", "Bass")), targets


def test_learned_targets_follow_the_music_not_the_fader():
    """Parts set exactly to their learned targets, then the tenor pushed up 6 dB: every target
    stays put (the features do not see the fader; float32 rounding only), the tenor alone is
    told -6.0 dB and the others 0 - the closed form, with learned targets."""
    model = lp.default_models().get("choir")
    if model is None:
        pytest.skip("no choir model adopted in part_prior.json")
    raw = _ensemble(CHOIR, "Soprano")
    a0 = analyse_stems(raw, RATE)
    _, d0 = prior_gains(a0, resolve_roles(raw))
    assert {d["target_from"] for d in d0.values()} == {"learned"}
    at_targets = {t: x * np.float32(10 ** ((-20.0 - a0.stems[t].integrated_lufs + d0[t]["target_lu"]) / 20))
                  for t, x in raw.items()}
    pushed = dict(at_targets, Tenor=at_targets["Tenor"] * np.float32(10 ** (6 / 20)))
    gains, details = prior_gains(analyse_stems(pushed, RATE), resolve_roles(raw))
    for t in raw:
        assert details[t]["target_from"] == "learned"
        np.testing.assert_allclose(details[t]["target_lu"], d0[t]["target_lu"], atol=1e-4)
    np.testing.assert_allclose(gains["Tenor"], -6.0, atol=0.05)
    assert gains["Soprano"] == gains["Alto"] == gains["Bass"] == 0.0
    assert details["Tenor"]["n_agree"] == 3


# -- where it does not apply: the fixed targets, closed form ---------------------------------------

def _tones_at_fixed_targets(seconds: float, tenor_db: float = -5.0) -> dict[str, np.ndarray]:
    targets = PART_TARGETS["choir"]
    t = np.arange(int(RATE * seconds)) / RATE
    raw = {n: (0.1 * np.sin(2 * np.pi * f * t)).astype(np.float32) for n, f in CHOIR.items()}
    a0 = analyse_stems(raw, RATE)
    level = {"Tenor": tenor_db}
    return {n: x * np.float32(10 ** ((-20.0 - a0.stems[n].integrated_lufs + targets[n.lower()].target_lu
                                      + level.get(n, 0.0)) / 20)) for n, x in raw.items()}


def test_short_excerpt_keeps_the_fixed_targets_closed_form():
    """Shorter than the shortest fitted excerpt: the fixed targets, and the closed form of
    tests/test_advisor_realistic.py (a tenor 5 dB low is told +5.0, the rest 0)."""
    stems = _tones_at_fixed_targets(2.0)
    gains, details = prior_gains(analyse_stems(stems, RATE), resolve_roles(stems))
    assert {d["target_from"] for d in details.values()} == {"fixed"}
    np.testing.assert_allclose(gains["Tenor"], 5.0, atol=0.05)
    assert gains["Soprano"] == gains["Alto"] == gains["Bass"] == 0.0


def test_an_ensemble_without_a_model_keeps_the_fixed_targets():
    stems = _ensemble(QUARTET, "Violin 1")
    analysis = analyse_stems(stems, RATE)
    ensemble, parts, how = ensemble_parts(analysis, stems, resolve_roles(stems))
    gains, details = ensemble_gains(analysis, ensemble, parts, how, models={})
    for t in stems:
        assert details[t]["target_from"] == "fixed"
        assert details[t]["target_lu"] == PART_TARGETS["string_quartet"][parts[t]].target_lu


def test_features_outside_the_fitted_range_keep_the_fixed_targets():
    narrow = lp.check_model_data(_model_data(feature_range=[[-0.01, 0.0], [0.01, 1.0]]))
    stems = _ensemble(QUARTET, "Violin 1")
    analysis = analyse_stems(stems, RATE)
    ensemble, parts, _ = ensemble_parts(analysis, stems, resolve_roles(stems))
    assert lp.learned_targets(analysis, parts, ensemble, narrow) is None
