"""Dictated requests and DAW default track names (issue 16, after round 12).

Sentences of our own: speech-to-text writes direction words as homophones ("quite her",
"hire", "to the write"), and sessions keep the DAW's default names ("Audio 2", "Track 12"),
which are a marker word and a number.  Checked on the rules alone (no edit reader).
"""
from __future__ import annotations

import pytest

from stase.agent.conductor import Conductor

TRACKS = ["Vocal", "Piano", "Bass", "Drums", "Pad"]
SETUP = "vocal centre, piano 20 degrees left, pad at ear level, drums 3 metres away"


@pytest.fixture(scope="module")
def rules():
    return Conductor(model="none", edit_reader=False)


def _changes(before, after):
    return {s.track: (s.azimuth_deg - o.azimuth_deg, s.elevation_deg - o.elevation_deg,
                      s.distance_m - o.distance_m, s.gain_db - o.gain_db)
            for s, o in zip(after.sources, before.sources)
            if (s.azimuth_deg, s.elevation_deg, s.distance_m, s.gain_db) != (o.azimuth_deg, o.elevation_deg,
                                                                             o.distance_m, o.gain_db)}


@pytest.mark.parametrize("request_text, field, sign", [
    ("make the piano quite her", 3, -1),
    ("the piano a bit loud her please", 3, +1),
    ("bring the piano close her", 2, -1),
    ("put the piano a bit hire", 1, +1),
    ("move the piano to the write", 0, -1),       # azimuth positive = left: the right is negative
    ("piano more to the write side", 0, -1),
])
def test_dictated_homophones_are_the_direction_words(rules, request_text, field, sign):
    before = rules.plan(SETUP, TRACKS)
    changes = _changes(before, rules.edit(request_text, before))
    assert set(changes) == {"Piano"}
    assert changes["Piano"][field] * sign > 0
    assert all(abs(v) < 1e-9 for k, v in enumerate(changes["Piano"]) if k != field)


def test_the_homophones_leave_other_words_alone(rules):
    before = rules.plan(SETUP, TRACKS)
    # "her" after other words, and "write" as a verb, are not direction words
    plan = rules.edit("give her vocal a bit more level, louder", before)
    assert set(_changes(before, plan)) == {"Vocal"}


@pytest.mark.parametrize("setup, track, field, want", [
    ("Audio 2 1 metre away", "Audio 2", "distance_m", 1.0),
    ("Audio 3 20 degrees up", "Audio 3", "elevation_deg", 20.0),
    ("track 12 hard left", "Track 12", "azimuth_deg", 90.0),
])
def test_a_daw_default_name_is_a_name(rules, setup, track, field, want):
    tracks = ["Audio 1", "Audio 2", "Audio 3", "Track 12", "Bass"]
    plan = rules.plan(setup, tracks)
    assert getattr(plan.source(track), field) == pytest.approx(want)
    # the marker word alone still names nothing
    assert rules.plan("the audio is muddy, bass left", tracks).source("Bass").azimuth_deg > 0


def test_an_intensified_place_names_no_missing_instrument(rules):
    """"both of them dead ahead": "dead" sharpens the place, it is no instrument to refuse."""
    tracks = ["Tpt", "Tbn", "Piano"]
    before = rules.plan("tpt 30 degrees left, tbn 30 degrees right, piano 10 degrees left", tracks)
    plan = rules.edit("the trumpet and the trombone are a duo now, both of them dead ahead please", before)
    assert abs(plan.source("Tpt").azimuth_deg) <= 6 and abs(plan.source("Tbn").azimuth_deg) <= 6
    assert plan.source("Piano").azimuth_deg == pytest.approx(before.source("Piano").azimuth_deg)


@pytest.mark.parametrize("tracks, setup, track, want", [
    (["Gtr1", "Gtr2", "Bass"], "Gtr1 30 degrees left", "Gtr1", 30.0),
    (["Q12 Rain L", "Q12 Rain R", "Host"], "Q12 Rain L 30 degrees left, Q12 Rain R 30 degrees right", "Q12 Rain R", -30.0),
    (["Gtr 1", "Gtr 2"], "gtr2 10 degrees right", "Gtr 2", -10.0),   # glued in the prompt only
    (["SFX12 Door", "Host"], "sfx12 door 45 degrees left", "SFX12 Door", 45.0),
])
def test_a_name_with_its_number_glued_on_is_that_track(rules, tracks, setup, track, want):
    """Track names split at their digits ("Q12 Rain L" -> q 12 rain l), prompts did not: "Gtr1"
    named nothing and "Q12 Rain L" fell back to "rain", both tracks."""
    plan = rules.plan(setup, tracks)
    assert plan.source(track).azimuth_deg == pytest.approx(want)
    others = [t for t in tracks if t != track and t.lower() in setup.lower()]
    for t in others:
        assert plan.source(t).azimuth_deg != pytest.approx(want)


def test_glued_words_that_are_no_track_name_stay(rules):
    from stase.agent.parser_vocabulary import glued_name_words
    assert glued_name_words("the 808 and the mp3 left", [["tr", "808"], ["bass"]]) == "the 808 and the mp3 left"
    assert glued_name_words("tr808 left, gtr1 right", [["tr", "808"], ["gtr", "1"]]) == "tr 808 left, gtr 1 right"


@pytest.mark.parametrize("request_text", [
    "guest b further right, another 20 degrees",
    "guest b needs to go further right than that, give him another twenty degrees",
    "move guest b right, an extra 20 degrees",
])
def test_a_step_said_on_its_own_after_its_direction(rules, request_text):
    """"..., another 20 degrees": the quantifier before a step's number names no missing
    instrument (it was refused as "the prompt places 'another'")."""
    tracks = ["Host", "Guest B", "Bed"]
    before = rules.plan("guest b 15 degrees right", tracks)
    after = rules.edit(request_text, before)
    assert after.source("Guest B").azimuth_deg == pytest.approx(-35.0)
    assert after.source("Host").azimuth_deg == pytest.approx(before.source("Host").azimuth_deg)
