-- @description stase: Settings
-- @version 0.1.0
-- @author stase developers
-- @noindex
--   (installed with the "stase" package declared in stase_spatialize.lua; @noindex keeps
--   reapack-index from listing it twice)
-- @about
--   Where the scripts find the stase command line client and how long they wait: the path or
--   command that runs `stase`, extra client arguments (for example --port 9100), the longest
--   blocking wait for quick requests (ms) and for long jobs (s). Then checks the daemon.
-- @provides [main] .
local script_dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or "./"
local json = dofile(script_dir .. "lib/stase_json.lua")
local transport = dofile(script_dir .. "lib/stase_transport.lua").init(json)
local core = dofile(script_dir .. "lib/stase_core.lua").init(json, transport)

local TITLE = "stase: Settings"
local KEYS = { "stase_cmd", "client_args", "sync_timeout_ms", "job_timeout_s" }
local CAPTIONS = "stase command (path):,extra client args:,quick wait (ms):,job wait (s):," ..
                 "separator=\n,extrawidth=300"

local function main()
  local values = {}
  for i, k in ipairs(KEYS) do values[i] = transport.setting(k) end
  local ok, csv = reaper.GetUserInputs(TITLE, #KEYS, CAPTIONS, table.concat(values, "\n"))
  if not ok then return end
  local fields = {}
  for field in (csv .. "\n"):gmatch("([^\n]*)\n") do fields[#fields + 1] = field end
  local sync_ms, job_s = tonumber(fields[3]), tonumber(fields[4])
  if (fields[1] or "") == "" or not sync_ms or sync_ms < 100 or sync_ms > 30000 or not job_s or job_s < 1 then
    return core.message("Not saved: the command must not be empty, the quick wait must be " ..
                        "100..30000 ms and the job wait at least 1 s.", TITLE)
  end
  for i, k in ipairs(KEYS) do reaper.SetExtState(transport.SECTION, k, fields[i] or "", true) end
  local reply, err = transport.request_sync("status", {})
  if reply then
    core.message("Saved. The stase daemon answers:\n\n" .. json.encode(json.value(reply.result) or {}):sub(1, 800), TITLE)
  else
    core.message("Saved, but the check failed:\n\n" .. err.message, TITLE)
  end
end

main()
