-- @noindex
--[[
stase_core: what the stase actions share.

  core.pan_for(azimuth_deg, elevation_deg) -> REAPER pan (-1 left .. +1 right)
  core.db_to_volume(gain_db) / core.volume_to_db(volume)
  core.selected_tracks() / core.all_tracks() -> { {track=, name=, index=}, ... }
  core.extract_plan(result) -> plan table or nil
  core.FIELDS, core.FIELD[name], core.MODES, core.NUMERIC_FIELDS, core.MAX_TRACK_NAME_CHARS
                                 the placement fields and bounds (generated from the one placement
                                 schema, stase/core/placement.schema.json, by tools/gen_lua_fields.py)
  core.field_problem(name, value) -> nil or the daemon's message ("gain_db must be in [-120, 24] dB, got 30")
  core.source_problems(source) -> list of problems of a plan source's fields
  core.match_plan(plan, tracks) -> matches, unmatched_sources, problems
  core.apply_plan(plan, matches) -> true | false, message   (one undo block; all or nothing)
  core.apply_gains(changes) -> true | false, message         (one undo block; all or nothing)
  core.stored_plan() -> plan stored in the project by the last apply (or nil)
  core.plan_diff(old_plan, new_plan) -> list of human-readable changes
  core.format_plan(plan, matches, unmatched) -> text for a message box
  core.message(text, title) / core.confirm(text, title) -> boolean

Conventions (stase/core/conventions.py): azimuth in degrees, 0 = front, POSITIVE = LEFT; elevation
positive up; distance in metres; gains in dB. A stereo panner cannot say "behind", so the pan is
linear in the interaural lateral angle, lateral = asin(sin(az) cos(el)), and rear sources fold
onto the front: pan = clamp(-lateral / 90, -1, 1), exactly azimuth_to_stereo_pan.

Track state written on apply (kept in the .rpp, so the project carries its plan when reopened):
  track  P_EXT:stase_spatial   JSON {track, role, azimuth_deg, elevation_deg, distance_m, mode,
                               gain_db, provenance, room, pan}
  project ExtState "stase"/"plan"  the whole plan JSON (SetProjExtState)
]]
local core = {}
core.EXT_KEY = "P_EXT:stase_spatial"
core.PROJ_SECTION = "stase"
core.TITLE = "stase"

local json, transport

function core.init(json_module, transport_module)
  json, transport = json_module, transport_module
  return core
end

-- Maths --------------------------------------------------------------------------------------

function core.clamp(x, lo, hi)
  if x < lo then return lo end
  if x > hi then return hi end
  return x
end

--- REAPER D_PAN for a direction (stase.core.conventions.azimuth_to_stereo_pan).
function core.pan_for(azimuth_deg, elevation_deg)
  local az = math.rad(tonumber(azimuth_deg) or 0)
  local el = math.rad(tonumber(elevation_deg) or 0)
  local lateral = math.deg(math.asin(core.clamp(math.sin(az) * math.cos(el), -1, 1)))
  local pan = core.clamp(-lateral / 90, -1, 1)
  if pan == 0 then pan = 0.0 end  -- no "-0"
  return pan
end

--- REAPER D_VOL (amplitude factor) for a gain in dB.
function core.db_to_volume(gain_db)
  return 10 ^ (gain_db / 20)
end

function core.volume_to_db(volume)
  if volume <= 1e-10 then return -200 end
  return 20 * math.log(volume, 10)
end

--- "35% L", "centre", "100% R"
function core.format_pan(pan)
  local pct = math.floor(math.abs(pan) * 100 + 0.5)
  if pct == 0 then return "centre" end
  return string.format("%d%% %s", pct, pan < 0 and "L" or "R")
end

--- "+1.5 dB"
function core.format_db(db)
  return string.format("%+.1f dB", db)
end

-- Placement fields ---------------------------------------------------------------------------
-- The bounds are the daemon's (stase.core.placement): a plan the daemon would refuse is not
-- applied here either. Absent fields (nil, JSON null) are left to the daemon's defaults.

-- BEGIN GENERATED FIELDS (tools/gen_lua_fields.py from stase/core/placement.schema.json; do not edit)
core.FIELDS = {
  { name = "azimuth_deg", kind = "number", unit = "deg" },
  { name = "elevation_deg", kind = "number", unit = "deg" },
  { name = "distance_m", kind = "number", unit = "m", minimum = 0, exclusive_minimum = true },
  { name = "gain_db", kind = "number", unit = "dB", minimum = -120, maximum = 24 },
  { name = "mode", kind = "enum" },
  { name = "role", kind = "string_or_nil", max_chars = 64 },
  { name = "reverb_db", kind = "number", unit = "dB", minimum = -60, maximum = 12 },
}
core.MODES = { "pan", "itd_ild", "hrtf" }
core.MAX_TRACK_NAME_CHARS = 128
core.NUMERIC_FIELDS = { "azimuth_deg", "elevation_deg", "distance_m", "gain_db" }
-- END GENERATED FIELDS
core.FIELD = {}
for _, f in ipairs(core.FIELDS) do core.FIELD[f.name] = f end

local function finite(v)
  return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge
end

--- A short echo of a value for a message (as the daemon's: strings quoted, cut to 40 characters).
local function shown(v)
  if type(v) == "string" then
    return "'" .. (#v > 40 and v:sub(1, 40) .. "..." or v) .. "'"
  elseif type(v) == "number" and v ~= v then
    return "nan"
  elseif v == math.huge then
    return "inf"
  elseif v == -math.huge then
    return "-inf"
  end
  return type(v) == "table" and (json.is_array(v) and "list" or "dict") or tostring(v)
end

local function g(x)
  return string.format("%g", x)
end

--- nil when `value` is acceptable for the placement field `name`, else the daemon's message.
function core.field_problem(name, value)
  local f = core.FIELD[name]
  if not f then return "unknown field '" .. tostring(name) .. "'" end
  value = json.value(value)
  if value == nil then return nil end
  if f.kind == "number" then
    if not finite(value) then
      return string.format("%s must be a finite number (%s), got %s", name, f.unit, shown(value))
    end
    local low_ok = f.minimum == nil or (f.exclusive_minimum and value > f.minimum)
                   or (not f.exclusive_minimum and value >= f.minimum)
    local high_ok = f.maximum == nil or value <= f.maximum
    if low_ok and high_ok then return nil end
    if f.minimum ~= nil and f.maximum ~= nil then
      return string.format("%s must be in [%s, %s] %s, got %s", name, g(f.minimum), g(f.maximum), f.unit, g(value))
    elseif f.minimum ~= nil then
      return string.format("%s must be %s %s %s, got %s", name, f.exclusive_minimum and ">" or ">=",
                           g(f.minimum), f.unit, g(value))
    end
    return string.format("%s must be <= %s %s, got %s", name, g(f.maximum), f.unit, g(value))
  elseif f.kind == "enum" then
    for _, m in ipairs(core.MODES) do
      if value == m then return nil end
    end
    local names = {}
    for i, m in ipairs(core.MODES) do names[i] = "'" .. m .. "'" end
    return string.format("%s must be one of (%s), got %s", name, table.concat(names, ", "),
                         shown(tostring(value)))
  end
  if type(value) ~= "string" then
    return string.format("%s must be a string or null, got %s", name, type(value))
  end
  local chars = utf8.len(value) or #value
  if f.max_chars and chars > f.max_chars then
    return string.format("%s must be at most %d characters, got %d", name, f.max_chars, chars)
  end
  return nil
end

--- Every problem of a plan source's placement fields (messages prefixed with the track).
function core.source_problems(s)
  local problems = {}
  for _, f in ipairs(core.FIELDS) do
    local p = core.field_problem(f.name, s[f.name])
    if p then problems[#problems + 1] = "source '" .. tostring(json.value(s.track)) .. "': " .. p end
  end
  return problems
end

-- Tracks -------------------------------------------------------------------------------------

local function track_entry(track, index)
  local _, name = reaper.GetTrackName(track)
  return { track = track, name = name or "", index = index }
end

function core.selected_tracks()
  local list = {}
  for i = 0, reaper.CountSelectedTracks(0) - 1 do
    local tr = reaper.GetSelectedTrack(0, i)
    if tr then list[#list + 1] = track_entry(tr, i) end
  end
  return list
end

function core.all_tracks()
  local list = {}
  for i = 0, reaper.CountTracks(0) - 1 do
    local tr = reaper.GetTrack(0, i)
    if tr then list[#list + 1] = track_entry(tr, i) end
  end
  return list
end

function core.track_names(tracks)
  local names = json.array({})
  for _, t in ipairs(tracks) do names[#names + 1] = t.name end
  return names
end

local function key(name)
  return (tostring(name or ""):gsub("^%s+", ""):gsub("%s+$", "")):lower()
end

-- Plans --------------------------------------------------------------------------------------

--- The plan inside a daemon result: the result itself (a plan, or `sources`' {room, sources}),
-- result.plan, result.result.plan (a chat routed to plan/edit), or a bare source list.
-- Entries the daemon marks "placed": false (tracks without a placement) are left out.
function core.extract_plan(result, depth)
  result = json.value(result)
  if type(result) ~= "table" then return nil end
  local plan
  if json.is_array(result) then
    if type(result[1]) == "table" and result[1].track then plan = { sources = result } end
  elseif type(json.value(result.sources)) == "table" then
    plan = result
  elseif type(json.value(result.plan)) == "table" then
    return core.extract_plan(result.plan, (depth or 0) + 1)
  elseif (depth or 0) < 2 and type(json.value(result.result)) == "table" then
    return core.extract_plan(result.result, (depth or 0) + 1)
  end
  if not plan then return nil end
  local placed = json.array({})
  for _, s in ipairs(json.value(plan.sources) or {}) do
    if not (type(s) == "table" and s.placed == false) then placed[#placed + 1] = s end
  end
  local copy = {}
  for k, v in pairs(plan) do copy[k] = v end
  copy.sources = placed
  if #placed == 0 then return nil end
  return copy
end

local function number_or(v, default)
  v = json.value(v)
  if type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge then return v end
  return default
end

--- Pair each plan source with a project track by name (case- and space-insensitive).
-- Returns matches {source=, entry=, pan=}, unmatched sources, and problems (strings) that must
-- stop the apply (a name used by two tracks, a field out of the placement schema's bounds, a
-- source without a usable azimuth).
function core.match_plan(plan, tracks)
  local by_name, problems = {}, {}
  for _, t in ipairs(tracks) do
    local k = key(t.name)
    if by_name[k] then
      problems[#problems + 1] = "two tracks are named '" .. t.name .. "': rename one or select only one"
    end
    by_name[k] = t
  end
  local matches, unmatched = {}, {}
  for i, s in ipairs(json.value(plan.sources) or {}) do
    if type(s) ~= "table" or type(json.value(s.track)) ~= "string" then
      problems[#problems + 1] = "source " .. i .. " has no track name"
    elseif #core.source_problems(s) > 0 then
      for _, p in ipairs(core.source_problems(s)) do problems[#problems + 1] = p end
    else
      local az = number_or(s.azimuth_deg, nil)
      if az == nil then
        problems[#problems + 1] = "source '" .. s.track .. "' has no numeric azimuth_deg"
      else
        local t = by_name[key(s.track)]
        if t then
          matches[#matches + 1] = { source = s, entry = t,
                                    pan = core.pan_for(az, number_or(s.elevation_deg, 0)) }
        else
          unmatched[#unmatched + 1] = s
        end
      end
    end
  end
  return matches, unmatched, problems
end

local function side(az)
  if az > 0.5 then return "left" elseif az < -0.5 then return "right" end
  return "front"
end

function core.format_plan(plan, matches, unmatched)
  local lines = {}
  local room = json.value(plan.room)
  lines[#lines + 1] = "Room: " .. tostring(room or "(unchanged)")
  lines[#lines + 1] = ""
  for _, m in ipairs(matches) do
    local s = m.source
    local az = number_or(s.azimuth_deg, 0)
    lines[#lines + 1] = string.format("%-16s az %+6.1f deg (%s)  el %+5.1f  %4.1f m  -> pan %s",
      m.entry.name, az, side(az), number_or(s.elevation_deg, 0), number_or(s.distance_m, 2),
      core.format_pan(m.pan))
  end
  if unmatched and #unmatched > 0 then
    lines[#lines + 1] = ""
    local names = {}
    for _, s in ipairs(unmatched) do names[#names + 1] = tostring(s.track) end
    lines[#lines + 1] = "Not in this project (skipped): " .. table.concat(names, ", ")
  end
  local notes = json.value(plan.mix_notes)
  if type(notes) == "string" and notes ~= "" then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Notes: " .. notes
  end
  return table.concat(lines, "\n")
end

--- Human-readable differences between two plans (per track: azimuth, elevation, distance,
-- mode, gain; plus the room).
function core.plan_diff(old_plan, new_plan)
  local changes = {}
  local old_room = old_plan and json.value(old_plan.room)
  local new_room = json.value(new_plan.room)
  if new_room ~= nil and new_room ~= old_room then
    changes[#changes + 1] = string.format("room: %s -> %s", tostring(old_room or "-"), tostring(new_room))
  end
  local old_by = {}
  for _, s in ipairs(old_plan and json.value(old_plan.sources) or {}) do
    if type(s) == "table" and s.track then old_by[key(s.track)] = s end
  end
  local fields = { { "azimuth_deg", "az", "%+.1f deg" }, { "elevation_deg", "el", "%+.1f deg" },
                   { "distance_m", "dist", "%.1f m" }, { "gain_db", "gain", "%+.1f dB" } }
  for _, s in ipairs(json.value(new_plan.sources) or {}) do
    if type(s) == "table" and s.track then
      local o = old_by[key(s.track)]
      if not o then
        changes[#changes + 1] = string.format("%s: new, az %+.1f deg", s.track, number_or(s.azimuth_deg, 0))
      else
        local parts = {}
        for _, f in ipairs(fields) do
          local a, b = number_or(o[f[1]], nil), number_or(s[f[1]], nil)
          if b ~= nil and (a == nil or math.abs(a - b) > 1e-6) then
            parts[#parts + 1] = string.format("%s " .. f[3] .. " -> " .. f[3], f[2], a or 0, b)
          end
        end
        if json.value(s.mode) and s.mode ~= o.mode then
          parts[#parts + 1] = "mode " .. tostring(o.mode) .. " -> " .. tostring(s.mode)
        end
        if #parts > 0 then changes[#changes + 1] = s.track .. ": " .. table.concat(parts, ", ") end
      end
    end
  end
  return changes
end

function core.stored_plan()
  local _, text = reaper.GetProjExtState(0, core.PROJ_SECTION, "plan")
  if not text or text == "" then return nil end
  local plan = json.decode(text)
  if type(plan) ~= "table" then return nil end
  return core.extract_plan(plan)
end

-- Applying -----------------------------------------------------------------------------------

--- Run `change` inside one undo block with UI refresh held; if it raises, run `restore` and
-- still close the block, so REAPER never keeps a half-applied change. Returns ok, message.
function core.transaction(description, change, restore)
  reaper.Undo_BeginBlock2(0)
  reaper.PreventUIRefresh(1)
  local ok, err = pcall(change)
  if not ok then
    local rok, rerr = pcall(restore)
    if not rok then err = tostring(err) .. "\n(and restoring failed: " .. tostring(rerr) .. ")" end
  end
  reaper.PreventUIRefresh(-1)
  reaper.Undo_EndBlock2(0, ok and description or (description .. " (failed, restored)"), -1)
  reaper.TrackList_AdjustWindows(false)
  reaper.UpdateArrange()
  if ok then return true end
  return false, tostring(err)
end

local function record_for(m, plan)
  local s = m.source
  local rec = {}
  for k, v in pairs(s) do rec[k] = v end
  rec.room = json.value(plan.room)
  rec.pan = m.pan
  return rec
end

--- Write the plan into the project: pans and P_EXT records for the matched tracks and the whole
-- plan in the project's ExtState; all or nothing, one undo point.
function core.apply_plan(plan, matches)
  if #matches == 0 then return false, "none of the plan's tracks are in this project" end
  local saved = {}
  for i, m in ipairs(matches) do
    local tr = m.entry.track
    local _, old_ext = reaper.GetSetMediaTrackInfo_String(tr, core.EXT_KEY, "", false)
    saved[i] = { pan = reaper.GetMediaTrackInfo_Value(tr, "D_PAN"), ext = old_ext or "" }
  end
  local _, old_plan_text = reaper.GetProjExtState(0, core.PROJ_SECTION, "plan")
  local plan_text = json.encode(plan)
  local records = {}
  for i, m in ipairs(matches) do records[i] = json.encode(record_for(m, plan)) end
  return core.transaction("stase: apply spatial plan", function()
    for i, m in ipairs(matches) do
      local tr = m.entry.track
      if not reaper.SetMediaTrackInfo_Value(tr, "D_PAN", m.pan) then
        error("REAPER refused the pan of track '" .. m.entry.name .. "'")
      end
      reaper.GetSetMediaTrackInfo_String(tr, core.EXT_KEY, records[i], true)
    end
    reaper.SetProjExtState(0, core.PROJ_SECTION, "plan", plan_text)
  end, function()
    for i, m in ipairs(matches) do
      reaper.SetMediaTrackInfo_Value(m.entry.track, "D_PAN", saved[i].pan)
      reaper.GetSetMediaTrackInfo_String(m.entry.track, core.EXT_KEY, saved[i].ext, true)
    end
    reaper.SetProjExtState(0, core.PROJ_SECTION, "plan", old_plan_text or "")
  end)
end

--- Apply gain changes {entry=, gain_db=} relative to each track's current volume; all or
-- nothing, one undo point.
function core.apply_gains(changes)
  if #changes == 0 then return false, "no gain change chosen" end
  local saved = {}
  for i, c in ipairs(changes) do saved[i] = reaper.GetMediaTrackInfo_Value(c.entry.track, "D_VOL") end
  return core.transaction("stase: apply gain advice", function()
    for i, c in ipairs(changes) do
      local vol = saved[i] * core.db_to_volume(c.gain_db)
      if not reaper.SetMediaTrackInfo_Value(c.entry.track, "D_VOL", vol) then
        error("REAPER refused the volume of track '" .. c.entry.name .. "'")
      end
    end
  end, function()
    for i, c in ipairs(changes) do reaper.SetMediaTrackInfo_Value(c.entry.track, "D_VOL", saved[i]) end
  end)
end

-- Messages -----------------------------------------------------------------------------------

function core.message(text, title)
  reaper.ShowMessageBox(text, title or core.TITLE, 0)
end

--- OK/Cancel box; true when the user pressed OK (ShowMessageBox returns 1=OK, 2=Cancel).
function core.confirm(text, title)
  return reaper.ShowMessageBox(text, title or core.TITLE, 1) == 1
end

function core.report_error(err, title)
  core.message(type(err) == "table" and err.message or tostring(err), title or "stase: error")
end

-- Stems folder ----------------------------------------------------------------------------------
-- The advisor and the listener work on the tracks' audio: a folder of one mono file per track
-- (bridge/daemon.py `stems_dir`; the daemon remembers it). Kept in the project's ExtState.

function core.stems_dir()
  local _, dir = reaper.GetProjExtState(0, core.PROJ_SECTION, "stems_dir")
  return dir ~= "" and dir or nil
end

--- Add the project's stems folder to a request payload (when one is known).
function core.with_stems(payload)
  payload.stems_dir = payload.stems_dir or core.stems_dir()
  return payload
end

--- True for a daemon error that asks for the stems folder.
function core.needs_stems(err)
  return type(err) == "table" and err.kind == "daemon" and tostring(err.message):find("stems_dir") ~= nil
end

--- Ask for the stems folder (prefilled with the last one or the project folder); nil on cancel.
function core.ask_stems_dir(title)
  local current = core.stems_dir() or reaper.GetProjectPath("")
  local ok, folder = reaper.GetUserInputs(title .. ": stems folder", 1,
    "Folder of the tracks' audio (one file per track):,extrawidth=360", current)
  if not ok or folder == "" then return nil end
  reaper.SetProjExtState(0, core.PROJ_SECTION, "stems_dir", folder)
  return folder
end

--- Make a name safe as a GetUserInputs caption (commas split the caption list).
function core.caption(name)
  return (tostring(name):gsub(",", ";"):gsub("=", "-"))
end

return core
