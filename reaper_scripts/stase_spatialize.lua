-- @description stase: Spatialize selected tracks from prompt
-- @version 0.1.0
-- @author stase developers
-- @about
--   # stase for REAPER
--
--   Spatial mixing from words. Describe the scene ("jazz club, sax a bit left, drums at the
--   back") and the stase daemon places the selected tracks; the plan is shown first and applied
--   on OK (track pan plus a per-track record of azimuth, elevation, distance and room that stays
--   in the project). Also: apply the daemon's current plan, gain advice, listen-back check and a
--   chat panel (ReaImGui when installed, a gfx window otherwise).
--
--   Needs the stase daemon running on this computer: `stase serve --daw reaper`.
--   The scripts reach it through the `stase client` command (set its path with
--   "stase: Settings" when it is not on REAPER's PATH).
-- @provides
--   [main] stase_apply_plan.lua
--   [main] stase_gain_advice.lua
--   [main] stase_listen_back.lua
--   [main] stase_chat.lua
--   [main] stase_settings.lua
--   [nomain] lib/stase_json.lua
--   [nomain] lib/stase_transport.lua
--   [nomain] lib/stase_core.lua
--   [nomain] lib/stase_ui.lua
-- @changelog
--   First release.
--[[
Flow: selected tracks -> GetUserInputs (prompt) -> `stase client plan {"prompt","tracks"}` in the
background (polled from a reaper.defer loop, REAPER stays responsive) -> the plan is shown in an
OK/Cancel box -> on OK, one undo block sets D_PAN and P_EXT:stase_spatial on every matched track.
Cancel at any step changes nothing.
]]
local script_dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or "./"
local json = dofile(script_dir .. "lib/stase_json.lua")
local transport = dofile(script_dir .. "lib/stase_transport.lua").init(json)
local core = dofile(script_dir .. "lib/stase_core.lua").init(json, transport)

local TITLE = "stase: Spatialize selected tracks"

local function on_plan(tracks, reply, err)
  if not reply then return core.report_error(err, TITLE) end
  local plan = core.extract_plan(reply.result)
  if not plan then
    return core.message("The daemon's answer holds no plan:\n\n" .. json.encode(reply.result or json.null):sub(1, 600), TITLE)
  end
  local matches, unmatched, problems = core.match_plan(plan, tracks)
  if #problems > 0 then
    return core.message("The plan was not applied:\n\n- " .. table.concat(problems, "\n- "), TITLE)
  end
  if #matches == 0 then
    return core.message("The plan names none of the selected tracks; nothing was changed.\n\n" ..
                        core.format_plan(plan, matches, unmatched), TITLE)
  end
  if not core.confirm(core.format_plan(plan, matches, unmatched) .. "\n\nApply this plan?", TITLE) then
    return
  end
  local ok, msg = core.apply_plan(plan, matches)
  if not ok then core.message("Nothing was changed: " .. msg, TITLE) end
end

local function main()
  local tracks = core.selected_tracks()
  if #tracks == 0 then
    return core.message("Select the tracks to place first.", TITLE)
  end
  local last = reaper.GetExtState(transport.SECTION, "last_prompt") or ""
  local ok, prompt = reaper.GetUserInputs(TITLE, 1, "Describe the scene:,extrawidth=420",
                                          (last:gsub(",", " ")))
  if not ok then return end
  prompt = (prompt or ""):gsub("^%s+", ""):gsub("%s+$", "")
  if prompt == "" then
    return core.message("The prompt is empty; nothing was changed.", TITLE)
  end
  reaper.SetExtState(transport.SECTION, "last_prompt", prompt, true)
  transport.run("plan", { prompt = prompt, tracks = core.track_names(tracks) },
                function(reply, err) on_plan(tracks, reply, err) end)
end

main()
