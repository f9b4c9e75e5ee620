"""Producers' phrasing (issue 16) and wetness words (issue 15): the parser's rules as data with a
stated precedence, the phrasing kinds, relative edits by stated steps, and reverb_db.

Each test reproduces a defect measured on the dev split of tests/data/producer_eval.jsonl (the
held-out split is never read here).  Conventions: azimuth positive = left; pan = -lateral / 90.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from stase.agent.conductor import Conductor
from stase.agent.parser import parse_prompt
from stase.agent.parser_rules import (HEDGED, NAMED, NUMBER, QUANTITIES, RULES, STEPS, WETNESS_WORDS,
                                      normalise_text, number)
from stase.core.errors import InputError
from stase.core.placement import REVERB_DB_RANGE

BAND = ["Vox", "Gtr L", "Gtr R", "Bass", "Drums", "Keys"]
JAZZ = ["Sax", "Tpt", "Piano", "Upright", "Drums"]
SYNTHS = ["Pad", "Arp", "Sub", "Lead Synth", "Kick", "Hats", "Clap", "FX"]


@pytest.fixture(scope="module")
def conductor():
    return Conductor(model="none")


def place(conductor, prompt, tracks, track):
    return conductor.plan(prompt, tracks).source(track)


def edited(conductor, setup, request, tracks, track):
    return conductor.edit(request, conductor.plan(setup, tracks)).source(track)


# ------------------------------------------------------------------------------------------------
# The rule table is data with an explicit precedence
# ------------------------------------------------------------------------------------------------
def test_every_rule_states_its_quantity_precedence_and_trigger_words():
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    for rule in RULES:
        assert rule.quantity in QUANTITIES and rule.precedence in (NUMBER, NAMED, HEDGED)
        assert rule.groups and all(rule.groups), rule.name
    # a number-reading rule is a NUMBER, a vague word a HEDGE
    by_name = {rule.name: rule for rule in RULES}
    assert by_name["distance"].precedence == NUMBER and by_name["far"].precedence == HEDGED
    assert by_name["behind"].precedence == NAMED


@pytest.mark.parametrize("prompt, track, key, want", [
    ("drums far back, 14 m", "Drums", "distance_m", 14.0),
    ("vox very close, 30 cm from me", "Vox", "distance_m", 0.3),
    ("keys a little above, 25 degrees up", "Keys", "elevation_deg", 25.0),
    ("bass a bit lower, 10 degrees down", "Bass", "elevation_deg", -10.0),
    ("keys slightly right, 12 degrees or so", "Keys", "azimuth_deg", -12.0),   # the side word gives the sign
])
def test_a_number_wins_over_a_vague_word_for_the_same_quantity(conductor, prompt, track, key, want):
    s = place(conductor, prompt, BAND, track)
    assert getattr(s, key) == pytest.approx(want, abs=1e-6)
    assert "(number)" in s.provenance[key]   # provenance says which class won


def test_the_vague_word_still_fills_what_no_number_gave(conductor):
    cue = parse_prompt("drums far back, 20 degrees up", BAND).cues[0]
    assert cue.values["distance_m"] == 12.0 and cue.values["elevation_deg"] == 20.0
    assert cue.precedence == {"distance_m": "hedge", "elevation_deg": "number"}


# ------------------------------------------------------------------------------------------------
# Phrasing kinds
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prompt, track, azimuth", [
    ("pan the piano 70% right", "Piano", -63.0),        # pan = -lateral / 90
    ("sax pan 30% left", "Sax", 27.0),
    ("piano panned 50 percent right", "Piano", -45.0),
    ("tpt pan 0%", "Tpt", 0.0),
    ("sax hard R", "Sax", -90.0),
    ("piano hard-panned left", "Piano", 90.0),
    ("sax sixty degrees left", "Sax", 60.0),
    ("piano twenty five degrees right", "Piano", -25.0),
    ("sax 45°right", "Sax", -45.0),
    ("sax L30", "Sax", 30.0),
    ("tpt 30R", "Tpt", -30.0),
    ("piano 20 left", "Piano", 20.0),
    ("sax az +40", "Sax", 40.0),
    ("tpt on a bearing of 90 degrees", "Tpt", -90.0),   # a bearing turns clockwise
    ("piano at bearing 315", "Piano", 45.0),
])
def test_azimuth_phrasings(conductor, prompt, track, azimuth):
    assert place(conductor, prompt, JAZZ, track).azimuth_deg == pytest.approx(azimuth, abs=1e-6)


@pytest.mark.parametrize("prompt, track, key, want", [
    ("drums eight feet away", "Drums", "distance_m", 8 * 0.3048),
    ("upright one and a half metres away", "Upright", "distance_m", 1.5),
    ("piano @ 3", "Piano", "distance_m", 3.0),
    ("sax at 8 o'clock up 30 degrees", "Sax", "elevation_deg", 30.0),
    ("sax 3 o'clock low", "Sax", "elevation_deg", -30.0),
    ("piano minus 10 degrees elevation", "Piano", "elevation_deg", -10.0),
])
def test_distance_and_height_phrasings(conductor, prompt, track, key, want):
    assert getattr(place(conductor, prompt, JAZZ, track), key) == pytest.approx(want, abs=1e-6)


def test_a_one_letter_side_inside_a_track_name_is_the_name():
    cues = parse_prompt("OH L 30 left and OH R 30 right", ["OH L", "OH R", "Kick In"]).cues
    assert [(c.tracks, c.values["azimuth_deg"]) for c in cues] == [(["OH L"], 30.0), (["OH R"], -30.0)]
    cue, = parse_prompt("05_Gtr_L 60 degrees left", ["05_Gtr_L", "06_Gtr_R"]).cues
    assert cue.tracks == ["05_Gtr_L"] and cue.values == {"azimuth_deg": 60.0}


def test_a_role_word_naming_one_track_finds_that_track():
    drums = ["01_Kick", "02_Snare", "03_HH", "04_Bass"]
    assert parse_prompt("the hh 30 degrees right", drums).cues[0].tracks == ["03_HH"]
    assert parse_prompt("the kick 2 m away", ["Kick In", "Snare Top", "OH L"]).cues[0].tracks == ["Kick In"]
    # a word that names no track's own word still finds the whole role
    assert parse_prompt("the guitars 3 m away", BAND).cues[0].tracks == ["Gtr L", "Gtr R"]


def test_a_phrase_never_joins_words_across_a_cue():
    """"bass 40 degrees left, gtr r" holds no "bass gtr" (a bass guitar)."""
    mentions = parse_prompt("bass 40 degrees left, Gtr R opposite the bass", BAND).mentions
    assert [(m.text, m.tracks) for m in mentions] == [("bass", ["Bass"]), ("gtr r", ["Gtr R"]), ("bass", ["Bass"])]


def test_a_specific_instrument_the_session_lacks_is_refused_not_given_to_its_family(conductor):
    with pytest.raises(InputError, match="cello"):
        conductor.plan("move the cello 30 degrees right", JAZZ)     # Upright is a double bass
    strings = ["Violins", "Violas", "Cellos", "Basses"]
    assert set(parse_prompt("strings 3 m away", strings).cues[0].tracks) == set(strings)   # a family word


@pytest.mark.parametrize("prompt, track, azimuth", [
    ("piano 30 degrees left, sax just right of the piano", "Sax", 18.0),
    ("piano 30 degrees left, sax just left of the piano", "Sax", 42.0),
    ("piano 40 degrees left, tpt opposite the piano", "Tpt", -40.0),
    ("sax 50 degrees right, tpt on the sax's side", "Tpt", -35.0),
    ("sax 45 left, piano next to the sax", "Piano", 57.0),
])
def test_placements_relative_to_another_track(conductor, prompt, track, azimuth):
    s = place(conductor, prompt, JAZZ, track)
    assert s.azimuth_deg == pytest.approx(azimuth, abs=1e-6)
    assert " at " in s.provenance["azimuth_deg"]   # names the anchor and where it was


# ------------------------------------------------------------------------------------------------
# Relative edits by stated steps: "a bit" = 5 deg / 0.5 m / 2 dB, plain 15 deg / x1.5 / 3 dB,
# "a lot" 30 deg / x2 / 6 dB
# ------------------------------------------------------------------------------------------------
def test_the_steps_are_the_stated_ones():
    assert STEPS["azimuth_deg"]["small"] == ("add", 5.0) and STEPS["distance_m"]["small"] == ("add", 0.5)
    assert STEPS["gain_db"]["small"] == ("add", 2.0)


@pytest.mark.parametrize("setup, request_, track, key, want", [
    ("sax 20 degrees left", "move the sax a bit further left", "Sax", "azimuth_deg", 25.0),
    ("sax 20 degrees left", "sax further left", "Sax", "azimuth_deg", 35.0),
    ("sax 20 degrees left", "nudge the sax a touch left", "Sax", "azimuth_deg", 25.0),
    ("sax 20 degrees left", "sax a lot to the left", "Sax", "azimuth_deg", 50.0),
    ("sax 2 metres away", "bring the sax a bit closer", "Sax", "distance_m", 1.5),
    ("sax 2 metres away", "sax a lot further back", "Sax", "distance_m", 4.0),
    ("sax 10 degrees up", "raise the sax a bit", "Sax", "elevation_deg", 15.0),
    ("sax 10 degrees up", "sax 10 degrees higher", "Sax", "elevation_deg", 20.0),
    ("sax 20 left", "sax a bit louder", "Sax", "gain_db", 2.0),
    ("sax 20 left", "turn the sax down a bit", "Sax", "gain_db", -2.0),
    ("sax 20 left", "turn the sax up", "Sax", "gain_db", 3.0),
    ("sax 20 left", "sax way quieter", "Sax", "gain_db", -6.0),
])
def test_relative_edits_move_by_the_stated_step(conductor, setup, request_, track, key, want):
    assert getattr(edited(conductor, setup, request_, JAZZ, track), key) == pytest.approx(want, abs=1e-6)


def test_a_hedged_side_is_a_place_in_a_new_plan_and_a_step_in_an_edit(conductor):
    assert place(conductor, "sax a bit to the left", JAZZ, "Sax").azimuth_deg == pytest.approx(15.0)
    assert edited(conductor, "sax 40 degrees right", "sax a bit to the left", JAZZ, "Sax").azimuth_deg == \
        pytest.approx(-35.0)


@pytest.mark.parametrize("request_, left, right", [
    ("make the guitars wider", 45.0, -45.0),
    ("guitars a bit narrower", 25.0, -25.0),
    ("guitars a lot narrower", 3.0, -3.0),   # never past the centre (then fanned 6 deg apart)
])
def test_wider_and_narrower_move_a_group_from_or_to_the_centre(conductor, request_, left, right):
    plan = conductor.edit(request_, conductor.plan("Gtr L 30 degrees left, Gtr R 30 degrees right", BAND))
    assert plan.source("Gtr L").azimuth_deg == pytest.approx(left, abs=1e-6)
    assert plan.source("Gtr R").azimuth_deg == pytest.approx(right, abs=1e-6)


def test_a_mirror_across_left_to_right_is_not_two_side_cues(conductor):
    plan = conductor.edit("flip everything left to right", conductor.plan("piano 25 left, sax 50 right", JAZZ))
    assert plan.source("Piano").azimuth_deg == pytest.approx(-25.0)
    assert plan.source("Sax").azimuth_deg == pytest.approx(50.0)


# ------------------------------------------------------------------------------------------------
# Wetness words (issue 15)
# ------------------------------------------------------------------------------------------------
def test_wetness_words_sit_inside_the_placement_bounds():
    low, high = REVERB_DB_RANGE
    assert all(low <= v <= high for v in WETNESS_WORDS.values())
    assert (WETNESS_WORDS["dry"], WETNESS_WORDS["intimate"], WETNESS_WORDS["wet"], WETNESS_WORDS["drenched"]) == \
        (-12.0, -6.0, 4.0, 10.0)


@pytest.mark.parametrize("prompt, plan_db", [
    ("keep it dry, vox centre", -12.0), ("drenched in reverb, keys 30 degrees left", 10.0),
    ("an intimate mix, vox 1 m away", -6.0), ("from the back of the hall, keys left", 6.0),
    ("front row feel, keys 30 left", -4.0),
])
def test_wetness_without_a_track_sets_the_plan(conductor, prompt, plan_db):
    plan = conductor.plan(prompt, BAND)
    assert plan.reverb_db == plan_db and all(s.reverb_db == 0.0 for s in plan.sources)
    assert "Wetness" in plan.mix_notes and "words:" in plan.mix_notes


def test_wetness_with_a_track_sets_that_source(conductor):
    plan = conductor.plan("pad drenched, arp dry", SYNTHS)
    assert (plan.source("Pad").reverb_db, plan.source("Arp").reverb_db, plan.reverb_db) == (10.0, -12.0, 0.0)
    assert "drenched" in plan.source("Pad").provenance["reverb_db"]


def test_a_template_default_wetness_is_copied_unless_the_words_say_otherwise(conductor):
    mine = Conductor(model="none")
    mine.templates = copy.deepcopy(conductor.templates)
    mine._retriever = conductor.retriever
    mine.templates["jazz_ensemble"]["reverb_db"] = 3.0
    plan = mine.plan("a smoky late-night jazz club", JAZZ)
    assert plan.template == "jazz_ensemble" and plan.reverb_db == 3.0
    assert "template jazz_ensemble default" in plan.mix_notes
    assert mine.plan("a smoky late-night jazz club, bone dry", JAZZ).reverb_db == -12.0
    # an edit keeps the plan's wetness unless it names one
    assert mine.edit("sax 10 degrees left", plan).reverb_db == 3.0
    assert mine.edit("make it wet", plan).reverb_db == 4.0


def test_number_words_and_normalisation():
    assert number("twenty five") == 25.0 and number("thirty-five") == 35.0 and number("two and a half") == 2.5
    assert "same side as the sax" in normalise_text("on the sax's side")
    assert normalise_text("plus or minus 10") == "plus-or-minus 10"


# ------------------------------------------------------------------------------------------------
# The producer set itself
# ------------------------------------------------------------------------------------------------
def test_the_producer_set_has_its_splits_and_kinds():
    rows = [json.loads(line) for line in
            (Path(__file__).parent / "data" / "producer_eval.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 400 and sum(r["split"] == "heldout" for r in rows) >= 150
    assert len({r["prompt"] + r.get("setup", "") for r in rows}) == len(rows)
    kinds = {r["kind"] for r in rows}
    assert {"pan_percent", "number_vs_vague", "relative_to_track", "edit_wider_narrower", "wetness"} <= kinds
