"""Issue 16, round 6: complaints read as a direction, "change places", "kick in the ..." as prose.

Each test reproduces a defect of the last fresh batch (the kind, not the sentence), and failed
on the parser of commit 1dd3b70 except those marked as guards (readings that must not change):
a complaint ("the sitar feels too far away") was read as a target (12 m) by the conductor's edit
path, while the agent read it as a wish for the opposite; the complaints now live in ONE table
(:mod:`stase.agent.parser_complaints`) that the agent and the parser both read.  "Change places"
(and inflected swap verbs, a partner after "with") was no swap, and the lexicon's DAW name "kick in"
ate the preposition of "the kick in the dead centre", so the centre went to both drum tracks and
they were fanned apart.  The second half covers the kinds of the dev misses of the fresh batch
rows p1085-p1264 of tests/data/producer_eval.jsonl (batch 8, written as r6-001..r6-180 before this round's fixes; its dev rows scored 77 %
on commit 1dd3b70), each with sentences of our own.  Conventions: azimuth positive = left; steps
(``STEPS``): small 5 deg / 0.5 m / 2 dB, plain 15 deg / x1.5 / 3 dB, large 30 deg / x2 / 6 dB.
"""
from __future__ import annotations

import pytest

from parser_helpers import edit_after  # tests/ is on sys.path under pytest
from stase.agent.parser import parse_prompt
from stase.agent.parser_rules import STEPS

WORLD = ["Sitar", "Tabla", "Flute", "Tanpura", "Vox"]
FUNK = ["Rhodes", "Wurli", "Clav", "Bass", "Drums", "Congas", "Vox"]
BAND = ["Vox", "Gtr L", "Gtr R", "Bass", "Drums", "Keys", "Kick"]
CHOIR = ["Choir", "Organ", "Strings"]

PLAIN_DEG, LARGE_DEG = STEPS["azimuth_deg"]["plain"][1], STEPS["azimuth_deg"]["large"][1]
SMALL_M = STEPS["distance_m"]["small"][1]
PLAIN_SCALE, LARGE_SCALE = STEPS["distance_m"]["plain"][1], STEPS["distance_m"]["large"][1]


# ------------------------------------------------------------------ complaints: a direction
@pytest.mark.parametrize("setup, words, want", [
    ("sitar 6 metres away, 30 degrees left", "the sitar feels too far away, bring it closer", 6.0 / PLAIN_SCALE),
    ("sitar 6 metres away, 30 degrees left", "the sitar feels too far away", 6.0 / PLAIN_SCALE),
    ("sitar 6 metres away, 30 degrees left", "the sitar is way too far back", 6.0 / LARGE_SCALE),
    ("sitar 6 metres away, 30 degrees left", "the sitar sounds a bit distant", 6.0 - SMALL_M),
    ("flute 1 metre away, sitar 3 metres away", "the flute is too close", 1.0 * PLAIN_SCALE),
    ("flute 1 metre away, sitar 3 metres away", "the flute is right in my face", 1.0 * PLAIN_SCALE),
])
def test_a_complaint_about_distance_is_a_step_the_other_way(conductor, setup, words, want):
    before, after = edit_after(conductor, setup, words, WORLD)
    track = "Sitar" if "sitar" in words else "Flute"
    assert after.source(track).distance_m == pytest.approx(want, abs=0.01)
    assert after.source(track).azimuth_deg == pytest.approx(before.source(track).azimuth_deg)


@pytest.mark.parametrize("setup, words, moves", [
    ("flute 60 degrees left", "the flute is too far left", {"Flute": 60.0 - PLAIN_DEG}),
    ("flute 60 degrees left, sitar 60 degrees right", "the flute and sitar are way too wide",
     {"Flute": 60.0 - LARGE_DEG, "Sitar": -60.0 + LARGE_DEG}),
    ("flute 10 degrees left, sitar 10 degrees right", "the flute and sitar are too close together",
     {"Flute": 10.0 + PLAIN_DEG, "Sitar": -10.0 - PLAIN_DEG}),
    ("flute 10 degrees left, sitar 10 degrees right", "the flute and sitar sound too centred",
     {"Flute": 10.0 + PLAIN_DEG, "Sitar": -10.0 - PLAIN_DEG}),
])
def test_a_complaint_about_width_is_a_step_the_other_way(conductor, setup, words, moves):
    _, after = edit_after(conductor, setup, words, WORLD)
    for track, azimuth in moves.items():
        assert after.source(track).azimuth_deg == pytest.approx(azimuth, abs=0.01), track


@pytest.mark.parametrize("setup, words, want", [       # guards: a number, or a wish, says the place
    ("sitar 6 metres away", "the sitar is too far away, put it at 2 m", 2.0),
    ("sitar 2 metres away", "make the sitar sound distant", 12.0),
    ("sitar 2 metres away", "i want the sitar to feel far away", 12.0),
])
def test_a_number_or_a_wish_is_no_complaint(conductor, setup, words, want):
    _, after = edit_after(conductor, setup, words, WORLD)
    assert after.source("Sitar").distance_m == pytest.approx(want, rel=0.01)


def test_a_flute_too_far_left_and_a_number_is_the_number(conductor):   # guard
    _, after = edit_after(conductor, "flute 60 degrees left", "the flute is too far to the left, 20 degrees", WORLD)
    assert after.source("Flute").azimuth_deg == pytest.approx(20.0)


def test_a_state_in_a_new_plan_is_a_description(conductor):   # guard: only an edit reads a state as a complaint
    plan = conductor.plan("the choir sounds distant, the organ behind me", CHOIR)
    assert plan.source("Choir").distance_m == pytest.approx(12.0)
    assert parse_prompt("the choir sounds distant", CHOIR, edit=True).cues[0].relative
    assert not parse_prompt("the choir sounds distant", CHOIR).cues[0].relative


def test_the_agent_and_the_parser_read_one_table_of_complaints():
    from stase.agent import agent_loop, parser_complaints
    assert agent_loop.COMPLAINTS is parser_complaints.COMPLAINTS
    assert agent_loop.complaint is parser_complaints.complaint
    assert parser_complaints.complaint("make the sitar sound distant") is None          # a wish
    assert parser_complaints.complaint("the sitar sounds distant")[0] == "closer"
    assert set(parser_complaints.COMPLAINT_STEPS) <= {i.name for i in parser_complaints.COMPLAINTS}


# ------------------------------------------------------------------ swaps said as "change places"
@pytest.mark.parametrize("words", [
    "the clav and wurli should change places",
    "can the clav swap places with the wurli",
    "have the clav change places with wurli",
    "clav and wurli swapped please",
    "let the clav and wurli exchange positions",   # a guard: read before round 6 too
])
def test_change_places_is_a_swap(conductor, words):
    before, after = edit_after(conductor, "clav 30 degrees left, wurli 30 degrees right", words, FUNK)
    assert after.source("Clav").azimuth_deg == pytest.approx(before.source("Wurli").azimuth_deg)
    assert after.source("Wurli").azimuth_deg == pytest.approx(before.source("Clav").azimuth_deg)
    assert after.source("Rhodes").azimuth_deg == pytest.approx(before.source("Rhodes").azimuth_deg)


def test_one_track_that_changes_sides_is_mirrored(conductor):
    _, after = edit_after(conductor, "clav 30 degrees left", "the clav changes sides", FUNK)
    assert after.source("Clav").azimuth_deg == pytest.approx(-30.0)


def test_change_without_a_place_word_is_no_swap():   # guard
    parsed = parse_prompt("change the clav to the right and the wurli to the left", FUNK)
    assert not parsed.swaps


# ------------------------------------------------------------------ "kick in the ...": prose, not "Kick In"
@pytest.mark.parametrize("words", ["plonk the kick in the dead centre",
                                   "put the kick in the middle"])   # the second a guard (read before too)
def test_kick_in_before_a_place_names_the_kick(conductor, words):
    before, after = edit_after(conductor, "kick 20 degrees left", words, BAND)
    assert after.source("Kick").azimuth_deg == pytest.approx(0.0)
    assert after.source("Drums").azimuth_deg == pytest.approx(before.source("Drums").azimuth_deg)


def test_a_track_named_kick_in_is_still_named(conductor):   # guard: the DAW name stays a name
    parsed = parse_prompt("kick in the dead centre", ["Kick In", "Kick Out", "Snare"])
    assert [c.tracks for c in parsed.cues] == [["Kick In"]]


# ================================================================== the round-6 batch's dev misses, by kind
# (rows p1085-p1264 of tests/data/producer_eval.jsonl, dev rows; the sentences here are our own, not the batch's)
JAZZ = ["Tenor Sax", "Tpt", "Tbn", "Piano", "Upright", "Drums OH", "Kick", "Ride"]
SATB = ["Sop", "Alto", "Ten", "Bass", "Organ", "Soloist"]
KIT = ["Kick In", "Kick Out", "Snare Top", "Tom 1", "Floor Tom", "OH L", "OH R", "Bass DI", "Lead Vox"]
POP = ["Lead Vox", "Vox Dbl", "BVs", "Bass", "Ac Gtr", "E Gtr L", "E Gtr R", "Keys", "Pad", "Arp"]
GUITARS = ["Vox", "Ac Gtr DI", "Ac Gtr Mic"]
SMALL_DEG, SMALL_DB = STEPS["azimuth_deg"]["small"][1], STEPS["gain_db"]["small"][1]
LARGE_DB = STEPS["gain_db"]["large"][1]


# ------------------------------------------------------------------ swaps said other ways
@pytest.mark.parametrize("setup, words, tracks, pair", [
    ("tom 1 20 degrees left, floor tom 30 degrees right", "the toms sound back to front, swap them", KIT, ("Tom 1", "Floor Tom")),
    ("sop 20 degrees left, alto 20 degrees right", "sop and alto, switch em please", SATB, ("Sop", "Alto")),
    ("piano 30 degrees left, tenor sax 20 degrees right", "the piano trades with the tenor sax", JAZZ, ("Piano", "Tenor Sax")),
    ("sop 20 degrees left, alto 20 degrees right", "sop and alto swap plz", SATB, ("Sop", "Alto")),
])
def test_a_swap_of_a_pair_said_before_the_verb(conductor, setup, words, tracks, pair):
    before, after = edit_after(conductor, setup, words, tracks)
    a, b = pair
    assert after.source(a).azimuth_deg == pytest.approx(before.source(b).azimuth_deg)
    assert after.source(b).azimuth_deg == pytest.approx(before.source(a).azimuth_deg)


def test_a_swap_word_with_one_track_and_no_partner_swaps_nothing():   # guard
    assert not parse_prompt("swap the piano for a rhodes sound", JAZZ).swaps


# ------------------------------------------------------------------ which track a word names
@pytest.mark.parametrize("words, tracks, track", [
    ("tenor closer please", JAZZ, "Tenor Sax"),        # "tenor" is a choir voice in the lexicon
    ("the bass needs to come up 3 db", JAZZ, "Upright"),  # a double bass is a bass
    ("tenors 10 degrees left", SATB, "Ten"),             # an abbreviated track name
    ("basses 10 degrees right", SATB, "Bass"),
    ("the mic track 20 degrees left", GUITARS, "Ac Gtr Mic"),
    ("lead vocal 10 degrees left", POP, "Lead Vox"),     # not its double too
    ("e gtr l 30 degrees left", POP, "E Gtr L"),         # the track, not the pair "e gtr"
    ("pad and acoustic 20 degrees left", POP, "Ac Gtr"),  # "acoustic" ends its noun phrase
])
def test_a_word_names_the_track_it_abbreviates_or_is_a_kind_of(words, tracks, track):
    cues = parse_prompt(words, tracks).cues
    assert cues and track in cues[-1].tracks
    assert all(t == track or t in {"Pad"} for c in cues for t in c.tracks), [c.tracks for c in cues]


def test_a_word_no_track_plays_is_still_refused(conductor):   # guard: kin is a kind, not any word
    from stase.core.errors import InputError
    with pytest.raises(InputError, match="theremin"):
        conductor.plan("theremin 30 degrees left, piano right", JAZZ)
    assert "Ac Gtr" not in {t for c in parse_prompt("an acoustic space with the keys left", POP).cues for t in c.tracks}


# ------------------------------------------------------------------ lists and filler
def test_plus_joins_a_list(conductor):
    _, after = edit_after(conductor, "pad 10 degrees left, arp 10 degrees right", "pad + arp a bit wider", POP)
    assert after.source("Pad").azimuth_deg == pytest.approx(10.0 + SMALL_DEG)
    assert after.source("Arp").azimuth_deg == pytest.approx(-10.0 - SMALL_DEG)


@pytest.mark.parametrize("words", [
    "the keys wandered off somehow. put them back in the middle",
    "keys need re-centring, they slid left",
    "recentring the keys please, they drifted over to the left",
])
def test_back_in_the_middle_and_a_state_of_the_past(conductor, words):
    _, after = edit_after(conductor, "keys 15 degrees left", words, POP)
    assert after.source("Keys").azimuth_deg == pytest.approx(0.0)


# ------------------------------------------------------------------ heights
@pytest.mark.parametrize("setup, words, want", [
    ("pad 30 degrees up", "the pad sits too high, bring it down a bit", 30.0 - SMALL_DEG),
    ("pad 30 degrees up", "the pad is way too high", 30.0 - LARGE_DEG),
    ("pad 10 degrees down", "the pad is a touch too low", -10.0 + SMALL_DEG),
    ("pad 40 degrees up", "the pad feels like it's floating on the ceiling, lower it a little", 40.0 - SMALL_DEG),
    ("pad at ear level", "lower the pad slightly, beneath ear height", -SMALL_DEG),
])
def test_a_height_complaint_or_state_is_a_step(conductor, setup, words, want):
    _, after = edit_after(conductor, setup, words, POP)
    assert after.source("Pad").elevation_deg == pytest.approx(want, abs=0.01)


def test_a_vague_place_beside_a_step_is_still_the_place_in_a_new_plan(conductor):   # guard
    plan = conductor.plan("the pad a bit lower, below ear height", POP)
    assert plan.source("Pad").elevation_deg < 0.0


# ------------------------------------------------------------------ levels, widths, sides
def test_more_level_is_a_level_step(conductor):
    _, after = edit_after(conductor, "pad centre", "the pad wants a bit more volume", POP)
    assert after.source("Pad").gain_db == pytest.approx(SMALL_DB)
    _, after = edit_after(conductor, "pad centre", "less level on the pad", POP)
    assert after.source("Pad").gain_db == pytest.approx(-STEPS["gain_db"]["plain"][1])


@pytest.mark.parametrize("words, step", [
    ("widen the pad and arp by 10 degrees each side", 10.0),
    ("open the pad and arp up 8 degrees", 8.0),
    ("narrow the pad and arp by 4 degrees", -4.0),
])
def test_a_width_by_a_number_of_degrees(conductor, words, step):
    before, after = edit_after(conductor, "pad 20 degrees left, arp 20 degrees right", words, POP)
    assert after.source("Pad").azimuth_deg == pytest.approx(20.0 + step)
    assert after.source("Arp").azimuth_deg == pytest.approx(-20.0 - step)
    assert after.source("Pad").elevation_deg == pytest.approx(before.source("Pad").elevation_deg)


@pytest.mark.parametrize("setup, words, want", [
    ("keys centre", "nudge the keys right", -PLAIN_DEG),
    ("keys 10 degrees left", "slide the keys left please", 10.0 + PLAIN_DEG),
    ("keys 30 degrees right", "shift keys left a touch, say 4 degrees", -30.0 + 4.0),
])
def test_a_motion_verb_and_a_side_is_a_step_in_an_edit(conductor, setup, words, want):
    _, after = edit_after(conductor, setup, words, POP)
    assert after.source("Keys").azimuth_deg == pytest.approx(want)


def test_a_motion_verb_and_a_side_is_the_place_in_a_new_plan(conductor):   # guard
    assert conductor.plan("move the keys left", POP).source("Keys").azimuth_deg == pytest.approx(40.0)


def test_an_orchestra_said_by_its_size_or_shorthand(conductor):
    tracks = ["Vln 1", "Vln 2", "Vla", "Vc", "Cb", "Hn", "Tpt", "Timp"]
    assert conductor.plan("a boss battle cue played by a 70-piece orch", tracks).template == "classical_orchestra"
