"""Issue 16: the front door reads phrasing it was not written for.

Each test reproduces a defect found on new dev rows of tests/data/producer_eval.jsonl written in
producers' words (misspelt side words, hedged numbers, unknown instruments and impossible values
to refuse, a cue said before a list of tracks, "spread" and "raise ... 20 degrees" in an edit, a
DAW name that is also an alias, a track named only "FX", venue words for templates).  Every one
failed on the parser of commit b7da0e7.  Conventions: azimuth positive = left, pan = -lateral/90.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench.conductor import load_producer_eval, producer_row
from stase.agent.conductor import Conductor
from stase.agent.parser import parse_prompt
from stase.agent.parser_rules import (IMPOSSIBLE, SPELLING_EXCEPTIONS, SPELLING_TARGETS, STEPS, _one_edit_apart,
                                      normalise_text, spelling_corrections)
from stase.core.errors import InputError
from stase.core.placement import GAIN_DB_RANGE

BAND = ["Vox", "Gtr L", "Gtr R", "Bass", "Drums", "Keys"]
ORCHESTRA = ["Violins", "Violas", "Cellos", "Basses", "Horns", "Trumpets", "Timpani", "Harp"]
SYNTHS = ["Pad", "Arp", "Sub", "Lead Synth", "Kick", "Hats", "Clap", "FX"]
WORLD = ["Sitar", "Tabla", "Flute", "Tanpura", "Vox"]
KIT = ["Kick Out", "Snare Bottom", "Tom 1", "Tom 2", "Bass Amp", "Gtr 1", "Gtr 2", "Vox Dbl"]


@pytest.fixture(scope="module")
def conductor():
    c = Conductor(model="none")
    c.warm_up()
    return c


def _az(plan, track):
    return plan.source(track).azimuth_deg


# ------------------------------------------------------------------ misspelt spatial words
@pytest.mark.parametrize("prompt, tracks, track, azimuth", [
    ("the paino 30 degrees rihgt", ["Vocal", "Piano", "Strings"], "Piano", -30.0),
    ("the keys 30 lfet", BAND, "Keys", 30.0),
    ("cellos 35 degress rihgt", ORCHESTRA, "Cellos", -35.0),
    ("trumpets 20 degrees rigth", ORCHESTRA, "Trumpets", -20.0),
    ("tom 1 hard lft", KIT, "Tom 1", 90.0),
    ("pad hard rite", SYNTHS, "Pad", -90.0),
    ("harp on the lefft", ORCHESTRA, "Harp", 40.0),
])
def test_a_misspelt_side_word_is_the_side_meant(conductor, prompt, tracks, track, azimuth):
    assert _az(conductor.plan(prompt, tracks), track) == pytest.approx(azimuth, abs=1e-6)


def test_misspelt_centre_and_hedge_words(conductor):
    assert _az(conductor.plan("vocal in the middel", ["Vocal", "Piano"]), "Vocal") == pytest.approx(0.0, abs=1e-6)
    # "slighty" is the hedge (15 deg), not a plain side (40 deg)
    assert _az(conductor.plan("bass guitar slighty left", BAND), "Bass") == pytest.approx(15.0, abs=1e-6)


def _damerau_levenshtein(a: str, b: str) -> int:
    """Naive reference: the restricted Damerau-Levenshtein distance by dynamic programming."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def test_one_edit_apart_equals_the_damerau_levenshtein_reference():
    rng = random.Random(16)
    pairs = []
    for target in SPELLING_TARGETS:
        for _ in range(150):   # random one- and two-edit variants, and random words
            w = list(target)
            for _ in range(rng.choice((1, 1, 2))):
                k = rng.randrange(len(w))
                op = rng.choice("dist")
                if op == "d" and len(w) > 1:
                    del w[k]
                elif op == "i":
                    w.insert(k, rng.choice("aeilrst"))
                elif op == "s":
                    w[k] = rng.choice("aeilrst")
                elif k + 1 < len(w):
                    w[k], w[k + 1] = w[k + 1], w[k]
            pairs.append(("".join(w), target))
        pairs.append(("".join(rng.choice("abcdeflrt") for _ in range(rng.randint(1, 9))), target))
    for word, target in pairs:
        assert _one_edit_apart(word, target) == (_damerau_levenshtein(word, target) == 1), (word, target)


def test_real_words_and_track_words_are_never_corrected():
    near = {"let", "lift", "loft", "lent", "rights", "muddle", "decrees", "light", "tight", "bright", "night"}
    assert spelling_corrections(near) == {}
    assert SPELLING_EXCEPTIONS >= {"let", "lift", "loft", "lent", "rights", "muddle", "decrees"}
    # a track's own word is protected: a session with a track named "Lefty" keeps it
    assert spelling_corrections({"lefty", "lfet"}, {"lefty"}) == {"lfet": "left"}
    plan = parse_prompt("lefty 20 degrees right", ["Lefty", "Bass"])
    assert plan.cues[0].tracks == ["Lefty"] and plan.cues[0].values["azimuth_deg"] == pytest.approx(-20.0)


def test_lift_stays_a_verb_in_an_edit(conductor):
    current = conductor.plan("horns at ear level", ORCHESTRA)
    edited = conductor.edit("lift the horns a lot", current)
    assert edited.source("Horns").elevation_deg == pytest.approx(STEPS["elevation_deg"]["large"][1])
    assert edited.source("Horns").azimuth_deg == pytest.approx(current.source("Horns").azimuth_deg)


# ------------------------------------------------------------------ hedges written onto numbers
@pytest.mark.parametrize("said, meant", [
    ("roughly 35ish degrees left", "roughly 35 degrees left"),
    ("3 or so metres away", "3 metres away"),
    ("30-odd degrees", "30 degrees"),
    ("so so good", "so so good"),
])
def test_a_hedge_on_a_number_leaves_the_number(said, meant):
    assert normalise_text(said) == meant


def test_hedged_numbers_win(conductor):
    assert _az(conductor.plan("roughly 35ish degrees left for the keys", BAND), "Keys") == pytest.approx(35.0)
    plan = conductor.plan("sax maybe 3 or so metres away", ["Sax", "Tpt", "Piano"])
    assert plan.source("Sax").distance_m == pytest.approx(3.0)


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("prompt, word", [
    ("vox centre and the didgeridoo behind me", "didgeridoo"),
    ("vox centre, theremin 40 right", "theremin"),
    ("keys left and the kazoo way back", "kazoo"),
    ("vox 10 right, harmonica behind me", "harmonica"),
])
def test_an_unknown_instrument_with_a_cue_is_refused_by_name(conductor, prompt, word):
    with pytest.raises(InputError, match=f"'{word}' but no session track plays that"):
        conductor.plan(prompt, BAND)


@pytest.mark.parametrize("prompt, track, field, value", [
    ("the keys way off to the left, like 70 degrees", "Keys", "azimuth_deg", 70.0),
    ("drums really far away, maybe 18 metres", "Drums", "distance_m", 18.0),
    ("ok so um... the drums, can they go behind me maybe", "Drums", "azimuth_deg", 180.0),
    ("vox dry, and the rest further back", "Vox", "azimuth_deg", 0.0),
])
def test_filler_words_before_a_lent_cue_are_not_instruments(conductor, prompt, track, field, value):
    plan = conductor.plan(prompt, BAND)
    assert getattr(plan.source(track), field) == pytest.approx(value, abs=1e-6)


@pytest.mark.parametrize("prompt, bound", [
    ("pan the keys 150% left", IMPOSSIBLE["pan"]),
    ("keys 120 degrees up", IMPOSSIBLE["elevation"]),
    ("vox 0 metres away", IMPOSSIBLE["distance"]),
    ("vox -3 m away", IMPOSSIBLE["distance"]),
])
def test_an_impossible_value_is_refused_with_its_bound(conductor, prompt, bound):
    with pytest.raises(InputError) as info:
        conductor.plan(prompt, BAND)
    assert bound in str(info.value) and "cannot place" in str(info.value)


def test_a_level_beyond_the_schema_is_refused_naming_the_track(conductor):
    current = conductor.plan("kick centre", SYNTHS)
    with pytest.raises(InputError, match=rf"Kick: gain_db must be in \[{GAIN_DB_RANGE[0]:.0f}, {GAIN_DB_RANGE[1]:.0f}\]"):
        conductor.edit("kick 40 dB louder", current)
    assert conductor.edit("kick 6 dB louder", current).source("Kick").gain_db == pytest.approx(6.0)


# ------------------------------------------------------------------ a cue said before a list
def test_a_verb_before_a_list_moves_every_track_of_it(conductor):
    current = conductor.plan("keys 20 left, bass 20 right", BAND)
    widened = conductor.edit("widen keys and bass", current)
    assert (_az(widened, "Keys"), _az(widened, "Bass")) == pytest.approx((35.0, -35.0))
    current = conductor.plan("sitar 30 left, flute 30 right", WORLD)
    narrowed = conductor.edit("narrow sitar and flute a touch", current)
    assert (_az(narrowed, "Sitar"), _az(narrowed, "Flute")) == pytest.approx((25.0, -25.0))
    assert narrowed.source("Tabla").azimuth_deg == current.source("Tabla").azimuth_deg
    current = conductor.plan("arp 30 left, pad 30 right", SYNTHS)
    centred = conductor.edit("centre both the arp and pad", current)
    # put in the middle by the cue itself: stacked there as asked (a pair narrowed until it meets
    # is still fanned 6 deg apart: test_parser_phrasing)
    assert (_az(centred, "Arp"), _az(centred, "Pad")) == (0.0, 0.0)


def test_tracks_a_cue_puts_in_the_middle_stay_there(conductor):
    """"both guitars dead centre" is both at 0 (they were fanned +-3 deg), as producers stack the
    centre (kick, bass, lead vocal; the low end stays mono); the same shared place off the centre
    is still fanned 6 deg apart so the tracks stay distinct."""
    tracks = ["Gtr 1", "Gtr 2", "Vocal"]
    centred = conductor.plan("gtr 1 and gtr 2 both dead centre", tracks)
    assert (_az(centred, "Gtr 1"), _az(centred, "Gtr 2")) == (0.0, 0.0)
    aside = conductor.plan("gtr 1 and gtr 2 both 40 degrees right", tracks)
    assert abs(_az(aside, "Gtr 1") - _az(aside, "Gtr 2")) == pytest.approx(6.0)
    current = conductor.plan("gtr 1 10 degrees left, gtr 2 30 degrees right", tracks)
    edited = conductor.edit("gtr 1 and gtr 2 both into the middle please", current)
    assert (_az(edited, "Gtr 1"), _az(edited, "Gtr 2")) == (0.0, 0.0)


def test_a_list_item_with_its_own_place_keeps_it(conductor):
    plan = conductor.plan("centre the keys and bass 20 right", BAND)
    assert (_az(plan, "Keys"), _az(plan, "Bass")) == pytest.approx((0.0, -20.0))


def test_spread_is_a_width_step_in_an_edit_and_a_fan_in_a_plan(conductor):
    current = conductor.plan("gtr l 20 left, gtr r 20 right", BAND)
    edited = conductor.edit("spread the guitars a bit", current)
    small = STEPS["width_deg"]["small"][1]
    assert (_az(edited, "Gtr L"), _az(edited, "Gtr R")) == pytest.approx((20.0 + small, -20.0 - small))
    fanned = conductor.plan("spread the guitars", BAND)
    assert (_az(fanned, "Gtr L"), _az(fanned, "Gtr R")) == pytest.approx((60.0, -60.0))


def test_raise_by_degrees_changes_the_height_not_the_side(conductor):
    current = conductor.plan("flute at ear level", WORLD)
    edited = conductor.edit("raise the flute 20 degrees", current)
    assert edited.source("Flute").elevation_deg == pytest.approx(20.0)
    assert edited.source("Flute").azimuth_deg == pytest.approx(current.source("Flute").azimuth_deg)
    lowered = conductor.edit("drop the flute by 10 degrees", edited)
    assert lowered.source("Flute").elevation_deg == pytest.approx(10.0)


def test_a_hedged_height_is_a_place_in_a_plan_and_a_step_in_an_edit(conductor):
    plan = conductor.plan("hats at two o'clock slightly up", SYNTHS)
    assert (plan.source("Hats").azimuth_deg, plan.source("Hats").elevation_deg) == pytest.approx((-60.0, 15.0))
    plan = conductor.plan("flute at 12 o'clock, raised a bit", WORLD)
    assert plan.source("Flute").elevation_deg == pytest.approx(15.0)
    edited = conductor.edit("flute raised a bit", conductor.plan("flute 10 degrees up", WORLD))
    assert edited.source("Flute").elevation_deg == pytest.approx(10.0 + STEPS["elevation_deg"]["small"][1])


def test_american_centered_is_an_edit(conductor):
    current = conductor.plan("vox 20 left", BAND)
    assert _az(conductor.edit("vox centered", current), "Vox") == pytest.approx(0.0)


# ------------------------------------------------------------------ track names
def test_a_daw_name_that_is_an_alias_names_its_own_track(conductor):
    plan = conductor.plan("kick out 20 degrees left", KIT)
    assert _az(plan, "Kick Out") == pytest.approx(20.0)
    assert "kick out" not in plan.source("Snare Bottom").provenance.get("azimuth_deg", "")


def test_a_track_named_fx_can_be_named(conductor):
    assert _az(conductor.plan("FX on a bearing of 45", SYNTHS), "FX") == pytest.approx(-45.0)


def test_str_abbreviates_strings(conductor):
    plan = conductor.plan("pno 20 L, str 40 R", ["Vocal", "Piano", "Strings", "Horns"])
    assert (_az(plan, "Piano"), _az(plan, "Strings")) == pytest.approx((20.0, -40.0))


# ------------------------------------------------------------------ venue words
@pytest.mark.parametrize("prompt, tracks, template", [
    ("Hollywood strings and horns on a scoring stage", ORCHESTRA, "classical_orchestra"),
    ("the band tracking together in the Abbey Road live room", ["Vocal", "Piano", "Strings", "Horns", "Bass", "Drums"],
     "studio_recording"),
    ("Glastonbury Pyramid stage headline slot", BAND, "outdoor_festival"),
])
def test_venue_words_find_their_template(conductor, prompt, tracks, template):
    assert conductor.plan(prompt, tracks).template == template


# ------------------------------------------------------------------ the dev split
def test_producer_dev_split_is_fully_right(conductor):
    """Every dev row of the producer set (the held-out split is not read here)."""
    rows = load_producer_eval(split="dev")
    assert len(rows) >= 420 and all(r["split"] == "dev" for r in rows)
    # rows whose label two engineers could read two ways carry the question in the row (the
    # bench still counts them as they are scored); the parser is not bent to either reading
    questions = [r for r in rows if r.get("label_question")]
    assert len(questions) <= 0.01 * len(rows) and all(len(r["label_question"]) > 20 for r in questions)
    wrong = [(r["id"], r["prompt"], res["wrong"]) for r in rows
             if not r.get("label_question") and not (res := producer_row(conductor, r))["right"]]
    # the dev rows of batches 12 and 13 still wrong (58 of 66 and 59 of 69 are right with the edit
    # reader, which is trained on the dev split; the bench counts these as wrong): listed so that a regression elsewhere and a fix of one of
    # these both fail here until the list is brought up to date
    assert sorted(w[0] for w in wrong) == sorted(OPEN_DEV_MISSES), wrong


#: Batch 12's dev rows not read right yet (issue 16, round 12 and the edit reader; docs/conductor.md),
#: batch 13's (a fourth writer, merged after the edit reader and scored on it; no round of its own yet)
#: and batch 14's (a fifth writer, p1982-p2101, merged at the eighth stop; no round of its own yet).
OPEN_DEV_MISSES = ["p2081"]


def test_new_dev_rows_keep_the_file_format():
    """Ids unique and in order over the whole file; the fields of every dev row (held-out rows
    are never read here beyond their id and split)."""
    path = Path(__file__).parent / "data" / "producer_eval.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) and ids == sorted(ids, key=lambda i: int(i[1:]))
    assert {r["split"] for r in rows} == {"dev", "heldout"}
    for r in (r for r in rows if r["split"] == "dev"):
        assert r["kind"] and r["tracks"] and r["prompt"].strip()
        assert {"expect", "expected_template", "expect_error", "expect_plan"} & set(r)


# ------------------------------------------------------------------ stop 32: edits in other words
# (our own sentences; each pair checks the new reading and the old one it must not take over)
EDIT_TRACKS = ["Lead Vox", "Pad L", "Pad R", "Flute", "Shaker"]


def _edited(conductor, setup, request_text):
    return conductor.edit(request_text, conductor.plan(setup, EDIT_TRACKS))


def _after(conductor, setup, request_text, track, field):
    """``track``'s ``field`` (deg, m or dB) after ``request_text`` on the plan of ``setup`` (EDIT_TRACKS)."""
    return getattr(_edited(conductor, setup, request_text).source(track), field)


def _pads_after(conductor, request_text):
    """(Pad L, Pad R) azimuths (deg) after ``request_text``, from 50 deg left and 50 deg right."""
    plan = _edited(conductor, "Pad L 50 degrees left, Pad R 50 degrees right", request_text)
    return plan.source("Pad L").azimuth_deg, plan.source("Pad R").azimuth_deg


@pytest.mark.parametrize("request_text, want_m", [
    ("bring the flute in to 2 metres", 2.0),            # "to": where it goes
    ("move the flute closer, to about 2.5 m", 2.5),
    ("push the flute back to 9m", 9.0),
    ("bring the flute in 2 m", 4.0),                    # no "to": a step of 2 m
    ("bring the flute closer by 1 m", 5.0),
])
def test_to_a_distance_is_the_place_and_by_a_distance_the_step(conductor, request_text, want_m):
    plan = _edited(conductor, "Flute 6 metres away", request_text)
    assert plan.source("Flute").distance_m == pytest.approx(want_m, abs=1e-6)


@pytest.mark.parametrize("request_text, want_db", [
    ("take the shaker down by four decibels", -4.0),
    ("shaker up twelve decibels please", 12.0),
    ("shaker down 3 decibels", -3.0),
    ("turn the shaker up abit", 2.0),                   # "abit": "a bit", the small level step
])
def test_level_numbers_in_words_and_glued_hedges(conductor, request_text, want_db):
    plan = _edited(conductor, "Shaker 20 degrees left", request_text)
    assert plan.source("Shaker").gain_db == pytest.approx(want_db, abs=1e-6)


@pytest.mark.parametrize("request_text, want_deg", [
    ("raise the flute's elevation by five degrees", 15.0),   # a move by 5 from 10 up
    ("lower the flute's elevation by 20 degrees", -10.0),
    ("flute elevation 30 degrees", 30.0),                    # no verb, no "by": the place
])
def test_elevation_by_a_number_is_a_move(conductor, request_text, want_deg):
    plan = _edited(conductor, "Flute 10 degrees up", request_text)
    assert plan.source("Flute").elevation_deg == pytest.approx(want_deg, abs=1e-6)


@pytest.mark.parametrize("request_text, want_left", [
    ("pads 10 degrees narrower each", 40.0),
    ("make the pads tighter by 20 degrees per side", 30.0),
    ("the pads 5 degrees wider", 55.0),
    ("pull the pads in towards the front a little", 45.0),   # the small width step, not the front
])
def test_width_numbers_after_the_number(conductor, request_text, want_left):
    assert _pads_after(conductor, request_text) == pytest.approx((want_left, -want_left), abs=1e-6)


@pytest.mark.parametrize("request_text, want_m", [
    ("the flute should come nearer, about the half of the distance", 3.0),
    ("put the flute at half its distance", 3.0),
    ("flute at twice the distance", 12.0),
])
def test_half_and_double_the_distance(conductor, request_text, want_m):
    plan = _edited(conductor, "Flute 6 metres away", request_text)
    assert plan.source("Flute").distance_m == pytest.approx(want_m, abs=1e-6)


@pytest.mark.parametrize("request_text", [
    "mirror the pads, leave pad r",
    "flip the pads over but keep pad r where it is",
    "mirror the pads. Pad R stays where it is.",
])
def test_a_track_left_or_said_to_stay_is_not_mirrored_with_its_group(conductor, request_text):
    plan = _edited(conductor, "Pad L 30 degrees left, Pad R 50 degrees right", request_text)
    assert (plan.source("Pad L").azimuth_deg, plan.source("Pad R").azimuth_deg) == \
        pytest.approx((-30.0, -50.0), abs=1e-6)


@pytest.mark.parametrize("request_text", [
    "put the flute in the middle. The shaker stays on the left.",
    "flute to the centre; shaker remains on the left",
    "flute to the centre, the shaker can stay left",
])
def test_a_track_said_to_stay_keeps_its_place(conductor, request_text):
    plan = _edited(conductor, "Flute 30 degrees right, Shaker 20 degrees left", request_text)
    assert plan.source("Flute").azimuth_deg == pytest.approx(0.0, abs=1e-6)
    assert plan.source("Shaker").azimuth_deg == pytest.approx(20.0, abs=1e-6)


@pytest.mark.parametrize("request_text, want", [
    ("bring the flute right in front of me", ("azimuth_deg", 0.0)),   # "bring ... in front": no step in
    ("bring the flute in front of me", ("azimuth_deg", 0.0)),
    ("put the flute right behind the listener", ("azimuth_deg", 180.0)),
    ("put the flute right above the listener", ("elevation_deg", 90.0)),
    ("pan the flute right, and in front", ("azimuth_deg", -40.0)),   # a comma: the side stays
])
def test_right_before_a_place_says_exactly_there(conductor, request_text, want):
    plan = _edited(conductor, "Flute 30 degrees left", request_text)
    assert getattr(plan.source("Flute"), want[0]) == pytest.approx(want[1], abs=1e-6)


@pytest.mark.parametrize("request_text, want_left", [
    ("narrow pad l/pad r by 10 degrees per side", 40.0),
    ("narrow pad l / pad r by 10 degrees per side", 40.0),
    ("narrow pad l and pad r by 10 degrees per side", 40.0),
])
def test_a_slash_between_track_names_joins_them(conductor, request_text, want_left):
    assert _pads_after(conductor, request_text) == pytest.approx((want_left, -want_left), abs=1e-6)


@pytest.mark.parametrize("request_text", [
    "The flute is on the wrong side. Please left-right mirror.",
    "flute sits on the reverse side. an l/r flip please",
    "The flute is on the wrong side. Mirror it.",
])
def test_a_bare_mirror_takes_the_track_of_the_sentence_before(conductor, request_text):
    plan = _edited(conductor, "Flute 30 degrees left, Shaker 20 degrees left", request_text)
    assert plan.source("Flute").azimuth_deg == pytest.approx(-30.0, abs=1e-6)
    assert plan.source("Shaker").azimuth_deg == pytest.approx(20.0, abs=1e-6)


@pytest.mark.parametrize("request_text, moved, want", [
    ("the shaker further away please, it should sit behind the flute", "Shaker", ("distance_m", 3.75)),
    ("can the shaker be louder, it is lost under the flute", "Shaker", ("gain_db", 3.0)),
    ("I can hardly hear the shaker over the flute, make the shaker louder", "Shaker", ("gain_db", 3.0)),
])
def test_a_track_named_after_behind_over_or_under_is_the_reference(conductor, request_text, moved, want):
    plan = _edited(conductor, "Flute 20 degrees left, Shaker 30 degrees right", request_text)
    assert getattr(plan.source(moved), want[0]) == pytest.approx(want[1], abs=1e-6)
    flute = plan.source("Flute")
    assert (flute.azimuth_deg, flute.distance_m, flute.gain_db) == pytest.approx((20.0, 2.5, 0.0), abs=1e-6)


def test_a_track_word_before_a_word_of_several_tracks_names_that_track(conductor):
    """"the harmony vocal": "vocal" names both voices, "harmony" one of them: one noun phrase."""
    tracks = ["Lead Vox", "Harmony Vox", "Flute"]
    plan = conductor.edit("the harmony vocal a bit further back",
                          conductor.plan("Lead Vox 2 metres away, Harmony Vox 2 metres away", tracks))
    assert plan.source("Lead Vox").distance_m == pytest.approx(2.0, abs=1e-6)
    assert plan.source("Harmony Vox").distance_m > 2.0


@pytest.mark.parametrize("request_text", [
    "flute much further left, there is no spread at all",
    "flute way further left, can't hear any spread",
])
def test_a_spread_said_beside_one_tracks_side_move_is_its_reason(conductor, request_text):
    plan = _edited(conductor, "Flute 20 degrees left", request_text)
    assert plan.source("Flute").azimuth_deg == pytest.approx(50.0, abs=1e-6)   # the large side step only


@pytest.mark.parametrize("request_text", [
    "mirror the winds, please (flute and shaker)",
    "Mirror-image these two (the flute and the shaker).",
])
def test_a_bracketed_list_after_a_mirror_says_which_tracks(conductor, request_text):
    plan = _edited(conductor, "Flute 20 degrees left, Shaker 10 degrees right, Lead Vox 5 degrees left", request_text)
    assert (plan.source("Flute").azimuth_deg, plan.source("Shaker").azimuth_deg,
            plan.source("Lead Vox").azimuth_deg) == pytest.approx((-20.0, 10.0, 5.0), abs=1e-6)


@pytest.mark.parametrize("request_text, want_left", [
    ("the pads should feel much broader", 80.0),
    ("broaden the pads a lot", 80.0),
    ("the pads a bit broader, we're standing in the middle of the field", 55.0),
    ("much wider pads, i am sitting in the centre of the hall", 80.0),
])
def test_broader_is_wider_and_where_the_listener_stands_is_no_place(conductor, request_text, want_left):
    assert _pads_after(conductor, request_text) == pytest.approx((want_left, -want_left), abs=1e-6)


SOUND_TRACKS = ["Hair Brush", "Ear Tap", "Piano Accomp", "Lead Vox"]


@pytest.mark.parametrize("request_text, moved, want_m", [
    ("the brushing a bit closer to the ear please", "Hair Brush", 2.5),
    ("can the brushing come a little nearer to the ear tap", "Hair Brush", 2.5),
    ("the accompaniment a bit further away", "Piano Accomp", 3.5),
])
def test_a_gerund_or_the_long_form_names_the_track_and_closer_to_x_makes_x_the_reference(conductor, request_text,
                                                                                          moved, want_m):
    plan = conductor.edit(request_text, conductor.plan("Hair Brush 3 metres away, Ear Tap 3 metres away, "
                                                       "Piano Accomp 3 metres away", SOUND_TRACKS))
    assert plan.source(moved).distance_m == pytest.approx(want_m, abs=1e-6)
    for other in {"Hair Brush", "Ear Tap", "Piano Accomp"} - {moved}:
        assert plan.source(other).distance_m == pytest.approx(3.0, abs=1e-6)


@pytest.mark.parametrize("request_text, a, b", [
    ("swap object 2 and object 3", "Obj 2 Sonar", "Obj 3 Bubbles"),
    ("switch the drums and the base", "Drums", "Bass"),           # dictation: "base" for the bass
])
def test_a_shared_word_with_a_number_and_a_dictated_bass_name_the_track(conductor, request_text, a, b):
    tracks = ["Obj 1 Drone", "Obj 2 Sonar", "Obj 3 Bubbles", "Drums", "Bass"]
    before = conductor.plan("Obj 1 Drone 10 degrees left, Obj 2 Sonar 20 degrees left, Obj 3 Bubbles 30 degrees "
                            "left, Drums 40 degrees left, Bass 50 degrees left", tracks)
    plan = conductor.edit(request_text, before)
    assert (plan.source(a).azimuth_deg, plan.source(b).azimuth_deg) == \
        pytest.approx((before.source(b).azimuth_deg, before.source(a).azimuth_deg), abs=1e-6)


SCENE_TRACKS = ["Drone", "Seagulls", "Dialog", "Strings L", "Strings R", "String Bass"]


@pytest.mark.parametrize("request_text, want_el, want_m", [
    ("lift the drone a lot, and then move it further back", 40.0, 6.0),
    ("push the drone further back and raise it a lot", 40.0, 6.0),
    ("raise the drone a bit. move it further away as well", 15.0, 6.0),
])
def test_a_size_word_sizes_the_step_it_is_said_with_not_another_verbs(conductor, request_text, want_el, want_m):
    plan = conductor.edit(request_text, conductor.plan("Drone 10 degrees up, Drone 4 metres away", SCENE_TRACKS))
    assert (plan.source("Drone").elevation_deg, plan.source("Drone").distance_m) == \
        pytest.approx((want_el, want_m), abs=1e-6)


def test_directions_listed_under_one_verb_share_its_size(conductor):
    plan = conductor.edit("move the drone further left and up a bit",
                          conductor.plan("Drone 10 degrees left, Drone 10 degrees up", SCENE_TRACKS))
    assert (plan.source("Drone").azimuth_deg, plan.source("Drone").elevation_deg) == pytest.approx((15.0, 15.0), abs=1e-6)


@pytest.mark.parametrize("request_text, moved", [
    ("the seagulls are way overhead in the picture. bring the seagulls a little closer", "Seagulls"),
    ("the seagulls are high up in the frame, so bring them a little closer", "Seagulls"),
])
def test_where_a_source_is_in_the_picture_is_the_reason_for_a_change_not_a_place(conductor, request_text, moved):
    plan = conductor.edit(request_text, conductor.plan("Seagulls 20 degrees up, Seagulls 3 metres away", SCENE_TRACKS))
    assert plan.source(moved).distance_m == pytest.approx(2.5, abs=1e-6)
    assert plan.source("Seagulls").elevation_deg == pytest.approx(20.0, abs=1e-6)


def test_the_long_form_of_a_short_track_word(conductor):
    tracks = ["Heli", "Cello", "Bass"]
    plan = conductor.edit("raise the helicopter a bit",
                          conductor.plan("Heli 10 degrees up, Cello 10 degrees up", tracks))
    assert (plan.source("Heli").elevation_deg, plan.source("Cello").elevation_deg) == pytest.approx((15.0, 10.0), abs=1e-6)
    plan = conductor.edit("the heli's distance is wrong, a bit closer please",
                          conductor.plan("Heli 3 metres away, Dist Gtr 3 metres away", ["Heli", "Dist Gtr"]))
    assert (plan.source("Heli").distance_m, plan.source("Dist Gtr").distance_m) == pytest.approx((2.5, 3.0), abs=1e-6)


def test_a_group_named_before_a_word_naming_it_among_others_is_that_group(conductor):
    tracks = ["Stem Strings L", "Stem Strings R", "Stem Vox", "Stem Bass"]
    plan = conductor.edit("narrow the string stems by 10 degrees each",
                          conductor.plan("Stem Strings L 50 degrees left, Stem Strings R 40 degrees right, "
                                         "Stem Vox 20 degrees left, Stem Bass 30 degrees right", tracks))
    assert [plan.source(t).azimuth_deg for t in tracks] == pytest.approx([40.0, -30.0, 20.0, -30.0], abs=1e-6)


@pytest.mark.parametrize("request_text", [
    "Flute and her shaker ought to be mirrored, she has moved across the stage tonight.",
    "the flute plus his shaker should be flipped",
])
def test_a_bare_mirror_after_a_list_takes_the_whole_list(conductor, request_text):
    plan = _edited(conductor, "Flute 20 degrees left, Shaker 30 degrees left, Lead Vox 5 degrees left", request_text)
    assert (plan.source("Flute").azimuth_deg, plan.source("Shaker").azimuth_deg,
            plan.source("Lead Vox").azimuth_deg) == pytest.approx((-20.0, -30.0, 5.0), abs=1e-6)


def test_how_far_away_is_no_place_in_a_swap(conductor):
    plan = _edited(conductor, "Flute 10 degrees left, Flute 4 metres away, Shaker 20 degrees right, Shaker 2 metres away",
                   "trade the flute and the shaker, where they sit and how far away")
    assert (plan.source("Flute").azimuth_deg, plan.source("Flute").distance_m,
            plan.source("Shaker").azimuth_deg, plan.source("Shaker").distance_m) == \
        pytest.approx((-20.0, 2.0, 10.0, 4.0), abs=1e-6)


@pytest.mark.parametrize("request_text, moved", [
    ("the flute over where the mic'd sax is, and the sax to where the flute was", "Sax Mic"),
    ("flute where the DI'd sax is and the sax where the flute is", "Sax DI"),
])
def test_a_word_before_a_shared_name_picks_the_track_and_crossed_places_swap(conductor, request_text, moved):
    tracks = ["Sax DI", "Sax Mic", "Flute", "Lead Vox"]
    plan = conductor.edit(request_text, conductor.plan(
        "Sax DI 30 degrees left, Sax Mic 40 degrees right, Flute 10 degrees left, Lead Vox centre", tracks))
    was = {"Sax DI": 30.0, "Sax Mic": -40.0}
    assert (plan.source("Flute").azimuth_deg, plan.source(moved).azimuth_deg) == pytest.approx((was[moved], 10.0), abs=1e-6)
    other = ({"Sax DI", "Sax Mic"} - {moved}).pop()
    assert plan.source(other).azimuth_deg == pytest.approx(was[other], abs=1e-6)


# ---- thirteenth stop, batch 15's dev rows: mechanisms, with sentences of our own ----------------

def test_a_side_said_of_a_track_another_sentence_moves_is_the_reason(conductor):
    plan = _edited(conductor, "Flute 10 degrees left",
                   "Our flute player stands on the far left. Please move the flute another 15 degrees to the left.")
    assert plan.source("Flute").azimuth_deg == pytest.approx(25.0, abs=1e-6)


def test_a_mirror_takes_the_list_past_its_comma(conductor):
    plan = _edited(conductor, "Flute 20 degrees left, Shaker 30 degrees left, Lead Vox 5 degrees left, Pad L 40 degrees left",
                   "mirror the flute, shaker and lead vox because the stage is flipped tonight")
    assert [plan.source(t).azimuth_deg for t in ("Flute", "Shaker", "Lead Vox", "Pad L")] == \
        pytest.approx([-20.0, -30.0, -5.0, 40.0], abs=1e-6)


WINDS = ["Fl 1", "Ob 1", "Cl 1", "Bsn 1", "Hn", "Timp"]
WINDS_SETUP = "Fl 1 40 degrees left, Ob 1 15 degrees left, Cl 1 20 degrees right, Bsn 1 35 degrees right"


@pytest.mark.parametrize("request_text", [
    "pull Fl 1, Ob 1, Cl 1 and Bsn 1 in by 5 degrees each",
    "narrow the winds (Fl 1, Ob 1, Cl 1, Bsn 1) by 5 degrees",
    "The woodwinds need to be tighter. Bring Fl 1, Ob 1, Cl 1 and Bsn 1 in by 5 degrees each.",
])
def test_a_list_narrowed_by_a_number_and_the_number_beats_a_plain_step(conductor, request_text):
    plan = conductor.edit(request_text, conductor.plan(WINDS_SETUP, WINDS))
    assert [plan.source(t).azimuth_deg for t in ("Fl 1", "Ob 1", "Cl 1", "Bsn 1")] == \
        pytest.approx([35.0, 10.0, -15.0, -30.0], abs=1e-6)


BIG_BAND = ["Alto 1", "Tenor 1", "Bari Sax", "Tpt 1", "Bones"]


@pytest.mark.parametrize("request_text", [
    "the saxes are bunched up in the middle, spread them 10 degrees more each side",
    "widen the sax section, another 10 degrees each side",
])
def test_a_big_bands_alto_and_tenor_are_saxes_and_the_section_is_all_of_them(conductor, request_text):
    plan = conductor.edit(request_text, conductor.plan(
        "Alto 1 10 degrees left, Tenor 1 5 degrees right, Bari Sax 15 degrees right, Tpt 1 30 degrees left", BIG_BAND))
    assert [plan.source(t).azimuth_deg for t in ("Alto 1", "Tenor 1", "Bari Sax", "Tpt 1")] == \
        pytest.approx([20.0, -15.0, -25.0, 30.0], abs=1e-6)


DAW_DEFAULTS = ["Audio 1", "Audio 2", "Audio 3", "Audio 4", "Audio 5"]


@pytest.mark.parametrize("request_text, gains", [
    ("the third track a little louder", [0.0, 0.0, 2.0, 0.0, 0.0]),
    ("the last track needs to be a bit quieter", [0.0, 0.0, 0.0, 0.0, -2.0]),
])
def test_a_track_said_by_its_ordinal_in_a_session_of_default_names(conductor, request_text, gains):
    plan = conductor.edit(request_text, conductor.plan("Audio 1 10 degrees left", DAW_DEFAULTS))
    assert [plan.source(t).gain_db for t in DAW_DEFAULTS] == pytest.approx(gains, abs=1e-6)


def test_a_swap_of_bare_track_numbers(conductor):
    plan = conductor.edit("swap 1 and 4 please", conductor.plan("Audio 1 10 degrees left, Audio 4 30 degrees right",
                                                              DAW_DEFAULTS))
    assert (plan.source("Audio 1").azimuth_deg, plan.source("Audio 4").azimuth_deg) == pytest.approx((-30.0, 10.0), abs=1e-6)
    plan = conductor.edit("move audio 1 30 degrees right", conductor.plan("Audio 1 10 degrees left", DAW_DEFAULTS))
    assert plan.source("Audio 1").azimuth_deg == pytest.approx(-30.0, abs=1e-6)   # a number with a unit stays one


@pytest.mark.parametrize("request_text", [
    "the flute player's drifting about, pit her back in the centre",    # an alias's 's, Scots "pit her"
    "that flute's aff tae the left, pit it in the middle",
])
def test_an_instruments_s_and_scots_forms(conductor, request_text):
    assert _after(conductor, "Flute 20 degrees left", request_text, "Flute", "azimuth_deg") == \
        pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("request_text, want_db", [
    ("gie the shaker a wee lift, a couple o dB louder", 2.0),
    ("the shaker, um, it's like, you know, too quiet? just a little louder", 2.0),
])
def test_fillers_wee_and_a_couple_of(conductor, request_text, want_db):
    assert _after(conductor, "Shaker 20 degrees left", request_text, "Shaker", "gain_db") == \
        pytest.approx(want_db, abs=1e-6)


def test_a_verb_after_it_is_no_misspelt_instrument_and_a_number_in_words_and_digits(conductor):
    plan = _edited(conductor, "Flute 6 metres away", "the flute should sit at 3m, right now it reads too distant")
    assert plan.source("Flute").distance_m == pytest.approx(3.0, abs=1e-6)
    plan = _edited(conductor, "Flute 2 metres away", "Kindly position the flute at a distance of five (5) metres.")
    assert plan.source("Flute").distance_m == pytest.approx(5.0, abs=1e-6)


def test_el_is_an_elevation_only_before_a_number_an_elevation_can_be(conductor):
    tracks = ["Bajo 909", "Voz", "Timp"]
    plan = conductor.edit("el 909 en el centro, the 909 always in the middle",
                          conductor.plan("Bajo 909 20 degrees right", tracks))
    assert plan.source("Bajo 909").azimuth_deg == pytest.approx(0.0, abs=1e-6)
    plan = conductor.edit("timp el 20", conductor.plan("Timp 10 degrees left", tracks))
    assert plan.source("Timp").elevation_deg == pytest.approx(20.0, abs=1e-6)


@pytest.mark.parametrize("request_text", [
    "Right now the shaker is drowning the flute. Make the flute a little louder.",
    "the flute a little louder, because right now it's getting lost",
])
def test_right_now_is_a_time_not_a_side(conductor, request_text):
    plan = _edited(conductor, "Flute 20 degrees left, Shaker 30 degrees left", request_text)
    assert (plan.source("Flute").gain_db, plan.source("Shaker").azimuth_deg, plan.source("Flute").azimuth_deg) == \
        pytest.approx((2.0, 30.0, 20.0), abs=1e-6)


def test_a_height_said_up_to_about_n_degrees(conductor):
    plan = _edited(conductor, "Flute 10 degrees down", "it sounds low. could you take the flute's height up to about 30 degrees?")
    assert plan.source("Flute").elevation_deg == pytest.approx(30.0, abs=1e-6)


def test_same_amount_just_the_other_side_mirrors_the_track_named_before(conductor):
    plan = _edited(conductor, "Shaker 25 degrees left", "the producer wants the shaker on the right now. same amount, just the other side.")
    assert plan.source("Shaker").azimuth_deg == pytest.approx(-25.0, abs=1e-6)


def test_a_swap_of_the_two_of_them_takes_the_subjects_not_a_prepositions_object(conductor):
    tracks = ["VO Mia", "VO Sam", "FX Car", "Amb Street"]
    plan = conductor.edit("Sam's standing next to the car and Mia's across the road now, swap the two of them",
                          conductor.plan("VO Mia 30 degrees left, VO Sam 10 degrees right, FX Car 40 degrees right", tracks))
    assert [plan.source(t).azimuth_deg for t in ("VO Mia", "VO Sam", "FX Car")] == pytest.approx([-10.0, 30.0, -40.0], abs=1e-6)


@pytest.mark.parametrize("tracks, setup, want", [
    (["Vln 1", "Vln 2", "Vla", "Vc", "Room"], "Vln 1 40 degrees left, Vln 2 20 degrees left, Vla 20 degrees right, "
     "Vc 40 degrees right", [25.0, 5.0, -5.0, -25.0]),
    (["Tenor", "Lead", "Bari", "Bass", "Room"], "Tenor 40 degrees left, Lead 20 degrees left, Bari 20 degrees right, "
     "Bass 40 degrees right", [25.0, 5.0, -5.0, -25.0]),
])
def test_the_quartet_names_the_four_tracks_of_one_family(conductor, tracks, setup, want):
    plan = conductor.edit("they are spread across the whole stage. narrow the quartet by 15 degrees each",
                          conductor.plan(setup, tracks))
    assert [plan.source(t).azimuth_deg for t in tracks[:4]] == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("request_text, want", [
    ("abeg the flute dey too for middle, push am left well well", 50.0),
    ("the flute is too in the middle, move it a little left", 25.0),
])
def test_pidgin_forms_and_too_in_the_middle_as_a_state(conductor, request_text, want):
    assert _after(conductor, "Flute 20 degrees left", request_text, "Flute", "azimuth_deg") == \
        pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("request_text, moved", [
    ("the car arrival a little louder please", "Q7 Car Arrive"),
    ("make the car departure in q8 a little louder", "Q8 Car Depart"),
])
def test_a_shared_word_then_a_word_only_one_track_has_names_that_track(conductor, request_text, moved):
    tracks = ["Q7 Car Arrive", "Q8 Car Depart", "Rain", "PA"]
    plan = conductor.edit(request_text, conductor.plan("Q7 Car Arrive 20 degrees left, Q8 Car Depart 20 degrees right", tracks))
    assert {t: plan.source(t).gain_db for t in tracks} == pytest.approx({t: 2.0 if t == moved else 0.0 for t in tracks})


# ---- thirteenth stop, batch 16's dev rows: mechanisms, with sentences of our own ----------------

@pytest.mark.parametrize("request_text, want", [
    ("Shaker must go more to left, little bit only.", 25.0),
    ("move the shaker to the left, not much, just little", 25.0),
    ("please, the shaker, move it to the left side 10 degree", 30.0),
])
def test_non_native_sizes_and_a_number_after_the_side(conductor, request_text, want):
    assert _after(conductor, "Shaker 20 degrees left", request_text, "Shaker", "azimuth_deg") == \
        pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("request_text, want_el", [
    ("The flute should be higher in the room, not much, on 5 degrees.", 15.0),
    ("flute higher overhead", 25.0),
    ("the flute ought to float just above the band. raise the flute, perhaps five degrees", 15.0),
])
def test_a_height_steps_size_said_apart_and_a_named_height_after_the_step(conductor, request_text, want_el):
    assert _after(conductor, "Flute 10 degrees up", request_text, "Flute", "elevation_deg") == \
        pytest.approx(want_el, abs=1e-6)


@pytest.mark.parametrize("request_text, want_db", [
    ("make the shaker quieter by for DB", -4.0),
    ("the shaker is too loud, decrease the volume little", -2.0),
    ("more shaker pls", 3.0),
    ("Turn the shaker down a lot in level.", -6.0),
])
def test_level_words_of_dictation_non_native_and_more_x(conductor, request_text, want_db):
    assert _after(conductor, "Shaker 20 degrees left", request_text, "Shaker", "gain_db") == \
        pytest.approx(want_db, abs=1e-6)


def test_a_generic_noun_after_a_name_and_a_modifier_word_of_the_same_track(conductor):
    tracks = ["Drum L", "Drum R", "Talkback Mic", "Bass Gtr", "Lead Gtr"]
    plan = conductor.edit("turn both drum mics down a bit", conductor.plan("Drum L 30 degrees left", tracks))
    assert [plan.source(t).gain_db for t in tracks] == pytest.approx([-2.0, -2.0, 0.0, 0.0, 0.0], abs=1e-6)
    plan = conductor.edit("put the base guitar in the middle", conductor.plan("Bass Gtr 20 degrees right, Lead Gtr "
                                                                              "30 degrees left", tracks))
    assert (plan.source("Bass Gtr").azimuth_deg, plan.source("Lead Gtr").azimuth_deg) == pytest.approx((0.0, 30.0), abs=1e-6)


def test_initials_a_hyphenated_modifier_and_a_part_of_the_piece(conductor):
    tracks = ["PBP", "Colour", "Crowd", "Star Bed", "Whoosh"]
    before = conductor.plan("PBP 20 degrees left, Colour 20 degrees right, Whoosh 10 degrees up, Star Bed 10 degrees up", tracks)
    plan = conductor.edit("the play-by-play in the middle please, colour stays where he is", before)
    assert (plan.source("PBP").azimuth_deg, plan.source("Colour").azimuth_deg) == pytest.approx((0.0, -20.0), abs=1e-6)
    plan = conductor.edit("the falling-star whoosh a lot higher", before)
    assert (plan.source("Whoosh").elevation_deg, plan.source("Star Bed").elevation_deg) == pytest.approx((40.0, 10.0), abs=1e-6)
    plan = conductor.edit("For the finale section, the crowd a little louder", before)
    assert plan.source("Crowd").gain_db == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("request_text", [
    "The pads feel huddled together behind the vocal. Spread the pads wider.",
    "Put the pads wider, like they're ringing from the walls of the hall.",
])
def test_a_huddled_state_and_a_like_clause_are_reasons(conductor, request_text):
    assert _pads_after(conductor, request_text) == pytest.approx((65.0, -65.0), abs=1e-6)
