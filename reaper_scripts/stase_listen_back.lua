-- @description stase: Listen back
-- @version 0.1.0
-- @author stase developers
-- @noindex
--   (installed with the "stase" package declared in stase_spatialize.lua; @noindex keeps
--   reapack-index from listing it twice)
-- @about
--   Asks the stase daemon to render the current placement and listen to it with its
--   localisation model, then shows, per track, where each source was meant to be, where it was
--   heard and the angular error. Changes nothing in the project.
-- @provides [main] .
local script_dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or "./"
local json = dofile(script_dir .. "lib/stase_json.lua")
local transport = dofile(script_dir .. "lib/stase_transport.lua").init(json)
local core = dofile(script_dir .. "lib/stase_core.lua").init(json, transport)

local TITLE = "stase: Listen back"

local function num(v) v = json.value(v); return type(v) == "number" and v or nil end

local function first_num(t, keys)
  if type(t) ~= "table" then return nil end
  for _, k in ipairs(keys) do
    local v = num(t[k])
    if v then return v end
  end
  return nil
end

--- One line per checked track: target, heard, error (degrees) and confidence when present.
local function format_rows(result)
  local rows = json.value(result.tracks) or json.value(result.sources) or json.value(result.results) or {}
  local lines = {}
  for _, r in ipairs(rows) do
    if type(r) == "table" then
      local target = json.value(r.target) or json.value(r.planned) or r
      local heard = json.value(r.heard) or json.value(r.estimate) or json.value(r.perceived) or {}
      local t_az = first_num(target, { "azimuth_deg", "target_azimuth_deg" })
      local h_az = first_num(heard, { "azimuth_deg" }) or first_num(r, { "heard_azimuth_deg", "estimated_azimuth_deg" })
      local err = first_num(r, { "error_deg", "angular_error_deg", "azimuth_error_deg" })
      local conf = first_num(r, { "confidence" }) or first_num(heard, { "confidence" })
      local parts = { tostring(json.value(r.track) or "?") .. ":" }
      if t_az then parts[#parts + 1] = string.format("meant %+.0f deg", t_az) end
      if h_az then parts[#parts + 1] = string.format("heard %+.0f deg", h_az) end
      if err then parts[#parts + 1] = string.format("error %.0f deg", err) end
      if conf then parts[#parts + 1] = string.format("(confidence %d%%)", math.floor(conf * 100 + 0.5)) end
      lines[#lines + 1] = table.concat(parts, "  ")
    end
  end
  return lines
end

local function main()
  local tracks = core.selected_tracks()
  local payload = {}
  if #tracks > 0 then payload.tracks = core.track_names(tracks) end
  transport.run("listen", payload, function(reply, err)
    if not reply then return core.report_error(err, TITLE) end
    local result = json.value(reply.result) or {}
    local lines = format_rows(result)
    local summary = json.value(result.summary)
    if type(summary) == "string" and summary ~= "" then table.insert(lines, 1, summary .. "\n") end
    if #lines == 0 then lines[1] = "The daemon returned no per-track result:\n" .. json.encode(result):sub(1, 600) end
    local mean = num(result.mean_error_deg)
    if mean then lines[#lines + 1] = string.format("\nMean error: %.0f deg", mean) end
    core.message(table.concat(lines, "\n"), TITLE)
  end)
end

main()
