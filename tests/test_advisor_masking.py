"""Masking matrix and spatial release: closed forms of the Brown & Duda head shadow, symmetric and
co-located release, and synthetic maskers that do or do not cover a target's band."""
from __future__ import annotations

import numpy as np
import pytest

from stase.agent.advisor import masking as M
from stase.agent.advisor.analysis import analyse_stems
from stase.core.plan import Plan, SourcePlacement


def test_head_shadow_limits_are_closed_form():
    # |H| -> 1 at low frequency, -> alpha(theta) at high frequency
    np.testing.assert_allclose(M.head_shadow_db(1e-3, 0.0), 0.0, atol=1e-9)
    np.testing.assert_allclose(M.head_shadow_db(1e9, 0.0), 20 * np.log10(2.0), atol=1e-6)      # alpha(0) = 2
    np.testing.assert_allclose(M.head_shadow_db(1e9, 150.0), 20 * np.log10(0.1), atol=1e-6)    # alpha_min
    # at w = 2 w0: |H|^2 = (1 + alpha^2) / 2
    w0 = M.SPEED_OF_SOUND_M_S / M.HEAD_RADIUS_M
    f = 2 * w0 / (2 * np.pi)
    alpha90 = (1 + 0.05) + (1 - 0.05) * np.cos(np.radians(90 / 150 * 180))
    np.testing.assert_allclose(M.head_shadow_db(f, 90.0), 10 * np.log10((1 + alpha90 ** 2) / 2), atol=1e-9)


def _src(az, mode="hrtf"):
    return SourcePlacement(track="x", azimuth_deg=az, mode=mode)


def test_release_is_zero_when_colocated_and_symmetric():
    f = np.geomspace(50, 16000, 30)
    np.testing.assert_allclose(M.spatial_release_db(_src(30), _src(30), f), 0.0, atol=1e-12)
    np.testing.assert_allclose(M.spatial_release_db(_src(60), _src(-20), f),
                               M.spatial_release_db(_src(-60), _src(20), f), atol=1e-12)


def test_release_grows_with_separation_and_frequency():
    f = np.array([4000.0])
    # up to 45 deg; beyond, the masker nears the far ear's bright spot (alpha rises again past
    # theta_min = 150 deg in Brown & Duda's model), so the release is not monotonic to 90 deg
    values = [M.spatial_release_db(_src(0), _src(az), f)[0] for az in (0, 15, 30, 45)]
    assert np.all(np.diff(values) > 0)
    high, low = M.spatial_release_db(_src(0), _src(90), np.array([8000.0, 2500.0]))
    assert high > low


def test_hard_panned_pair_hits_the_release_cap():
    f = np.array([500.0, 5000.0])
    np.testing.assert_allclose(M.spatial_release_db(_src(90, "pan"), _src(-90, "pan"), f), M.MAX_RELEASE_DB)


def _tone(f, seconds, rate, amplitude):
    return (amplitude * np.sin(2 * np.pi * f * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def _band_noise(rng, low, high, seconds, rate, amplitude):
    import scipy.signal
    sos = scipy.signal.butter(6, [low, high], "bandpass", fs=rate, output="sos")
    x = scipy.signal.sosfilt(sos, rng.standard_normal(int(seconds * rate)))
    return (amplitude * x / np.std(x)).astype(np.float32)


def test_masker_in_the_targets_band_masks_it_and_one_elsewhere_does_not(rng):
    rate = 32000
    target = _tone(3000, 3, rate, 0.05)
    stems = {"target": target, "near": _band_noise(rng, 2500, 3600, 3, rate, 0.2),
             "far": _band_noise(rng, 150, 300, 3, rate, 0.5)}
    result = M.masking_analysis(analyse_stems(stems, rate))
    t, near, far = (result.index(k) for k in ("target", "near", "far"))
    assert result.time_share[t, near] > 0.9
    assert result.time_share[t, far] < 0.05
    assert result.rest_time_share[t] > 0.9
    band = M.describe_bands(result.band_rate[t, near], result.band_edges_hz)
    assert band is not None and "kHz" in band


def test_gain_and_placement_release_the_masking(rng):
    rate = 32000
    stems = {"target": _tone(6000, 3, rate, 0.05), "masker": _band_noise(rng, 5000, 7000, 3, rate, 0.08)}
    analysis = analyse_stems(stems, rate)
    colocated = M.masking_analysis(analysis)
    assert colocated.time_share[0, 1] > 0.9
    raised = M.masking_analysis(analysis, gains_db={"target": 12.0})
    assert raised.time_share[0, 1] < 0.1
    plan = Plan(sources=[SourcePlacement("target", azimuth_deg=90.0), SourcePlacement("masker", azimuth_deg=-90.0)])
    apart = M.masking_analysis(analysis, plan)
    assert apart.time_share[0, 1] < 0.1 and apart.release_db[0, 1] > 3.0


@pytest.mark.parametrize("hz,text", [(80.0, "80 Hz"), (455.0, "460 Hz"), (1234.0, "1.2 kHz"), (12345.0, "12 kHz")])
def test_format_hz(hz, text):
    assert M.format_hz(hz) == text


def test_describe_bands_picks_the_strongest_run():
    edges = np.array([100.0, 200, 400, 800, 1600, 3200])
    assert M.describe_bands(np.array([0.6, 0.0, 0.9, 0.8, 0.1]), edges) == "400 Hz-1.6 kHz"
    assert M.describe_bands(np.array([0.0, 0.0, 0.0, 0.9, 0.8]), edges) == "800 Hz-3.2 kHz"
    assert M.describe_bands(np.zeros(5), edges) is None


def test_masking_matrix_equals_a_plain_loop(rng):
    rate = 16000
    stems = {"a": _band_noise(rng, 300, 2000, 2, rate, 0.1), "b": _band_noise(rng, 1000, 4000, 2, rate, 0.2),
             "c": _tone(700, 2, rate, 0.2)}
    stems["c"][: rate // 2] = 0.0  # c starts late: activity matters
    analysis = analyse_stems(stems, rate)
    plan = Plan(sources=[SourcePlacement("a", azimuth_deg=30.0), SourcePlacement("b", azimuth_deg=-45.0)])
    result = M.masking_analysis(analysis, plan)
    tracks = result.tracks
    levels = {t: analysis.stems[t].band_db.astype(float) for t in tracks}
    active = {t: analysis.stems[t].active for t in tracks}
    centres = analysis.band_centres_hz
    for i, ti in enumerate(tracks):
        for j, tj in enumerate(tracks):
            if i == j:
                continue
            release = np.zeros(len(centres))
            if ti != "c" and tj != "c":
                release = M.spatial_release_db(plan.source(ti), plan.source(tj), centres)
            masked_frames, band_hits, band_relevant = 0, np.zeros(len(centres)), np.zeros(len(centres))
            for f in range(levels[ti].shape[0]):
                if not (active[ti][f] and active[tj][f]):
                    continue
                top = levels[ti][f].max()
                relevant = [b for b in range(len(centres)) if levels[ti][f, b] >= top - M.RELEVANCE_DB]
                masked = [b for b in relevant if levels[ti][f, b] - (levels[tj][f, b] - release[b]) < 0.0]
                masked_frames += len(masked) / len(relevant) >= 0.5
                for b in relevant:
                    band_relevant[b] += 1
                    band_hits[b] += b in masked
            np.testing.assert_allclose(result.time_share[i, j], masked_frames / active[ti].sum(), atol=1e-9)
            np.testing.assert_allclose(result.band_rate[i, j], band_hits / np.maximum(band_relevant, 1), atol=1e-9)
