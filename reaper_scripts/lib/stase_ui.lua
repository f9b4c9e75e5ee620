-- @noindex
--[[
stase_ui: the chat panel's model, shared by the ReaImGui and the gfx front-ends.

  local chat = ui.new_chat()
  chat:send(text)      -- starts `stase client chat {"text","tracks"}` in the background
  chat:update()        -- call once per frame: reads streamed partial answers, finishes the job
  chat.history         -- { {who = "you"|"stase"|"error"|"info", text = "..."}, ... }
  chat.busy            -- true while an answer is on its way
  chat.proposal        -- when the answer changes the plan: {plan, matches, changes = {lines}}
  chat:apply()         -- applies the proposal (one undo block, all or nothing)
  chat:dismiss()
  chat:set_wetness(value) -- checks the wetness (dB, a number or typed text) against the placement
                          -- schema's reverb_db bounds (core.FIELD.reverb_db) and, only when it is
                          -- inside them, sends `set_room {"reverb_db": x}` in the background
  chat.wetness_db        -- the wetness last set (from the stored plan's reverb_db, else 0)
  chat.wetness_busy      -- true while the daemon has not answered it
  ui.parse_wetness(value) -> dB | nil, message
  ui.WETNESS_LABEL, ui.wetness_range(), ui.wetness_hint()   words for the control
  ui.wrap(text, width, measure) -> lines that fit `width` (measure(s) -> width of s)

The daemon (bridge/daemon.py verb_chat) routes the text to plan/edit/advise/listen/status/sources
and answers {"routed_to": verb, "result": {...}}; a plan or edit carries result.plan. While it
works, interim replies {"status":"progress","progress":0..1,"message":...} (or streamed text in
result.partial) are shown in place of the answer.

Wetness (issue 15): the plan-level reverb_db, in dB relative to the room's physical level: 0 = the
room as it is, -6 = half as much reverb (drier), +6 = twice as much (wetter), the bottom of the
range = practically dry. The daemon (bridge/daemon.py verb_set_room) answers with the plan and a
summary, shown in the history; its error, when it refuses, is shown instead.
]]
local ui = {}
local json, transport, core

function ui.init(json_module, transport_module, core_module)
  json, transport, core = json_module, transport_module, core_module
  return ui
end

local Chat = {}
Chat.__index = Chat

function ui.new_chat()
  local stored = core.stored_plan and core.stored_plan()
  local wet = type(stored) == "table" and json.value(stored.reverb_db)
  return setmetatable({ history = {}, busy = false, proposal = nil, job = nil,
                        scroll_to_end = false, wetness_db = type(wet) == "number" and wet or 0.0,
                        wetness_busy = false, wetness_job = nil }, Chat)
end

function Chat:add(who, text)
  self.history[#self.history + 1] = { who = who, text = text }
  self.scroll_to_end = true
  return self.history[#self.history]
end

local function answer_text(result)
  result = json.value(result)
  if type(result) == "string" then return result end
  if type(result) ~= "table" then return nil end
  for _, k in ipairs({ "reply", "message", "text", "answer", "summary" }) do
    local v = json.value(result[k])
    if type(v) == "string" and v ~= "" then return v end
  end
  return nil
end

function Chat:send(text)
  text = (text or ""):gsub("^%s+", ""):gsub("%s+$", "")
  if text == "" or self.busy then return false end
  self:add("you", text)
  self.proposal = nil
  local payload = { text = text, tracks = core.track_names(core.all_tracks()) }
  local job, err = transport.start("chat", payload)
  if not job then
    self:add("error", err.message)
    return false
  end
  self.job, self.busy = job, true
  self.answer = self:add("stase", "...")
  self.streamed = ""
  return true
end

--- Fold interim replies into the answer being shown: the daemon's progress messages
-- ({"status":"progress","progress":0..1,"message":...}) and streamed text (result.partial,
-- cumulative or in pieces).
function Chat:stream(interim)
  local text, note, progress = "", nil, nil
  for _, r in ipairs(interim) do
    local res = json.value(r.result)
    local piece = type(res) == "table" and json.value(res.partial) or nil
    if type(piece) == "string" then
      if text ~= "" and piece:sub(1, #text) == text then text = piece else text = text .. piece end
    end
    if type(json.value(r.message)) == "string" and r.message ~= "" then note = r.message end
    if type(json.value(r.progress)) == "number" then progress = r.progress end
  end
  self.streamed = text
  local shown = text ~= "" and text or (note and (note .. "...")) or "..."
  if progress then shown = shown .. string.format("  [%d%%]", math.floor(progress * 100 + 0.5)) end
  self.answer.text = shown
end

function Chat:finish(reply, err)
  self.job, self.busy = nil, false
  if not reply then
    self.answer.who, self.answer.text = "error", err.message
    return
  end
  local result = json.value(reply.result)
  local inner = type(result) == "table" and json.value(result.result) or nil
  local routed = type(result) == "table" and json.value(result.routed_to) or nil
  local text = answer_text(result) or answer_text(inner) or (self.streamed ~= "" and self.streamed)
  if not text and type(inner) == "table" and not core.extract_plan(inner) then
    text = json.encode(inner):sub(1, 600)
  end
  text = text or (routed == "edit" and "I changed the plan." or routed == "plan" and "Here is a new plan.") or "(done)"
  if routed then text = text .. "  (" .. routed .. ")" end
  self.answer.text = text
  local plan = type(result) == "table" and core.extract_plan(result) or nil
  if plan then
    local matches, unmatched, problems = core.match_plan(plan, core.all_tracks())
    local changes = core.plan_diff(core.stored_plan(), plan)
    if #problems > 0 then
      self:add("error", "The new plan cannot be applied:\n- " .. table.concat(problems, "\n- "))
    elseif #matches == 0 then
      self:add("info", "The new plan names none of this project's tracks.")
    elseif #changes == 0 then
      self:add("info", "The plan is unchanged.")
    else
      self.proposal = { plan = plan, matches = matches, unmatched = unmatched, changes = changes }
    end
  end
  self.scroll_to_end = true
end

function Chat:update()
  self:update_wetness()
  if not self.job then return end
  local state, a, b = self.job:poll()
  if state == "running" then
    self:stream(a)
    local limit = tonumber(transport.setting("job_timeout_s")) or 180
    if reaper.time_precise() - self.job.started > limit then
      self.job:cancel()
      self:finish(nil, { message = "No answer within " .. limit .. " s (setting job_timeout_s)." })
    end
  elseif state == "done" then
    self:finish(a, b)
  end
end

-- Wetness ---------------------------------------------------------------------------------------

ui.WETNESS_LABEL = "Wetness (dB)"

--- The placement schema's reverb_db field (stase/core/placement.schema.json, through stase_core).
local function wetness_field()
  local f = core.FIELD and core.FIELD.reverb_db
  if not f or f.minimum == nil or f.maximum == nil then
    error("stase_ui: lib/stase_core.lua has no reverb_db field with bounds (core.FIELD.reverb_db)")
  end
  return f
end

--- "-60..+12 dB": the range, from the schema.
function ui.wetness_range()
  local f = wetness_field()
  return string.format("%g..%+g dB", f.minimum, f.maximum)
end

--- The range in words, for messages.
function ui.wetness_hint()
  return ui.wetness_range() .. "; 0 = the room's own level, lower = drier, higher = wetter"
end

--- The wetness in dB from a number or from typed text ("-6", "-6 dB", "+3", "-4,5"); nil and a
-- message when it is not a number or lies outside the placement schema's reverb_db bounds.
function ui.parse_wetness(value)
  local v = value
  if type(value) == "string" then
    local text = value:gsub("^%s+", ""):gsub("%s+$", ""):gsub("%s*[dD][bB]$", "")
    text = text:gsub("\226\136\146", "-")  -- U+2212 MINUS SIGN, as some keyboards type it
    if not text:find(".", 1, true) then text = text:gsub(",", ".") end  -- a decimal comma
    v = text:match("^[-+]?%d+%.?%d*$") and tonumber((text:gsub("^%+", ""))) or
        text:match("^[-+]?%.%d+$") and tonumber((text:gsub("^%+", ""))) or nil
    if v == nil then
      return nil, string.format("%s must be a number of dB (%s); got '%s'", ui.WETNESS_LABEL,
                                ui.wetness_hint(), value)
    end
  end
  local problem = core.field_problem("reverb_db", v)
  if type(v) ~= "number" or problem then
    return nil, string.format("%s: %s (%s)", ui.WETNESS_LABEL, problem or "not a number",
                              ui.wetness_hint())
  end
  if v == 0 then v = 0.0 end  -- no "-0"
  return v
end

--- Send the wetness to the daemon (`set_room {"reverb_db": x}`) in the background; a value out
-- of bounds is refused here, with nothing sent. Returns true when the request went out.
function Chat:set_wetness(value)
  local db, problem = ui.parse_wetness(value)
  if not db then
    self:add("error", problem .. ". Nothing was sent.")
    return false
  end
  if self.wetness_busy then
    self:add("info", "The last wetness change is still on its way; try again in a moment.")
    return false
  end
  local job, err = transport.start("set_room", { reverb_db = db })
  if not job then
    self:add("error", err.message)
    return false
  end
  self.wetness_job, self.wetness_busy, self.wetness_asked = job, true, db
  self:add("you", string.format("%s: %+.1f", ui.WETNESS_LABEL, db))
  return true
end

function Chat:update_wetness()
  if not self.wetness_job then return end
  local state, reply, err = self.wetness_job:poll()
  if state == "running" then
    local limit = tonumber(transport.setting("job_timeout_s")) or 180
    if reaper.time_precise() - self.wetness_job.started > limit then
      self.wetness_job:cancel()
      self.wetness_job, self.wetness_busy = nil, false
      self:add("error", "No answer to the wetness change within " .. limit .. " s (setting job_timeout_s).")
    end
    return
  end
  self.wetness_job, self.wetness_busy = nil, false
  if not reply then
    self:add("error", err.message)
    return
  end
  local result = json.value(reply.result)
  local set = type(result) == "table" and json.value(result.reverb_db)
  self.wetness_db = type(set) == "number" and set or self.wetness_asked
  local said = answer_text(result)
  self:add("stase", said or string.format("Wetness set to %+.1f dB.", self.wetness_db))
end

function Chat:apply()
  local p = self.proposal
  if not p then return false end
  local ok, msg = core.apply_plan(p.plan, p.matches)
  self.proposal = nil
  if ok then
    self:add("info", "Applied: " .. table.concat(p.changes, "; "))
  else
    self:add("error", "Nothing was changed: " .. msg)
  end
  return ok
end

function Chat:dismiss()
  if self.proposal then self:add("info", "Not applied.") end
  self.proposal = nil
end

function Chat:close()
  if self.job then self.job:cancel() end
  if self.wetness_job then self.wetness_job:cancel() end
  self.job, self.busy, self.wetness_job, self.wetness_busy = nil, false, nil, false
end

--- Greedy word wrap; words longer than the width are cut.
function ui.wrap(text, width, measure)
  local lines = {}
  for para in (tostring(text) .. "\n"):gmatch("([^\n]*)\n") do
    local line = ""
    for word in para:gmatch("%S+") do
      local candidate = line == "" and word or (line .. " " .. word)
      if measure(candidate) <= width or line == "" and measure(word) <= width then
        line = candidate
      else
        if line ~= "" then lines[#lines + 1] = line end
        line = word
        while measure(line) > width and #line > 1 do
          local cut = #line - 1
          while cut > 1 and measure(line:sub(1, cut)) > width do cut = cut - 1 end
          lines[#lines + 1] = line:sub(1, cut)
          line = line:sub(cut + 1)
        end
      end
    end
    lines[#lines + 1] = line
  end
  return lines
end

ui.PREFIX = { you = "You: ", stase = "stase: ", error = "! ", info = "- " }

return ui
