"""Issue 14, the plan and prompt part: a long prompt cannot freeze the parser (every pattern is
linear and the prompt is capped), a YAML alias bomb or a huge integer in a plan is one clear
message, a misspelt key is named, ``stase plan --batch`` survives bad lines and ``--out`` a folder.

Defects: 2 (the parser half), 8, 11, and from 15/20 a huge integer in a plan, ``plan --out``
naming a folder, ``{"prompt": 123}``, a misspelt plan key.
"""
from __future__ import annotations

import json
import time
import tracemalloc

import pytest

from stase.agent.conductor import Conductor
from stase.agent.parser import MAX_PROMPT_CHARS, _parse, parse_prompt
from stase.cli import main as stase
from stase.core.errors import InputError
from stase.core.plan import (MAX_PROVENANCE_CHARS, PLAN_KEYS, SOURCE_KEYS, Plan, SourcePlacement, load_plan,
                      plan_problems, save_plan)

BAND = ["Vox", "Sax", "Keys", "Bass", "Drums", "Gtr L", "Gtr R"]
HUGE = 10 ** 400   # float() of it overflows


@pytest.fixture(scope="module")
def conductor():
    return Conductor(model="none")


def _best_seconds(fn, repeats: int = 3, enough: float = 0.0) -> float:
    """The fastest of ``repeats`` runs (stopping at the first under ``enough`` seconds), in CPU
    seconds of the calling thread: what the parse itself costs, robust to a busy 2-core machine
    and to other threads of the test process holding the GIL meanwhile (leftover daemon threads
    of earlier tests), and still failing a super-linear path, which is slow every time."""
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        best = min(best, time.thread_time() - start)
        if best < enough:
            break
    return best


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


# ------------------------------------------------------------------------------------------------
# 2. The parser: linear patterns, capped prompts
# ------------------------------------------------------------------------------------------------
from bench.conductor import HOSTILE_PROMPTS as ATTACKS  # noqa: E402  (one list for the test and the benchmark)
#: Linear, not a stopwatch: 100 kB must cost at most this many times what 20 kB costs (a
#: linear parse gives 5, a quadratic one 25).  Each 100 kB text parses in 3-80 ms on the shared
#: 2-core development machine (best of 3; the heaviest, "names and cues", yields 9,523 cues:
#: ``python -m bench.conductor --json --hostile-only`` reports them), under the issue's 100 ms;
#: a CI machine once took 109 ms for the heaviest, which is why the unit test checks how the cost
#: grows and leaves the absolute figure to the benchmark.  Before: "no punctuation" ran over
#: 120 s when it was quadratic (60 kB took 30 s in the issue).
MAX_GROWTH_20_TO_100_KB = 12.0
#: A freeze, whatever the machine: 100 kB of any attack in well under a second.
MAX_SECONDS_100_KB = 0.5
#: A prompt at the cap (4000 characters) must parse fast enough never to stall a daemon.
MAX_SECONDS_AT_CAP = 0.1


@pytest.mark.flaky(reruns=2)  # a fresh take when other jobs share the 2 cores; the bounds are unchanged
@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_parse_of_100_kb_is_linear(kind):
    small, large = _repeat(ATTACKS[kind], 20_000), _repeat(ATTACKS[kind], 100_000)
    _parse(small, BAND)   # warm caches (lexicon, compiled patterns)
    small_seconds = _best_seconds(lambda: _parse(small, BAND), repeats=5)
    seconds = _best_seconds(lambda: _parse(large, BAND))
    assert seconds < MAX_SECONDS_100_KB, f"{kind}: {seconds:.2f} s for 100 kB"
    # below a millisecond the clock's grain decides the ratio: a text that cheap cannot freeze
    growth = seconds / max(small_seconds, 1e-3)
    assert growth < MAX_GROWTH_20_TO_100_KB, \
        f"{kind}: 100 kB costs {growth:.1f} x 20 kB ({seconds * 1000:.0f} ms vs {small_seconds * 1000:.0f} ms)"


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_prompt_at_the_cap_parses_fast(kind):
    text = _repeat(ATTACKS[kind], MAX_PROMPT_CHARS)
    parse_prompt(text, BAND)   # warm caches (lexicon, imports)
    seconds = _best_seconds(lambda: parse_prompt(text, BAND))
    assert seconds < MAX_SECONDS_AT_CAP, f"{kind}: {seconds * 1000:.0f} ms for {MAX_PROMPT_CHARS} characters"


@pytest.mark.parametrize("symbol", ["\u00b1", "\u00b0", " \u00b0"])
def test_symbols_spelt_out_stay_linear_at_the_cap(symbol):
    """Normalisation spells "\u00b1" as " plus-or-minus " (15 times longer): a capped prompt of
    them still parses in well under a second (it is about 60 kB of text once spelt out)."""
    text = _repeat(symbol, MAX_PROMPT_CHARS)
    seconds = _best_seconds(lambda: parse_prompt(text, BAND))
    assert seconds < 0.5, f"{symbol!r}: {seconds * 1000:.0f} ms"


def test_trade_places_still_found_one_sentence_at_a_time():
    """The rewritten "X and Y trade places" search keeps its meaning across sentences."""
    r = parse_prompt("keep the vox up front. the sax and the keys trade places; drums behind me", BAND)
    assert r.swaps == [("Sax", "Keys", "the sax and the keys trade places")]
    r = parse_prompt("push the sax push it back", BAND)
    assert r.cues and r.cues[0].relative == {"distance_scale": 1.5}


def test_long_prompts_are_refused_with_a_clear_message(conductor):
    parse_prompt("x" * MAX_PROMPT_CHARS, BAND)   # at the cap: accepted
    with pytest.raises(InputError, match=f"at most {MAX_PROMPT_CHARS}"):
        parse_prompt("sax left " * 1000, BAND)
    with pytest.raises(InputError, match=f"{MAX_PROMPT_CHARS + 1} characters long; at most {MAX_PROMPT_CHARS}"):
        conductor.plan("x" * (MAX_PROMPT_CHARS + 1), BAND)
    with pytest.raises(InputError, match="at most"):
        conductor.edit("y" * 60_000, Plan(sources=[SourcePlacement("Sax")]))


@pytest.mark.parametrize("prompt, kind", [(123, "int"), (None, "NoneType"), (["sax left"], "list"),
                                          ({"text": "sax left"}, "dict")])
def test_a_prompt_that_is_not_a_string_says_so(conductor, prompt, kind):
    with pytest.raises(InputError, match=f"prompt must be a string, got {kind}"):
        conductor.plan(prompt, BAND)
    with pytest.raises(InputError, match=f"prompt must be a string, got {kind}"):
        parse_prompt(prompt, BAND)


def test_tracks_must_be_a_list_of_bounded_names(conductor):
    with pytest.raises(InputError, match="tracks must be a list"):
        conductor.plan("sax left", {"Sax": 1})
    with pytest.raises(InputError, match="non-empty strings, got int"):
        conductor.plan("sax left", ["Sax", 5])
    with pytest.raises(InputError, match="at most 128 characters"):
        conductor.plan("sax left", ["Sax", "D" * 500])


# ------------------------------------------------------------------------------------------------
# 8. YAML alias bombs and types before conversion
# ------------------------------------------------------------------------------------------------
def _billion_laughs(levels: int = 10) -> str:
    names = "abcdefghij"
    lines = ["room: dry_studio", "mix_notes:", "- &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    for k in range(1, levels):
        lines.append(f"- &{names[k]} [" + ",".join([f"*{names[k - 1]}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused_fast_and_small(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_billion_laughs(10))
    assert len(bomb.read_bytes()) <= 412   # 9**10 "lol"s once expanded (about 17 GB as text)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(InputError, match=r"aliases \(\*a\) are not accepted"):
            load_plan(bomb)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 1.0
    assert peak < 5 * 2 ** 20, f"{peak / 2 ** 20:.1f} MiB"


def test_yaml_anchors_without_aliases_and_plain_yaml_still_load(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("room: &r jazz_club\nsources:\n  - {track: Sax, azimuth_deg: 30}\nmix_notes: keep it dry\n")
    plan = load_plan(path)
    assert (plan.room, plan.sources[0].azimuth_deg, plan.mix_notes) == ("jazz_club", 30.0, "keep it dry")


def test_shared_structure_is_refused_by_type_not_stringified():
    """What PyYAML builds from an alias bomb: a list sharing itself 9 ways, 30 levels deep (9**30
    items once walked).  The type check refuses it at once; ``str()`` of it would never end."""
    node: object = ["lol"] * 9
    for _ in range(30):
        node = [node] * 9
    start = time.perf_counter()
    for key in ("mix_notes", "music_description", "template"):
        problems = plan_problems({key: node})
        assert problems == [f"{key}: must be a string or null, got list"]
    assert any("more than" in p for p in plan_problems({"music": {"notes": node}}))
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("data, needle", [
    ({"mix_notes": {"a": 1}}, "mix_notes: must be a string or null, got dict"),
    ({"music": ["x"]}, "music: must be an object or null, got list"),
    ({"music": {"tempo_bpm": HUGE}}, "music.tempo_bpm: must be a finite number"),
    ({"music": {"tempo_bpm": float("nan")}}, "music.tempo_bpm: must be a finite number"),
    ({"template": 5}, "template: must be a string or null, got int"),
    ({"room": ["church"]}, "room: must be a room id string, got list"),
    ({"pathway": ["edit"]}, "pathway: list is not one of"),
    ({"sources": [{"track": "A", "provenance": {"azimuth_deg": 30}}]}, "provenance.azimuth_deg: must be a string, got int"),
    ({"sources": [{"track": "A", "provenance": ["cue"]}]}, "provenance: must be an object, got list"),
])
def test_types_are_checked_before_conversion(data, needle):
    problems = plan_problems(data)
    assert any(needle in p for p in problems), problems
    with pytest.raises(InputError):
        Plan.from_dict(data)


def test_long_provenance_is_shortened_not_refused():
    plan = Plan.from_dict({"sources": [{"track": "A", "provenance": {"azimuth_deg": "x" * 100_000}}]})
    why = plan.sources[0].provenance["azimuth_deg"]
    assert len(why) == MAX_PROVENANCE_CHARS and why.endswith("...")
    assert plan_problems({"sources": [{"track": "A", "provenance": {"k" * 65: "cue"}}]})


def test_a_huge_error_list_is_summarised():
    with pytest.raises(InputError) as info:
        Plan.from_dict({"sources": [{"track": f"T{i}", "gain_db": 1e9} for i in range(5000)]})
    assert "and 4980 more" in str(info.value)
    assert len(str(info.value)) < 4000


# ------------------------------------------------------------------------------------------------
# 15/20. Huge integers, misspelt keys
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["azimuth_deg", "elevation_deg", "distance_m", "gain_db"])
def test_a_huge_integer_in_a_plan_is_a_listed_problem(tmp_path, key):
    path = tmp_path / "plan.json"
    path.write_text('{"sources": [{"track": "Sax", "%s": %d}]}' % (key, HUGE))
    with pytest.raises(InputError, match=rf"sources\[0\]\.{key} must be a finite number"):
        load_plan(path)
    yaml_path = tmp_path / "plan.yaml"
    yaml_path.write_text("sources:\n  - track: Sax\n    %s: %d\n" % (key, HUGE))
    with pytest.raises(InputError, match=rf"sources\[0\]\.{key} must be a finite number"):
        load_plan(yaml_path)


def test_a_huge_integer_in_the_cli_is_exit_2(tmp_path, capsys):
    path = tmp_path / "plan.json"
    path.write_text('{"sources": [{"track": "Sax", "azimuth_deg": %d}]}' % HUGE)
    assert stase(["plan", "sax further left", "--plan", str(path), "--model", "none"]) == 2
    err = capsys.readouterr().err
    assert "azimuth_deg must be a finite number" in err and "Traceback" not in err


@pytest.mark.parametrize("data, expected", [
    ({"sources": [{"track": "Sax", "azimth_deg": 30}]},
     "unknown key 'azimth_deg' in sources[0]; did you mean 'azimuth_deg'?"),
    ({"sources": [{"track": "Sax", "gain": -3}]}, "unknown key 'gain' in sources[0]; did you mean 'gain_db'?"),
    ({"sorces": []}, "unknown key 'sorces'; did you mean 'sources'?"),
    ({"reverb": "fdn"}, "unknown key 'reverb'; did you mean 'reverb_db' or 'reverb_engine'?"),
    ({"sources": [{"track": "Sax", "colour": "red"}]}, "unknown key 'colour' in sources[0]; accepted: track,"),
])
def test_a_misspelt_key_is_named_with_a_suggestion(tmp_path, data, expected):
    assert expected in "\n".join(plan_problems(data))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="unknown key"):
        load_plan(path)


def test_every_plan_stase_writes_still_loads(conductor, tmp_path):
    """The keys ``to_dict`` writes are exactly the accepted ones, and a conductor plan (long
    provenance included: a cue quoting most of a 4 kB prompt) round-trips through a file."""
    full = Plan(room="church", template="choir", pathway="description", reverb_engine="fdn",
                music_description="d", mix_notes="n", music={"bars": 8, "instruments": [{"track": "A", "role": "choir"}]},
                sources=[SourcePlacement("A", 10.0, 5.0, 3.0, "itd_ild", "choir", -3.0, {"azimuth_deg": "cue"})])
    written = full.to_dict()
    assert set(written) == set(PLAN_KEYS) and set(written["sources"][0]) == set(SOURCE_KEYS)
    path = tmp_path / "full.json"
    save_plan(full, path)
    assert load_plan(path).to_dict() == written

    prompt = "the sax " + "the " * 900 + "hard left, drums behind me"
    plan = conductor.plan(prompt, BAND)
    assert max(len(v) for s in plan.sources for v in s.provenance.values()) <= MAX_PROVENANCE_CHARS
    assert plan.source("Sax").azimuth_deg == 90.0
    save_plan(plan, tmp_path / "long.json")
    assert load_plan(tmp_path / "long.json").to_dict() == plan.to_dict()
    edited = conductor.edit("swap the sax and the drums", load_plan(tmp_path / "long.json"))
    assert Plan.from_dict(json.loads(edited.to_json())).to_dict() == edited.to_dict()


# ------------------------------------------------------------------------------------------------
# 11. stase plan --batch: every line gets its own answer
# ------------------------------------------------------------------------------------------------
def test_batch_survives_bad_lines(tmp_path, capsys):
    good = {"prompt": "sax hard left", "tracks": ["Sax", "Drums"]}
    lines = [
        json.dumps(good),                                            # 1
        json.dumps({**good, "plan": 5}),                             # 2: the TypeError that ended the run
        "{not json",                                                 # 3
        json.dumps([1, 2]),                                          # 4
        json.dumps({"prompt": 123, "tracks": ["Sax"]}),              # 5
        json.dumps({"prompt": "sax left", "tracks": 5}),             # 6
        json.dumps({"prompt": "sax left", "tracks": ["Sax", 7]}),    # 7
        "",                                                          # 8: blank, skipped
        json.dumps({**good, "plan": {"sources": [{"track": "Sax", "azimth_deg": 1}]}}),  # 9
        json.dumps({**good, "plan": str(tmp_path)}),                 # 10: a folder
        "[" * 100_000,                                               # 11: nested too deeply
        json.dumps({"prompt": "drums behind me", "tracks": ["Sax", "Drums"], "id": "x"}),  # 12
    ]
    batch = tmp_path / "b.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    assert stase(["plan", "--batch", str(batch), "--model", "none", "--json"]) == 1
    captured = capsys.readouterr()
    out = [json.loads(x) for x in captured.out.splitlines()]
    assert len(out) == 11   # one per non-blank line, in order
    assert out[0]["sources"][0]["azimuth_deg"] == 90.0
    assert out[-1]["sources"][1]["azimuth_deg"] == 180.0
    errors = {o["line"]: o["error"] for o in out if "error" in o}
    assert sorted(errors) == [2, 3, 4, 5, 6, 7, 9, 10, 11]
    for n, needle in {2: "'plan' must be a plan object or the path of a plan file, got int",
                      3: "not JSON", 4: "must be a JSON object", 5: "prompt must be a string, got int",
                      6: "tracks must be a list", 7: "non-empty strings, got int",
                      9: "did you mean 'azimuth_deg'", 10: "is a folder", 11: "not JSON"}.items():
        assert errors[n].startswith(f"line {n}: ") and needle in errors[n], errors[n]
    assert "internal error" not in captured.out and "Traceback" not in captured.err
    assert "9 of 11 batch lines failed" in captured.err


def test_batch_help_documents_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        stase(["plan", "--help"])
    assert "exit 0 if every line gave a plan, 1 if any failed" in " ".join(capsys.readouterr().out.split())


# ------------------------------------------------------------------------------------------------
# 15. stase plan --out
# ------------------------------------------------------------------------------------------------
def test_out_naming_a_folder_is_exit_2_before_any_work(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "plans"
    folder.mkdir()
    monkeypatch.setattr(Conductor, "plan", lambda *a, **k: pytest.fail("planned before checking --out"))
    assert stase(["plan", "sax left", "--tracks", "Sax", "--model", "none", "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "Traceback" not in err
    assert list(folder.iterdir()) == []
    with pytest.raises(InputError, match="is a folder"):
        save_plan(Plan(), folder)
    assert stase(["plan", "--batch", str(tmp_path / "b.jsonl"), "--out", str(tmp_path / "p.json")]) == 2


def test_out_writes_the_plan_atomically(tmp_path, capsys):
    out = tmp_path / "new" / "plan.json"
    assert stase(["plan", "sax hard left", "--tracks", "Sax,Drums", "--model", "none", "--out", str(out)]) == 0
    assert load_plan(out).source("Sax").azimuth_deg == 90.0
    assert [p.name for p in out.parent.iterdir()] == ["plan.json"]   # no temp file left


def test_a_number_too_long_to_print_is_named_not_a_crash():
    """Python's int -> str refuses more than 4300 digits; the message must not try."""
    from stase.core.placement import field_problem
    assert "integer of about 5001 digits" in field_problem("gain_db", 10 ** 5000)
