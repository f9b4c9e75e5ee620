"""Stage templates and the lexicon: the shipped files are valid, and every schema rule that
guards them has an invalid fixture that verify() catches, all problems reported at once."""
from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import pytest
import yaml

from stase.agent.lexicon import Lexicon
from stase.presets import PRESETS_DIR, load_lexicon, load_templates, verify_all

TEMPLATE_IDS = {"classical_orchestra", "jazz_ensemble", "rock_band", "chamber_music", "electronic_dj", "choir",
                "solo_performance", "world_music_ensemble", "studio_recording", "outdoor_festival"}
ROOM_IDS = {"concert_hall", "jazz_club", "dry_studio", "small_chamber", "club_venue", "church", "recital_hall",
            "world_space", "pro_studio", "outdoor"}


def contract_roles() -> set[str]:
    """One role vocabulary: lexicon roles = template roles = generator voices = listener classes
    (the listener's classes are the code's list, stase.agent.listener_labels.ROLES)."""
    from stase.agent.listener_labels import ROLES
    return set(ROLES)


def test_shipped_templates_and_lexicon():
    templates = load_templates()
    assert set(templates) == TEMPLATE_IDS
    roles = set(load_lexicon()["roles"])
    assert roles == contract_roles() and len(roles) == 24
    for tid, t in templates.items():
        assert t["room"] in ROOM_IDS, tid
        assert {r["role"] for r in t["roles"]} <= roles
        music = t["music"]
        assert {"style", "tempo_bpm", "key", "bars", "meter"} <= set(music), tid
        assert 30 <= music["tempo_bpm"] <= 250 and isinstance(music["bars"], int)
        assert re.fullmatch(r"[A-G][#b]? (major|minor|dorian|mixolydian|lydian|phrygian)", music["key"]), music["key"]
        assert len(t["layout_source"]) > 40


def test_aliases_are_unambiguous():
    """No alias phrase is listed under two roles (the first would silently win)."""
    seen: dict[str, str] = {}
    for role, spec in load_lexicon()["roles"].items():
        for alias in spec["aliases"]:
            assert alias == alias.lower(), alias
            assert seen.setdefault(alias, role) == role, f"{alias!r} in {seen[alias]} and {role}"
    lex = Lexicon(load_lexicon()["roles"])
    for role in lex.roles:
        assert lex.role_of(role.replace("_", " ")) == role


@pytest.fixture
def root(tmp_path):
    """A copy of the shipped presets to break."""
    dst = tmp_path / "presets"
    shutil.copytree(PRESETS_DIR / "templates", dst / "templates")
    shutil.copy(PRESETS_DIR / "lexicon.yaml", dst / "lexicon.yaml")
    if (PRESETS_DIR / "rooms").is_dir():
        shutil.copytree(PRESETS_DIR / "rooms", dst / "rooms")
    return dst


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def _seat(key, value):
    def change(d):
        d["roles"][0][key] = value
    return change


TEMPLATE_BREAKS = {
    "id": (lambda d: d.update(id="Bad Id"), "jazz_ensemble.yaml.id"),
    "name": (lambda d: d.pop("name"), "jazz_ensemble.yaml.name: is required"),
    "description": (lambda d: d.update(description=""), "jazz_ensemble.yaml.description"),
    "keywords": (lambda d: d.update(keywords=[]), "jazz_ensemble.yaml.keywords: needs at least 1"),
    "keyword item": (lambda d: d.update(keywords=["ok", 3]), "jazz_ensemble.yaml.keywords[1]"),
    "room": (lambda d: d.pop("room"), "jazz_ensemble.yaml.room: is required"),
    "roles empty": (lambda d: d.update(roles=[]), "jazz_ensemble.yaml.roles: needs at least 1"),
    "roles too many": (lambda d: d.update(roles=d["roles"] * 2), "jazz_ensemble.yaml.roles: allows at most 6"),
    "seat role": (_seat("role", "Sax Phone"), "jazz_ensemble.yaml.roles[0].role"),
    "seat azimuth": (_seat("azimuth_deg", 200), "jazz_ensemble.yaml.roles[0].azimuth_deg: 200 is above"),
    "seat elevation": (_seat("elevation_deg", -95), "jazz_ensemble.yaml.roles[0].elevation_deg: -95 is below"),
    "seat distance": (_seat("distance_m", 0.0), "jazz_ensemble.yaml.roles[0].distance_m: 0.0 is below"),
    "seat gain": (_seat("gain_db", "loud"), "jazz_ensemble.yaml.roles[0].gain_db"),
    "seat extra key": (_seat("pan", 0.5), "jazz_ensemble.yaml.roles[0].pan: unknown key"),
    "layout_source": (lambda d: d.pop("layout_source"), "jazz_ensemble.yaml.layout_source: is required"),
    "music": (lambda d: d.update(music="swing"), "jazz_ensemble.yaml.music: must be a mapping"),
    "extra key": (lambda d: d.update(colour="blue"), "jazz_ensemble.yaml.colour: unknown key"),
}


@pytest.mark.parametrize("rule", sorted(TEMPLATE_BREAKS))
def test_each_template_rule_has_an_invalid_fixture(root, rule):
    change, needle = TEMPLATE_BREAKS[rule]
    _edit(root / "templates" / "jazz_ensemble.yaml", change)
    _, problems = verify_all(root)
    assert any(needle in p for p in problems), problems


def test_cross_file_rules(root):
    _edit(root / "templates" / "choir.yaml", lambda d: d.update(id="choir_two"))
    _edit(root / "templates" / "rock_band.yaml", _seat("role", "kazoo"))
    if (root / "rooms").is_dir() and any((root / "rooms").iterdir()):
        _edit(root / "templates" / "solo_performance.yaml", lambda d: d.update(room="moon_base"))
    _, problems = verify_all(root)
    text = "\n".join(problems)
    assert "must equal the file name" in text
    assert "rock_band.yaml.roles[0].role: 'kazoo' is not in lexicon.yaml" in text
    if (root / "rooms").is_dir() and any((root / "rooms").iterdir()):
        assert "'moon_base' is not a room id" in text


def test_lexicon_rules(root):
    def change(d):
        d["roles"]["drums"].pop("family")
        d["roles"]["bass"]["aliases"] = "bs"
        d["roles"]["piano"]["aliases"].append(7)
    _edit(root / "lexicon.yaml", change)
    _, problems = verify_all(root)
    text = "\n".join(problems)
    for needle in ("roles.drums.family: is required", "roles.bass.aliases: must be a list",
                   "roles.piano.aliases["):
        assert needle in text, problems


def test_verify_reports_every_problem_at_once(root):
    """Three files, five problems: one call lists all five."""
    _edit(root / "templates" / "jazz_ensemble.yaml", lambda d: (d.pop("name"), d.update(keywords=[])))
    _edit(root / "templates" / "choir.yaml", _seat("azimuth_deg", 999))
    _edit(root / "lexicon.yaml", lambda d: (d["roles"]["flute"].pop("family"), d["roles"]["oboe_x"] if False else None))
    _edit(root / "templates" / "rock_band.yaml", lambda d: d.update(layout_source=""))
    _, problems = verify_all(root)
    needles = ["jazz_ensemble.yaml.name", "jazz_ensemble.yaml.keywords", "choir.yaml.roles[0].azimuth_deg",
               "roles.flute.family", "rock_band.yaml.layout_source"]
    for n in needles:
        assert any(n in p for p in problems), (n, problems)
