"""Conductor end to end (real embedding model, no language model), its CLI, the eval set, and the
model proposal's validation; one real-GGUF test marked ``model``."""
from __future__ import annotations

import itertools
import json

import pytest
import yaml

from stase.agent.conductor import Conductor
from stase.agent.layout import MIN_SEPARATION_DEG, SIMILAR_DISTANCE_RATIO
from bench.conductor import check_expectation, load_eval, run_row
from stase.cli import main as stase
from stase.core.conventions import great_circle_deg
from stase.core.errors import InputError
from stase.core.plan import Plan
from stase.presets import PRESETS_DIR

BAND = ["Vox", "Gtr L", "Gtr R", "Bass", "Drums", "Keys"]


@pytest.fixture(scope="module")
def conductor():
    c = Conductor(model="none")
    c.warm_up()
    return c


def test_description_pathway_is_exact_and_explained(conductor):
    plan = conductor.plan("put the keys 45 degrees to the right and the drums behind me, 4 m away", BAND)
    assert plan.pathway == "description"
    assert plan.source("Keys").azimuth_deg == -45.0
    drums = plan.source("Drums")
    assert (drums.azimuth_deg, drums.distance_m) == (180.0, 4.0)
    assert "drums behind me" in drums.provenance["azimuth_deg"]
    for s in plan.sources:
        assert {"azimuth_deg", "elevation_deg", "distance_m"} <= set(s.provenance), s
    assert plan.music_description and plan.mix_notes


def test_abstract_pathway_uses_the_template_seats(conductor):
    plan = conductor.plan("a smoky late-night jazz club", ["Sax", "Tpt", "Piano", "Upright", "Drums"])
    assert (plan.pathway, plan.template, plan.room) == ("abstract", "jazz_ensemble", "jazz_club")
    seats = {r["role"]: r for r in yaml.safe_load((PRESETS_DIR / "templates" / "jazz_ensemble.yaml").read_text())["roles"]}
    for s in plan.sources:
        seat = seats[s.role]
        assert (s.azimuth_deg, s.distance_m) == (seat["azimuth_deg"], seat["distance_m"]), s.track


def test_unmatched_tracks_do_not_collide(conductor):
    tracks = ["Foo", "Bar", "Baz", "Qux", "Zap", "Vox"]
    plan = conductor.plan("a polished pop record", tracks)
    for a, b in itertools.combinations(plan.sources, 2):
        ratio = max(a.distance_m, b.distance_m) / min(a.distance_m, b.distance_m)
        sep = great_circle_deg(a.azimuth_deg, a.elevation_deg, b.azimuth_deg, b.elevation_deg)
        assert sep >= MIN_SEPARATION_DEG - 1e-9 or ratio >= SIMILAR_DISTANCE_RATIO, (a, b)


def test_room_words_override_the_template_room(conductor):
    assert conductor.plan("a rock band playing in a cathedral", BAND).room == "church"


def test_edits(conductor):
    base = conductor.plan("keys 20 degrees left, drums 3 m away, bass 30 degrees right", BAND)
    moved = conductor.edit("move the keys further left", base)
    assert moved.pathway == "edit"
    assert moved.source("Keys").azimuth_deg == pytest.approx(35.0)
    assert conductor.edit("push the drums back 2 m", base).source("Drums").distance_m == pytest.approx(5.0)
    swapped = conductor.edit("swap the keys and the bass", base)
    assert swapped.source("Keys").azimuth_deg == pytest.approx(-30.0)
    assert swapped.source("Bass").azimuth_deg == pytest.approx(20.0)
    untouched = {s.track: s.azimuth_deg for s in base.sources if s.track not in ("Keys", "Bass")}
    assert {t: swapped.source(t).azimuth_deg for t in untouched} == untouched
    with pytest.raises(InputError, match="could not find an edit"):
        conductor.edit("hmm, not sure", base)


def test_user_mistakes(conductor):
    with pytest.raises(InputError, match="empty"):
        conductor.plan("   ", BAND)
    with pytest.raises(InputError, match="trumpet"):
        conductor.plan("trumpet hard left", BAND)
    with pytest.raises(InputError, match="which track"):
        conductor.plan("put the theremin hard left", BAND)
    with pytest.raises(InputError, match="twice"):
        conductor.plan("jazz", ["Sax", "sax"])


def test_no_tracks_gives_template_seats_and_music(conductor):
    plan = conductor.plan("sacred choral music in a cathedral")
    seats = yaml.safe_load((PRESETS_DIR / "templates" / "choir.yaml").read_text())
    assert [s.track for s in plan.sources] == [r.get("name") or r["role"] for r in seats["roles"]]
    music = plan.music
    assert music["template"] == "choir" and music["key"] == seats["music"]["key"]
    assert music["instruments"] == [{"track": s.track, "role": s.role} for s in plan.sources]
    assert Plan.from_dict(json.loads(plan.to_json())).to_dict() == plan.to_dict()


def test_eval_set_explicit_accuracy(conductor):
    """The issue's goal (>= 95 % explicit cues) on the labelled set, edits included."""
    rows = [r for r in load_eval() if r["kind"] != "abstract"]
    assert len(load_eval()) >= 100
    checks = [check_expectation(run_row(conductor, r), e) for r in rows for e in r["expect"]]
    assert sum(checks) / len(checks) >= 0.95


def test_cli_json_batch_and_errors(conductor, capsys, tmp_path):
    assert stase(["plan", "sax 30 degrees left", "--tracks", "Sax,Drums", "--model", "none", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"pathway", "template", "room", "sources", "music_description", "mix_notes"} <= set(out)
    assert {"track", "role", "azimuth_deg", "elevation_deg", "distance_m", "mode", "provenance"} <= set(out["sources"][0])
    current = tmp_path / "current.json"
    current.write_text(json.dumps(out))
    assert stase(["plan", "move the sax further left", "--plan", str(current), "--model", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sources"][0]["azimuth_deg"] == pytest.approx(45.0)
    batch = tmp_path / "b.jsonl"
    batch.write_text("\n".join(json.dumps({"prompt": p, "tracks": ["Sax", "Drums"]})
                               for p in ("sax hard left", "drums behind me", "a jazz trio")) + "\n")
    assert stase(["plan", "--batch", str(batch), "--model", "none", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [ln["pathway"] for ln in lines] == ["description", "description", "abstract"]
    assert lines[0]["sources"][0]["azimuth_deg"] == 90.0
    assert stase(["plan", "", "--tracks", "Sax", "--model", "none"]) == 2
    assert stase(["plan", "trumpet left", "--tracks", "Sax", "--model", "none"]) == 2
    current.write_text("{broken")
    assert stase(["plan", "sax left", "--plan", str(current), "--model", "none"]) == 2
    assert "cannot parse plan file" in capsys.readouterr().err


def test_model_proposals_are_validated_and_clamped():
    from stase.agent.llm import MAX_NUDGE_DEG, apply_proposal
    plan = Plan.from_dict({"sources": [{"track": "Sax", "azimuth_deg": 10.0, "distance_m": 2.0},
                                       {"track": "Keys", "azimuth_deg": -20.0, "distance_m": 4.0}]})
    proposal = {"template": "jazz_ensemble", "music_description": "  Cool   jazz. ", "mix_notes": "Keep it dry.",
                "refinements": [{"track": "Sax", "azimuth_deg": 170, "distance_m": 50},
                                {"track": "Keys", "azimuth_deg": -90, "distance_m": 1},
                                {"track": "Nope", "azimuth_deg": 0, "distance_m": 1}]}
    apply_proposal(plan, proposal, explicit={"Keys"}, model_name="m")
    sax, keys = plan.source("Sax"), plan.source("Keys")
    assert sax.azimuth_deg == pytest.approx(10.0 + MAX_NUDGE_DEG) and sax.distance_m == pytest.approx(2.5)
    assert (keys.azimuth_deg, keys.distance_m) == (-20.0, 4.0)  # explicitly placed: untouched
    assert plan.music_description == "Cool jazz."


@pytest.mark.model
@pytest.mark.slow
def test_real_gguf_answers_inside_the_grammar():
    from stase.agent.llm import ConductorModel, resolve_model_path
    model = ConductorModel(resolve_model_path("smollm2"))
    schema = {"type": "object", "properties": {"template": {"enum": ["choir", "rock_band"]}}, "required": ["template"]}
    messages = [{"role": "user", "content": "Which stage suits 'hymns in a cathedral'? Answer JSON."}]
    first = model.complete_json(messages, schema, max_tokens=24)
    assert first is not None and first["template"] in ("choir", "rock_band")
    assert model.complete_json(messages, schema, max_tokens=24) == first  # deterministic
