-- @description stase: Gain advice for selected tracks
-- @version 0.1.0
-- @author stase developers
-- @noindex
--   (installed with the "stase" package declared in stase_spatialize.lua; @noindex keeps
--   reapack-index from listing it twice)
-- @about
--   Asks the stase advisor for gain changes on the selected tracks, shows its proposals with
--   their reasons, lets you edit or clear each one (empty = leave the track alone) and applies
--   the chosen ones to the track volumes in one undo step. Values are changes in dB relative to
--   each track's current volume.
-- @provides [main] .
local script_dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or "./"
local json = dofile(script_dir .. "lib/stase_json.lua")
local transport = dofile(script_dir .. "lib/stase_transport.lua").init(json)
local core = dofile(script_dir .. "lib/stase_core.lua").init(json, transport)

local TITLE = "stase: Gain advice"
local MAX_FIELDS = 16  -- GetUserInputs shows at most 16 fields

local function proposals_for(result, tracks)
  local by_name = {}
  for _, t in ipairs(tracks) do by_name[t.name:lower()] = t end
  local list = {}
  local rows = json.value(result.tracks) or json.value(result.proposals) or {}
  for _, p in ipairs(rows) do
    local gain = json.value(p.gain_db)
    local name = json.value(p.track)
    if type(name) == "string" and type(gain) == "number" and by_name[name:lower()] then
      list[#list + 1] = { entry = by_name[name:lower()], gain_db = gain,
                          confidence = json.value(p.confidence), reasons = json.value(p.reasons) or {} }
    end
  end
  return list
end

local function describe(list, summary)
  local lines = {}
  if type(summary) == "string" and summary ~= "" then lines[#lines + 1] = summary; lines[#lines + 1] = "" end
  for _, p in ipairs(list) do
    local conf = type(p.confidence) == "number" and string.format(" (confidence %d%%)", math.floor(p.confidence * 100 + 0.5)) or ""
    local why = {}
    for _, r in ipairs(p.reasons) do why[#why + 1] = tostring(r) end
    lines[#lines + 1] = string.format("%s: %s%s%s", p.entry.name, core.format_db(p.gain_db), conf,
                                      #why > 0 and ("\n    " .. table.concat(why, "; ")) or "")
  end
  return table.concat(lines, "\n")
end

--- Parse the edited CSV: each field empty (skip) or a number of dB. Returns changes or nil, error.
local function chosen_changes(list, csv)
  local fields, changes = {}, {}
  for field in (csv .. ","):gmatch("([^,]*),") do fields[#fields + 1] = field end
  for i, p in ipairs(list) do
    local text = (fields[i] or ""):gsub("%s", ""):gsub("[dD][bB]$", "")
    if text ~= "" then
      local db = tonumber(text)
      if not db or db ~= db or math.abs(db) > 48 then
        return nil, "'" .. (fields[i] or "") .. "' for " .. p.entry.name ..
                    " is not a gain change in dB between -48 and +48"
      end
      if db ~= 0 then changes[#changes + 1] = { entry = p.entry, gain_db = db } end
    end
  end
  return changes
end

local function on_advice(tracks, reply, err)
  if not reply then return core.report_error(err, TITLE) end
  local result = json.value(reply.result) or {}
  local list = proposals_for(result, tracks)
  if #list == 0 then
    return core.message("No gain change proposed for the selected tracks.\n\n" ..
                        tostring(json.value(result.summary) or ""), TITLE)
  end
  if #list > MAX_FIELDS then
    for i = #list, MAX_FIELDS + 1, -1 do list[i] = nil end
  end
  if not core.confirm(describe(list, json.value(result.summary)) ..
                      "\n\nPress OK to choose which to apply.", TITLE) then
    return
  end
  local captions, values = {}, {}
  for i, p in ipairs(list) do
    captions[i] = core.caption(p.entry.name) .. " (dB)"
    values[i] = string.format("%+.1f", p.gain_db)
  end
  captions[#captions + 1] = "extrawidth=60"
  local ok, csv = reaper.GetUserInputs(TITLE .. " (empty = skip)", #list, table.concat(captions, ","),
                                       table.concat(values, ","))
  if not ok then return end
  local changes, perr = chosen_changes(list, csv)
  if not changes then return core.message("Nothing was changed: " .. perr, TITLE) end
  if #changes == 0 then return end
  local applied, msg = core.apply_gains(changes)
  if not applied then core.message("Nothing was changed: " .. msg, TITLE) end
end

local function request(tracks, asked)
  local payload = core.with_stems({ tracks = core.track_names(tracks) })
  transport.run("advise", payload, function(reply, err)
    if not reply and not asked and core.needs_stems(err) then
      if core.ask_stems_dir(TITLE) then return request(tracks, true) end
      return
    end
    on_advice(tracks, reply, err)
  end)
end

local function main()
  local tracks = core.selected_tracks()
  if #tracks == 0 then return core.message("Select the tracks to balance first.", TITLE) end
  request(tracks, false)
end

main()
