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


# -- the plan and the session follow the same rule ------------------------------------------------
def test_find_track_prefers_the_exact_spelling_and_never_guesses():
    from stase.core.names import find_track
    assert find_track("gtr-l", ["Vox", "Gtr L"]) == "Gtr L"
    assert find_track("Gtr L", ["Gtr-L", "gtr l"]) == "gtr l"          # case-insensitive exact wins
    assert find_track("Gtr L", ["Gtr-L", "gtr_l"]) is None             # two keys, no exact: ambiguous
    assert find_track("Bass", ["Vox"]) is None


def test_plan_finds_a_source_by_any_spelling_and_refuses_two_spellings_of_one_track():
    plan = Plan(sources=[SourcePlacement(track="Gtr L", azimuth_deg=40.0)])
    assert plan.source("gtr_l").azimuth_deg == 40.0
    with pytest.raises(InputError, match="appears twice.*same track as 'Gtr L'"):
        Plan.from_dict({"sources": [{"track": "Gtr L"}, {"track": "gtr-l"}]})


def test_session_edits_the_planned_source_whatever_the_daw_spelling(tmp_path):
    from stase.bridge.session import Session
    session = Session(tmp_path / "s.json", durable=False)
    session.set_plan(Plan(sources=[SourcePlacement(track="gtr l", azimuth_deg=40.0)]))
    session.set_tracks([{"name": "Gtr-L", "daw_id": 1}, {"name": "Vox", "daw_id": 2}])
    assert session.resolve_track("GTR L") == "Gtr-L"
    session.set_source("gtr_l", azimuth_deg=-20.0)
    assert [s.track for s in session.plan.sources] == ["gtr l"]        # edited, not duplicated
    assert session.plan.source("Gtr-L").azimuth_deg == -20.0
    assert session.track_names() == ["Gtr-L", "Vox"]


def test_session_refuses_an_ambiguous_spelling(tmp_path):
    from stase.bridge.session import Session
    session = Session(tmp_path / "s.json", durable=False)
    session.set_tracks([{"name": "Gtr-L", "daw_id": 1}, {"name": "Gtr_L", "daw_id": 2}])
    assert session.resolve_track("gtr_l") == "Gtr_L"
    with pytest.raises(InputError, match="ambiguous"):
        session.resolve_track("gtr l")


# -- the daemon asks the same rule -----------------------------------------------------------------
def test_daemon_tracks_stems_and_sources_follow_the_one_name_rule(tmp_path):
    import soundfile as sf
    from daemon_helpers import ask, running_daemon
    with running_daemon(tmp_path) as d:
        bad = ask(d, "tracks", tracks=["Gtr L", "gtr-l"])
        assert bad["ok"] is False and "'gtr-l' is 'Gtr L'" in bad["error"]
        assert ask(d, "tracks", tracks=["Gtr L", "Vox"])["ok"]
        reply = ask(d, "set_source", track="gtr_l", azimuth_deg=30.0)
        assert reply["ok"] and reply["result"]["track"] == "Gtr L" and reply["result"]["monitor"] == "off"
        listed = ask(d, "sources")["result"]["sources"]
        assert [(s["track"], s["placed"]) for s in listed] == [("Gtr L", True), ("Vox", False)]
        stems = tmp_path / "stems"
        stems.mkdir()
        for name in ("gtr-l", "VOX"):                     # a DAW export's spellings
            sf.write(stems / f"{name}.wav", np.zeros(480, np.float32), 48000)
        found = ask(d, "stems", stems_dir=str(stems))
        assert found["ok"] and found["result"]["tracks_without_file"] == [], found
