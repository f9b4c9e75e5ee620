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
  ui.wrap(text, width, measure) -> lines that fit `width` (measure(s) -> width of s)

The daemon (bridge/daemon.py verb_chat) routes the text to plan/edit/advise/listen/status/sources
and answers {"routed_to": verb, "result": {...}}; a plan or edit carries result.plan. While it
works, interim replies {"status":"progress","progress":0..1,"message":...} (or streamed text in
result.partial) are shown in place of the answer.
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
  return setmetatable({ history = {}, busy = false, proposal = nil, job = nil,
                        scroll_to_end = false }, Chat)
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
  self.job, self.busy = nil, false
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
