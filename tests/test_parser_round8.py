"""Issue 16, round 8: edits that generalise (our own sentences, none copied from a batch).

Each case is a request against a setup plan and the value one track must end with, by the
stated default steps (stase.agent.parser_rules.STEPS: "a bit" = 5 deg / 0.5 m / 2 dB, plain =
15 deg / x1.5 / 3 dB, "a lot" = 30 deg / x2 / 6 dB).  The kinds are mechanisms, not phrases:
track names (a word of a track's own name, abbreviations either way, a two-word name said the
other way round, "gtr 1 and 2", a family's plural, one instrument among a track and its double,
a multi-word name whose words are rule words), pronouns (a later clause's "it" is the subject,
never the object of a preposition or comparison), chat spellings, sizes said apart from their
step, a comparison with where it is now, a direction before its number as a move, "N degrees
each", negations and non-native word orders.  Cases marked "guard" pass on the code before
round 8 too: they hold a reading the new mechanisms must not break.
"""
from __future__ import annotations

import time

import pytest

from parser_helpers import assert_edit_effect, edit_after
from stase.agent.parser import _parse, parse_prompt

BAND = ["Vocal", "Piano", "Bass", "Drums", "Keys", "Pad", "Sax"]
DAW = ["KICK_IN", "SNARE_TOP", "SYNTH_ARP", "VOX_LEAD", "PAD_WIDE"]
GUITARS = ["Gtr 1", "Gtr 2", "Bass", "Vocal"]
ACOUSTIC = ["Ac Gtr", "Elec Gtr", "Vox", "Bass"]
DOUBLED = ["Vox", "Vox_Dbl", "Keys", "Bass"]
HARMONY = ["Vox", "Vox Harm", "Keys", "Bass"]
STRINGS = ["Violins", "Violas", "Cellos", "Bass", "Harp"]
HATS = ["Kick", "Snare", "Open Hat", "Back Vox", "Bass"]
ORCHESTRA = ["Vln I", "Vln II", "Vla", "Vc", "Cb", "Fl", "Ob", "Hn 1", "Hn 2", "Tpt", "Tbn", "Timp"]
POST = ["Dlg", "ADR", "Foley", "Amb L", "Amb R", "MX L", "MX R"]
CHOIR = ["Sop", "Alt", "Ten", "Bas", "Solo Sop", "Org"]
PODCAST = ["Host", "Guest 1", "Guest 2", "Phone"]
SECTION = ["Violins", "Violas", "Cellos", "Basses", "Harp"]
GAME = ["VO_Hero", "VO_Enemy", "Amb_Wind", "SFX_Steps", "SFX_Gun"]

LEFT20 = "keys 20 degrees left"   # Keys at +20
AWAY4 = "piano 4 metres away"      # Piano at 4 m
LEVEL = "pad at ear level"        # Pad at 0 deg elevation
CASES = [
    # a word of one track's own name, or an abbreviation of it either way
    ("own word", "SYNTH_ARP centre", DAW, "nudge the arp a bit to the left", "SYNTH_ARP", "azimuth_deg", 5.0),
    ("own word", "SYNTH_ARP centre", DAW, "the arp is crowding the vocal, shift it right", "SYNTH_ARP", "azimuth_deg", -15.0),
    ("own word", "elec gtr centre", ACOUSTIC, "the electric a touch louder", "Elec Gtr", "gain_db", 2.0),
    ("reversed name", "vox harm at ear level", HARMONY, "harmony vox a bit higher", "Vox Harm", "elevation_deg", 5.0),
    # "gtr 1 and 2": the number list names both tracks
    ("number list", "gtr 1 30 degrees left, gtr 2 30 degrees right", GUITARS, "narrow gtr 1 and 2 a bit", "Gtr 2",
     "azimuth_deg", -25.0),
    ("number list", "gtr 1 30 degrees left, gtr 2 10 degrees right", GUITARS, "swap gtr 1 & 2", "Gtr 1", "azimuth_deg",
     -10.0),
    # a family's plural; one instrument among a track and its double
    ("plural", "ac gtr 30 degrees left, elec gtr 10 degrees right", ACOUSTIC, "move both guitars 10 degrees to the right",
     "Ac Gtr", "azimuth_deg", 20.0),
    # a pronoun in a later clause is the subject, not the object of a preposition or comparison
    ("pronoun", "piano centre", BAND, "the piano is clashing with the bass, move it a bit left", "Piano", "azimuth_deg", 5.0),
    ("pronoun", "pad centre", BAND, "the pad is louder than the keys, bring it down a bit", "Pad", "gain_db", -2.0),
    # chat spellings
    ("chat", "sax centre", BAND, "sax 4 decibels louder", "Sax", "gain_db", 4.0),
    ("chat", "keys 30 degrees left, pad 30 degrees right", BAND, "keys and pad a bit narrower, theyre too spread out",
     "Pad", "azimuth_deg", -25.0),
    # sizes said apart from their step, or in words the size table lacked
    ("size", LEFT20, BAND, "keys further left? like much further", "Keys", "azimuth_deg", 50.0),
    ("size", LEFT20, BAND, "nudge the keys left a lil", "Keys", "azimuth_deg", 25.0),
    ("size", AWAY4, BAND, "push the piano back hella", "Piano", "distance_m", 8.0),
    ("size", AWAY4, BAND, "and the piano way back please", "Piano", "distance_m", 8.0),
    # a comparison with where it is now is the step alone; verbs of height
    ("comparison", LEVEL, BAND, "pad a touch higher than ear level", "Pad", "elevation_deg", 5.0),
    ("height verb", LEVEL, BAND, "let the pad climb", "Pad", "elevation_deg", 15.0),
    # a direction before its number is a move by it in an edit
    ("direction first", "pad 20 degrees up", BAND, "pad down 5 degrees", "Pad", "elevation_deg", 15.0),
    ("direction first", LEFT20, BAND, "move the keys right 10 degrees", "Keys", "azimuth_deg", 10.0),
    ("direction first", "pad 10 degrees up", BAND, "the pad should go up, maybe 12 degrees", "Pad", "elevation_deg", 22.0),
    # "N degrees each" takes the way of the clause's width step; a number beats a fan
    ("width", "violins 40 degrees left, cellos 40 degrees right", STRINGS,
     "bring the violins and cellos in towards the middle, 5 degrees each", "Violins", "azimuth_deg", 35.0),
    ("width", "keys 20 degrees left, pad 20 degrees right", BAND, "spread the keys and pad out 10 more degrees", "Pad",
     "azimuth_deg", -30.0),
    # a complaint is the reason for the move said beside it; where it sits now is no order
    ("reason", "keys 40 degrees left", BAND, "the keys are too wide on the left, move them 10 degrees right", "Keys",
     "azimuth_deg", 30.0),
    ("state", "keys 40 degrees left", BAND, "the keys are way over to the left, bring them to the centre", "Keys",
     "azimuth_deg", 0.0),
    ("direction first", "pad 20 degrees up", BAND, "pad up 10 degrees", "Pad", "elevation_deg", 30.0),
    # size adjectives read by the quantity a noun (or the adjective) names; non-native word orders
    ("adjective", AWAY4, BAND, "the piano please more near", "Piano", "distance_m", 2.67),
    ("adjective", AWAY4, BAND, "make the distance of the piano more short", "Piano", "distance_m", 2.67),
    ("adjective", "pad centre", BAND, "the pad volume is too small. please big a little", "Pad", "gain_db", 2.0),
    ("adjective", "drums centre", BAND, "the drums sound very strong, low them a bit", "Drums", "gain_db", -2.0),
    ("adjective", LEFT20, BAND, "keys and pad, the stereo width more broad please", "Keys", "azimuth_deg", 35.0),
    ("word order", "pad 20 degrees up", BAND, "the pad is too elevated, bring down it of 5 degrees", "Pad", "elevation_deg",
     15.0),
    ("word order", LEFT20, BAND, "the keys, put them more to the right of 10 degrees", "Keys", "azimuth_deg", 10.0),
    ("word order", "sax centre", BAND, "move the sax a little to left", "Sax", "azimuth_deg", 5.0),
    ("level", "keys 20 degrees left, pad 20 degrees right", BAND, "keys a little up in level, pad a little down", "Pad",
     "gain_db", -2.0),
    ("level", "sax centre", BAND, "the sax is a touch quiet, a hair more", "Sax", "gain_db", 2.0),
    # a place said only to be refused is no target
    ("negation", "piano 30 degrees right", BAND, "the piano in the centre please, not at right", "Piano", "azimuth_deg", 0.0),
    ("negation", "sax 30 degrees right", BAND, "sax slightly to the left, not to the centre", "Sax", "azimuth_deg", -25.0),
    ("negation", "keys 20 degrees right", BAND,
     "keys go to the other side - well not all the way, just move them left by 10 degrees", "Keys", "azimuth_deg", -10.0),
    # distances said in words, units the rules lacked, and as a step's size
    ("distance", AWAY4, BAND, "bring the piano in closer, maybe half a metre", "Piano", "distance_m", 3.5),
    ("distance", "piano 6 metres away", BAND, "the piano is too far, two meters less", "Piano", "distance_m", 4.0),
    ("distance", AWAY4, BAND, "piano +1m dist", "Piano", "distance_m", 5.0),
    ("distance", AWAY4, BAND, "bring the piano 12 inches closer", "Piano", "distance_m", 3.6952),
    ("distance", AWAY4, BAND, "the piano, like half the distance", "Piano", "distance_m", 2.0),
    ("distance", AWAY4, BAND, "push the piano back by a metre and a half", "Piano", "distance_m", 5.5),
    ("distance", AWAY4, BAND, "Piano. Closer. Much.", "Piano", "distance_m", 2.0),
    ("distance", "vocal 1 metre away", BAND, "the vocal is right on top of us, push it back a little", "Vocal", "azimuth_deg",
     0.0),
    ("distance", AWAY4, BAND, "piano is like 6 m out, too far, bring it 1 m closer", "Piano", "distance_m", 3.0),
    # names: orchestral and post-production abbreviations, numerals, pairs, sections
    ("names", "vln i 4 metres away, vln ii 5 metres away", ORCHESTRA,
     "Vln II is further than Vln I, bring II closer by a metre", "Vln II", "distance_m", 4.0),
    ("names", "amb l 30 degrees left, amb r 30 degrees right", POST, "spread Amb L/R a lot wider", "Amb R", "azimuth_deg", -60.0),
    ("names", "dlg 10 degrees up", POST, "the dialogue a touch lower", "Dlg", "elevation_deg", 5.0),
    ("names", "mx l 30 degrees left, mx r 30 degrees right", POST, "the music a bit wider", "MX R", "azimuth_deg", -35.0),
    ("names", "hn 1 20 degrees left, hn 2 20 degrees right", ORCHESTRA, "hns wider +10 ea.", "Hn 2", "azimuth_deg", -30.0),
    ("names", "sop 20 degrees left, solo sop centre", CHOIR, "the sops another 10° L", "Sop", "azimuth_deg", 30.0),
    ("names", "vln ii 30 degrees left, vc 30 degrees right", ORCHESTRA, "the seconds and the celli change place", "Vc",
     "azimuth_deg", 30.0),
    ("names", "guest 1 25 degrees right, guest 2 25 degrees left", PODCAST, "g1 / g2 flipped, fix pls", "Guest 1",
     "azimuth_deg", 25.0),
    ("names", "phone 20 degrees up", PODCAST, "the phone guest a bit lower", "Phone", "elevation_deg", 15.0),
    ("names", "tpt 20 degrees right, hn 1 20 degrees left", ORCHESTRA, "the brass a bit wider", "Tpt", "azimuth_deg", -25.0),
    ("names", "alt 20 degrees right, bass 10 degrees right", ["Sopran", "Alt", "Tenor", "Bass", "Orgel"],
     "mirror the whole choir", "Bass", "azimuth_deg", 10.0),
    ("names", "ob 10 degrees left, fl 20 degrees right", ORCHESTRA, "inverse left and right for the woods", "Fl",
     "azimuth_deg", 20.0),
    # mirror and swap words
    ("mirror", "keys 20 degrees left, sax 30 degrees right", BAND, "flop the pans", "Keys", "azimuth_deg", -20.0),
    ("mirror", "keys 20 degrees left, sax 30 degrees right", BAND, "keys and sax mirrored please", "Sax", "azimuth_deg", 30.0),
    ("mirror", "keys 20 degrees left, sax 30 degrees right", BAND, "everybody change side", "Keys", "azimuth_deg", -20.0),
    ("mirror", "keys 20 degrees left, sax 30 degrees right", BAND, "spiegel the keys, left is right and right is left",
     "Keys", "azimuth_deg", -20.0),
    ("mirror", "keys 20 degrees left, sax 30 degrees right", BAND, "swap the keys and sax - no, mirror the keys", "Keys",
     "azimuth_deg", -20.0),
    ("swap", "keys 20 degrees left, pad 30 degrees right", BAND, "keys and pad change place", "Keys", "azimuth_deg", -30.0),
    ("swap", "keys 20 degrees left, pad 30 degrees right", BAND, "pad and keys, change them of place", "Pad", "azimuth_deg", 20.0),
    ("swap", "keys 20 degrees left, pad 30 degrees right", BAND,
     "keys and pad must be changed, the pad wants to be on the left", "Pad", "azimuth_deg", 20.0),
    ("swap", "keys 20 degrees left, pad 30 degrees right", BAND, "put the keys where is the pad and inverse", "Keys",
     "azimuth_deg", -30.0),
    # "the same", clause subjects, where it is now, moves said twice
    ("same", "tenor 5 degrees up, bass 5 degrees up", ["Sopran", "Alt", "Tenor", "Bass"],
     "tenor please 10 degree higher, the bass also the same", "Bass", "elevation_deg", 15.0),
    ("pronoun", AWAY4, BAND, "the piano is too close, it doesn't match the keys. push it back a bit", "Piano", "distance_m", 4.5),
    ("state", LEFT20, BAND, "the keys are shifted left. please to center", "Keys", "azimuth_deg", 0.0),
    ("state", "keys 30 degrees left", BAND, "it's quite left, the keys, bring them slightly to the right", "Keys", "azimuth_deg",
     25.0),
    ("moves", "keys 20 degrees left, pad 20 degrees right", BAND, "keys and pad both 5 deg to the left", "Pad", "azimuth_deg",
     -15.0),
    ("moves", LEFT20, BAND, "the keys need go to the right, they crowd the vocal. move them right", "Keys", "azimuth_deg", 5.0),
    ("moves", "keys 30 degrees left", BAND, "nudge the keys toward the middle a touch", "Keys", "azimuth_deg", 25.0),
    ("moves", "keys 30 degrees left", BAND, "bring the keys in 10 degrees", "Keys", "azimuth_deg", 20.0),
    ("width", "keys 20 degrees left, pad 20 degrees right", BAND, "widen the keys and pad, maybe 10 more each side", "Keys",
     "azimuth_deg", 30.0),
    ("width", "keys 10 degrees left, pad 10 degrees right", BAND, "the keys and pad are too much in the middle", "Keys",
     "azimuth_deg", 25.0),
    ("height", LEVEL, BAND, "pad el +10", "Pad", "elevation_deg", 10.0),
    ("correction", LEFT20, BAND, "keys left, no, right", "Keys", "azimuth_deg", -40.0),
    ("names", "sfx_steps 2 metres away", GAME, "footsteps closer, like 1 m", "SFX_Steps", "distance_m", 1.0),
    ("names", "hrn 20 degrees left", ["Vln 1", "Vln 2", "Hrn", "Trp", "Pk"], "horns 10 degrees more left", "Hrn",
     "azimuth_deg", 30.0),
    ("moves", "sax 20 degrees right", BAND, "sax more to the centre please", "Sax", "azimuth_deg", -5.0),
    ("width", "oh l 40 degrees left, oh r 40 degrees right", ["Kick", "Snare", "OH L", "OH R"], "overheads narrower by 10",
     "OH L", "azimuth_deg", 30.0),
    # guards
    ("guard", "pad 20 degrees up", BAND, "pad to 10 degrees up", "Pad", "elevation_deg", 10.0),
    ("guard", LEFT20, BAND, "open the keys up a bit", "Keys", "azimuth_deg", 25.0),
    ("guard", "keys centre", BAND, "keys a lot louder", "Keys", "gain_db", 6.0),
]


@pytest.mark.parametrize("kind, setup, tracks, request_text, track, field, want", CASES,
                         ids=[f"{c[0]}: {c[3]}" for c in CASES])
def test_edit_effect(conductor, kind, setup, tracks, request_text, track, field, want):
    assert_edit_effect(conductor, setup, tracks, request_text, track, field, want)


def test_a_name_whose_words_are_rule_words_is_only_a_name(conductor):
    # "open" is a width verb and "back" a distance word; inside a track's name they are neither
    plan = conductor.plan("open hat 20 degrees left, back vox 30 degrees right", HATS)
    assert plan.source("Open Hat").azimuth_deg == pytest.approx(20.0)
    assert plan.source("Back Vox").azimuth_deg == pytest.approx(-30.0)
    assert plan.source("Back Vox").distance_m == pytest.approx(conductor.plan("back vox 30 degrees right", HATS)
                                                               .source("Back Vox").distance_m)


def test_tracks_left_alone_keep_their_place(conductor):
    before, after = edit_after(conductor, "violins 20 degrees left, basses 40 degrees right",
                               "widen the strings a bit, leave the basses", SECTION)
    assert after.source("Violins").azimuth_deg == pytest.approx(25.0)
    assert after.source("Basses").azimuth_deg == pytest.approx(before.source("Basses").azimuth_deg)


def test_a_track_said_only_to_be_left_out_takes_no_cue(conductor):
    before, after = edit_after(conductor, "keys 20 degrees left", "not the sax, the keys a bit louder", BAND)
    assert after.source("Keys").gain_db == pytest.approx(2.0)
    assert after.source("Sax").gain_db == pytest.approx(before.source("Sax").gain_db)


def test_a_description_after_a_copula_names_no_missing_track(conductor):
    # "voice" is a lexicon word (lead vocal) the session lacks; said of the piano it describes it
    _, after = edit_after(conductor, "piano 30 degrees right", "the piano is the voice of this song - centre, please",
                          ["Piano", "Bass", "Drums"])
    assert after.source("Piano").azimuth_deg == pytest.approx(0.0)


def test_a_phrasal_up_is_no_fader(conductor):
    before, after = edit_after(conductor, "piano 4 metres away", "bring the piano closer by a metre so they line up", BAND)
    assert after.source("Piano").distance_m == pytest.approx(3.0)
    assert after.source("Piano").gain_db == pytest.approx(before.source("Piano").gain_db)


def test_one_mirror_for_two_phrases_of_it(conductor):   # guard of the new mirror words
    # "on the other side" and "needs mirrored" say one mirror: mirrored twice would be no change
    _, after = edit_after(conductor, "keys 20 degrees left, sax 30 degrees right",
                          "the keys are on the other side tonight, so the keys needs mirrored", BAND)
    assert after.source("Keys").azimuth_deg == pytest.approx(-20.0)


def test_one_instrument_said_once_is_the_track_without_a_marker(conductor):
    # "the vocal" among "Vox" and its double "Vox_Dbl" is the lead, not both
    before, after = edit_after(conductor, "vox centre", "the vocal a bit louder", DOUBLED)
    assert after.source("Vox").gain_db == pytest.approx(2.0)
    assert after.source("Vox_Dbl").gain_db == pytest.approx(before.source("Vox_Dbl").gain_db)


def test_the_pronoun_leaves_the_object_alone(conductor):
    before, after = edit_after(conductor, "pad centre", "the pad is louder than the keys, bring it down a bit", BAND)
    assert after.source("Keys").gain_db == pytest.approx(before.source("Keys").gain_db)


def test_mirror_but_keep_one_where_it_is(conductor):
    _, after = edit_after(conductor, "keys 20 degrees left, sax 30 degrees right, pad 40 degrees left",
                          "mirror everything but keep the pad where it is", BAND)
    assert after.source("Keys").azimuth_deg == pytest.approx(-20.0)
    assert after.source("Pad").azimuth_deg == pytest.approx(40.0)


def test_the_r_of_a_track_name_stays_a_name(conductor):   # guard: "r" is the track's, never a word
    _, after = edit_after(conductor, "oh l 40 degrees left, oh r 40 degrees right", "OH L and OH R a lot wider",
                          ["Kick", "Snare", "OH L", "OH R", "Bass"])
    assert after.source("OH R").azimuth_deg == pytest.approx(-70.0)
    assert after.source("OH L").azimuth_deg == pytest.approx(70.0)


def test_abbreviation_rule_against_hand_made_pairs():
    from stase.agent.parser_names import abbreviates
    # score and session abbreviations (Gould, "Behind Bars", appendix) and words that are not
    for short, long in [("vln", "violin"), ("vc", "violoncello"), ("tbn", "trombone"), ("hn", "horn"),
                        ("dlg", "dialogue"), ("elec", "electric"), ("ac", "acoustic"), ("timp", "timpani")]:
        assert abbreviates(short, long), (short, long)
    for short, long in [("vla", "cello"), ("tpt", "trombone"), ("horn", "hn"), ("ac", "ac"), ("x", "xylophone")]:
        assert not abbreviates(short, long), (short, long)


def test_an_own_word_two_tracks_share_names_neither():
    from stase.agent.parser_names import own_word_tracks
    words = {"Gtr Lead": ["gtr", "lead"], "Lead Vox": ["lead", "vox"], "Keys": ["keys"]}
    assert own_word_tracks("lead", words, frozenset(), frozenset()) == []
    assert own_word_tracks("keys", words, frozenset(), frozenset()) == ["Keys"]


def test_number_lists_need_every_named_track():
    from stase.agent.parser_names import numbered_list_words
    words = [["gtr", "1"], ["gtr", "2"], ["bass"]]
    assert numbered_list_words("widen gtr 1 and 2", words) == "widen gtr 1 and gtr 2"
    assert numbered_list_words("gtr 1 and 3 louder", words) == "gtr 1 and 3 louder"   # no "Gtr 3": left as said
    assert numbered_list_words("vln i and ii", [["vln", "i"], ["vln", "ii"]]) == "vln i and vln ii"


def test_chat_words_leave_a_new_plan_alone():   # guard: "r" and "its" only as chat words
    assert parse_prompt("gtr r 30 degrees right", ["Gtr L", "Gtr R"]).cues[0].tracks == ["Gtr R"]


#: The edit-only words of round 8 as 100 kB attacks (the plan-mode ones are in
#: bench.conductor.HOSTILE_PROMPTS, tests/test_hardening_plan.py): their cost grows linearly.
EDIT_ATTACKS = {
    "adjectives": "the sax please more near, volume too small, please big a little ",
    "word order": "bring down it of 5 degrees ",
    "mirror words": "flop the pans, sax and keys mirrored please, left is right and right is left ",
    "swap words": "change them of place, must be changed, where is the sax and inverse ",
    "distances": "+1m dist two meters less half the distance ",
    "states": "the sax is way over to the left, is a touch quiet, ",
    "widths": "hns wider +10 ea. 15 more each side ",
    "levels": "a little up in level, oboe a little down ",
    "sizes alone": "like way further. Much. ",
    "names": "vln ii and vla, g1 / g2, amb l/r ",
}
EDIT_BAND = ["Vox", "Sax", "Keys", "Bass", "Drums", "Gtr L", "Gtr R", "Vln I", "Vln II", "Vla", "Amb L", "Amb R",
             "Guest 1", "Guest 2", "Hn 1", "Hn 2"]


def _best(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return min(times)


@pytest.mark.flaky(reruns=2)   # a fresh take when other jobs share the cores; the bound is unchanged
@pytest.mark.parametrize("kind", sorted(EDIT_ATTACKS))
def test_round_8_edit_words_cost_linear_time(kind):
    unit = EDIT_ATTACKS[kind]
    small = (unit * (20_000 // len(unit) + 1))[:20_000]
    large = (unit * (100_000 // len(unit) + 1))[:100_000]
    _parse(small, EDIT_BAND, edit=True)
    small_seconds = _best(lambda: _parse(small, EDIT_BAND, edit=True), repeats=5)
    seconds = _best(lambda: _parse(large, EDIT_BAND, edit=True))
    assert seconds < 1.0, f"{kind}: {seconds:.2f} s for 100 kB"
    assert seconds / max(small_seconds, 1e-3) < 12.0, f"{kind}: {seconds * 1000:.0f} ms vs {small_seconds * 1000:.0f} ms"
