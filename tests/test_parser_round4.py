"""Issue 16, round 4: the last edit phrasings, and templates that generalise.

Each test reproduces a defect found on batch 4 (rows p772-p813 of tests/data/producer_eval.jsonl,
written after round 3 was frozen) or batch 5 (p814-p906, written by hand before any fix of this
round): a common word read as a misspelt instrument ("needs" as "reeds", "local" as "vocal"), a
verb or a word of obligation refused as an absent instrument ("the harp needs to go", "take it
down", "pull them down", "with a quartet behind her"), a size said after its side ("over to the
left a tad"), "crank", "a fair bit", "back them off", "up a fair bit in the mix", "open up",
"tighter", a swap said after its pair ("swap over", "and vice versa"), and abstract scenes the
templates did not describe (a VFW hall, a youth-centre matinee, a harp and flute duo, a santur
recital, a dub sound system in a field, a lone cellist).  Every case here failed on the parser,
lexicon, retrieval and templates of commit 188c0ae except those marked as guards (readings that
must not change).  Conventions: azimuth positive = left; steps (``STEPS``): small 5 deg / 0.5 m /
2 dB, plain 15 deg / x1.5 / 3 dB, large 30 deg / x2 / 6 dB.
"""
from __future__ import annotations


import pytest

from parser_helpers import edit_after  # tests/ is on sys.path under pytest
from stase.agent.lexicon import get_lexicon
from stase.agent.parser import parse_prompt
from stase.agent.parser_rules import HEDGES, STEPS

BAND = ["Vox", "Gtr L", "Gtr R", "Bass", "Drums", "Keys"]
JAZZ = ["Sax", "Tpt", "Piano", "Upright", "Drums"]
POP = ["Vocal", "Piano", "Strings", "Horns", "Bass", "Drums"]
ORCHESTRA = ["Violins", "Violas", "Cellos", "Basses", "Horns", "Trumpets", "Timpani", "Harp"]
SYNTHS = ["Pad", "Arp", "Sub", "Lead Synth", "Kick", "Hats", "Clap", "FX"]
WORLD = ["Sitar", "Tabla", "Flute", "Tanpura", "Vox"]
CHURCH = ["Choir", "Organ", "Soprano Solo", "Strings"]
STUDIO = ["Lead Vox", "BVs", "Ac Gtr", "E Gtr", "Bass DI", "Kick In", "Snare Top", "OH L", "OH R", "Keys"]
FUNK = ["Rhodes", "Wurli", "Clav", "Bass", "Drums", "Congas", "Vox"]
QUARTET = ["Vln 1", "Vln 2", "Vla", "Vc"]

SMALL_DEG, PLAIN_DEG, LARGE_DEG = (STEPS["azimuth_deg"][k][1] for k in ("small", "plain", "large"))
SMALL_DB, PLAIN_DB, LARGE_DB = (STEPS["gain_db"][k][1] for k in ("small", "plain", "large"))
LARGE_SCALE = STEPS["distance_m"]["large"][1]


# ------------------------------------------------------------------ common words are no instruments
def test_a_misspelt_instrument_keeps_its_first_letter():
    lexicon = get_lexicon()
    assert lexicon.find(["needs"]) == [] and lexicon.find(["local"]) == []
    assert [h.role for h in lexicon.find(["guiter"])] == ["electric_guitar"]   # guard: a real typo
    parsed = parse_prompt("the sitar needs to move a bit left", WORLD)
    assert [c.tracks for c in parsed.cues] == [["Sitar"]]   # it went to the flute ("reeds")


@pytest.mark.parametrize("setup, words, tracks, track, field, want", [
    ("harp 40 degrees left", "the harp needs to go a little more left", ORCHESTRA, "Harp", "azimuth_deg", 40.0 + SMALL_DEG),
    ("organ 20 degrees up", "the organ needs to come down a bit", CHURCH, "Organ", "elevation_deg", 20.0 - SMALL_DEG),
    ("bass 30 degrees left", "the bass needs to be dead centre", BAND, "Bass", "azimuth_deg", 0.0),
    ("lead vox centre", "the lead vox is too loud, take it down a bit", STUDIO, "Lead Vox", "gain_db", -SMALL_DB),
    ("bvs 20 degrees left", "the bvs are too loud, pull them down a bit", STUDIO, "BVs", "gain_db", -SMALL_DB),
    ("tanpura 3 metres away", "the tanpura needs pushing further away", WORLD, "Tanpura", "distance_m", 4.5),
])
def test_verbs_and_words_of_obligation_are_no_absent_instrument(conductor, setup, words, tracks, track, field, want):
    _, after = edit_after(conductor, setup, words, tracks)
    assert getattr(after.source(track), field) == pytest.approx(want, abs=0.05)


def test_an_ensemble_word_is_no_absent_instrument_and_behind_her_is_not_behind_me(conductor):
    plan = conductor.plan("a sultry torch singer with a quartet behind her", POP)
    assert plan.template == "jazz_ensemble"
    assert abs(plan.source("Vocal").azimuth_deg) < 90.0
    # guard: an instrument the session lacks is still refused by name
    with pytest.raises(Exception, match="didgeridoo"):
        conductor.plan("the didgeridoo behind me, vocal centre", POP)


# ------------------------------------------------------------------ sizes, verbs
@pytest.mark.parametrize("setup, words, tracks, track, want", [
    ("piano 20 degrees left", "can you move the piano over to the left a tad", JAZZ, "Piano", 20.0 + SMALL_DEG),
    ("rhodes 10 degrees right", "nudge the rhodes over to the right a tad", FUNK, "Rhodes", -10.0 - SMALL_DEG),
    ("keys 10 degrees right", "could the keys scoot over to the left a touch", BAND, "Keys", -10.0 + SMALL_DEG),
    ("keys 30 degrees left", "keys to the right a lot", BAND, "Keys", 30.0 - LARGE_DEG),
])
def test_a_size_after_the_side_is_a_step_in_an_edit(conductor, setup, words, tracks, track, want):
    _, after = edit_after(conductor, setup, words, tracks)
    assert after.source(track).azimuth_deg == pytest.approx(want, abs=0.01)


def test_a_size_after_the_side_is_its_hedge_in_a_new_plan(conductor):
    plan = conductor.plan("sax to the left a tad, piano hard right", JAZZ)
    assert plan.source("Sax").azimuth_deg == pytest.approx(HEDGES["a tad"], abs=0.01)
    # guard: with no size, a side is still the plain side
    assert conductor.plan("sax to the left", JAZZ).source("Sax").azimuth_deg == pytest.approx(40.0, abs=0.01)


@pytest.mark.parametrize("setup, words, tracks, track, want", [
    ("lead synth centre", "crank the lead synth", SYNTHS, "Lead Synth", PLAIN_DB),
    ("sitar centre", "crank up the sitar a fair bit", WORLD, "Sitar", LARGE_DB),
    ("tabla 20 degrees right", "tabla a fair bit louder", WORLD, "Tabla", LARGE_DB),
    ("horns 30 degrees right", "turn the horns up a fair bit", POP, "Horns", LARGE_DB),
    ("bvs 20 degrees left", "bvs up a fair bit in the mix", STUDIO, "BVs", LARGE_DB),
    ("congas 30 degrees right", "the congas are too hot, back them off a bit", FUNK, "Congas", -SMALL_DB),
    ("congas 30 degrees right", "back off the congas", FUNK, "Congas", -PLAIN_DB),
])
def test_level_words(conductor, setup, words, tracks, track, want):
    before, after = edit_after(conductor, setup, words, tracks)
    assert after.source(track).gain_db == pytest.approx(want, abs=0.01)
    # a level change moves nothing
    assert after.source(track).distance_m == pytest.approx(before.source(track).distance_m)
    assert after.source(track).azimuth_deg == pytest.approx(before.source(track).azimuth_deg)


@pytest.mark.parametrize("setup, words, tracks, pair, step", [
    ("gtr l 30 degrees left, gtr r 30 degrees right", "open up the guitars a bit", BAND, ("Gtr L", "Gtr R"), SMALL_DEG),
    ("gtr l 30 degrees left, gtr r 30 degrees right", "open the guitars up a lot", BAND, ("Gtr L", "Gtr R"), LARGE_DEG),
    ("oh l 30 degrees left, oh r 30 degrees right", "open up the overheads a touch", STUDIO, ("OH L", "OH R"), SMALL_DEG),
    ("violins 30 degrees left, violas 30 degrees right", "make the violins and violas a fair bit wider", ORCHESTRA,
     ("Violins", "Violas"), LARGE_DEG),
    ("pad 40 degrees left, arp 40 degrees right", "pull the pad and arp in a little tighter", SYNTHS, ("Pad", "Arp"), -SMALL_DEG),
])
def test_width_words(conductor, setup, words, tracks, pair, step):
    before, after = edit_after(conductor, setup, words, tracks)
    left, right = pair
    assert after.source(left).azimuth_deg == pytest.approx(before.source(left).azimuth_deg + step, abs=0.01)
    assert after.source(right).azimuth_deg == pytest.approx(before.source(right).azimuth_deg - step, abs=0.01)


def test_open_air_is_no_width(conductor):   # guard
    parsed = parse_prompt("an open-air gig, the band opens up with a bang", BAND)
    assert not parsed.cues
    assert conductor.plan("an open air concert in the park", BAND).template == "outdoor_festival"
    # "open the mix up" names no track: an open request for the agent, never a step lent to a track
    parsed = parse_prompt("open the mix up, but gtr l 40 degrees left", BAND)
    assert [(c.tracks, c.values) for c in parsed.cues] == [(["Gtr L"], {"azimuth_deg": 40.0})]


@pytest.mark.parametrize("setup, words, tracks, a, b", [
    ("rhodes 30 degrees left, clav 20 degrees right", "can the rhodes and the clav swap over", FUNK, "Rhodes", "Clav"),
    ("sax 20 degrees left, tpt 30 degrees right", "can the sax and the tpt swap over", JAZZ, "Sax", "Tpt"),
    ("horns 30 degrees right, strings 40 degrees left", "put the horns where the strings are and vice versa", POP,
     "Horns", "Strings"),
    ("rhodes 30 degrees left, clav 20 degrees right", "the rhodes and the clav, swap", FUNK, "Rhodes", "Clav"),
])
def test_a_swap_said_after_its_pair(conductor, setup, words, tracks, a, b):
    before, after = edit_after(conductor, setup, words, tracks)
    assert after.source(a).azimuth_deg == pytest.approx(before.source(b).azimuth_deg, abs=0.01)
    assert after.source(b).azimuth_deg == pytest.approx(before.source(a).azimuth_deg, abs=0.01)


# ------------------------------------------------------------------ templates
@pytest.mark.parametrize("prompt, tracks, template", [
    ("emo kids in a VFW hall", BAND, "rock_band"),
    ("sweaty hardcore matinee at the local youth centre", BAND, "rock_band"),
    ("a harp and flute duo at a wedding reception", WORLD, "chamber_music"),
    ("a Persian santur and tombak recital", WORLD, "world_music_ensemble"),
    ("dub reggae soundsystem in a field", BAND, "outdoor_festival"),
    ("a lone cellist playing Bach suites", ["Cello"], "solo_performance"),
])
def test_scenes_the_templates_describe(conductor, prompt, tracks, template):
    plan = conductor.plan(prompt, tracks)
    assert plan.pathway == "abstract" and plan.template == template


def test_a_generic_word_is_no_keyword(conductor):
    """"beat" was an electronic keyword: every genre has a beat, and a trap beat is a studio record."""
    tracks = ["01_Kick", "02_Snare", "03_HH", "04_Bass", "05_Gtr_L", "06_Gtr_R", "07_Vox", "08_Synth"]   # row p889
    plan = conductor.plan("a trap beat with a rapper front and centre", tracks)
    assert plan.template == "studio_recording"
