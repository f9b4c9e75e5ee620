"""Issue 22, "one placement spec" and "half-done rules as data": the placement, the plan and the
presets are JSON Schema files checked by ``jsonschema``; every problem comes at once with its path;
NaN and infinities are refused; the closed room ``params`` and template ``music`` catch a typo;
the Python constants, the MIDI map and the REAPER scripts take their bounds from the one file."""
from __future__ import annotations

import ast
import copy
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stase.core import conventions, placement, plan as plan_module
from stase.core.errors import InputError
from stase.core.placement import (FIELD_SPECS, GAIN_DB_RANGE, NORMALISED_RANGES, PLACEMENT_FIELDS,
                                  REVERB_DB_RANGE, check_placement_fields, field_problem, placement_problems)
from stase.core.plan import Plan, plan_problems
from stase.core.schemas import PLACEMENT_SCHEMA_PATH, PLAN_SCHEMA_PATH, check_schema, load_schema
from stase.presets import PRESETS_DIR, verify_all
from stase.presets.schema import SCHEMA_FILES, verify

REPO = Path(__file__).resolve().parents[1]
NOT_FINITE = [float("nan"), float("inf"), float("-inf"), 10 ** 400]


# ------------------------------------------------------------------------------- the files
@pytest.mark.parametrize("path", [PLACEMENT_SCHEMA_PATH, PLAN_SCHEMA_PATH] + list(SCHEMA_FILES.values()),
                         ids=lambda p: Path(p).name)
def test_every_schema_is_valid_draft_2020_12(path):
    schema = json.loads(Path(path).read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    check_schema(schema)


def test_python_constants_are_read_from_the_schema_file():
    defs = json.loads(PLACEMENT_SCHEMA_PATH.read_text(encoding="utf-8"))["$defs"]
    assert GAIN_DB_RANGE == (defs["gain_db"]["minimum"], defs["gain_db"]["maximum"]) == (-120.0, 24.0)
    assert REVERB_DB_RANGE == (defs["reverb_db"]["minimum"], defs["reverb_db"]["maximum"]) == (-60.0, 12.0)
    assert placement.MAX_TRACK_NAME_CHARS == defs["track"]["maxLength"]
    assert placement.MAX_ROLE_CHARS == defs["role"]["maxLength"]
    assert FIELD_SPECS["distance_m"].exclusive_minimum and FIELD_SPECS["distance_m"].minimum == 0.0
    plan_schema = load_schema(PLAN_SCHEMA_PATH)
    assert plan_module.PLAN_KEYS == tuple(plan_schema["properties"])
    assert plan_module.SOURCE_KEYS == ("track",) + PLACEMENT_FIELDS + ("provenance",)


def test_the_schema_agrees_with_the_conventions():
    """conventions.py keeps its own copies (the DSP reads them); they must say what the schema says."""
    assert placement.MODES == conventions.LOCALISATION_MODES
    assert NORMALISED_RANGES["distance_m"] == (conventions.MIN_DISTANCE_M, conventions.MAX_DISTANCE_M)
    assert conventions.wrap_azimuth_deg(540.0) == 180.0 and NORMALISED_RANGES["azimuth_deg"][1] == 180.0
    assert NORMALISED_RANGES["elevation_deg"] == (-90.0, 90.0)


# ------------------------------------------------------------------------------- placement
def test_every_problem_at_once_each_with_its_path():
    data = {"room": 3, "pathway": "sideways", "sources": [
        {"track": "Sax", "gain_db": 0},
        {"track": "Vox", "azimuth_deg": "left", "mode": "dolby"},
        {"track": "Keys", "gain_db": 30, "distance_m": 0, "reverb_db": -61, "colour": "red"}]}
    problems = plan_problems(data)
    assert problems == [
        "room: must be a room id string, got int",
        "sources[1].azimuth_deg must be a finite number (deg), got 'left'",
        "sources[1].mode must be one of ('pan', 'itd_ild', 'hrtf'), got 'dolby'",
        "unknown key 'colour' in sources[2]; accepted: track, azimuth_deg, elevation_deg, distance_m, "
        "gain_db, mode, role, reverb_db, provenance",
        "sources[2].distance_m must be > 0 m, got 0",
        "sources[2].gain_db must be in [-120, 24] dB, got 30",
        "sources[2].reverb_db must be in [-60, 12] dB, got -61",
        "pathway: 'sideways' is not one of ('description', 'abstract', 'edit', 'manual')",
    ]  # in the schema's order of keys
    with pytest.raises(InputError) as info:
        Plan.from_dict(data)
    assert all(p in str(info.value) for p in problems)


@pytest.mark.parametrize("value", NOT_FINITE, ids=["nan", "inf", "-inf", "huge int"])
@pytest.mark.parametrize("key", [k for k in PLACEMENT_FIELDS if FIELD_SPECS[k].kind == "number"])
def test_nan_infinities_and_huge_ints_are_refused_everywhere(key, value):
    assert f"{key} must be a finite number" in field_problem(key, value)
    accepted, problems = placement_problems({key: value, "mode": "pan"})
    assert accepted == {"mode": "pan"} and len(problems) == 1
    assert any(f"sources[0].{key} must be a finite number" in p
               for p in plan_problems({"sources": [{"track": "A", key: value}]}))


def test_plan_level_reverb_and_booleans():
    assert plan_problems({"reverb_db": float("nan")}) == ["reverb_db must be a finite number (dB), got nan"]
    assert field_problem("gain_db", True) == "gain_db must be a finite number (dB), got True"
    assert field_problem("gain_db", -120) is None and field_problem("gain_db", 24.0) is None
    assert field_problem("distance_m", 1e-9) is None


def test_accepted_fields_are_the_good_ones_as_floats():
    accepted, problems = placement_problems({"azimuth_deg": 30, "gain_db": 99, "gian_db": 1}, "sources[4].")
    assert accepted == {"azimuth_deg": 30.0} and isinstance(accepted["azimuth_deg"], float)
    assert problems == ["unknown key 'gian_db' in sources[4]; did you mean 'gain_db'?",
                        "sources[4].gain_db must be in [-120, 24] dB, got 99"]
    with pytest.raises(InputError, match=r"gain_db must be in \[-120, 24\] dB, got 99"):
        check_placement_fields({"gain_db": 99})


def test_a_track_named_twice_is_still_refused():
    assert plan_problems({"sources": [{"track": "Sax"}, {"track": "SAX"}]}) == [
        "sources[1].track: 'SAX' appears twice (the same track as 'Sax')"]
    assert plan_problems({"sources": [{"track": "Gtr L"}, {"track": "Gtr L"}]}) == [
        "sources[1].track: 'Gtr L' appears twice"]


def test_a_shared_alias_structure_is_never_printed():
    """jsonschema words its own errors by repr() of the value; a 9**30-item shared list (what a
    YAML alias bomb loads as) would never finish.  stase's keywords never echo a container."""
    node: object = ["lol"] * 9
    for _ in range(30):
        node = [node] * 9
    assert plan_problems({"pathway": node, "room": node}) == [
        "room: must be a room id string, got list", "pathway: list is not one of ('description', "
        "'abstract', 'edit', 'manual')"]
    assert verify({"keywords": node}, "room", "x.yaml")[:1] == ["x.yaml.id: is required"]


# ------------------------------------------------------------------------------- presets
@pytest.fixture
def root(tmp_path):
    """A copy of the shipped presets to break."""
    dst = tmp_path / "presets"
    for folder in ("rooms", "templates"):
        shutil.copytree(PRESETS_DIR / folder, dst / folder)
    shutil.copy(PRESETS_DIR / "lexicon.yaml", dst / "lexicon.yaml")
    return dst


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def _params(**values):
    return lambda d: d.setdefault("params", {}).update(values)


def _music(**values):
    return lambda d: d["music"].update(values)


def _seat(**values):
    return lambda d: d["roles"][0].update(values)


#: One invalid fixture per rule the closed schemas add (file, change, the problem expected).
BREAKS = {
    "params typo": ("rooms/church.yaml", _params(bass_ratoi=1.2),
                    "church.yaml.params.bass_ratoi: unknown key; did you mean 'bass_ratio'?"),
    "params model": ("rooms/church.yaml", _params(model="cave"), "church.yaml.params.model: 'cave' is not one of"),
    "bass ratio high": ("rooms/church.yaml", _params(bass_ratio=3.0),
                        "church.yaml.params.bass_ratio: 3.0 is above the maximum 2"),
    "bass ratio nan": ("rooms/church.yaml", _params(bass_ratio=float("nan")),
                       "church.yaml.params.bass_ratio: must be a finite number, got nan"),
    "absorption zero": ("rooms/church.yaml", _params(absorption=0.0),
                        "church.yaml.params.absorption: 0.0 must be above 0"),
    "absorption over one": ("rooms/church.yaml", _params(absorption=1.5),
                            "church.yaml.params.absorption: 1.5 is above the maximum 1"),
    "ground absorption": ("rooms/outdoor.yaml", _params(ground_absorption=-0.1),
                          "outdoor.yaml.params.ground_absorption: -0.1 is below the minimum 0"),
    "position length": ("rooms/church.yaml", _params(source_m=[1.0, 2.0]),
                        "church.yaml.params.source_m: needs at least 3 items, has 2"),
    "position negative": ("rooms/church.yaml", _params(listener_m=[1.0, -2.0, 1.0]),
                          "church.yaml.params.listener_m[1]: -2.0 is below the minimum 0"),
    "params not a mapping": ("rooms/church.yaml", lambda d: d.update(params=[1]),
                             "church.yaml.params: must be a mapping, got list"),
    "music typo": ("templates/jazz_ensemble.yaml", _music(tempo=120),
                   "jazz_ensemble.yaml.music.tempo: unknown key; did you mean 'tempo_bpm'?"),
    "music tempo": ("templates/jazz_ensemble.yaml", _music(tempo_bpm=400),
                    "jazz_ensemble.yaml.music.tempo_bpm: 400 is above the maximum 300"),
    "music key": ("templates/jazz_ensemble.yaml", _music(key="H major"), "jazz_ensemble.yaml.music.key: must be a key"),
    "music bars float": ("templates/jazz_ensemble.yaml", _music(bars=8.0),
                         "jazz_ensemble.yaml.music.bars: must be an integer, got 8.0"),
    "music bars zero": ("templates/jazz_ensemble.yaml", _music(bars=0),
                        "jazz_ensemble.yaml.music.bars: 0 is below the minimum 1"),
    "music meter": ("templates/jazz_ensemble.yaml", _music(meter="4/3"), "jazz_ensemble.yaml.music.meter: must be a meter"),
    "music style": ("templates/jazz_ensemble.yaml", _music(style=""), "jazz_ensemble.yaml.music.style: must be a non-empty"),
    "seat gain (placement range)": ("templates/jazz_ensemble.yaml", _seat(gain_db=-121),
                                    "jazz_ensemble.yaml.roles[0].gain_db must be in [-120, 24] dB, got -121"),
    "seat gain nan": ("templates/jazz_ensemble.yaml", _seat(gain_db=float("nan")),
                      "jazz_ensemble.yaml.roles[0].gain_db must be a finite number (dB), got nan"),
    "seat distance far": ("templates/jazz_ensemble.yaml", _seat(distance_m=150.0),
                          "jazz_ensemble.yaml.roles[0].distance_m: 150.0 is above the maximum 100"),
    "seat name": ("templates/jazz_ensemble.yaml", _seat(name=" "),
                  "jazz_ensemble.yaml.roles[0].name must be a non-empty string"),
    "template reverb": ("templates/jazz_ensemble.yaml", lambda d: d.update(reverb_db=13),
                        "jazz_ensemble.yaml.reverb_db must be in [-60, 12] dB, got 13"),
    "lexicon role id": ("lexicon.yaml", lambda d: d["roles"].update({"Kazoo Lead": d["roles"]["flute"]}),
                        "lexicon.yaml.roles: key 'Kazoo Lead': must be an id"),
    "lexicon huge program": ("lexicon.yaml", lambda d: d["roles"]["flute"].update(gm_program=10 ** 400),
                             "lexicon.yaml.roles.flute.gm_program: must be a number a float can hold"),
    "lexicon extra key": ("lexicon.yaml", lambda d: d["roles"]["flute"].update(colour="silver"),
                          "lexicon.yaml.roles.flute.colour: unknown key"),
}


@pytest.mark.parametrize("rule", sorted(BREAKS))
def test_each_closed_schema_rule_has_an_invalid_fixture(root, rule):
    name, change, needle = BREAKS[rule]
    _edit(root / name, change)
    _, problems = verify_all(root)
    assert any(needle in p for p in problems), problems


def test_seats_take_the_placement_gain_range(root):
    """One gain range: a seat may hold what a plan may hold (the old seat range stopped at -60 dB)."""
    _edit(root / "templates" / "jazz_ensemble.yaml", _seat(gain_db=-100.0))
    _edit(root / "templates" / "choir.yaml", _seat(gain_db=24.0))
    assert verify_all(root)[1] == []


def test_verify_json_output_keeps_its_shape(root):
    _edit(root / "rooms" / "church.yaml", _params(bass_ratoi=1.2))
    _edit(root / "templates" / "rock_band.yaml", _music(tempo_bpm=10))
    out = subprocess.run([sys.executable, "-m", "stase.cli", "presets", "verify", "--json", "--root", str(root)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert set(report) == {"ok", "problems"} and report["ok"] is False
    assert all(isinstance(p, str) for p in report["problems"])
    assert report["problems"][0].startswith("church.yaml.params.bass_ratoi: unknown key")
    assert "rock_band.yaml.music.tempo_bpm: 10 is below the minimum 30" in report["problems"]


def test_room_params_are_exactly_the_keys_the_renderer_reads():
    """The closed ``params`` lists what stase.dsp.brir reads: a new parameter read there without a
    schema entry (or a schema entry nothing reads) fails here."""
    tree = ast.parse((REPO / "dsp" / "brir.py").read_text(encoding="utf-8"))
    read = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "params":
            read.add(node.args[0].value)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "params":
            read.add(node.slice.value)
    schema = load_schema(SCHEMA_FILES["room"])
    assert read == set(schema["properties"]["params"]["properties"])


def test_template_music_bounds_are_the_generators():
    from stase.agent.music import generator, theory
    music = load_schema(SCHEMA_FILES["template"])["$defs"]["music"]["properties"]
    assert (music["tempo_bpm"]["minimum"], music["tempo_bpm"]["maximum"]) == generator.TEMPO_RANGE
    assert music["bars"]["maximum"] == generator.MAX_BARS
    modes = re.search(r"\(([a-z|]+)\)", music["key"]["pattern"]).group(1).split("|")
    assert set(modes) == set(theory.MODES)
    accepted = re.compile(music["meter"]["pattern"])
    for beats in range(0, 18):
        for unit in (1, 2, 3, 4, 8, 16, 32):
            text = f"{beats}/{unit}"
            try:
                theory.parse_meter(text)
                parses = True
            except InputError:
                parses = False
            assert bool(accepted.search(text)) == parses, text
    for template in yaml.safe_load_all("\n---\n".join(
            p.read_text(encoding="utf-8") for p in sorted((PRESETS_DIR / "templates").glob("*.yaml")))):
        theory.parse_key(template["music"]["key"])


def test_field_shorthand_still_builds_a_jsonschema():
    from stase.presets.schema import Field
    schema = {"a": Field("number", required=True, minimum=0), "b": Field("str", pattern="[a-z]+")}
    assert verify({"a": float("inf"), "b": "Ab", "c": 1}, schema, "f") == [
        "f.a: must be a finite number, got inf", "f.b: 'Ab' does not match ^(?:[a-z]+)$",
        "f.c: unknown key (allowed: a, b)"]


# ------------------------------------------------------------------------------- Lua and MIDI
def test_the_lua_fields_are_generated_from_the_schema():
    out = subprocess.run([sys.executable, str(REPO / "tools" / "gen_lua_fields.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


LUA_CASES = ([(k, v) for k in ("azimuth_deg", "distance_m", "gain_db", "reverb_db")
              for v in (0, -1, 0.25, 24, 24.5, -120, -121, 12, 13, -60.5, 1e308, -1e308, "x")]
             + [("mode", m) for m in ("pan", "hrtf", "itd_ild", "dolby", "")]
             + [("role", "x" * n) for n in (0, 64, 65)])


def test_lua_field_problems_equal_the_daemons():
    lua = shutil.which("lua5.4")
    if not lua:
        pytest.fail("lua5.4 is not installed: apt-get install --no-install-recommends lua5.4")
    lib = REPO / "reaper_scripts" / "lib"
    cases = json.dumps([[k, v] for k, v in LUA_CASES])
    code = (f'local json = dofile("{lib}/stase_json.lua")\n'
            f'local core = dofile("{lib}/stase_core.lua").init(json, nil)\n'
            f'for _, c in ipairs(json.decode([==[{cases}]==])) do\n'
            '  io.write(tostring(core.field_problem(c[1], c[2])), "\\n")\nend\n'
            'io.write(#core.source_problems({track = "Sax", gain_db = 300, distance_m = -1}), "\\n")\n')
    proc = subprocess.run([lua, "-e", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    *lines, count = proc.stdout.splitlines()
    expected = [str(field_problem(k, v)).replace("None", "nil") for k, v in LUA_CASES]
    assert lines == expected
    assert count == "2"


def test_a_reaper_plan_out_of_bounds_is_not_applied():
    """stase_core.match_plan refuses what the daemon refuses (the bounds are the generated ones)."""
    lua = shutil.which("lua5.4")
    if not lua:
        pytest.fail("lua5.4 is not installed: apt-get install --no-install-recommends lua5.4")
    lib = REPO / "reaper_scripts" / "lib"
    code = (f'local json = dofile("{lib}/stase_json.lua")\n'
            f'local core = dofile("{lib}/stase_core.lua").init(json, nil)\n'
            'local plan = {sources = {{track = "Sax", azimuth_deg = 30, gain_db = 1e308}, {track = "Vox", azimuth_deg = 0}}}\n'
            'local m, u, p = core.match_plan(plan, {{name = "Sax"}, {name = "Vox"}})\n'
            'io.write(#m, "\\n", table.concat(p, "\\n"), "\\n")\n')
    proc = subprocess.run([lua, "-e", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["1", "source 'Sax': gain_db must be in [-120, 24] dB, got 1e+308"]


def test_the_midi_default_map_sweeps_the_normalised_ranges():
    from stase.bridge.midi import DEFAULT_MAPPING, check_mapping
    by_field = {c["field"]: (c["min"], c["max"]) for c in DEFAULT_MAPPING["controls"]}
    assert by_field["azimuth_deg"] == NORMALISED_RANGES["azimuth_deg"]
    assert by_field["elevation_deg"] == NORMALISED_RANGES["elevation_deg"]
    broken = copy.deepcopy(DEFAULT_MAPPING)
    broken["controls"][3]["max"] = GAIN_DB_RANGE[1] + 1
    with pytest.raises(InputError, match=r"controls\[3\]\.max: gain_db must be in \[-120, 24\] dB, got 25"):
        check_mapping(broken)
    assert not math.isnan(by_field["gain_db"][0])


_EDGE_VALUES = [0, 1, -1, 0.1, 1e-9, 100.0, 100.0000001, -120.0, -120.0001, 24.0, 24.0001, 12.0,
                12.0001, -60.0, -60.0001, 1e308, float("nan"), float("inf"), -float("inf"), True,
                False, "1", None, 2 ** 60, -180.0, 180.0, 180.1, 90.0, -90.0, 90.5, "hrtf", "pan",
                "itd_ild", "HRTF", "x", [], {}]


@pytest.mark.parametrize("key", sorted(placement.FIELD_SPECS))
def test_the_fast_path_accepts_only_what_the_schema_accepts(key, monkeypatch):
    """placement_problems answers plain in-bounds numbers and modes without jsonschema (a live
    move checks its fields every block); on every edge value it agrees with the schema."""
    slow = {}
    with monkeypatch.context() as m:
        m.setattr(placement, "_fast_accept", lambda fields: None)
        for v in _EDGE_VALUES:
            slow[repr(v)] = placement.placement_problems({key: v})
    for v in _EDGE_VALUES:
        fast = placement._fast_accept({key: v})
        accepted, problems = slow[repr(v)]
        if fast is not None:
            assert problems == [] and accepted == fast, (key, v)
        assert placement.placement_problems({key: v}) == (accepted, problems), (key, v)
