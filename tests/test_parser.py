"""agent.parser and agent.lexicon: explicit cues -> numbers, each checked against the convention
(azimuth positive = LEFT, clock 12 = front, 3 o'clock = -90) and the phrase tables."""
from __future__ import annotations

import pytest

from agent.lexicon import match_track_role, normalise_words
from agent.parser import (HEDGES, PLAIN_SIDE_DEG, REAR_DIAGONAL_DEG, normalise_text, number,
                          parse_music, parse_prompt)
from agent.layout import shift_lateral

BAND = ["Vox", "Gtr L", "Gtr R", "Bass", "Drums", "Keys", "Sax"]


def one(prompt, tracks=BAND):
    cues = parse_prompt(prompt, tracks).cues
    assert len(cues) == 1, [(c.tracks, c.values, c.relative) for c in cues]
    return cues[0]


@pytest.mark.parametrize("name, role", [
    ("Gtr L", "electric_guitar"), ("Vox", "lead_vocal"), ("BVs", "backing_vocals"), ("Kik", "drums"),
    ("OH L", "drums"), ("Str", "strings"), ("Keys", "piano"), ("Pno", "piano"), ("Sax", "saxophone"),
    ("Tpt", "trumpet"), ("Vln1", "violins"), ("Vc", "cellos"), ("Pad", "synth_pad"), ("Lead", "synth_lead"),
    ("Lead Gtr", "electric_guitar"), ("Lead Vox", "lead_vocal"), ("Synth Bass", "bass"),
    ("Double Bass", "double_bass"), ("ElecGtr_R", "electric_guitar"), ("Guiter", "electric_guitar"),
    ("Congas", "hand_drums"), ("Sitar", "plucked"), ("Timpani", "percussion"), ("Marcus", None),
])
def test_track_roles(name, role):
    assert match_track_role(name) == role


def test_normalise_words_splits_camel_and_digits():
    assert normalise_words("ElecGtr_L2") == ["elec", "gtr", "l", "2"]


@pytest.mark.parametrize("prompt, track, azimuth", [
    ("put the sax 45 degrees to the right", "Sax", -45.0),
    ("sax 30° left", "Sax", 30.0),
    ("bass at azimuth -60", "Bass", -60.0),
    ("keys azimuth 20 right", "Keys", -20.0),
    ("drums right 25 degrees", "Drums", -25.0),
    ("the vox at 30 degrees", "Vox", 30.0),
])
def test_degrees_with_side(prompt, track, azimuth):
    cue = one(prompt)
    assert cue.tracks == [track]
    assert cue.values["azimuth_deg"] == pytest.approx(azimuth)


@pytest.mark.parametrize("hour", range(1, 13))
def test_clock_positions(hour):
    # clock seen from above, 12 in front, hours clockwise, i.e. towards the right = negative azimuth
    expected = -30.0 * hour
    expected = (expected + 180.0) % 360.0 - 180.0
    expected = 180.0 if expected == -180.0 else expected
    assert one(f"sax at {hour} o'clock").values["azimuth_deg"] == pytest.approx(expected)


@pytest.mark.parametrize("words, hedge", [("slightly", "slightly"), ("a bit", "a bit"), ("hard", "hard"),
                                          ("far", "far"), ("directly", "directly"), ("", None)])
def test_hedged_sides(words, hedge):
    magnitude = HEDGES[hedge] if hedge else PLAIN_SIDE_DEG
    left = one(f"the sax {words} to the left").values["azimuth_deg"]
    right = one(f"the sax {words} on the right").values["azimuth_deg"]
    assert left == pytest.approx(magnitude) and right == pytest.approx(-magnitude)


def test_front_behind_above_below_overhead():
    assert one("drums behind me").values["azimuth_deg"] == 180.0
    assert one("vox front and center").values["azimuth_deg"] == 0.0
    assert one("keys rear left").values["azimuth_deg"] == pytest.approx(REAR_DIAGONAL_DEG)
    assert one("keys behind and to the right").values["azimuth_deg"] == pytest.approx(-REAR_DIAGONAL_DEG)
    assert one("keys behind me, slightly to the left").values["azimuth_deg"] == pytest.approx(180 - HEDGES["slightly"])
    assert one("sax overhead").values["elevation_deg"] == 90.0
    assert one("sax slightly below").values["elevation_deg"] < 0
    assert one("sax 20 degrees up").values["elevation_deg"] == 20.0
    assert one("keys stage left").values["azimuth_deg"] < 0  # the performer's left is the audience's right


@pytest.mark.parametrize("phrase, metres", [
    ("3 m", 3.0), ("2.5 metres away", 2.5), ("half a meter away", 0.5), ("10 feet away", 3.048),
    ("80 cm away", 0.8), ("two meters away", 2.0),
])
def test_distances(phrase, metres):
    assert one(f"the sax {phrase}").values["distance_m"] == pytest.approx(metres)


def test_distance_words_order():
    close = one("the sax close").values["distance_m"]
    very_close = one("the sax very close").values["distance_m"]
    far = one("the sax far away").values["distance_m"]
    assert very_close < close < far


def test_plus_minus_spreads_a_pair():
    cue = one("guitars at ±45°")
    assert set(cue.tracks) == {"Gtr L", "Gtr R"} and cue.spread_deg == 45.0


def test_each_cue_finds_its_track():
    r = parse_prompt("the sax slightly left and the keys hard right, drums behind me", BAND)
    got = {c.tracks[0]: c.values["azimuth_deg"] for c in r.cues}
    assert got == {"Sax": HEDGES["slightly"], "Keys": -90.0, "Drums": 180.0}


def test_cue_before_its_track_and_shared_lists():
    assert one("on the left, the sax").tracks == ["Sax"]
    r = parse_prompt("the sax and the keys on the left", BAND)
    assert sorted(t for c in r.cues for t in c.tracks) == ["Keys", "Sax"]


def test_absent_instrument_is_reported():
    r = parse_prompt("trumpet hard left", BAND)
    assert [m.text for m in r.unknown] == ["trumpet"] and not r.cues


def test_relative_cues_and_swaps():
    assert one("move the sax further left").relative["azimuth_deg"] > 0
    assert one("push the drums back 2 m").relative["distance_m"] == pytest.approx(2.0)
    assert one("bring the vox closer").relative["distance_scale"] < 1.0
    r = parse_prompt("swap the sax and keys", BAND)
    assert r.swaps and r.swaps[0][:2] == ("Sax", "Keys")


def test_shift_lateral_front_and_rear():
    assert shift_lateral(20.0, 15.0) == pytest.approx(35.0)
    assert shift_lateral(85.0, 15.0) == pytest.approx(90.0)
    # a rear-left source moving further left goes towards +90 (its azimuth shrinks)
    assert shift_lateral(150.0, 15.0) == pytest.approx(135.0)
    assert shift_lateral(-150.0, 15.0) == pytest.approx(-165.0)


def test_music_and_numbers():
    assert parse_music(normalise_text("a ballad in D minor at 72 bpm, 16 bars")) == {
        "tempo_bpm": 72.0, "key": "D minor", "bars": 16}
    assert number("half a") == 0.5 and number("twenty") == 20.0


def test_everything_and_orphan_orders():
    assert set(one("everything 3 m away").tracks) == set(BAND)
    r = parse_prompt("put the theremin hard left", BAND)
    assert r.orphans == ["put the theremin hard left"] and not r.cues
    assert not parse_prompt("a warm mix from the front row", BAND).orphans
