-- @description stase: Apply plan to tracks
-- @version 0.1.0
-- @author stase developers
-- @noindex
--   (installed with the "stase" package declared in stase_spatialize.lua; @noindex keeps
--   reapack-index from listing it twice)
-- @about
--   Writes the stase daemon's current spatial plan into the project: track pan (stereo mix,
--   linear in lateral angle; azimuth positive = left) and a per-track record (P_EXT:stase_spatial)
--   of azimuth, elevation, distance, mode and room, so the project carries its plan. With
--   tracks selected only those are changed. When the daemon is not running, offers to re-apply
--   the plan stored in the project.
-- @provides [main] .
local script_dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or "./"
local json = dofile(script_dir .. "lib/stase_json.lua")
local transport = dofile(script_dir .. "lib/stase_transport.lua").init(json)
local core = dofile(script_dir .. "lib/stase_core.lua").init(json, transport)

local TITLE = "stase: Apply plan to tracks"

local function apply(plan, source_label)
  local tracks = core.selected_tracks()
  local scope = "selected tracks"
  if #tracks == 0 then tracks, scope = core.all_tracks(), "tracks of the project" end
  local matches, unmatched, problems = core.match_plan(plan, tracks)
  if #problems > 0 then
    return core.message("The plan was not applied:\n\n- " .. table.concat(problems, "\n- "), TITLE)
  end
  if #matches == 0 then
    return core.message("The plan (" .. source_label .. ") names none of the " .. scope ..
                        "; nothing was changed.", TITLE)
  end
  if not core.confirm("Plan from " .. source_label .. ", for the " .. scope .. ":\n\n" ..
                      core.format_plan(plan, matches, unmatched) .. "\n\nApply it?", TITLE) then
    return
  end
  local ok, msg = core.apply_plan(plan, matches)
  if not ok then core.message("Nothing was changed: " .. msg, TITLE) end
end

local function main()
  transport.run("sources", {}, function(reply, err)
    if reply then
      local plan = core.extract_plan(reply.result)
      if not plan then
        return core.message("The daemon has no plan yet. Run 'stase: Spatialize selected tracks " ..
                            "from prompt' or ask in the chat first.", TITLE)
      end
      return apply(plan, "the stase daemon")
    end
    local stored = core.stored_plan()
    if stored and err.kind ~= "daemon" then
      if core.confirm(err.message .. "\n\nRe-apply the plan stored in this project instead?", TITLE) then
        return apply(stored, "this project")
      end
      return
    end
    core.report_error(err, TITLE)
  end)
end

main()
