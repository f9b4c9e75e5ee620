"""The one Lua JSON codec (reaper_scripts/lib/stase_json.lua) against Python's ``json``.

Issue 22: the REAPER scripts and the Ardour action share this codec (the Ardour action has it
built in by reaper_scripts/ardour/build.lua; a test here checks the committed action is up to
date).  Every test runs under REAPER's Lua 5.4 (``lua5.4``) and under Ardour's own Lua 5.3 (the
headless host ``ardour7-lua``), since the same text runs in both.

The reference is Python's ``json`` module: Lua-encoded text must load in Python to the expected
value (types and float bits included), Python-encoded text must decode in Lua and encode back to
the same value, and for a corpus of valid and invalid texts Lua must accept exactly what
``json.loads`` accepts, except the non-finite literals (``NaN``, ``Infinity``, ``1e400``), which
Python takes and the codec refuses, as the daemon does (bridge/dispatcher.py).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "reaper_scripts" / "lib" / "stase_json.lua"
ARDOUR_DIR = REPO / "reaper_scripts" / "ardour"


def _lua_hosts() -> list:
    hosts = [pytest.param("lua5.4", id="lua5.4")]
    hosts.append(pytest.param("ardour-lua", id="ardour-lua5.3",
                              marks=[pytest.mark.ardour, pytest.mark.slow]))
    return hosts


@pytest.fixture(params=_lua_hosts())
def lua(request, tmp_path):
    """lua(body) -> stdout of `body` run with `json` = the codec, under one Lua host."""
    if request.param == "lua5.4":
        exe = shutil.which("lua5.4")
        if not exe:
            pytest.fail("lua5.4 is not installed: apt-get install --no-install-recommends lua5.4")
        argv, env = [exe], None
    else:
        from ardour_host import ArdourUnavailable, find_ardour_lua  # tests/ is on sys.path
        try:
            argv = [find_ardour_lua()]
        except ArdourUnavailable as exc:
            pytest.fail(str(exc))
        # a throw-away config folder: the host must not touch the user's Ardour settings
        env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path))
    counter = {"n": 0}

    def run(body: str) -> str:
        counter["n"] += 1
        script = tmp_path / f"case{counter['n']}.lua"
        out = tmp_path / f"case{counter['n']}.out"
        # output goes to a file: ardour-lua prints its own banner lines on stdout
        script.write_text(f"local json = dofile({json.dumps(str(LIB))})\n"
                          f"local OUT = assert(io.open({json.dumps(str(out))}, 'wb'))\n"
                          f"local function emit(...) OUT:write(...) end\n"
                          f"{body}\nOUT:close()\n", encoding="utf-8")
        proc = subprocess.run(argv + [str(script)], capture_output=True, timeout=60, env=env)
        assert proc.returncode == 0 and out.exists(), proc.stderr.decode(errors="replace")
        text = out.read_bytes().decode("utf-8")  # strict: the codec must write valid UTF-8
        assert "LUA ERROR" not in proc.stdout.decode(errors="replace"), proc.stdout
        return text

    run.host = request.param
    return run


def lua_str(s: str) -> str:
    """A Lua string literal for any Python str (decimal byte escapes: valid in 5.3 and 5.4)."""
    return '"' + "".join(f"\\{b}" for b in s.encode("utf-8", "surrogatepass")) + '"'


def same(a, b) -> bool:
    """Equal values with equal types (int vs float) and equal float bits (-0.0 vs 0.0)."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


CONTROL = "".join(chr(c) for c in range(0x20)) + "\x7f"
STRINGS = ["", "plain", "it's \"quoted\" \\ back/slash", CONTROL, "é ß ü", "中文字", "😀 🎷",
           "\u2028\u2029", "\ufeffBOM", "\U0010ffff", "tab\there\nnew line"]
NUMBERS = [0, 1, -1, 2**53 + 1, 2**63 - 1, -2**63, 0.0, -0.0, 0.1, -2.5, 1e-7, 1.5e-300, 5e-324,
           2.2250738585072014e-308, 1.7976931348623157e308, 1e16, 123456789.125, 3.0, -1e21,
           float(2**63), 1 / 3]


SUBNORMAL = 5e-324


def sample_value(host):
    # Ardour runs with the CPU's denormals-are-zero flag on (audio code's habit), so Lua there
    # reads and computes a subnormal as 0: not the codec's doing, and no placement needs one
    numbers = [x for x in NUMBERS if host == "lua5.4" or x != SUBNORMAL]
    return {"strings": STRINGS, "numbers": numbers,
            "nested": {"a": {"b": {"c": [[], {}, [[]], [{}], {"d": []}]}}},
            "empty_list": [], "empty_object": {}, "literals": [True, False, None],
            "keys": {s: i for i, s in enumerate(STRINGS)}}


# --- Python -> Lua -> Python ---------------------------------------------------------------------

@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_python_text_decodes_and_encodes_back_to_the_same_value(lua, tmp_path, ensure_ascii):
    value = sample_value(lua.host)
    src = tmp_path / "in.json"
    src.write_bytes(json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8"))
    out = lua(f"""
local f = io.open({json.dumps(str(src))}, "rb"); local text = f:read("a"); f:close()
local v = assert(json.decode(text))
emit(json.encode(v), "\\n", json.encode(v, {{ascii = true}}), "\\n")""")
    plain, ascii_line = out.split("\n")[:2]  # not splitlines: U+2028 is a line break there
    for text in (plain, ascii_line):
        assert same(json.loads(text), value), text[:400]
    assert ascii_line.isascii()


def test_lone_surrogate_escapes_decode_to_the_replacement_character(lua):
    # Python writes a lone surrogate as \\ud800; a Lua string is UTF-8, which cannot hold one
    text = json.dumps(["\ud800", "a\udc00b", "\ud83d\ude00"])
    out = lua(f"emit(json.encode(assert(json.decode({lua_str(text)}))))")
    assert json.loads(out) == ["\ufffd", "a\ufffdb", "😀"]


# --- Lua -> Python ---------------------------------------------------------------------------------

def test_lua_values_encode_to_what_python_reads(lua):
    strings = "{" + ",".join(lua_str(s) for s in STRINGS) + "}"
    subnormal = "5e-324," if lua.host == "lua5.4" else ""  # see sample_value
    out = lua(f"""
local strings = {strings}
local keyed = {{}}
for i, s in ipairs(strings) do keyed[s] = i - 1 end
local v = {{ strings = strings, keys = keyed, empty_list = json.array({{}}), empty_object = {{}},
  nested = {{ a = {{ b = {{ c = {{ json.array({{}}), {{}}, {{ json.array({{}}) }}, {{ {{}} }},
                                  {{ d = json.array({{}}) }} }} }} }} }},
  literals = {{ true, false, json.null }},
  ints = {{ 0, 1, -1, 9007199254740993, math.maxinteger, math.mininteger }},
  floats = {{ 0.0, -0.0, 0.1, -2.5, 1e-7, 1.5e-300, {subnormal} 2.2250738585072014e-308,
             1.7976931348623157e308, 1e16, 123456789.125, 3.0, -1e21, 2.0^63, 1 / 3 }} }}
emit(json.encode(v), "\\n", json.encode(v, {{ascii = true}}), "\\n")""")
    expected = {"strings": STRINGS, "keys": {s: i for i, s in enumerate(STRINGS)},
                "empty_list": [], "empty_object": {},
                "nested": {"a": {"b": {"c": [[], {}, [[]], [{}], {"d": []}]}}},
                "literals": [True, False, None],
                "ints": [0, 1, -1, 2**53 + 1, 2**63 - 1, -2**63],
                "floats": [0.0, -0.0, 0.1, -2.5, 1e-7, 1.5e-300] + ([SUBNORMAL] if subnormal else [])
                + [2.2250738585072014e-308, 1.7976931348623157e308, 1e16, 123456789.125, 3.0,
                   -1e21, float(2**63), 1 / 3]}
    plain, ascii_line = out.split("\n")[:2]  # not splitlines: U+2028 is a line break there
    for text in (plain, ascii_line):
        assert same(json.loads(text), expected), text[:400]
    assert ascii_line.isascii()
    assert json.loads(plain, object_pairs_hook=list)[0][0] == "empty_list"  # keys sorted: stable


def test_invalid_utf8_in_a_lua_string_is_written_as_the_replacement_character(lua):
    # a Latin-1 track name, a cut multi-byte sequence, a CESU surrogate (Lua 5.3 lets it through)
    out = lua(r'emit(json.encode({"caf\233", "\226\130", "a\237\160\128b", "ok \195\169"}), "\n",'
              r' json.encode({"caf\233"}, {ascii = true}))')
    plain, ascii_line = out.split("\n")[:2]  # not splitlines: U+2028 is a line break there
    assert json.loads(plain) == ["caf\ufffd", "\ufffd\ufffd", "a\ufffd\ufffd\ufffdb", "ok é"]
    assert json.loads(ascii_line) == ["caf\ufffd"]


# --- non-finite numbers -----------------------------------------------------------------------------

NON_FINITE_EXPRESSIONS = ["0/0", "-(0/0)", "math.huge", "-math.huge", "1e308 * 10"]


def test_encoding_a_non_finite_number_raises_and_writes_nothing(lua):
    cases = ", ".join(f"{e}, {{ {e} }}, {{ x = {{ y = {e} }} }}" for e in NON_FINITE_EXPRESSIONS)
    out = lua(f"""
for _, v in ipairs({{ {cases} }}) do
  local ok, err = pcall(json.encode, v)
  emit(tostring(ok), "|", tostring(err), "\\n")
end""")
    lines = out.splitlines()
    assert len(lines) == 3 * len(NON_FINITE_EXPRESSIONS)
    for line in lines:
        ok, err = line.split("|", 1)
        assert ok == "false", line
        assert "non-finite" in err and "NaN and Infinity are not JSON" in err, err


NON_FINITE_TEXTS = ["NaN", "-NaN", "Infinity", "-Infinity", "[1, NaN]", '{"reverb_db": Infinity}',
                    "1e400", "-1e400", "[1E999]", json.dumps({"x": float("nan")}),
                    json.dumps([float("-inf")])]


def decode_each(lua, texts) -> list[tuple[str, str]]:
    """(kind, rest) per text: ("OK", the value re-encoded) or ("ERR", the message)."""
    table = "{" + ",".join(lua_str(t) for t in texts) + "}"
    out = lua(f"""
for _, t in ipairs({table}) do
  local v, err = json.decode(t)
  if err then emit("ERR|", err, "\\n") else emit("OK|", json.encode(v, {{ascii = true}}), "\\n") end
end""")
    lines = out.split("\n")[:-1]
    assert len(lines) == len(texts), out
    return [tuple(line.split("|", 1)) for line in lines]


def test_decoding_a_non_finite_number_is_refused(lua):
    for text, (kind, err) in zip(NON_FINITE_TEXTS, decode_each(lua, NON_FINITE_TEXTS)):
        assert kind == "ERR", (text, err)
        assert err.startswith("invalid JSON") and ("NaN and Infinity are not JSON" in err
                                                   or "out of range" in err), (text, err)


# --- the grammar: Lua accepts what Python's json accepts ---------------------------------------------

CORPUS = [
    "0", "-0", "0.5", "-0.0", "1E+2", "1e-2", "1.5E3", "10", "[]", "{}", " [ 1 , 2 ] ", '""',
    '"\\u00e9\\/\\b\\f\\n\\r\\t"', '{"a":{"b":[null,true,false]}}', "\t\r\n 1 \t\r\n",
    '"\x7f"', '"é"', '{"a":1,"a":2}', "1e-400",
    # invalid
    "", " ", "01", "-01", "1.", ".5", "+1", "-", "1e", "1e+", "0x10", "1.e5", "--1",
    '"\x01"', '"\n"', '"\t"', '"\\x"', '"\\u12"', '"\\u12G4"', '"abc', "[1,2,]", "[,]", "{,}",
    '{"a":1,}', '{"a" 1}', "{1:2}", "{'a':1}", "[1] 2", "tru", "nul", "True", "None", "[", "]",
    "{", '{"a":', "/* c */ 1", "1 // c",
]


def test_lua_accepts_exactly_what_python_accepts(lua):
    for text, (kind, rest) in zip(CORPUS, decode_each(lua, CORPUS)):
        try:
            expected, python_ok = json.loads(text), True
        except json.JSONDecodeError:
            expected, python_ok = None, False
        assert (kind == "OK") == python_ok, (text, rest)
        if python_ok:
            assert same(json.loads(rest), expected), (text, rest)
        else:
            assert rest.startswith("invalid JSON"), (text, rest)


def test_an_integer_beyond_64_bits_decodes_to_the_nearest_float(lua):
    # Lua integers are 64-bit; the daemon refuses integers of more than 30 digits anyway
    text = "[123456789012345678901234567890, 9223372036854775808, -9223372036854775809]"
    out = lua(f"emit(json.encode(assert(json.decode({lua_str(text)}))))")
    assert same(json.loads(out), [float(v) for v in json.loads(text)])


def test_decoding_errors_say_where(lua):
    out = lua('local v, err = json.decode("{\\n  \\"a\\": [1, 2,]\\n}"); emit(err)')
    assert out.startswith("invalid JSON at line 2 column") and "unexpected character" in out


def test_deep_nesting_is_refused_not_a_crash(lua):
    out = lua('local v, err = json.decode(string.rep("[", 100000)); emit(tostring(v), "|", err)')
    assert out.startswith("nil|invalid JSON") and "nested too deeply" in out


# --- one codec: the Ardour action carries the library's text ------------------------------------------

def test_the_ardour_action_is_built_from_the_library_and_up_to_date():
    """reaper_scripts/ardour/stase_spatialize.lua = its template with lib/stase_json.lua built in;
    after editing either, run `lua5.4 reaper_scripts/ardour/build.lua`."""
    exe = shutil.which("lua5.4")
    if not exe:
        pytest.fail("lua5.4 is not installed: apt-get install --no-install-recommends lua5.4")
    proc = subprocess.run([exe, str(ARDOUR_DIR / "build.lua"), "--check"], capture_output=True,
                          text=True, timeout=30, cwd="/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = (ARDOUR_DIR / "stase_spatialize.lua").read_text(encoding="utf-8")
    assert LIB.read_text(encoding="utf-8") in built
    assert "string.format (\"%.17g\"" not in built  # the old hand-written encoder is gone
