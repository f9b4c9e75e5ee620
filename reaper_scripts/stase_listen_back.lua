-- @description stase: Listen back
-- @version 0.1.0
-- @author stase developers
-- @noindex
--   (installed with the "stase" package declared in stase_spatialize.lua; @noindex keeps
--   reapack-index from listing it twice)
-- @about
--   For each selected track, asks the stase daemon to render that track alone at its planned
--   place and listen to it with its localisation model (Spatial-AST), then shows where each
--   source was meant to be, where it was heard and the great-circle error in degrees. Changes
--   nothing in the project.
-- @provides [main] .
local script_dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or "./"
local json = dofile(script_dir .. "lib/stase_json.lua")
local transport = dofile(script_dir .. "lib/stase_transport.lua").init(json)
local core = dofile(script_dir .. "lib/stase_core.lua").init(json, transport)

local TITLE = "stase: Listen back"

local function num(v) v = json.value(v); return type(v) == "number" and v or nil end

--- Great-circle angle between two directions, degrees (stase.core.conventions.great_circle_deg).
local function great_circle_deg(az1, el1, az2, el2)
  local a1, e1, a2, e2 = math.rad(az1), math.rad(el1), math.rad(az2), math.rad(el2)
  local c = math.sin(e1) * math.sin(e2) + math.cos(e1) * math.cos(e2) * math.cos(a1 - a2)
  return math.deg(math.acos(core.clamp(c, -1, 1)))
end

--- One line for the daemon's listen result {track, planned = {azimuth_deg, elevation_deg, ...},
-- heard = {azimuth_deg, elevation_deg, distance_m, confidence}}.
local function format_row(name, result)
  result = json.value(result) or {}
  local planned = json.value(result.planned) or {}
  local heard = json.value(result.heard) or {}
  local p_az, p_el = num(planned.azimuth_deg), num(planned.elevation_deg) or 0
  local h_az, h_el = num(heard.azimuth_deg), num(heard.elevation_deg) or 0
  local parts = { tostring(json.value(result.track) or name) .. ":" }
  if p_az then parts[#parts + 1] = string.format("meant %+.0f deg", p_az) end
  if h_az then parts[#parts + 1] = string.format("heard %+.0f deg", h_az) end
  local err
  if p_az and h_az then
    err = great_circle_deg(p_az, p_el, h_az, h_el)
    parts[#parts + 1] = string.format("error %.0f deg", err)
  end
  local conf = num(heard.confidence)
  if conf then parts[#parts + 1] = string.format("(confidence %d%%)", math.floor(conf * 100 + 0.5)) end
  return table.concat(parts, "  "), err
end

local function main()
  local tracks = core.selected_tracks()
  if #tracks == 0 then return core.message("Select the tracks to check first.", TITLE) end
  local lines, errors = {}, {}
  local function finish()
    if #errors > 0 then
      local sum = 0
      for _, e in ipairs(errors) do sum = sum + e end
      lines[#lines + 1] = string.format("\nMean error over %d track(s): %.0f deg", #errors, sum / #errors)
    end
    core.message(table.concat(lines, "\n"), TITLE)
  end
  -- One request per track, one after the other, each polled from the defer loop.
  local asked = false
  local function check(i)
    if i > #tracks then return finish() end
    local name = tracks[i].name
    transport.run("listen", core.with_stems({ track = name }), function(reply, err)
      if not reply and not asked and core.needs_stems(err) then
        asked = true
        if core.ask_stems_dir(TITLE) then return check(i) end
        return
      end
      if reply then
        local line, e = format_row(name, reply.result)
        lines[#lines + 1] = line
        if e then errors[#errors + 1] = e end
      elseif err.kind == "daemon" then
        lines[#lines + 1] = name .. ": " .. err.message:gsub("^.-:%s*", "")
      else
        return core.report_error(err, TITLE)  -- daemon down: stop here
      end
      check(i + 1)
    end)
  end
  check(1)
end

main()
