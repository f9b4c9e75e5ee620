--[[
Stand-in for ReaImGui's `imgui` module (ReaImGui >= 0.9: `require 'imgui' '0.9'` returns the API
table). Records each call into _G.imgui_stub_log and answers from the scenario's imgui.events:
  {frame = n, input = "text"}     InputText reports Enter with this text on frame n
  {frame = n, button = "Apply"}   Button(label) returns true on frame n
  {frame = n, close = true}       Begin returns open = false on frame n (window closed)
  {frame = n, wetness = x}        InputDouble reports Enter with the value x on frame n
Frames count Begin calls. Begin/End and BeginChild/EndChild balance is checked.
]]
return function(version)
  assert(version == "0.9" or version:match("^0%.9") or version:match("^0%.1"), "unexpected API version " .. tostring(version))
  local log = { calls = {}, frames = 0, unbalanced = 0, version = version }
  _G.imgui_stub_log = log
  local depth, child_depth = 0, 0
  local events = (reaper.__scenario_imgui_events) or {}
  local function event(kind, match)
    for _, e in ipairs(events) do
      if e.frame == log.frames and e[kind] ~= nil and (match == nil or e[kind] == match) then return e end
    end
    return nil
  end
  local I = {
    Cond_FirstUseEver = 4, InputTextFlags_EnterReturnsTrue = 32,
  }
  local function rec(name, fn)
    I[name] = function(ctx, ...)
      log.calls[#log.calls + 1] = { fn = name, frame = log.frames, args = { ... } }
      for i, a in ipairs(log.calls[#log.calls].args) do
        if type(a) ~= "string" and type(a) ~= "number" and type(a) ~= "boolean" then
          log.calls[#log.calls].args[i] = tostring(a)
        end
      end
      return fn(ctx, ...)
    end
  end
  rec("CreateContext", function(label) return { label = label } end)
  rec("SetNextWindowSize", function() end)
  rec("Begin", function(ctx, name, open)
    log.frames = log.frames + 1
    depth = depth + 1
    local closed = event("close")
    return true, not closed
  end)
  rec("End", function() depth = depth - 1 end)
  rec("BeginChild", function() child_depth = child_depth + 1 return true end)
  rec("EndChild", function() child_depth = child_depth - 1 end)
  rec("TextWrapped", function(ctx, text) log.last_text = log.last_text or {}; log.last_text[#log.last_text + 1] = text end)
  rec("SetScrollHereY", function() end)
  rec("SameLine", function() end)
  rec("SetNextItemWidth", function() end)
  rec("SetKeyboardFocusHere", function() end)
  rec("Button", function(ctx, label) return event("button", label) ~= nil end)
  rec("InputDouble", function(ctx, label, v, step, step_fast, format, flags)
    assert(type(v) == "number", "InputDouble needs a number, got " .. type(v))
    local e = event("wetness")
    if e then return true, e.wetness end
    return false, v
  end)
  rec("InputText", function(ctx, label, buf, flags)
    local e = event("input")
    if e then return true, e.input end
    return false, buf
  end)
  setmetatable(I, { __index = function(_, k) error("imgui stub: the script used ImGui." .. k .. ", which the stub does not know") end })
  log.check = function() return depth, child_depth end
  return I
end
