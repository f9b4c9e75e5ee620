"""Sparse advice: the advisor moves as few faders as it can, and tells the unmoved ones to stay.

Closed forms on synthetic tones set exactly to the ensemble part targets (no FluidSynth needed),
the consensus anchor against brute-force NumPy references (fewest moves, then least absolute
travel - the median -, then least squared travel), and the dead band's promise: where the prior
is certain (the choir parts, tolerance 1.0 LU on the tuning split) it never hides a part pushed
by 3 dB or more.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stase.agent.advisor import advise
from stase.agent.advisor.analysis import analyse_stems
from stase.agent.advisor.anchor import GRID_STEP_DB, consensus_anchor
from stase.agent.advisor.ensembles import PART_TARGETS
from stase.agent.advisor.priors import prior_gains, resolve_roles

RATE = 16_000
CHOIR_FREQS = {"Soprano": 660.0, "Alto": 440.0, "Tenor": 330.0, "Bass": 130.0}


def _tones(seconds: float = 2.0) -> dict[str, np.ndarray]:
    t = np.arange(int(RATE * seconds)) / RATE
    return {name: (0.1 * np.sin(2 * np.pi * f * t)).astype(np.float32) for name, f in CHOIR_FREQS.items()}


@pytest.fixture(scope="module")
def choir_at_targets() -> dict[str, np.ndarray]:
    """Four tones whose loudness sits exactly at the choir part targets (all -20 LUFS + target)."""
    raw = _tones()
    a0 = analyse_stems(raw, RATE)
    targets = PART_TARGETS["choir"]
    return {t: x * np.float32(10 ** ((-20.0 - a0.stems[t].integrated_lufs + targets[t.lower()].target_lu) / 20))
            for t, x in raw.items()}


def _pushed(stems, pushes_db: dict[str, float]):
    return {t: x * np.float32(10 ** (pushes_db.get(t, 0.0) / 20)) for t, x in stems.items()}


def _prior(stems):
    gains, _ = prior_gains(analyse_stems(stems, RATE), resolve_roles(stems))
    return gains


@pytest.mark.parametrize("part", list(CHOIR_FREQS))
def test_one_part_pushed_6_db_is_the_only_one_told(choir_at_targets, part):
    gains = _prior(_pushed(choir_at_targets, {part: 6.0}))
    np.testing.assert_allclose(gains[part], -6.0, atol=0.05)
    assert {t: g for t, g in gains.items() if t != part} == {t: 0.0 for t in CHOIR_FREQS if t != part}


def test_advise_says_leave_it_to_the_unmoved_parts(choir_at_targets):
    result = advise(_pushed(choir_at_targets, {"Alto": 6.0}), RATE)
    by_track = {t["track"]: t for t in result["tracks"]}
    assert by_track["Alto"]["gain_db"] == pytest.approx(-6.0, abs=0.05)
    for track in ("Soprano", "Tenor", "Bass"):
        assert by_track[track]["gain_db"] == 0.0
        assert by_track[track]["reasons"][0] == "within the prior's tolerance: leave it"
    assert "Leave the other 3 track(s) where they are." in result["summary"]


@pytest.mark.parametrize("pushes", [{"Soprano": 6.0, "Tenor": -4.0}, {"Soprano": 6.0, "Alto": 8.0},
                                    {"Alto": -5.0, "Bass": -7.5}])
def test_two_parts_pushed_are_the_only_two_told(choir_at_targets, pushes):
    # the median of the four deviations moves with the pushed pair ({6, 8}: by 3 dB); the
    # consensus anchor stays with the two parts that sit at their targets
    gains = _prior(_pushed(choir_at_targets, pushes))
    for track in CHOIR_FREQS:
        np.testing.assert_allclose(gains[track], -pushes.get(track, 0.0), atol=0.05)
        if track not in pushes:
            assert gains[track] == 0.0


# -- the anchor against brute force ----------------------------------------------------------------

def _separated(rng, n, gap):
    """n deviations (dB) at least ``gap`` apart, random order."""
    return rng.permutation(np.cumsum(gap + rng.uniform(0.0, 6.0, n)) - 10.0)


@pytest.mark.parametrize("seed", range(40))
def test_anchor_without_agreement_is_the_l1_then_l2_minimiser_over_offsets(seed):
    """No two tracks agree: the anchor is a median (least total |travel|, brute force over a fine
    grid of offsets) and, among the tracks that reach that minimum, the one of least squared
    travel."""
    rng = np.random.default_rng(seed)
    d = _separated(rng, int(rng.integers(3, 10)), gap=0.5)
    anchor, agree = consensus_anchor(d, 0.1)
    offsets = np.linspace(d.min() - 1.0, d.max() + 1.0, 200_001)
    l1 = np.abs(d[None, :] - offsets[:, None]).sum(axis=1)
    np.testing.assert_allclose(np.abs(d - anchor).sum(), l1.min(), atol=1e-3)
    # the brute-force choice among the tracks themselves: (L1, L2) lexicographic
    cost = [(round(float(np.abs(d - a).sum()), 9), float(((d - a) ** 2).sum())) for a in d]
    np.testing.assert_allclose(anchor, d[min(range(d.size), key=cost.__getitem__)], atol=1e-12)
    assert agree.sum() == 1


@pytest.mark.parametrize("seed", range(40))
def test_anchor_keeps_the_most_tracks_within_tolerance(seed):
    """Fewest fader moves: no offset leaves more tracks within their tolerances (brute force)."""
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(3, 9))
    d = rng.normal(0.0, 3.0, n)
    tol = rng.uniform(0.3, 2.0, n)
    anchor, agree = consensus_anchor(d, tol)
    offsets = np.arange(d.min() - 3.0, d.max() + 3.0, GRID_STEP_DB / 4)
    best = (np.abs(d[None, :] - offsets[:, None]) <= tol[None, :]).sum(axis=1).max()
    assert agree.sum() == best
    np.testing.assert_array_equal(agree, np.abs(d - anchor) <= tol + 1e-9)


def test_three_of_four_moved_anchor_on_the_middle_track_nearest_the_mean():
    """[0, -3, -6, +7]: no two agree; -3 and 0 are both medians (equal total travel 16 dB);
    0 is nearer the mean (-0.5), so only the other three are told.  The older tie-break took the
    lower of the two (grid order) and told the unmoved track +3 dB."""
    anchor, agree = consensus_anchor([0.0, -3.0, -6.0, 7.0], 0.5)
    assert anchor == pytest.approx(0.0, abs=1e-12)
    assert agree.tolist() == [True, False, False, False]


def test_two_groups_the_tighter_wins_before_travel():
    # {0.0, 0.1} and {5.0, 6.4} both agree within 1 dB; the tighter pair is the anchor even
    # though anchoring on the other would not cost more travel
    anchor, agree = consensus_anchor([0.0, 0.1, 5.0, 6.4], 1.0)
    assert anchor == pytest.approx(0.05, abs=GRID_STEP_DB)
    assert agree.tolist() == [True, True, False, False]


# -- the dead band where the prior is certain --------------------------------------------------------

def test_the_choir_prior_is_the_certain_one():
    """The premise of the next test, from the tuning split: every choir part's tolerance is the
    1.0 LU floor (their spread is under it), at most half the 3 dB of the smallest push."""
    assert {p: t.tolerance_lu for p, t in PART_TARGETS["choir"].items()} == \
        {"soprano": 1.0, "alto": 1.0, "tenor": 1.0, "bass": 1.0}


def test_dead_band_never_hides_a_choir_part_pushed_3_db_or_more(choir_at_targets):
    """Every part, pushed +-3..9 dB, with the other parts jittered within +-0.4 LU of their
    targets (the tuning chorales' spread, 80th percentile 0.4-0.6 LU): the pushed part is always
    told, the right way, by its push to within the jitter; the others are left alone."""
    base = analyse_stems(choir_at_targets, RATE)
    rng = np.random.default_rng(7)
    roles = resolve_roles(choir_at_targets)
    for part in CHOIR_FREQS:
        for push in (-9.0, -6.0, -4.5, -3.0, 3.0, 4.5, 6.0, 9.0):
            for _ in range(5):
                jitter = {t: float(rng.uniform(-0.4, 0.4)) for t in CHOIR_FREQS if t != part}
                # a gain on a stem shifts its integrated loudness by exactly that gain (the
                # relative gate moves with it), so the levels can be set without re-analysing
                stems = {t: dataclasses.replace(s, integrated_lufs=s.integrated_lufs + jitter.get(t, push))
                         for t, s in base.stems.items()}
                gains, _ = prior_gains(dataclasses.replace(base, stems=stems), roles)
                assert np.sign(gains[part]) == -np.sign(push), (part, push, gains)
                np.testing.assert_allclose(gains[part], -push, atol=0.81)
                assert all(gains[t] == 0.0 for t in jitter), (part, push, gains)
