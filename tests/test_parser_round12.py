"""Issue 16, round 12: edits that generalise (our own sentences, none copied from batch 12).

Each case is a request against a setup plan and the value one track must end with, by the
stated default steps (stase.agent.parser_rules.STEPS).  Mechanisms: more swap verbs
("transpose", "interchange") and a pair named in the sentence before ("... exchange their
places"), "each where the other one is", a mirror said as a state asked for ("should be
mirrored", "try it flipped") but not a state described ("we set them up mirrored"), the sides
themselves traded ("swap left and right") as a mirror of the whole mix, "right in the middle" (an
intensifier, not a side), "my right ear" (the listener's right), "is only in the left" (where it
is now, not where to go), an adverb or a plain verb form before a cue names no instrument, and
"acoustic gtr" as one name.  Cases marked "guard" pass on the code before round 12 too.
"""
from __future__ import annotations

import pytest

from parser_helpers import assert_edit_effect, edit_after

BAND = ["Vocal", "Piano", "Bass", "Drums", "Keys", "Synth"]
DUO = ["Lead Vox", "Harmony Vox", "Acoustic Gtr DI", "Shaker"]

CASES = [
    ("swap verb", "keys 30 degrees left, synth 10 degrees right", BAND, "transpose the keys and the synth",
     "Keys", "azimuth_deg", -10.0),
    ("swap verb", "keys 30 degrees left, synth 10 degrees right", BAND,
     "the keys and synth placements need to be interchanged", "Synth", "azimuth_deg", 30.0),
    ("pair before", "keys 30 degrees left, synth 10 degrees right", BAND,
     "the keys and the synth are the wrong way. exchange their spots", "Keys", "azimuth_deg", -10.0),
    ("each other", "lead vox 20 degrees left, harmony vox 5 degrees right", DUO,
     "lead vox and harmony vox, put each where the other one was", "Harmony Vox", "azimuth_deg", 20.0),
    ("mirror asked", "piano 25 degrees left, drums 10 degrees right", BAND, "could the piano be mirrored",
     "Piano", "azimuth_deg", -25.0),
    ("mirror asked", "piano 25 degrees left, drums 10 degrees right", BAND, "let me hear the whole thing flipped",
     "Drums", "azimuth_deg", 10.0),
    ("sides traded", "piano 25 degrees left, drums 10 degrees right", BAND, "reverse left and right for everything",
     "Piano", "azimuth_deg", -25.0),
    ("intensifier", "synth 30 degrees left", BAND, "put the synth smack in the middle", "Synth", "azimuth_deg", 0.0),
    ("intensifier", "synth 30 degrees left", BAND, "the synth goes right in the centre", "Synth", "azimuth_deg", 0.0),
    ("listener's side", "synth 15 degrees left", BAND, "move the synth a touch towards my right ear", "Synth",
     "azimuth_deg", 10.0),
    ("listener's side", "synth 15 degrees left", BAND, "shift the synth a little toward the left speaker", "Synth",
     "azimuth_deg", 20.0),
    ("state now", "keys 30 degrees left", BAND, "the keys are only in the left, bring them to the centre", "Keys",
     "azimuth_deg", 0.0),
    ("adverb", "keys 10 degrees left", BAND, "the keys should sit exactly at 0 degrees", "Keys", "azimuth_deg", 0.0),
    ("plain verb", "piano 3 metres away", BAND, "could it be brought closer? the piano i mean", "Piano",
     "distance_m", 2.0),
    ("name", "acoustic gtr di 20 degrees left", DUO, "the acoustic guitar a bit further left", "Acoustic Gtr DI",
     "azimuth_deg", 25.0),
    # guards: readings the new mechanisms must not break
    ("guard", "keys 30 degrees left, synth 10 degrees right", BAND, "swap the keys and the synth", "Synth",
     "azimuth_deg", 30.0),
    ("guard", "piano 25 degrees left", BAND, "flip the piano to the other side", "Piano", "azimuth_deg", -25.0),
]


@pytest.mark.parametrize("kind, setup, tracks, request_text, track, field, want", CASES,
                         ids=[f"{c[0]}: {c[3]}" for c in CASES])
def test_edit_effect(conductor, kind, setup, tracks, request_text, track, field, want):
    assert_edit_effect(conductor, setup, tracks, request_text, track, field, want)


@pytest.mark.parametrize("request_text", [
    "we set the keys and the synth up mirrored by mistake, anyway swap the keys and the synth",
    "i had the polarity flipped on the keys, now swap the keys and the synth",
])
def test_a_mirror_word_describing_what_is_is_no_mirror(conductor, request_text):
    before, after = edit_after(conductor, "keys 30 degrees left, synth 10 degrees right", request_text, BAND)
    assert after.source("Keys").azimuth_deg == pytest.approx(-10.0)
    assert after.source("Synth").azimuth_deg == pytest.approx(30.0)


def test_right_of_a_track_is_still_a_side_of_it(conductor):
    # guard: "right" before "of the piano" is the anchor's side, not the intensifier of "right in the middle"
    before, after = edit_after(conductor, "synth 30 degrees left, piano 20 degrees left", "put the synth just right of the piano", BAND)
    assert after.source("Synth").azimuth_deg < after.source("Piano").azimuth_deg
