"""The REAPER actions (reaper_scripts/*.lua) run under Lua 5.4 against a recording stub of the
``reaper`` API (tests/lua/reaper_stub.lua), with scripted daemon replies.

Each test writes a scenario (tracks, user answers, daemon replies), runs one script through
tests/lua/run_script.lua and asserts on the report: the API calls made, the tracks' final pan,
volume and P_EXT state, the requests sent to the daemon and the message boxes shown. Expected
pans come from stase.core.conventions.azimuth_to_stereo_pan, not from the Lua code under test.

Needs the Debian package ``lua5.4`` (``luac5.4`` too); without it the tests fail saying so.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from stase.core.conventions import azimuth_to_stereo_pan

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "reaper_scripts"
RUNNER = REPO / "tests" / "lua" / "run_script.lua"
ACTIONS = ["stase_spatialize.lua", "stase_apply_plan.lua", "stase_gain_advice.lua",
           "stase_listen_back.lua", "stase_chat.lua", "stase_settings.lua"]
LIBS = ["lib/stase_json.lua", "lib/stase_transport.lua", "lib/stase_core.lua", "lib/stase_ui.lua"]


def _lua() -> str:
    path = shutil.which("lua5.4")
    if not path:
        pytest.fail("lua5.4 is not installed: apt-get install --no-install-recommends lua5.4")
    return path


def reply(result=None, ok=True, error=None, rc=0, **extra) -> dict:
    body = {"id": "t1", "ok": ok}
    if ok:
        body["result"] = result
    else:
        body["error"] = error
    return {"rc": rc, "out": json.dumps(body) + "\n", **extra}


def plan_result(sources, room="jazz_club", notes="sax forward"):
    return {"room": room, "pathway": "description", "sources": sources,
            "music_description": "", "mix_notes": notes}


def src(track, az, el=0.0, dist=2.0, role=None):
    return {"track": track, "role": role, "azimuth_deg": az, "elevation_deg": el,
            "distance_m": dist, "mode": "hrtf", "gain_db": 0.0,
            "provenance": {"azimuth_deg": "test"}}


@pytest.fixture
def run(tmp_path):
    """run(script, scenario) -> report dict."""
    lua = _lua()
    counter = {"n": 0}

    def _run(script: str, scenario: dict) -> dict:
        counter["n"] += 1
        scenario = dict(scenario)
        scenario.setdefault("resource_path", str(tmp_path / "reaper_resource"))
        case = tmp_path / f"case{counter['n']}"
        case.mkdir()
        (case / "scenario.json").write_text(json.dumps(scenario), encoding="utf-8")
        proc = subprocess.run([lua, str(RUNNER), str(SCRIPTS / script), str(case / "scenario.json"),
                               str(case / "report.json")], capture_output=True, text=True,
                              timeout=60, cwd=REPO)
        assert proc.returncode == 0, f"runner failed:\n{proc.stdout}\n{proc.stderr}"
        report = json.loads((case / "report.json").read_text(encoding="utf-8"))
        assert "error" not in report, report["error"]
        return report

    return _run


def tracks(*specs):
    return [{"name": n, "selected": sel, "pan": 0.0, "vol": 1.0, "ext": {}} for n, sel in specs]


def by_name(report):
    return {t["name"]: t for t in report["tracks"]}


def count(report, fn):
    return report["counts"].get(fn, 0)


def ext_record(track):
    raw = track["ext"]
    return json.loads(raw["stase_spatial"]) if "stase_spatial" in raw else None


# --- syntax and metadata -----------------------------------------------------------------------

@pytest.mark.parametrize("path", ACTIONS + LIBS + ["ardour/stase_spatialize.lua",
                                                   "ardour/stase_spatialize.lua.in", "ardour/build.lua"])
def test_every_script_compiles(path):
    luac = shutil.which("luac5.4")
    if not luac:
        pytest.fail("luac5.4 is not installed: apt-get install --no-install-recommends lua5.4")
    # One file per call: Debian's luac5.4 -p aborts (double free) when given several files.
    proc = subprocess.run([luac, "-p", str(SCRIPTS / path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _header(path: Path) -> dict[str, str]:
    tags: dict[str, str] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        body = line[2:].lstrip()
        if body.startswith("@"):
            name, _, value = body[1:].partition(" ")
            current = name
            tags[name] = value.strip()
        elif current:
            tags[current] += "\n" + body
    return tags


@pytest.mark.parametrize("script", ACTIONS)
def test_reapack_headers(script):
    tags = _header(SCRIPTS / script)
    for key in ("description", "version", "author", "about", "provides"):
        assert tags.get(key, "").strip(), f"{script}: missing @{key}"
    assert tags["description"].startswith("stase: ")
    assert tags["version"] == "0.1.0"


def test_reapack_index_lists_every_file_once_with_the_scripts_version():
    root = ET.parse(SCRIPTS / "index.xml").getroot()
    assert root.tag == "index" and root.get("version") == "1" and root.get("name") == "stase"
    packages = root.findall("./category/reapack")
    assert [p.get("name") for p in packages] == ["stase_spatialize.lua"]
    pkg = packages[0]
    assert pkg.get("type") == "script"
    versions = pkg.findall("version")
    assert [v.get("name") for v in versions] == [_header(SCRIPTS / "stase_spatialize.lua")["version"]]
    sources = versions[0].findall("source")
    files = {}
    for s in sources:
        name = s.get("file") or "stase_spatialize.lua"
        assert name not in files, f"{name} listed twice"
        files[name] = s
        assert s.text.strip().endswith("reaper_scripts/" + name)
    assert set(files) == set(ACTIONS) | set(LIBS)
    for action in ACTIONS:
        assert files[action].get("main") == "main", f"{action} must be registered as an action"
    for lib in LIBS:
        assert files[lib].get("main") is None, f"{lib} must not be an action"
    # @provides of the package file names exactly the other files.
    provides = _header(SCRIPTS / "stase_spatialize.lua")["provides"].split("\n")
    provided = {line.split("]", 1)[1].strip() for line in provides if "]" in line}
    assert provided == (set(ACTIONS) - {"stase_spatialize.lua"}) | set(LIBS)


# --- JSON and maths against Python references ----------------------------------------------------

def _lua_eval(body: str) -> str:
    code = f'local json = dofile("{SCRIPTS}/lib/stase_json.lua")\n{body}'
    proc = subprocess.run([_lua(), "-e", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_json_round_trips_against_python(rng, tmp_path):
    alphabet = list("abc xyz'\"%&|<>^$`\\!;()*?~#=@{}[]:,\n\t") + ["é", "ß", "中", "😀", "\u0001"]
    values = []
    for _ in range(40):
        s = "".join(rng.choice(alphabet, size=int(rng.integers(0, 20))))
        values.append({"text": s, "n": float(rng.normal() * 1e3), "i": int(rng.integers(-9, 9)),
                       "list": [s, None, True, False, 0.1], "nested": {"k": [1.5e-7, -0.0]}})
    src_path = tmp_path / "in.json"
    src_path.write_text(json.dumps(values), encoding="utf-8")
    out = _lua_eval(f"""
local f = io.open("{src_path}", "rb"); local text = f:read("a"); f:close()
local v = assert(json.decode(text))
io.write(json.encode(v), "\\n", json.encode(v, {{ascii = true}}), "\\n")""")
    plain, ascii_line = out.splitlines()
    assert json.loads(plain) == values
    assert json.loads(ascii_line) == values
    # The shell-safe form holds nothing a shell or cmd.exe could interpret.
    assert set(ascii_line) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789{}[]:,.-+\"\\")


def test_json_rejects_invalid_text_with_a_position():
    out = _lua_eval("""
for _, t in ipairs({'{"a":', '[1,2,]', '{"a" 1}', '"\\\\x"', 'nul', '[1] 2'}) do
  local v, err = json.decode(t)
  io.write(tostring(v), "|", tostring(err), "\\n")
end""")
    lines = out.splitlines()
    assert len(lines) == 6
    for line in lines:
        value, err = line.split("|", 1)
        assert value == "nil" and "invalid JSON" in err


def test_pan_matches_dsp_conventions():
    az = np.linspace(-180, 180, 37)
    el = np.array([-60.0, -15.0, 0.0, 30.0, 89.0])
    out = _lua_eval(f"""
local core = dofile("{SCRIPTS}/lib/stase_core.lua").init(json, nil)
for _, a in ipairs({{{",".join(map(str, az))}}}) do
  for _, e in ipairs({{{",".join(map(str, el))}}}) do
    io.write(string.format("%.17g %.17g %.17g\\n", a, e, core.pan_for(a, e)))
  end
end""")
    got = np.array([[float(x) for x in line.split()] for line in out.splitlines()])
    expected = azimuth_to_stereo_pan(got[:, 0], got[:, 1])
    np.testing.assert_allclose(got[:, 2], expected, atol=1e-12)
    # Positive azimuth is LEFT, which is a negative REAPER pan.
    assert azimuth_to_stereo_pan(30.0) < 0


# --- Spatialize selected tracks from prompt ------------------------------------------------------

SPATIAL_SOURCES = [src("Vox", 0.0, role="lead_vocal"), src("Sax", 30.0, 10.0, 3.0, "saxophone"),
                   src("Piano", -40.0)]


def spatialize_scenario(**over):
    scenario = {"tracks": tracks(("Vox", True), ("Sax", True), ("Drums", False)),
                "inputs": [{"ok": True, "csv": "jazz club, sax a bit left"}],
                "message_box": [1],
                "daemon": {"plan": reply(plan_result(SPATIAL_SOURCES))}}
    scenario.update(over)
    return scenario


def test_spatialize_applies_the_plan_in_one_undo_block(run, tmp_path):
    r = run("stase_spatialize.lua", spatialize_scenario())
    spool = tmp_path / "reaper_resource" / "Data" / "stase_spool"
    assert spool.is_dir() and list(spool.iterdir()) == []  # runner and reply files cleaned up
    [req] = r["requests"]
    assert req["verb"] == "plan"
    assert req["payload"] == {"prompt": "jazz club, sax a bit left", "tracks": ["Vox", "Sax"]}
    t = by_name(r)
    np.testing.assert_allclose(t["Sax"]["pan"], azimuth_to_stereo_pan(30.0, 10.0), atol=1e-12)
    assert t["Sax"]["pan"] < 0  # left
    assert t["Vox"]["pan"] == 0.0
    assert t["Drums"]["pan"] == 0.0 and t["Drums"]["ext"] == {}
    rec = ext_record(t["Sax"])
    assert rec["azimuth_deg"] == 30.0 and rec["elevation_deg"] == 10.0 and rec["distance_m"] == 3.0
    assert rec["room"] == "jazz_club" and rec["role"] == "saxophone"
    np.testing.assert_allclose(rec["pan"], t["Sax"]["pan"])
    assert json.loads(r["projext"]["stase/plan"])["sources"][1]["track"] == "Sax"
    assert count(r, "Undo_BeginBlock2") == 1 and count(r, "Undo_EndBlock2") == 1
    assert count(r, "PreventUIRefresh") == 2
    end_args = next(c["args"] for c in r["calls"] if c["fn"] == "Undo_EndBlock2")
    assert end_args == [0, "stase: apply spatial plan", -1]
    # The plan was shown before anything changed, and named the skipped track.
    [box] = r["messages"]
    assert box["kind"] == 1 and "Piano" in box["text"] and "Sax" in box["text"]
    first_pan = next(i for i, c in enumerate(r["calls"]) if c["fn"] == "SetMediaTrackInfo_Value")
    box_call = next(i for i, c in enumerate(r["calls"]) if c["fn"] == "ShowMessageBox")
    assert box_call < first_pan
    assert r["defer_left"] == 0
    assert r["ext"]["stase/last_prompt"] == "jazz club, sax a bit left"


def test_spatialize_cancel_at_the_prompt_changes_nothing(run):
    r = run("stase_spatialize.lua", spatialize_scenario(inputs=[{"ok": False}]))
    assert r["requests"] == [] and count(r, "Undo_BeginBlock2") == 0
    assert all(t["pan"] == 0.0 and t["ext"] == {} for t in r["tracks"])


def test_spatialize_cancel_at_confirmation_changes_nothing(run):
    r = run("stase_spatialize.lua", spatialize_scenario(message_box=[2]))
    assert len(r["requests"]) == 1
    assert count(r, "Undo_BeginBlock2") == 0 and count(r, "SetMediaTrackInfo_Value") == 0
    assert count(r, "GetSetMediaTrackInfo_String") == 0 and "stase/plan" not in r["projext"]
    assert r["defer_left"] == 0


@pytest.mark.parametrize("daemon, needle", [("down", "stase serve"), ("missing", "stase: Settings")])
def test_spatialize_reports_an_unreachable_daemon(run, daemon, needle):
    r = run("stase_spatialize.lua", spatialize_scenario(daemon=daemon))
    [box] = r["messages"]
    assert needle in box["text"]
    assert count(r, "Undo_BeginBlock2") == 0 and count(r, "SetMediaTrackInfo_Value") == 0
    assert r["defer_left"] == 0


def test_spatialize_shows_the_daemons_error(run):
    r = run("stase_spatialize.lua", spatialize_scenario(
        daemon={"plan": reply(ok=False, error="no model loaded: pass --model")}))
    [box] = r["messages"]
    assert "no model loaded" in box["text"] and count(r, "Undo_BeginBlock2") == 0


def test_spatialize_rolls_back_when_reaper_refuses_a_change(run):
    scenario = spatialize_scenario(refuse_pan_for="Sax")
    scenario["tracks"][0]["pan"] = 0.25
    scenario["tracks"][0]["ext"] = {"stase_spatial": '{"old":1}'}
    scenario["projext"] = {"stase/plan": '{"sources":[]}'}
    scenario["daemon"]["plan"] = reply(plan_result([src("Vox", 45.0), src("Sax", -20.0)]))
    r = run("stase_spatialize.lua", scenario)
    t = by_name(r)
    assert t["Vox"]["pan"] == 0.25 and t["Vox"]["ext"] == {"stase_spatial": '{"old":1}'}
    assert t["Sax"]["pan"] == 0.0 and t["Sax"]["ext"].get("stase_spatial", "") == ""
    assert r["projext"]["stase/plan"] == '{"sources":[]}'
    assert count(r, "Undo_BeginBlock2") == 1 and count(r, "Undo_EndBlock2") == 1
    assert count(r, "PreventUIRefresh") == 2
    assert "Nothing was changed" in r["messages"][-1]["text"]


def test_spatialize_waits_in_a_defer_loop_and_gives_up_after_the_job_timeout(run):
    slow = reply(plan_result(SPATIAL_SOURCES), delay_ticks=10**6)
    r = run("stase_spatialize.lua", spatialize_scenario(
        daemon={"plan": slow}, ext={"stase/job_timeout_s": "2"}))
    assert r["defer_left"] == 0
    assert 55 <= r["ticks"] <= 70  # about 2 s of REAPER's ~30 Hz timer
    assert "did not finish" in r["messages"][-1]["text"]
    assert count(r, "Undo_BeginBlock2") == 0


def test_requests_survive_shell_metacharacters_posix_and_windows(run):
    nasty = "it's \"loud\" & 50% <wide> | $HOME `id` ; ünïcødé 😀"
    for os_name in ("Other", "Win64"):
        r = run("stase_spatialize.lua", spatialize_scenario(
            os=os_name, inputs=[{"ok": True, "csv": nasty}], message_box=[2]))
        [req] = r["requests"]
        assert req["payload"]["prompt"] == nasty
        assert req["timeout"] == (-2 if os_name == "Win64" else -1)
        quote = '"' if os_name == "Win64" else "'"
        # the payload travels as a file: the command line holds only the file's quoted path
        assert req["line"].startswith("stase client --progress plan --request-file " + quote)
        assert req["request_file"].endswith(".json") and "/Data/stase_spool/job_" in req["request_file"]
        for part in ("loud", "`id`", "<wide>", "\\u00fc", "ünïcødé", "prompt"):
            assert part not in req["runner"], part
        if os_name == "Win64":
            runner = next(c["args"][0] for c in r["calls"] if c["fn"] == "ExecProcess")
            assert runner.startswith('cmd.exe /C "') and runner.endswith('.bat"') and "/" not in runner[12:]
    leftovers = [p.name for p in Path(REPO).glob("*job_*")]
    assert leftovers == [], "spool files landed in the repository"


def test_the_runner_really_runs_through_sh_with_a_fake_client(run, tmp_path):
    """No stub between the transport and /bin/sh: a fake `stase` prints a plan from its argv."""
    fake = tmp_path / "fake_stase.py"
    fake.write_text(
        "import json, sys\n"
        "args = sys.argv[1:]\n"
        "assert args[:3] == ['client', '--progress', 'plan'] and args[3] == '--request-file', args\n"
        "assert len(args) == 5, args  # nothing but the file's path\n"
        "p = json.load(open(args[4], encoding='utf-8'))\n"
        "srcs = [{'track': t, 'azimuth_deg': 30.0 * (i + 1), 'elevation_deg': 0.0, 'distance_m': 2.0,"
        " 'mode': 'pan', 'role': None, 'provenance': {'azimuth_deg': p['prompt']}}"
        " for i, t in enumerate(p['tracks'])]\n"
        "print(json.dumps({'id': '1', 'ok': True, 'result': {'room': 'dry_studio', 'sources': srcs}}))\n",
        encoding="utf-8")
    prompt = "it's a \"test\" & 100% $HOME"
    r = run("stase_spatialize.lua", spatialize_scenario(
        daemon="real", inputs=[{"ok": True, "csv": prompt}],
        ext={"stase/stase_cmd": f"'{sys.executable}' '{fake}'"}))
    t = by_name(r)
    np.testing.assert_allclose([t["Vox"]["pan"], t["Sax"]["pan"]],
                               [azimuth_to_stereo_pan(30.0), azimuth_to_stereo_pan(60.0)], atol=1e-12)
    assert ext_record(t["Sax"])["provenance"]["azimuth_deg"] == prompt
    assert count(r, "Undo_BeginBlock2") == 1 and r["defer_left"] == 0


def test_a_resource_path_with_shell_syntax_runs_nothing(run, tmp_path):
    """Issue 14 #21: the runner file names its reply files by the REAPER resource path; a path
    holding `$(...)`, backticks, quotes or %VAR% must stay text for /bin/sh (and cmd.exe)."""
    fake = tmp_path / "fake_stase.py"
    fake.write_text(
        "import json\n"
        "print(json.dumps({'id': '1', 'ok': True, 'result': {'room': 'dry_studio', 'sources': []}}))\n",
        encoding="utf-8")
    marker = Path(REPO) / "pwned_by_resource_path"
    marker.unlink(missing_ok=True)
    resource = tmp_path / "REAPER $(touch pwned_by_resource_path) `touch pwned_by_resource_path` it's \"%HOME%\""
    try:
        r = run("stase_spatialize.lua", spatialize_scenario(
            daemon="real", inputs=[{"ok": True, "csv": "a prompt"}], resource_path=str(resource),
            ext={"stase/stase_cmd": f"'{sys.executable}' '{fake}'"}))
        assert not marker.exists(), "the resource path was executed by the shell"
        assert r["requests"][0]["verb"] == "plan" and r["defer_left"] == 0
        assert not any("not reachable" in m["text"] for m in r["messages"]), r["messages"]
        spool = resource / "Data" / "stase_spool"
        assert spool.is_dir() and list(spool.iterdir()) == []  # reply files were found and removed
        # the Windows runner doubles % (a .bat expands %VAR% inside quotes)
        w = run("stase_spatialize.lua", spatialize_scenario(
            os="Win64", inputs=[{"ok": True, "csv": "a prompt"}], message_box=[2],
            resource_path=str(tmp_path / "res%PATH%")))
        runner = next(c["args"][0] for c in w["calls"] if c["fn"] == "ExecProcess")
        assert "res%PATH%" in runner
    finally:
        marker.unlink(missing_ok=True)


def test_a_quick_request_goes_as_a_file_and_leaves_the_spool_empty(run, tmp_path):
    r = run("stase_settings.lua", {
        "tracks": [], "daemon": {"status": reply({"uptime_s": 3})},
        "inputs": [{"ok": True, "csv": "stase\n\n3000\n60"}]})
    [req] = r["requests"]
    assert req["verb"] == "status" and req["timeout"] == 3000
    assert req["line"] == "stase client status --request-file '" + req["request_file"] + "' 2>&1"
    assert json.loads(req["arg"]) == {}
    spool = tmp_path / "reaper_resource" / "Data" / "stase_spool"
    assert list(spool.iterdir()) == []  # runner and request file removed after the reply
    assert "uptime_s" in r["messages"][0]["text"]


def _transport_script(tmp_path, body: str) -> str:
    """A throw-away action that loads the libraries by absolute path and runs `body`."""
    script = tmp_path / "probe_action.lua"
    script.write_text(f"""
local json = dofile("{SCRIPTS}/lib/stase_json.lua")
local transport = dofile("{SCRIPTS}/lib/stase_transport.lua").init(json)
local function report(t) reaper.SetExtState("probe", "result", json.encode(t), false) end
{body}
""", encoding="utf-8")
    return str(script)


def test_a_request_that_cannot_be_json_is_refused_before_anything_runs(run, tmp_path):
    script = _transport_script(tmp_path, """
local reply, err = transport.request_sync("set_room", { reverb_db = 0/0 })
local job, jerr = transport.start("set_room", { reverb_db = math.huge })
report({ sync = err, start = jerr, reply = reply or json.null, job = job and true or false })""")
    r = run(script, {"tracks": [], "daemon": {"set_room": reply({})}})
    got = json.loads(r["ext"]["probe/result"])
    assert got["job"] is False and got["reply"] is None
    for err, name in ((got["sync"], "NaN"), (got["start"], "Infinity")):
        assert err["kind"] == "exec" and name in err["message"]
        assert "NaN and Infinity are not JSON" in err["message"]
    assert count(r, "ExecProcess") == 0 and r["requests"] == []
    spool = tmp_path / "reaper_resource" / "Data" / "stase_spool"
    assert not spool.exists() or list(spool.iterdir()) == []


def test_an_unwritable_spool_folder_is_reported_and_runs_nothing(run, tmp_path):
    resource = tmp_path / "res"
    (resource / "Data").mkdir(parents=True)
    (resource / "Data" / "stase_spool").write_text("a file where the folder should be")
    r = run("stase_spatialize.lua", spatialize_scenario(resource_path=str(resource)))
    assert count(r, "ExecProcess") == 0 and count(r, "Undo_BeginBlock2") == 0
    [box] = r["messages"]
    assert "cannot write the request file" in box["text"]


def test_a_cancelled_job_still_has_its_request_file_removed_by_the_runner(run, tmp_path):
    """Through the real /bin/sh: the runner deletes the request when the client exits, so a job
    the script stopped waiting for (chat closed, time limit) leaves no request behind."""
    fake = tmp_path / "fake_stase.py"
    fake.write_text("import json, sys, time\n"
                    "request = json.load(open(sys.argv[sys.argv.index('--request-file') + 1]))\n"
                    "time.sleep(0.3)\n"
                    "print(json.dumps({'id': '1', 'ok': True, 'result': {'echo': request}}))\n",
                    encoding="utf-8")
    script = _transport_script(tmp_path, """
local job = assert(transport.start("status", { probe = "it's $HOME" }))
job:cancel()
local function tick()
  local f = io.open(job.paths.rc, "rb")
  if not f then reaper.defer(tick) return end
  f:close()
  local req = io.open(job.paths.request, "rb")
  if req then req:close() end
  local out = io.open(job.paths.out, "rb")
  local text = out:read("a")
  out:close()
  report({ request_left = req ~= nil, out = text, state = job.state })
  job:cleanup()
end
reaper.defer(tick)""")
    r = run(script, {"tracks": [], "daemon": "real", "max_ticks": 600,
                     "ext": {"stase/stase_cmd": f"'{sys.executable}' '{fake}'"}})
    got = json.loads(r["ext"]["probe/result"])
    assert got["state"] == "cancelled" and got["request_left"] is False
    assert json.loads(got["out"])["result"]["echo"] == {"probe": "it's $HOME"}
    assert list((tmp_path / "reaper_resource" / "Data" / "stase_spool").iterdir()) == []


# --- Apply plan ------------------------------------------------------------------------------------

def test_apply_plan_writes_every_matching_track_when_none_is_selected(run):
    # bridge/daemon.py verb_sources: every track, "placed": false for those without a place.
    placed = [dict(src("Vox", -90.0), placed=True), dict(src("Sax", 120.0), placed=True),
              {"track": "Bass", "placed": False, "role": None}]
    r = run("stase_apply_plan.lua", {
        "tracks": tracks(("Vox", False), ("sax ", False), ("Bass", False)),
        "daemon": {"sources": reply({"room": "jazz_club", "sources": placed})}})
    assert r["requests"][0]["verb"] == "sources"
    t = by_name(r)
    assert t["Vox"]["pan"] == 1.0  # -90 deg = hard right
    np.testing.assert_allclose(t["sax "]["pan"], azimuth_to_stereo_pan(120.0), atol=1e-12)
    assert t["Bass"]["pan"] == 0.0 and t["Bass"]["ext"] == {}
    assert count(r, "Undo_BeginBlock2") == 1 and count(r, "Undo_EndBlock2") == 1


def test_apply_plan_offers_the_stored_plan_when_the_daemon_is_down(run):
    stored = json.dumps(plan_result([src("Vox", 60.0)], room="cathedral"))
    r = run("stase_apply_plan.lua", {
        "tracks": tracks(("Vox", False)), "daemon": "down", "projext": {"stase/plan": stored},
        "message_box": [1, 1]})
    assert "stase serve" in r["messages"][0]["text"] and "stored" in r["messages"][0]["text"]
    np.testing.assert_allclose(by_name(r)["Vox"]["pan"], azimuth_to_stereo_pan(60.0), atol=1e-12)
    assert ext_record(by_name(r)["Vox"])["room"] == "cathedral"


def test_apply_plan_refuses_ambiguous_track_names(run):
    r = run("stase_apply_plan.lua", {
        "tracks": tracks(("Gtr", False), ("gtr", False)),
        "daemon": {"sources": reply(plan_result([src("Gtr", 45.0)]))}})
    assert "two tracks" in r["messages"][0]["text"]
    assert count(r, "Undo_BeginBlock2") == 0 and count(r, "SetMediaTrackInfo_Value") == 0


# --- Gain advice -----------------------------------------------------------------------------------

ADVICE = {"tracks": [{"track": "Vox", "gain_db": -2.0, "confidence": 0.8, "reasons": ["masks the sax"]},
                     {"track": "Sax", "gain_db": 1.5, "confidence": 0.6, "reasons": ["too quiet"]}],
          "summary": "Vocal a little loud."}


def test_gain_advice_applies_only_the_chosen_changes(run):
    scenario = {"tracks": tracks(("Vox", True), ("Sax", True)),
                "daemon": {"advise": reply(ADVICE)}, "message_box": [1],
                "inputs": [{"ok": True, "csv": "-3.5,"}]}
    scenario["tracks"][0]["vol"] = 0.5
    r = run("stase_gain_advice.lua", scenario)
    assert r["requests"][0]["payload"] == {"tracks": ["Vox", "Sax"]}
    assert "masks the sax" in r["messages"][0]["text"]
    asked = r["inputs_asked"][0]
    assert asked["n"] == 2 and asked["defaults"] == "-2.0,+1.5"
    t = by_name(r)
    np.testing.assert_allclose(t["Vox"]["vol"], 0.5 * 10 ** (-3.5 / 20), rtol=1e-12)
    assert t["Sax"]["vol"] == 1.0
    assert count(r, "Undo_BeginBlock2") == 1 and count(r, "Undo_EndBlock2") == 1


def test_gain_advice_asks_for_the_stems_folder_when_the_daemon_needs_it(run):
    need = reply(ok=False, error="stems_dir: give a folder of the tracks' audio files", rc=1)
    r = run("stase_gain_advice.lua", {
        "tracks": tracks(("Vox", True), ("Sax", True)),
        "daemon": {"advise": [need, reply(ADVICE)]}, "message_box": [1],
        "inputs": [{"ok": True, "csv": "/music/stems"}, {"ok": True, "csv": "-2.0,+1.5"}]})
    assert [q["payload"].get("stems_dir") for q in r["requests"]] == [None, "/music/stems"]
    assert r["inputs_asked"][0]["defaults"] == "/projects/song"
    assert r["projext"]["stase/stems_dir"] == "/music/stems"
    t = by_name(r)
    np.testing.assert_allclose([t["Vox"]["vol"], t["Sax"]["vol"]],
                               [10 ** (-2.0 / 20), 10 ** (1.5 / 20)], rtol=1e-12)
    assert count(r, "Undo_BeginBlock2") == 1


@pytest.mark.parametrize("csv", ["abc,1", "-2,99"])
def test_gain_advice_with_an_invalid_value_changes_nothing(run, csv):
    r = run("stase_gain_advice.lua", {
        "tracks": tracks(("Vox", True), ("Sax", True)), "daemon": {"advise": reply(ADVICE)},
        "message_box": [1, 1], "inputs": [{"ok": True, "csv": csv}]})
    assert all(t["vol"] == 1.0 for t in r["tracks"])
    assert count(r, "Undo_BeginBlock2") == 0 and "Nothing was changed" in r["messages"][-1]["text"]


def test_gain_advice_cancel_changes_nothing(run):
    r = run("stase_gain_advice.lua", {
        "tracks": tracks(("Vox", True)), "daemon": {"advise": reply(ADVICE)},
        "message_box": [2]})
    assert r["inputs_asked"] == [] and count(r, "Undo_BeginBlock2") == 0


# --- Listen back -----------------------------------------------------------------------------------

def test_listen_back_checks_each_track_and_shows_the_great_circle_error(run):
    from stase.core.conventions import great_circle_deg
    sax = {"track": "Sax", "planned": {"azimuth_deg": 30.0, "elevation_deg": 0.0, "distance_m": 2.0},
           "heard": {"azimuth_deg": 18.0, "elevation_deg": 10.0, "distance_m": 2.5, "confidence": 0.7}}
    r = run("stase_listen_back.lua", {
        "tracks": tracks(("Sax", True), ("Vox", True)),
        "daemon": {"listen": [reply(sax), reply(ok=False, error="no stem for 'Vox' in the stems folder")]}})
    assert [q["payload"] for q in r["requests"]] == [{"track": "Sax"}, {"track": "Vox"}]
    [box] = r["messages"]
    expected = round(great_circle_deg(30.0, 0.0, 18.0, 10.0))
    assert f"Sax:  meant +30 deg  heard +18 deg  error {expected} deg  (confidence 70%)" in box["text"]
    assert "Vox: " in box["text"] and "no stem" in box["text"]
    assert count(r, "Undo_BeginBlock2") == 0 and count(r, "SetMediaTrackInfo_Value") == 0
    assert r["defer_left"] == 0


def test_listen_back_reports_the_daemon_down(run):
    r = run("stase_listen_back.lua", {"tracks": tracks(("Sax", True)), "daemon": "down"})
    assert "stase serve" in r["messages"][0]["text"] and r["defer_left"] == 0


def test_a_busy_daemon_is_reported_as_busy_not_down(run):
    """bridge/client.py exits 4 when the daemon is reachable but answers too late (issue 14 #10)."""
    busy = {"rc": 4, "out": "", "err": "stase daemon busy at 127.0.0.1:9100 (no reply within 2 s after 3 tries)\n"}
    r = run("stase_listen_back.lua", {"tracks": tracks(("Sax", True)), "daemon": {"listen": busy}})
    text = r["messages"][0]["text"]
    assert "busy" in text and "stase serve" not in text and r["defer_left"] == 0


# --- Chat --------------------------------------------------------------------------------------------

def chat_daemon(new_az=50.0):
    """bridge/dispatcher.py replies: accepted, progress..., then the final result of verb_chat."""
    final = {"routed_to": "edit", "result": {"plan": plan_result([src("Vox", 0.0), src("Sax", new_az)])}}
    interim = (json.dumps({"id": "c", "ok": True, "status": "accepted", "job": 1}) + "\n" +
               json.dumps({"id": "c", "ok": True, "status": "progress", "job": 1, "progress": 0.4,
                           "message": "planning"}) + "\n")
    return {"chat": reply(final, interim=interim, delay_ticks=6)}


STORED = json.dumps(plan_result([src("Vox", 0.0), src("Sax", 30.0)]))


def test_chat_gfx_sends_streams_and_applies_on_click(run):
    r = run("stase_chat.lua", {
        "tracks": tracks(("Vox", False), ("Sax", False)), "daemon": chat_daemon(),
        "projext": {"stase/plan": STORED},
        "gfx_events": [{"tick": 2, "text": "sax more left"}, {"tick": 20, "char": 13},
                       {"tick": 40, "click": "apply"}, {"tick": 45, "char": 27}]})
    [req] = r["requests"]
    assert req["verb"] == "chat" and req["payload"] == {"text": "sax more left", "tracks": ["Vox", "Sax"]}
    np.testing.assert_allclose(by_name(r)["Sax"]["pan"], azimuth_to_stereo_pan(50.0), atol=1e-12)
    assert count(r, "Undo_BeginBlock2") == 1 and count(r, "Undo_EndBlock2") == 1
    drawn = "\n".join(r["drawn"])
    assert "planning... [40%]" in drawn  # progress shown while the daemon works (wrap joins words with one space)
    assert "I changed the plan. (edit)" in drawn
    assert "Sax: az +30.0 deg -> +50.0 deg" in drawn  # what changed, before Apply
    assert r["defer_left"] == 0 and r["gfx_open"] is False
    assert count(r, "gfx.init") == 1 and count(r, "gfx.quit") == 1


def test_chat_gfx_without_apply_changes_nothing_and_reports_a_down_daemon(run):
    r = run("stase_chat.lua", {
        "tracks": tracks(("Sax", False)), "daemon": "down",
        "gfx_events": [{"tick": 2, "text": "hello"}, {"tick": 10, "char": 13},
                       {"tick": 30, "char": -1}]})
    assert count(r, "Undo_BeginBlock2") == 0 and r["defer_left"] == 0
    assert any("stase serve" in s for s in r["drawn"])


def test_chat_uses_reaimgui_when_installed(run):
    r = run("stase_chat.lua", {
        "tracks": tracks(("Vox", False), ("Sax", False)), "daemon": chat_daemon(-30.0),
        "projext": {"stase/plan": STORED},
        "imgui": {"path": str(REPO / "tests" / "lua" / "imgui"),
                  "events": [{"frame": 2, "input": "sax to the right"},
                             {"frame": 20, "button": "Apply"}, {"frame": 25, "close": True}]}})
    assert any(c["fn"] == "APIExists" and c["args"] == ["ImGui_GetBuiltinPath"] for c in r["calls"])
    assert count(r, "gfx.init") == 0
    assert r["requests"][0]["payload"]["text"] == "sax to the right"
    np.testing.assert_allclose(by_name(r)["Sax"]["pan"], azimuth_to_stereo_pan(-30.0), atol=1e-12)
    assert by_name(r)["Sax"]["pan"] > 0  # right
    assert count(r, "Undo_BeginBlock2") == 1
    fns = [c["fn"] for c in r["imgui"]["calls"]]
    assert fns.count("Begin") == fns.count("End") == 25
    assert fns.count("BeginChild") == fns.count("EndChild")
    assert r["defer_left"] == 0


# --- Ardour action, in the real headless Ardour (ardour7-lua) ---------------------------------------

FAKE_ARDOUR_CLIENT = """
import json, sys
args = sys.argv[1:]
assert args[:2] == ["client", "--job-timeout"] and args[4] == "--request-file", args
verb, request_file = args[3], args[5]
with open(request_file, encoding="utf-8") as f:
    payload = json.load(f)
with open(sys.argv[0] + ".argv.json", "a") as log:
    log.write(json.dumps({"argv": args, "payload": payload}) + "\\n")
assert verb == "plan", verb
places = {"Sax": 30.0, "Vox": -45.0, "Drums": 10.0}
srcs = [{"track": t, "azimuth_deg": places[t], "elevation_deg": None if t == "Vox" else 0.0,
         "distance_m": 2.0, "mode": "hrtf", "role": None,
         "provenance": {"azimuth_deg": payload["prompt"]}} for t in places]
print(json.dumps({"id": "a1", "ok": True, "result": {"plan": {"room": "jazz_club", "sources": srcs}}}))
"""


def test_ardour_action_pans_the_selected_tracks_in_headless_ardour(tmp_path):
    """The Ardour script's own transport (io.popen in Ardour's Lua 5.3) against a fake client,
    then the pans read back from Ardour's pan azimuth controls (0 = left, 1 = right)."""
    from ardour_host import ArdourUnavailable, ardour_session  # tests/ is on sys.path under pytest

    fake = tmp_path / "fake_client.py"
    fake.write_text(FAKE_ARDOUR_CLIENT, encoding="utf-8")
    down = tmp_path / "down.sh"
    down.write_text("#!/bin/sh\necho 'stase daemon not reachable at 127.0.0.1:9100' >&2\nexit 3\n")
    down.chmod(0o755)
    result = tmp_path / "result.json"
    prompt = "jazz club, it's \"warm\" & 100% wide"

    def lua_str(s: str) -> str:
        return json.dumps(s)  # a JSON string literal is a valid Lua string literal here (ASCII)

    extra = f"""
if ardour == nil then function ardour(t) end end
dofile({lua_str(str(SCRIPTS / "ardour" / "stase_spatialize.lua"))})
local S = factory({{__stase_test = true, stase_cmd = {lua_str(f"'{sys.executable}' '{fake}'")}}})
local msgs = S.json.array({{}})
S.ui.message = function(t) msgs[#msgs + 1] = t end
S.ui.confirm = function(t) msgs[#msgs + 1] = "CONFIRM " .. t return true end
local routes = {{}}
for _, n in ipairs({{"Sax", "Vox"}}) do routes[#routes + 1] = Session:route_by_name(n) end
local function pans()
  local p = {{}}
  for r in Session:get_routes():iter() do
    local c = r:pan_azimuth_control()
    if not c:isnil() then p[r:name()] = c:get_value() end
  end
  return p
end
local before = pans()
local ok = S.spatialize(routes, {lua_str(prompt)})
local after = pans()
S.stase_cmd = {lua_str(str(down))}
local ok_down = S.spatialize(routes, "anything")
local after_down = pans()
local f = io.open({lua_str(str(result))}, "w")
f:write(S.encode({{ok = ok, ok_down = ok_down, before = before, after = after,
                   after_down = after_down, messages = msgs, spool = S.spool_dir(),
                   nan = {{pcall(S.encode, {{gain_db = 0/0}})}} }}))
f:close()
"""
    try:
        with ardour_session(["Vox", "Sax", "Drums"], extra_lua=extra) as host:
            log = host.log_tail()
            r = json.loads(result.read_text(encoding="utf-8")) if result.exists() else None
            spool_left = sorted(p.name for p in Path(r["spool"]).iterdir()) if r else None
            saved_plan = json.loads((host.session_dir / "stase_plan.json").read_text(encoding="utf-8")) if r else None
    except ArdourUnavailable as exc:
        pytest.fail(f"headless Ardour could not run: {exc}")
    assert r is not None, f"the Ardour Lua did not finish; log:\n{log}"
    assert r["ok"] is True and r["ok_down"] is False
    assert r["before"] == {"Vox": 0.5, "Sax": 0.5, "Drums": 0.5, "Master": 0.5}
    assert r["after"]["Master"] == 0.5
    expected = {"Sax": (azimuth_to_stereo_pan(30.0) + 1) / 2, "Vox": (azimuth_to_stereo_pan(-45.0) + 1) / 2}
    np.testing.assert_allclose([r["after"]["Sax"], r["after"]["Vox"]],
                               [expected["Sax"], expected["Vox"]], atol=1e-6)
    assert r["after"]["Sax"] < 0.5 < r["after"]["Vox"]  # sax left, vox right
    assert r["after"]["Drums"] == 0.5  # not selected
    assert r["after_down"] == r["after"]  # daemon down: nothing changed
    assert r["messages"][0].startswith("CONFIRM Room: jazz_club")
    assert "Not selected (skipped): Drums" in r["messages"][0]
    assert "stase serve --daw ardour" in r["messages"][1]
    [call] = [json.loads(line) for line in (tmp_path / "fake_client.py.argv.json").read_text().splitlines()]
    # the request travelled as a file in the spool folder, not on the command line, and is gone
    assert call["payload"] == {"prompt": prompt, "tracks": ["Sax", "Vox"]}
    assert Path(call["argv"][5]).parent == Path(r["spool"]) and len(call["argv"]) == 6
    assert not any(prompt in a or "{" in a for a in call["argv"])
    assert spool_left == []
    # the built-in codec is the library's: null read as absent, NaN refused, the plan saved
    assert saved_plan["sources"][1]["elevation_deg"] is None and saved_plan["room"] == "jazz_club"
    assert r["nan"][0] is False and "NaN and Infinity are not JSON" in r["nan"][1]


# --- End to end: the scripts' transport against a real daemon (stase serve --daw none) ------------

@pytest.fixture
def daemon(tmp_path):
    """A real daemon on a free port: yields the ExtState that points the scripts at it."""
    import os
    import time

    from ardour_host import free_udp_port

    port = free_udp_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "stase.cli", "serve", "--daw", "none", "--port", str(port),
           "--no-audio", "--session", str(tmp_path / "session.json"), "--conductor-model", "none"]
    log = open(tmp_path / "daemon.log", "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    client = [sys.executable, "-m", "stase.cli", "client", "--port", str(port)]
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the daemon did not start: " + (tmp_path / "daemon.log").read_text(errors="replace"))
            if subprocess.run(client + ["status"], env=env, capture_output=True, cwd=REPO).returncode == 0:
                break
            time.sleep(0.3)

        def call(verb, payload):
            out = subprocess.run(client + [verb, json.dumps(payload)], env=env, capture_output=True,
                                 text=True, cwd=REPO, check=True).stdout
            return json.loads(out)

        yield {"ext": {"stase/stase_cmd": f"env 'PYTHONPATH={REPO}' '{sys.executable}' -m stase.cli",
                       "stase/client_args": f"--port {port}"}, "call": call, "port": port}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_end_to_end_spatialize_then_chat_edit_against_a_real_daemon(run, daemon):
    daemon["call"]("tracks", {"tracks": ["Vox", "Sax"]})
    r = run("stase_spatialize.lua", spatialize_scenario(
        daemon="real", ext=daemon["ext"], inputs=[{"ok": True, "csv": "jazz club, sax 40 degrees left"}]))
    assert r["defer_left"] == 0 and count(r, "Undo_BeginBlock2") == 1, r["messages"]
    sax = ext_record(by_name(r)["Sax"])
    np.testing.assert_allclose(by_name(r)["Sax"]["pan"],
                               azimuth_to_stereo_pan(sax["azimuth_deg"], sax["elevation_deg"]), atol=1e-12)
    assert sax["azimuth_deg"] > 0 and by_name(r)["Sax"]["pan"] < 0  # asked for left, got left
    # The daemon keeps the plan: "Apply plan to tracks" fetches it through `sources`.
    r2 = run("stase_apply_plan.lua", {"tracks": tracks(("Vox", False), ("Sax", False)),
                                      "daemon": "real", "ext": daemon["ext"], "message_box": [1]})
    assert [q["verb"] for q in r2["requests"]] == ["sources"]
    np.testing.assert_allclose(by_name(r2)["Sax"]["pan"], by_name(r)["Sax"]["pan"], atol=1e-12)


def test_end_to_end_daemon_down_gives_the_start_hint(run, daemon):
    ext = dict(daemon["ext"], **{"stase/client_args": "--port 9"})  # nobody listens there
    r = run("stase_settings.lua", {"tracks": [], "daemon": "real", "ext": ext,
                                   "inputs": [{"ok": True, "csv": "\n".join(
                                       [ext["stase/stase_cmd"], "--port 9", "3000", "60"])}]})
    assert "not reachable" in r["messages"][0]["text"] and "stase serve" in r["messages"][0]["text"]
    assert r["ext"]["stase/client_args"] == "--port 9"


def test_end_to_end_chat_edit_streams_progress_and_applies(run, daemon):
    daemon["call"]("tracks", {"tracks": ["Vox", "Sax"]})
    daemon["call"]("set_source", {"track": "Sax", "azimuth_deg": 10.0})
    daemon["call"]("set_source", {"track": "Vox", "azimuth_deg": 0.0})
    stored = json.dumps(plan_result([src("Vox", 0.0), src("Sax", 10.0)]))
    events = [{"tick": 2, "text": "move the sax 60 degrees left"}, {"tick": 40, "char": 13}]
    # Click Apply as soon as it is on screen, then close: the stub needs fixed ticks, so offer
    # the click on many ticks; only the first one that finds the button can apply (it then goes).
    r = run("stase_chat.lua", {
        "tracks": tracks(("Vox", False), ("Sax", False)), "daemon": "real", "ext": daemon["ext"],
        "projext": {"stase/plan": stored}, "max_ticks": 1200,
        "gfx_events": events + [{"tick": 1199, "char": 27}], "click_when_shown": "apply",
        "close_after_apply": True})
    assert r["requests"][0]["verb"] == "chat"
    sax = by_name(r)["Sax"]
    assert count(r, "Undo_BeginBlock2") == 1, "\n".join(r["drawn"][-20:])
    rec = ext_record(sax)
    np.testing.assert_allclose(sax["pan"], azimuth_to_stereo_pan(rec["azimuth_deg"], rec["elevation_deg"]))
    assert rec["azimuth_deg"] > 10.0 and sax["pan"] < azimuth_to_stereo_pan(10.0)
    assert r["defer_left"] == 0


def test_end_to_end_wetness_reaches_the_daemons_plan(run, daemon):
    daemon["call"]("tracks", {"tracks": ["Vox"]})
    r = run("stase_chat.lua", {
        "tracks": tracks(("Vox", False)), "daemon": "real", "ext": daemon["ext"], "max_ticks": 1500,
        "inputs": [{"ok": True, "csv": "-7.5"}], "gfx_events": [{"tick": 3, "click": "wetness"}],
        "close_when_drawn": "(was +0 dB)"})
    [req] = r["requests"]
    assert req["verb"] == "set_room" and req["payload"] == {"reverb_db": -7.5}
    assert any("Wetness: -7.5 dB (was +0 dB)" in line for line in r["drawn"]), r["drawn"][-10:]
    assert "Wetness (dB): -7.5" in r["drawn"]  # the panel's row shows the value now set
    assert r["defer_left"] == 0
    again = daemon["call"]("set_room", {"reverb_db": -7.5})
    assert again["result"]["previous_reverb_db"] == -7.5  # the daemon kept what the panel sent


def test_listen_back_asks_for_the_stems_folder_once_then_retries(run):
    need = reply(ok=False, error="stems_dir: give a folder of the tracks' audio files", rc=1)
    sax = {"track": "Sax", "planned": {"azimuth_deg": 30.0, "elevation_deg": 0.0},
           "heard": {"azimuth_deg": 30.0, "elevation_deg": 0.0, "confidence": 0.9}}
    r = run("stase_listen_back.lua", {
        "tracks": tracks(("Sax", True)), "daemon": {"listen": [need, reply(sax)]},
        "inputs": [{"ok": True, "csv": "/music/stems"}]})
    assert [q["payload"] for q in r["requests"]] == [{"track": "Sax"},
                                                      {"track": "Sax", "stems_dir": "/music/stems"}]
    assert "error 0 deg" in r["messages"][0]["text"] and len(r["inputs_asked"]) == 1


# --- Wetness (issue 15): the plan's reverb_db from the chat panel ----------------------------------

def _wetness_bounds():
    from stase.core.placement import REVERB_DB_RANGE
    return REVERB_DB_RANGE


def test_wetness_parsing_takes_the_placement_schemas_bounds():
    low, high = _wetness_bounds()
    accepted = {"-6": -6.0, " -6 dB ": -6.0, "+3": 3.0, "0": 0.0, "-0": 0.0, "-4,5": -4.5,
                "\u22126": -6.0, ".5": 0.5, str(low): low, str(high): high, "12dB": 12.0}
    refused = ["", "abc", "nan", "inf", "1e999", "-6 dBFS", "--6", "1,5.5", str(low - 0.5),
               str(high + 0.001), "100"]
    cases = list(accepted) + refused
    table = "{" + ",".join(json.dumps(c, ensure_ascii=False) for c in cases) + "}"
    out = _lua_eval(f"""
local core = dofile("{SCRIPTS}/lib/stase_core.lua").init(json, nil)
local ui = dofile("{SCRIPTS}/lib/stase_ui.lua").init(json, nil, core)
for _, c in ipairs({table}) do
  local v, err = ui.parse_wetness(c)
  io.write(v and string.format("%.17g", v) or ("ERR " .. err), "\\n")
end
for _, n in ipairs({{ {low}, {high}, {low} - 1e-9, {high} + 1e-9, 0/0, math.huge }}) do
  local v, err = ui.parse_wetness(n)
  io.write(v and string.format("%.17g", v) or ("ERR " .. err), "\\n")
end""")
    lines = out.splitlines()
    assert len(lines) == len(cases) + 6
    for case, line in zip(cases, lines):
        if case in accepted:
            assert float(line) == accepted[case], (case, line)
            assert line != "-0", case
        else:
            assert line.startswith("ERR Wetness (dB)"), (case, line)
            assert f"{low:g}..{high:+g} dB" in line, line
    numbers = lines[len(cases):]
    assert [float(x) for x in numbers[:2]] == [low, high]
    assert all(x.startswith("ERR ") for x in numbers[2:]), numbers


def wetness_reply(db, summary=None):
    return reply({"room": "jazz_club", "reverb_db": db, "previous_reverb_db": 0.0,
                  "summary": summary or f"Wetness: {db:+.1f} dB (was +0.0 dB)."})


def test_wetness_gfx_asks_sends_set_room_and_shows_the_reply(run):
    r = run("stase_chat.lua", {
        "tracks": tracks(("Vox", False)), "daemon": {"set_room": wetness_reply(-6.0, "Drier: -6 dB.")},
        "inputs": [{"ok": True, "csv": "-6 dB"}],
        "gfx_events": [{"tick": 3, "click": "wetness"}, {"tick": 20, "char": 27}]})
    [req] = r["requests"]
    assert req["verb"] == "set_room" and req["payload"] == {"reverb_db": -6.0}
    assert req["timeout"] == -1  # in the background: REAPER never waits on the daemon
    [asked] = r["inputs_asked"]
    low, high = _wetness_bounds()
    assert "Wetness (dB)" in asked["captions"] and f"{low:g}..{high:+g} dB" in asked["captions"]
    assert asked["defaults"] == "0.0"
    drawn = " ".join(r["drawn"])
    assert "Drier: -6 dB." in drawn  # the daemon's own words
    assert "Wetness (dB): -6.0" in r["drawn"]  # the row shows the value now set
    assert count(r, "Undo_BeginBlock2") == 0 and r["defer_left"] == 0


@pytest.mark.parametrize("typed", ["20", "-61", "nan", "wet"])
def test_wetness_out_of_range_is_refused_before_sending(run, typed):
    r = run("stase_chat.lua", {
        "tracks": tracks(("Vox", False)), "daemon": {"set_room": wetness_reply(0.0)},
        "inputs": [{"ok": True, "csv": typed}],
        "gfx_events": [{"tick": 3, "click": "wetness"}, {"tick": 10, "char": 27}]})
    assert r["requests"] == []
    # the history is word-wrapped and drawn bottom-up: reversed, its lines join with one space
    drawn = " ".join(reversed(r["drawn"]))
    assert "Nothing was sent." in drawn and "-60..+12 dB" in drawn
    assert "Wetness (dB): +0.0" in r["drawn"]


def test_wetness_starts_from_the_stored_plan_and_cancel_sends_nothing(run):
    stored = json.dumps(dict(plan_result([src("Vox", 0.0)]), reverb_db=-3.0))
    r = run("stase_chat.lua", {
        "tracks": tracks(("Vox", False)), "projext": {"stase/plan": stored},
        "inputs": [{"ok": False}],
        "gfx_events": [{"tick": 3, "click": "wetness"}, {"tick": 10, "char": 27}]})
    assert r["requests"] == [] and r["inputs_asked"][0]["defaults"] == "-3.0"
    assert "Wetness (dB): -3.0" in r["drawn"]


def test_wetness_imgui_sends_the_value_and_shows_the_daemons_error(run):
    refused = reply(ok=False, error="set_room: reverb_db must be in [-60, 12] dB, got 12.5", rc=1)
    r = run("stase_chat.lua", {
        "tracks": tracks(("Vox", False)), "daemon": {"set_room": [wetness_reply(-12.5), refused]},
        "imgui": {"path": str(REPO / "tests" / "lua" / "imgui"),
                  "events": [{"frame": 2, "wetness": -12.5}, {"frame": 10, "wetness": 99.0},
                             {"frame": 12, "wetness": 12.0}, {"frame": 25, "close": True}]}})
    # -12.5 sent; 99 refused here (not sent); 12 sent and refused by the (scripted) daemon
    assert [q["payload"] for q in r["requests"]] == [{"reverb_db": -12.5}, {"reverb_db": 12.0}]
    texts = [c["args"][0] for c in r["imgui"]["calls"] if c["fn"] == "TextWrapped"]
    assert any("Wetness: -12.5 dB (was +0.0 dB)." in t for t in texts)
    assert any("got 99" in t and "Nothing was sent." in t for t in texts)
    assert any("reverb_db must be in [-60, 12] dB, got 12.5" in t for t in texts)
    fns = [c["fn"] for c in r["imgui"]["calls"]]
    assert fns.count("Begin") == fns.count("End") == 25 and r["defer_left"] == 0
    [label] = {c["args"][0] for c in r["imgui"]["calls"] if c["fn"] == "InputDouble"}
    assert label == "Wetness (dB)"
