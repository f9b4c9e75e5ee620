"""Gain advice: differential mode undoes offsets exactly, prior mode follows the documented LAR,
contract shape, bad input, the guarded rephrase hook and ``stase advise``."""
from __future__ import annotations

import json

import numpy as np
import pytest

from stase.agent.advisor import advise, guarded_rephrase
from stase.agent.advisor.analysis import analyse_stems
from stase.agent.advisor.fixtures import balanced_fixture, fixture_stems
from stase.agent.advisor.priors import LAR_PRIORS_DB, genre_of, prior_gains, resolve_roles
from stase.core.errors import InputError
from stase.core.plan import Plan, SourcePlacement

RATE = 24000


@pytest.fixture(scope="module")
def balanced():
    stems, roles = balanced_fixture(5, 6.0, RATE, seed=4)
    return stems, roles


def _offset(stems, offsets_db, common_db=0.0):
    return {t: x * np.float32(10 ** ((offsets_db.get(t, 0.0) + common_db) / 20)) for t, x in stems.items()}


def _gains(result):
    return {t["track"]: t["gain_db"] for t in result["tracks"]}


def test_contract_shape(balanced):
    stems, _ = balanced
    result = advise(stems, RATE)
    assert set(result) >= {"tracks", "summary"}
    assert isinstance(result["summary"], str) and result["summary"]
    assert sorted(t["track"] for t in result["tracks"]) == sorted(stems)
    for t in result["tracks"]:
        assert set(t) == {"track", "gain_db", "confidence", "reasons"}
        assert isinstance(t["gain_db"], float) and 0.0 <= t["confidence"] <= 1.0
        assert t["reasons"] and all(isinstance(r, str) for r in t["reasons"])


def test_differential_undoes_offsets_whatever_the_overall_level(balanced):
    stems, _ = balanced
    offsets = {"Vocal": -6.5, "Guitar": 4.0}
    result = advise(_offset(stems, offsets, common_db=5.0), RATE, reference=stems)
    gains = _gains(result)
    assert result["mode"] == "differential"
    for track in stems:
        np.testing.assert_allclose(gains[track], -offsets.get(track, 0.0), atol=0.1)
    assert [t["track"] for t in result["tracks"][:2]] == ["Vocal", "Guitar"]  # ranked by size x confidence
    assert "raise Vocal by 6.5 dB" in result["summary"]


def test_differential_reason_numbers_are_measured(balanced):
    stems, _ = balanced
    current = _offset(stems, {"Vocal": -4.0})
    result = advise(current, RATE, reference=stems)
    vocal = next(t for t in result["tracks"] if t["track"] == "Vocal")
    a = analyse_stems(current, RATE)
    rest = a.loudness_of_sum([t for t in stems if t != "Vocal"])
    expected = f"{abs(a.stems['Vocal'].integrated_lufs - rest):.1f} LU"
    assert expected in vocal["reasons"][0]


def test_moving_every_stem_together_needs_no_advice(balanced):
    stems, roles = balanced
    louder = _offset(stems, {}, common_db=6.0)
    for reference in (stems, None):
        gains = _gains(advise(louder, RATE, reference=reference, roles=roles, genre="pop"))
        assert gains == _gains(advise(stems, RATE, reference=reference, roles=roles, genre="pop"))
    assert all(g == 0.0 for g in _gains(advise(louder, RATE, reference=stems)).values())


def test_reference_with_other_names_is_refused_clearly(balanced):
    stems, _ = balanced
    renamed = {f"track {i}": x for i, x in enumerate(stems.values())}
    with pytest.raises(InputError, match="at least two tracks.*Current tracks"):
        advise(stems, RATE, reference=renamed)


def test_a_single_mix_as_reference_is_refused_clearly(balanced):
    stems, _ = balanced
    mix = np.stack([sum(stems.values()), sum(stems.values())])
    with pytest.raises(InputError, match="not with a single mix"):
        advise(stems, RATE, reference={"mix": mix})


def test_partial_reference_advises_matched_tracks_and_says_so(balanced):
    stems, _ = balanced
    reference = {k: v for k, v in stems.items() if k != "Pad"}
    reference["Synth"] = stems["Pad"]
    result = advise(_offset(stems, {"Bass": 5.0}), RATE, reference=reference, roles={"Pad": None})
    gains = _gains(result)
    np.testing.assert_allclose(gains["Bass"], -5.0, atol=0.1)
    pad = next(t for t in result["tracks"] if t["track"] == "Pad")
    assert pad["gain_db"] == 0.0 and pad["confidence"] == 0.0
    assert any("no reference counterpart for Pad" in w for w in result["warnings"])


def test_reference_matched_by_role(balanced):
    stems, roles = balanced
    reference = dict(stems)
    reference["Lead Vox"] = reference.pop("Vocal")
    result = advise(_offset(stems, {"Vocal": -5.0}), RATE, reference=reference, roles=roles)
    vocal = next(t for t in result["tracks"] if t["track"] == "Vocal")
    np.testing.assert_allclose(vocal["gain_db"], 5.0, atol=0.1)
    assert any("by role" in r for r in vocal["reasons"])


def test_reference_at_another_rate_is_resampled(balanced):
    import scipy.signal
    stems, _ = balanced
    reference = {t: scipy.signal.resample_poly(x, 2, 1).astype(np.float32) for t, x in stems.items()}
    result = advise(_offset(stems, {"Drums": 6.0}), RATE, reference=reference, reference_sample_rate=2 * RATE)
    np.testing.assert_allclose(_gains(result)["Drums"], -6.0, atol=0.3)
    assert any("resampled" in w for w in result["warnings"])


def test_prior_mode_restores_the_documented_lar(balanced):
    stems, roles = balanced
    result = advise(_offset(stems, {"Vocal": -6.0}), RATE, roles=roles, genre="pop")
    assert result["mode"] == "prior"
    np.testing.assert_allclose(_gains(result)["Vocal"], 6.0, atol=0.5)
    vocal = next(t for t in result["tracks"] if t["track"] == "Vocal")
    assert "Gerdes & Siedenburg 2023" in vocal["reasons"][0]


def test_lar_prior_closed_form(rng):
    rate = 16000
    voice = (rng.standard_normal(rate * 2) * 0.1).astype(np.float32)
    band = (rng.standard_normal(rate * 2) * 0.1).astype(np.float32)
    a = analyse_stems({"Vocal": voice, "Band": band}, rate)
    target = LAR_PRIORS_DB["rock"][0]
    gains, details = prior_gains(a, {"Vocal": "lead_vocal", "Band": "electric_guitar"}, genre="rock",
                                 dead_band=False)
    lar = a.stems["Vocal"].integrated_lufs - a.stems["Band"].integrated_lufs
    np.testing.assert_allclose(gains["Vocal"], target - lar, atol=1e-9)
    np.testing.assert_allclose(details["Vocal"]["measured_lu"], lar, atol=1e-9)


def test_genre_and_roles_from_plan():
    plan = Plan(sources=[SourcePlacement("Vox 1", role="lead_vocal")], music={"style": "rock"})
    assert genre_of(plan) == "rock" and genre_of(None, "Hip_Hop") == "rap" and genre_of(None) == "default"
    plan.music["instruments"] = [{"track": "Thing", "role": "synth_pad"}]
    roles = resolve_roles(["Vox 1", "Kick", "thing"], plan)
    assert roles == {"Vox 1": "lead_vocal", "Kick": "drums", "thing": "synth_pad"}


def test_silent_and_clipped_stems_get_no_made_up_numbers(balanced):
    stems, _ = balanced
    current = dict(stems)
    current["Pad"] = np.zeros_like(stems["Pad"])
    current["Drums"] = np.clip(stems["Drums"] * 40.0, -1.0, 1.0)
    for reference in (None, stems):
        result = advise(current, RATE, reference=reference)
        pad = next(t for t in result["tracks"] if t["track"] == "Pad")
        assert pad["gain_db"] == 0.0 and pad["confidence"] == 0.0 and "silent" in pad["reasons"][0]
        drums = next(t for t in result["tracks"] if t["track"] == "Drums")
        assert any("clipped" in r for r in drums["reasons"])
        assert any("silent" in w for w in result["warnings"])


def test_all_silent_is_answered_not_crashed():
    result = advise({"a": np.zeros(RATE), "b": np.zeros(RATE)}, RATE)
    assert all(t["gain_db"] == 0.0 and t["confidence"] == 0.0 for t in result["tracks"])


def test_mixed_mono_stereo_and_lengths(balanced):
    stems, _ = balanced
    current = dict(stems)
    current["Pad"] = np.stack([stems["Pad"], stems["Pad"]]) / np.sqrt(2)  # constant-power centre
    current["Bass"] = stems["Bass"][: len(stems["Bass"]) // 2]
    result = advise(current, RATE, reference=stems)
    np.testing.assert_allclose(_gains(result)["Pad"], 0.0, atol=0.1)
    assert any("padded" in w for w in result["warnings"])


def test_spatial_plan_changes_masking_reasons_not_gains(balanced):
    stems, _ = balanced
    current = _offset(stems, {"Vocal": -6.0})
    plan = Plan(sources=[SourcePlacement(t, azimuth_deg=az) for t, az in
                         zip(stems, (0.0, -30.0, 0.0, 60.0, -60.0))])
    with_plan = advise(current, RATE, reference=stems, plan=plan)
    without = advise(current, RATE, reference=stems)
    assert _gains(with_plan) == _gains(without)
    assert _gains(advise(current, RATE, reference=stems, plan=plan.to_dict())) == _gains(with_plan)


def test_guarded_rephrase():
    text = "raise Vocal by 4.1 dB; lower Guitar by 2.0 dB."
    assert guarded_rephrase(text, lambda s: "Bring the vocal up 4.1 dB and the guitar down 2.0 dB.")[1] is None
    kept, warning = guarded_rephrase(text, lambda s: "Bring the vocal up 5 dB.")
    assert kept == text and "numbers" in warning

    def broken(_):
        raise RuntimeError("no model")
    kept, warning = guarded_rephrase(text, broken)
    assert kept == text and "RuntimeError" in warning
    assert guarded_rephrase(text, None) == (text, None)


def test_model_rephraser_goes_through_the_guard(balanced):
    from stase.agent.advisor.advice import model_rephraser
    stems, _ = balanced

    class FakeModel:
        def __init__(self, text):
            self.text, self.seen = text, None

        def complete_json(self, messages, schema, max_tokens=None):
            self.seen = messages[-1]["content"]
            return {"summary": self.text}

    honest = FakeModel("Turn the vocal up 6.0 dB.")
    result = advise(_offset(stems, {"Vocal": -6.0}), RATE, reference=stems, rephrase=model_rephraser(honest))
    assert result["summary"] == "Turn the vocal up 6.0 dB." and "6.0" in honest.seen
    liar = FakeModel("Turn the vocal up 9 dB.")
    result = advise(_offset(stems, {"Vocal": -6.0}), RATE, reference=stems, rephrase=model_rephraser(liar))
    assert result["summary"] == liar.seen and any("changed or added numbers" in w for w in result["warnings"])


def test_cli_json_and_errors(tmp_path, capsys, balanced):
    from stase.cli import main
    from stase.core.audio_io import write_audio
    stems, _ = balanced
    for folder, offsets in (("cur", {"Vocal": -5.0}), ("ref", {})):
        for t, x in _offset(stems, offsets).items():
            write_audio(tmp_path / folder / f"{t}.wav", x, RATE)
    assert main(["advise", "--stems", str(tmp_path / "cur"), "--reference", str(tmp_path / "ref"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(_gains(out)["Vocal"], 5.0, atol=0.1)
    assert main(["advise", "--stems", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["advise", "--stems", str(tmp_path / "cur")]) == 0
    assert "Vocal" in capsys.readouterr().out


def test_fixtures_are_deterministic():
    a, _ = fixture_stems(3, 1.0, 8000, seed=5)
    b, _ = fixture_stems(3, 1.0, 8000, seed=5)
    assert all(np.array_equal(a[t], b[t]) for t in a)
