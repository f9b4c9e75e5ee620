"""The learned reading of edit requests (issue 16): agent/edit_reader.py and its use in Conductor.edit.

Sentences here are our own (not rows of tests/data/producer_eval.jsonl); each conductor case is
checked both ways: the rules alone miss it (refuse it, or change nothing or the wrong thing) and
the conductor with the reader does what it says, with the reading named in the plan's notes.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from stase.agent import edit_reader as er
from stase.agent.conductor import Conductor
from stase.core.errors import InputError

DATA = Path(__file__).parent / "data" / "producer_eval.jsonl"
TRACKS = ["Vocal", "Tambourine", "Piano", "Bass", "Cello", "Violin"]
SETUP = ("tambourine 1 metre away, piano 20 degrees left, bass 10 degrees right, cello 30 degrees right, "
         "violin 30 degrees left, vocal centre")


@pytest.fixture(scope="module")
def conductors():
    return Conductor(model="none"), Conductor(model="none", edit_reader=False)


def _places(plan):
    return {s.track: (s.azimuth_deg, s.elevation_deg, s.distance_m, s.gain_db) for s in plan.sources}


# ------------------------------------------------------------------ pieces
@pytest.mark.parametrize("text, quantity, want", [
    ("bring it 18 inches closer", "distance", " 18 inches"),
    ("foley is 2 m out, bring it 0.5 m in", "distance", " 0.5 m"),   # the last number of the unit
    ("give the vocal 5 more db", "gain", " 5 db"),
    ("give the vocal 5 more db", "distance", ""),                   # a number of another quantity
    ("nudge it up a touch", "elevation", " a bit"),
    ("way up", "elevation", " a lot"),
    ("pull the bass down a bunch", "gain", " a lot"),
    ("move it", "azimuth", ""),
])
def test_size_words_prefer_a_number_of_the_quantity_then_a_size_word(text, quantity, want):
    assert er.size_words(text, quantity) == want


def test_effect_operations_and_agreement():
    before = {"A": (10.0, 0.0, 2.0, 0.0), "B": (-10.0, 0.0, 2.0, 0.0)}
    after = {"A": (10.0, 5.0, 3.0, -2.0), "B": (-10.0, 0.0, 2.0, 0.0)}
    done = er.effect_operations(before, after)
    assert done == {"up", "further", "quieter"}
    assert er.agrees("further", done) and not er.agrees("closer", done) and not er.agrees("left", done)
    moved = er.effect_operations(before, {"A": (-10.0, 0.0, 2.0, 0.0), "B": (10.0, 0.0, 2.0, 0.0)})
    assert moved == {"azimuth"} and all(er.agrees(op, moved) for op in ("swap", "mirror", "left", "wider", "centre"))
    assert er.effect_operations(before, dict(before)) == set()


EXAMPLES = [
    {"text": t, "operation": op}
    for op, texts in {
        "closer": ["bring the X closer", "X nearer please", "pull X in towards me", "X should be closer"],
        "further": ["push the X back", "X further away", "send X into the distance", "X more distant"],
        "swap": ["swap X and Y", "trade X with Y", "X and Y change places", "switch X and Y around"],
        "mirror": ["mirror the mix", "flip everything left to right", "mirror X and Y", "reverse the sides"],
    }.items() for t in texts]


def test_reader_reads_the_operation_and_its_tracks_lexical_only():
    reader = er.EditReader(EXAMPLES, encoder=None)
    assert reader.method == "lexical"
    reading = reader.read("could you push the drums back a little", [["Drums"]], ["Drums", "Bass"], 0.3)
    assert reading.operation == "further" and reading.request == "Drums a bit further away"
    assert reading.tracks == ("Drums",) and "learned reading: further" in reading.note()
    # a single-track operation acts on the first track named; a swap takes two, a mirror all named
    reading = reader.read("bring the drums closer, they fight the bass", [["Drums"], ["Bass"]], ["Drums", "Bass"], 0.3)
    assert reading.operation == "closer" and reading.tracks == ("Drums",)
    assert reader.read("swap the drums and the bass", [["Drums"], ["Bass"]], ["Drums", "Bass"], 0.3).request \
        == "swap Drums and Bass"
    assert reader.read("swap the drums around", [["Drums"]], ["Drums", "Bass"], 0.3) is None   # one track
    assert reader.read("flip everything left to right", [], ["Drums", "Bass"], 0.3).request == "mirror everything"
    assert reader.read("bring the drums closer", [], ["Drums", "Bass"], 0.3) is None           # no track named
    assert reader.read("push the drums back", [["Drums"]], ["Drums"], 0.9999) is None        # below the bar


def test_examples_are_dev_rows_with_their_own_words():
    """The packaged examples are dev requests of the producer set, as written: never held out."""
    rows = {r["id"]: r for r in map(json.loads, DATA.read_text(encoding="utf-8").splitlines())}
    examples = [json.loads(line) for line in er.EXAMPLES_PATH.read_text(encoding="utf-8").splitlines()]
    assert len(examples) >= 600
    heldout_texts = {r["prompt"] for r in rows.values() if r["split"] == "heldout"}
    for e in examples:
        row = rows[e["source_id"]]
        assert row["split"] == "dev" and row["prompt"] == e["text"] and row["kind"].startswith("edit_")
        assert e["text"] not in heldout_texts and e["operation"] in er.OPERATIONS
    assert {e["operation"] for e in examples} == set(er.OPERATIONS)


def test_a_bad_example_file_is_named(tmp_path):
    bad = tmp_path / "ops.jsonl"
    bad.write_text('{"text": "x closer", "operation": "closer"}\n{"text": "y", "operation": "teleport"}\n')
    with pytest.raises(InputError, match="line 2"):
        er.load_examples(bad)


# ------------------------------------------------------------------ through the conductor
@pytest.mark.parametrize("request_text, track, field, change", [
    ("honestly the cello and violin are sitting in each other's seats", "Cello", 0, +60.0),
    ("the vocal is kinda timid, give it some oomph", "Vocal", 3, +3.0),
    ("the bass is hiding, can you dig it out of the mix", "Bass", 3, +3.0),
])
def test_requests_the_rules_miss_are_read_by_the_reader(conductors, request_text, track, field, change):
    with_reader, rules_only = conductors
    before = rules_only.plan(SETUP, TRACKS)
    try:
        missed = _places(rules_only.edit(request_text, before)) == _places(before)
    except InputError:
        missed = True
    assert missed   # the rules alone change nothing (or refuse): the case tests the reader
    plan = with_reader.edit(request_text, before)
    got, was = _places(plan)[track], _places(before)[track]
    assert got[field] - was[field] == pytest.approx(change, abs=0.01)
    assert "learned reading" in plan.mix_notes
    moved = {t for t, p in _places(plan).items() if p != _places(before)[t]}
    assert moved <= {"Cello", "Violin"} if track == "Cello" else moved == {track}


def test_a_mirror_of_the_whole_mix_said_in_new_words(conductors):
    with_reader, rules_only = conductors
    before = rules_only.plan(SETUP, TRACKS)
    with pytest.raises(InputError):
        rules_only.edit("I'd love the whole picture reversed, just to hear it", before)
    plan = with_reader.edit("I'd love the whole picture reversed, just to hear it", before)
    for t, (az, *_rest) in _places(before).items():
        assert _places(plan)[t][0] == pytest.approx(-az, abs=0.01)


@pytest.mark.parametrize("request_text", [
    "tambourine a hair further away", "swap the cello and the violin", "piano 10 degrees further left",
    "vocal up 2 dB and bass down 2 dB", "mirror the strings",
])
def test_edits_the_rules_read_are_left_as_the_rules_made_them(conductors, request_text):
    with_reader, rules_only = conductors
    before = rules_only.plan(SETUP, TRACKS)
    plan = with_reader.edit(request_text, before)
    assert _places(plan) == _places(rules_only.edit(request_text, before))
    assert "learned reading" not in plan.mix_notes


def test_a_request_naming_no_session_track_is_still_refused(conductors):
    with_reader, _ = conductors
    before = with_reader.plan(SETUP, TRACKS)
    with pytest.raises(InputError, match="no session track plays"):
        with_reader.edit("make the saxophone louder", before)
    with pytest.raises(InputError, match="could not find an edit"):
        with_reader.edit("hmm, nice", before)


def test_named_groups_join_a_list_of_names_and_nothing_else():
    assert er.named_groups("trumpet and trombone solos are a duet, both to the middle",
                           [("trumpet", ["Tpt"]), ("trombone", ["Tbn"])]) == [["Tpt", "Tbn"]]
    assert er.named_groups("gtr l, gtr r and the keys wider",
                           [("gtr l", ["Gtr L"]), ("gtr r", ["Gtr R"]), ("keys", ["Keys"])]) == [["Gtr L", "Gtr R", "Keys"]]
    assert er.named_groups("move the guitar right, it clashes with the piano",
                           [("guitar", ["Gtr"]), ("piano", ["Pno"])]) == [["Gtr"], ["Pno"]]
    assert er.named_groups("the sax", [("sax", [])]) == []   # an absent instrument names no track



def test_same_move_is_one_operation_on_the_reading_tracks_only():
    """The size rule's test of an applied edit (edit_reader.same_move): the operation's quantity
    moved its way on the named tracks, nothing else changed anywhere."""
    from stase.agent.edit_reader import same_move
    before = {"Sax": (20.0, 0.0, 2.0, 0.0), "Keys": (-30.0, 0.0, 3.0, 0.0)}
    assert same_move("left", before, {**before, "Sax": (35.0, 0.0, 2.0, 0.0)}, ("Sax",))
    assert not same_move("right", before, {**before, "Sax": (35.0, 0.0, 2.0, 0.0)}, ("Sax",))
    assert not same_move("left", before, {**before, "Keys": (-15.0, 0.0, 3.0, 0.0)}, ("Sax",))   # another track
    assert not same_move("left", before, {**before, "Sax": (35.0, 0.0, 3.0, 0.0)}, ("Sax",))    # and its distance
    narrowed = {"Sax": (15.0, 0.0, 2.0, 0.0), "Keys": (-25.0, 0.0, 3.0, 0.0)}
    assert same_move("narrower", before, narrowed, ("Sax", "Keys"))
    assert not same_move("wider", before, narrowed, ("Sax", "Keys"))
    assert same_move("closer", before, {**before, "Keys": (-30.0, 0.0, 1.5, 0.0)}, ("Keys",))
    assert not same_move("louder", before, before, ("Sax",))                                 # nothing moved
    assert not same_move("swap", before, {"Sax": before["Keys"], "Keys": before["Sax"]}, ("Sax", "Keys"))


# ------------------------------------------------------------------ the size rule (Conductor._resized)
@pytest.mark.parametrize("text, want", [
    ("a little bit more on the right", {" a bit"}),
    ("quite a bit further back", {" a lot"}),                       # the longest phrase wins
    ("push it way up", {" a lot"}),
    ("much closer please", {" a lot"}),
    ("it's way out on the left, nudge it in a touch", {" a bit"}),  # "way out" is a place
    ("too much in the ceiling, drop it a little", {" a bit"}),      # "too much" is a complaint
    ("is there a way to lift it", set()),
    ("not much! a hair.", {" a bit"}),
    ("a lot louder, then a touch left", {" a bit", " a lot"}),
])
def test_said_sizes_counts_size_words_only(text, want):
    assert er.said_sizes(text) == want


RESIZE_TRACKS = ["Vocal", "Flute", "Cello", "Harp", "Oboe", "Bass"]


@pytest.mark.parametrize("setup, request_text, want", [
    # the rules read "on the right" as the place, a step beyond where it is; the size says 5 deg
    ("flute 25 degrees right", "could the flute go a little bit more on the right please", {"Flute": -30.0}),
    # the rules pull both to the centre; "a bit" is 5 deg each
    ("harp 30 degrees left, cello 30 degrees right", "squeeze the harp and the cello a bit toward centre",
     {"Harp": 25.0, "Cello": -25.0}),
])
def test_size_rule_reads_the_step_at_the_size_said(setup, request_text, want, monkeypatch):
    from stase.agent import conductor as conductor_module
    conductor = Conductor(model="none")
    results = {}
    for switch in (False, True):
        monkeypatch.setattr(conductor_module, "RESIZE_STEPS", switch)
        plan = conductor.edit(request_text, conductor.plan(setup, RESIZE_TRACKS))
        results[switch] = {t: plan.source(t).azimuth_deg for t in want}
    assert results[True] == pytest.approx(want)
    assert results[False] != pytest.approx(want)       # the rules alone take another step


@pytest.mark.parametrize("setup, request_text, track, field, want", [
    ("flute 25 degrees right", "the flute is way out on the right, nudge it toward the middle a touch",
     "Flute", "azimuth_deg", -20.0),
    ("cello 3 metres away", "bring the cello closer by a metre", "Cello", "distance_m", 2.0),
    ("oboe 10 degrees up", "the oboe is too much in the ceiling, drop it a little", "Oboe", "elevation_deg", 5.0),
])
def test_size_rule_leaves_complaints_and_quantities_alone(setup, request_text, track, field, want):
    conductor = Conductor(model="none")
    plan = conductor.edit(request_text, conductor.plan(setup, RESIZE_TRACKS))
    assert getattr(plan.source(track), field) == pytest.approx(want)


def test_size_rule_never_changes_which_tracks_move():
    conductor = Conductor(model="none")
    before = conductor.plan("flute 20 degrees left, oboe 20 degrees right, bass 40 degrees right", RESIZE_TRACKS)
    plan = conductor.edit("spread flute and oboe a bit, leave the bass alone", before)
    assert plan.source("Bass").azimuth_deg == before.source("Bass").azimuth_deg
    assert (plan.source("Flute").azimuth_deg, plan.source("Oboe").azimuth_deg) == pytest.approx((25.0, -25.0))
