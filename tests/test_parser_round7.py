"""Issue 16, round 7: edit requests read by vocabulary, not by sentence (our own sentences).

Each case is a request against a setup plan and the value one track must end with, by the
stated default steps (stase.agent.parser_rules.STEPS: "a bit" = 5 deg / 0.5 m / 2 dB, plain =
15 deg / x1.5 / 3 dB, "a lot" = 30 deg / x2 / 6 dB).  Kinds: the one size table, direction
words, negations, verbs that move a source up or down, numbers as a step's size, tracks said by
number, drum parts, ordinals, where a track is now, swaps, mirrors, complaints as reasons.
Cases marked "guard" pass on the code before round 7 too: they hold a reading the new words
must not break.
"""
from __future__ import annotations

import pytest

from parser_helpers import edit_after
from stase.agent.parser import parse_prompt

BAND = ["Vocal", "Piano", "Bass", "Drums", "Keys", "Pad", "Sax"]
DRUMS = ["Kick", "Snare Top", "Snare Bottom", "Hi Hat", "Rack Tom", "Floor Tom", "OH L", "OH R", "Room"]
NUMBERED = ["01 Kick", "02 Bass", "03 Gtr", "04 Keys", "05 Vox"]
QUARTET = ["Vln 1", "Vln 2", "Vla", "Vc"]
GUITARS = ["Gtr 1", "Gtr 2", "Bass", "Vocal"]
STRINGS = ["Violins", "Violas", "Cellos", "Bass", "Harp"]

LEFT20 = "keys 20 degrees left"   # Keys at +20
AWAY4 = "piano 4 metres away"      # Piano at 4 m
LEVEL = "pad at ear level"        # Pad at 0 deg elevation
CASES = [
    # the one size table: a size word before or after its direction
    ("size", LEFT20, BAND, "move the keys significantly to the left", "Keys", "azimuth_deg", 50.0),
    ("size", LEFT20, BAND, "nudge the keys a great deal left", "Keys", "azimuth_deg", 50.0),
    ("size", LEFT20, BAND, "shift the keys to the right heaps", "Keys", "azimuth_deg", -10.0),
    ("size", LEFT20, BAND, "push the keys right loads", "Keys", "azimuth_deg", -10.0),
    ("size", LEFT20, BAND, "keys marginally more to the left", "Keys", "azimuth_deg", 25.0),
    ("size", AWAY4, BAND, "bring the piano massively closer", "Piano", "distance_m", 2.0),
    ("size", AWAY4, BAND, "the piano miles closer please", "Piano", "distance_m", 2.0),
    ("size", LEVEL, BAND, "tilt the pad much downwards", "Pad", "elevation_deg", -30.0),
    ("size", AWAY4, BAND, "piano back a tad", "Piano", "distance_m", 4.5),
    ("size", LEFT20, BAND, "the keys need to move left, lots", "Keys", "azimuth_deg", 50.0),
    # direction words outside the rules' own spelling
    ("direction", LEFT20, BAND, "slide the keys leftwards a bit", "Keys", "azimuth_deg", 25.0),
    ("direction", LEFT20, BAND, "scoot the keys rightwards a touch", "Keys", "azimuth_deg", 15.0),
    ("direction", "bass centre", BAND, "make the bass hotter", "Bass", "gain_db", 3.0),
    ("direction", "bass centre", BAND, "bass a touch hotter", "Bass", "gain_db", 2.0),
    ("direction", AWAY4, BAND, "move the piano further", "Piano", "distance_m", 6.0),
    ("direction", AWAY4, BAND, "push the piano deeper", "Piano", "distance_m", 6.0),
    ("direction", AWAY4, BAND, "piano further from me", "Piano", "distance_m", 6.0),
    ("direction", AWAY4, BAND, "move the piano away a bit", "Piano", "distance_m", 4.5),
    ("direction", AWAY4, BAND, "take the piano away from me a little", "Piano", "distance_m", 4.5),
    ("direction", "keys 10 degrees right", BAND, "keys slightly right of where they are now", "Keys", "azimuth_deg", -15.0),
    # negation: the opposite step
    ("negation", LEFT20, BAND, "the keys shouldn't be so far left", "Keys", "azimuth_deg", 5.0),
    ("negation", LEFT20, BAND, "keys less to the left", "Keys", "azimuth_deg", 5.0),
    ("negation", "sax centre", BAND, "make the sax less loud", "Sax", "gain_db", -3.0),
    ("negation", "sax centre", BAND, "the sax isn't loud enough", "Sax", "gain_db", 3.0),
    ("negation", "sax centre", BAND, "the sax is not as loud as it should be", "Sax", "gain_db", 3.0),
    ("negation", LEFT20, BAND, "the keys aren't far enough left", "Keys", "azimuth_deg", 35.0),
    ("negation", AWAY4, BAND, "how come the piano is so far back, bring it closer", "Piano", "distance_m", 2.67),
    # verbs that move a source up or down (a fader verb's "up" stays a level)
    ("height", LEVEL, BAND, "shift the pad up", "Pad", "elevation_deg", 15.0),
    ("height", LEVEL, BAND, "nudge the pad a good bit down", "Pad", "elevation_deg", -30.0),
    ("height", LEVEL, BAND, "float the pad up heaps", "Pad", "elevation_deg", 30.0),
    ("height", LEVEL, BAND, "the pad feels like it's over my head, bring it down a touch", "Pad", "elevation_deg", -5.0),
    ("height", LEVEL, BAND, "pad is way up in the clouds, drag it way down", "Pad", "elevation_deg", -30.0),
    ("height", LEVEL, BAND, "bring the pad up a bit", "Pad", "gain_db", 2.0),   # guard: a fader verb's "up" is a level
    # a number is the step's size
    ("number", AWAY4, BAND, "push the piano back like 3 metres", "Piano", "distance_m", 7.0),
    ("number", AWAY4, BAND, "piano: another half metre closer", "Piano", "distance_m", 3.5),
    ("number", LEFT20, BAND, "keys further to the left, maybe 10 degrees more", "Keys", "azimuth_deg", 30.0),
    ("number", LEFT20, BAND, "keys a touch more right, like 4 deg", "Keys", "azimuth_deg", 16.0),
    ("number", LEFT20, BAND, "nudge the keys 5 degrees right", "Keys", "azimuth_deg", 15.0),
    ("number", "sax centre", BAND, "give the sax 4 more dB", "Sax", "gain_db", 4.0),
    ("number", "keys 20 degrees left, pad 20 degrees right", BAND, "keys and pad wider by 8 deg each", "Pad", "azimuth_deg", -28.0),
    ("number", LEFT20, BAND, "move the keys to 30 degrees right", "Keys", "azimuth_deg", -30.0),   # guard: "to" is a place
    # tracks said by number
    ("track number", "04 keys 10 degrees left", NUMBERED, "track 4 a bit more to the left", "04 Keys", "azimuth_deg", 15.0),
    ("track number", "02 bass centre", NUMBERED, "trk 2 down 2 dB", "02 Bass", "gain_db", -2.0),
    ("track number", "03 gtr 30 degrees left, 05 vox centre", NUMBERED, "swap tracks 3 and 5", "05 Vox", "azimuth_deg", 30.0),
    # drum parts, ordinals
    ("part", "oh l 20 degrees up, oh r 20 degrees up", DRUMS, "OHs a bit lower", "OH R", "elevation_deg", 15.0),
    ("part", "hi hat 30 degrees right, room 20 degrees left", DRUMS, "swap the hat and the room", "Hi Hat", "azimuth_deg", 20.0),
    ("ordinal", "vln 2 10 degrees left, vla 30 degrees right", QUARTET, "swap the second violin and the viola", "Vln 2", "azimuth_deg", -30.0),
    # where a track is now is no order
    ("state", "sax 25 degrees right", BAND, "why is the sax off to the right?? centre it", "Sax", "azimuth_deg", 0.0),
    ("state", "sax 25 degrees right", BAND, "the sax needs centring, its drifting right", "Sax", "azimuth_deg", 0.0),
    ("state", LEVEL, BAND, "pad higher please, like it's floating above me", "Pad", "elevation_deg", 15.0),
    # swaps and mirrors
    ("swap", "keys 20 degrees left, sax 30 degrees right", BAND, "keys <-> sax", "Keys", "azimuth_deg", -30.0),
    ("swap", "keys 20 degrees left, sax 30 degrees right", BAND, "keys and sax, the other way round please", "Sax", "azimuth_deg", 20.0),
    ("swap", "keys 20 degrees left, sax 30 degrees right", BAND, "swop the keys and the sax", "Keys", "azimuth_deg", -30.0),
    ("mirror", "keys 20 degrees left, sax 30 degrees right", BAND, "invert the panning", "Sax", "azimuth_deg", 30.0),
    ("mirror", "keys 20 degrees left, sax 30 degrees right", BAND, "mirror everything except the sax", "Sax", "azimuth_deg", -30.0),
    ("mirror", "sax 30 degrees right", BAND, "the sax belongs on the left, mirror it over", "Sax", "azimuth_deg", 30.0),
    ("mirror", "sax 30 degrees right", BAND, "flip the sax to the left side, mirror image", "Sax", "azimuth_deg", 30.0),
    # a complaint is the reason for the change said beside it
    ("complaint", "violins 20 degrees left, cellos 20 degrees right", STRINGS,
     "the strings are too narrow, widen the violins and cellos 5 degrees each side", "Violins", "azimuth_deg", 25.0),
    ("complaint", LEFT20, BAND, "the keys are so far left, move them right a tad", "Keys", "azimuth_deg", 15.0),
    ("complaint", "sax 20 degrees left", BAND, "the sax is getting lost, could use a bit more", "Sax", "gain_db", 2.0),
    ("complaint", "sax 20 degrees left", BAND, "the sax is waaay too loud", "Sax", "gain_db", -6.0),
]


def _value(plan, track, field):
    return getattr(plan.source(track), field)


@pytest.mark.parametrize("kind, setup, tracks, request_text, track, field, want", CASES,
                         ids=[f"{c[0]}: {c[3]}" for c in CASES])
def test_edit_effect(conductor, kind, setup, tracks, request_text, track, field, want):
    _, after = edit_after(conductor, setup, request_text, tracks)
    tolerance = 0.05 if field == "distance_m" else 0.5 if field == "gain_db" else 1.0
    assert _value(after, track, field) == pytest.approx(want, abs=tolerance), request_text


def test_the_overheads_are_the_oh_tracks_not_the_kit(conductor):
    before, after = edit_after(conductor, "oh l 20 degrees up, oh r 20 degrees up", "the overheads a touch lower", DRUMS)
    assert after.source("OH L").elevation_deg == pytest.approx(15.0)
    assert after.source("Kick").elevation_deg == pytest.approx(before.source("Kick").elevation_deg)


def test_the_first_guitar_is_gtr_1_alone(conductor):
    before, after = edit_after(conductor, "gtr 1 30 degrees left, gtr 2 30 degrees right", "first guitar a bit further left",
                               GUITARS)
    assert after.source("Gtr 1").azimuth_deg == pytest.approx(35.0)
    assert after.source("Gtr 2").azimuth_deg == pytest.approx(before.source("Gtr 2").azimuth_deg)


def test_mirror_everything_except_one_mirrors_the_rest(conductor):
    _, after = edit_after(conductor, "keys 20 degrees left, sax 30 degrees right", "mirror everything except the sax", BAND)
    assert after.source("Keys").azimuth_deg == pytest.approx(-20.0)
    assert after.source("Sax").azimuth_deg == pytest.approx(-30.0)


def test_a_buried_track_moved_closer_keeps_its_level(conductor):   # guard
    # the complaint is the reason for the change said beside it, not a level step of its own
    before, after = edit_after(conductor, "sax 6 metres away", "the sax is buried, bring it 2 m closer", BAND)
    assert after.source("Sax").distance_m == pytest.approx(4.0)
    assert after.source("Sax").gain_db == pytest.approx(before.source("Sax").gain_db)


def test_a_mirror_of_the_whole_mix_is_one_mirror(conductor):   # guard: no track named, every track
    before, after = edit_after(conductor, "keys 20 degrees left, sax 30 degrees right", "mirror the whole mix", BAND)
    assert after.source("Keys").azimuth_deg == pytest.approx(-20.0)
    assert after.source("Sax").azimuth_deg == pytest.approx(30.0)


def test_the_new_words_leave_a_new_plan_alone(conductor):   # guard: the edit rewrites are edit only
    plan = conductor.plan("piano far away, keys not so far left", BAND)
    assert plan.source("Piano").distance_m == pytest.approx(12.0)
    assert parse_prompt("keys not so far left", BAND).cues[0].values["azimuth_deg"] > 0


def test_a_track_number_naming_no_track_is_left_as_said():   # guard
    parsed = parse_prompt("track 9 louder", NUMBERED, edit=True)
    assert not parsed.cues


def test_a_tracks_own_name_is_never_rewritten():   # guard
    # "tom" is a part word, but "Rack Tom" names the track; "room" is the track "Room"
    parsed = parse_prompt("rack tom a bit louder and the room quieter", DRUMS, edit=True)
    assert {tuple(c.tracks) for c in parsed.cues} == {("Rack Tom",), ("Room",)}


def test_stretched_words_cost_linear_time():
    # a 100 kB word and 25,000 stretched words: the rewrite is bounded per word
    from stase.agent.parser_vocabulary import canonical_words
    assert canonical_words("a" * 100_000, edit=True) == "a" * 100_000
    assert canonical_words("waaay " * 3, edit=True) == "way " * 3
