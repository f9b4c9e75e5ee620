"""stase.core.names: one track-name rule for the renderer, the advisor and the daemon (issue 22)."""
from __future__ import annotations

import numpy as np
import pytest

from stase.core.errors import InputError
from stase.core.names import duplicate_names, pair_names, same_track, track_key
from stase.core.plan import Plan, SourcePlacement


@pytest.mark.parametrize("a, b", [("Gtr L", "Gtr-L"), ("Gtr L", "gtr_l"), ("Vox 1", "VOX1"),
                                  ("Bass (DI)", "bass di"), ("Ｐｉａｎｏ", "piano"), ("Straße", "STRASSE")])
def test_spellings_of_one_track_are_the_same_track(a, b):
    assert same_track(a, b) and track_key(a) == track_key(b)


@pytest.mark.parametrize("a, b", [("Gtr L", "Gtr R"), ("Vox 1", "Vox 2"), ("Keys", "Key"), ("---", "+++")])
def test_other_tracks_stay_apart(a, b):
    assert not same_track(a, b)


def test_exact_spelling_wins_and_ambiguous_keys_stay_unpaired():
    pairs, unpaired, unused = pair_names(["Gtr L", "Gtr R", "Bass"], ["Gtr-L", "Gtr L", "gtr r", "bass", "BASS "])
    assert pairs == {"Gtr L": "Gtr L", "Gtr R": "gtr r", "Bass": "bass"}
    assert unpaired == [] and unused == ["Gtr-L", "BASS "]
    pairs, unpaired, _ = pair_names(["Vox"], ["vox.", "VOX-"])  # two equal keys, no exact spelling
    assert pairs == {} and unpaired == ["Vox"]


def test_duplicates_are_found_by_the_same_rule():
    assert duplicate_names(["Gtr L", "Bass", "gtr-l"]) == [("Gtr L", "gtr-l")]


def test_renderer_and_advisor_agree_on_a_daw_spelling():
    """The defect of issue 22: "Gtr-L" matched "Gtr L" in the advisor, not in the renderer."""
    from stase.agent.advisor.differential import match_tracks
    from stase.dsp.offline import match_stems
    stems = {"Gtr_L": np.zeros(64, dtype=np.float32), "Bass": np.zeros(64, dtype=np.float32)}
    plan = Plan(room="dry_studio", sources=[SourcePlacement(track="Gtr L", azimuth_deg=30.0),
                                            SourcePlacement(track="bass", azimuth_deg=0.0)])
    matched, unused = match_stems(stems, plan)
    assert set(matched) == {"Gtr L", "bass"} and unused == []
    pairs = match_tracks(["Gtr L", "bass"], list(stems))[0]
    assert pairs == {"Gtr L": "Gtr_L", "bass": "Bass"}
    with pytest.raises(InputError, match="ignoring case, spaces and punctuation"):
        match_stems({"Gtr_R": np.zeros(64, dtype=np.float32)}, plan)
