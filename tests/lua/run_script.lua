--[[
Run one stase ReaScript under Lua 5.4 against the recording reaper stub.

  lua5.4 tests/lua/run_script.lua <script.lua> <scenario.json> <report.json>

Loads the scenario, installs the stub, runs the script, drains the reaper.defer queue and writes
the stub's report (calls, final track state, ext state, requests sent to the fake daemon,
message boxes) as JSON. A Lua error in the script is reported as {"error": "..."}.
]]
local script, scenario_path, report_path = arg[1], arg[2], arg[3]
local here = arg[0]:match("^(.*[/\\])") or "./"
local repo = here .. "../../"
local json = dofile(repo .. "reaper_scripts/lib/stase_json.lua")
local stub = dofile(here .. "reaper_stub.lua")
stub.json = json

local f = assert(io.open(scenario_path, "rb"))
local scenario = assert(json.decode(f:read("a")))
f:close()

local function plain(v)  -- json.null -> nil throughout the scenario
  if v == json.null then return nil end
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = plain(x) end
  end
  return v
end
scenario = plain(scenario)

if scenario.imgui then
  package.path = scenario.imgui.path .. "/?.lua;" .. package.path
end

local env = stub.new(scenario)
local ok, err = xpcall(function()
  dofile(script)
  env:run_defer()
end, debug.traceback)

local report = env:report()
if not ok then report.error = tostring(err) end
if scenario.imgui and _G.imgui_stub_log then
  local log = _G.imgui_stub_log
  local depth, child_depth = log.check()
  report.imgui = { calls = json.array(log.calls), frames = log.frames, version = log.version,
                   open_windows = depth, open_children = child_depth }
end
local out = assert(io.open(report_path, "wb"))
out:write(json.encode(report))
out:close()
