-- @description stase: Chat
-- @version 0.1.0
-- @author stase developers
-- @noindex
--   (installed with the "stase" package declared in stase_spatialize.lua)
-- @about
--   A dockable chat with the stase daemon: history, a text box, send with Enter. Answers stream
--   in while the daemon works; when a request changes the plan ("move the sax a bit left", "make
--   the room smaller") the panel lists what changed and offers Apply (one undo step). A
--   "Wetness (dB)" control sets how much of the room's reverb is heard, relative to the room's
--   own level (0 = the room as it is, lower = drier, higher = wetter; -60..+12 dB). Uses
--   ReaImGui when it is installed, otherwise a gfx window with the same features (Dock button,
--   Esc closes).
-- @provides [main] .
local script_dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or "./"
local json = dofile(script_dir .. "lib/stase_json.lua")
local transport = dofile(script_dir .. "lib/stase_transport.lua").init(json)
local core = dofile(script_dir .. "lib/stase_core.lua").init(json, transport)
local ui = dofile(script_dir .. "lib/stase_ui.lua").init(json, transport, core)

local TITLE = "stase chat"
local chat = ui.new_chat()
chat:add("info", "Ask for a placement (\"jazz club, sax left\"), a change (\"drums further back\") " ..
                 "or advice. Tracks: " .. table.concat(core.track_names(core.all_tracks()), ", "))

local function has_imgui()
  return reaper.APIExists("ImGui_GetBuiltinPath") and reaper.ImGui_GetBuiltinPath ~= nil
end

-- ReaImGui front-end (ReaImGui >= 0.9: module API through ImGui_GetBuiltinPath) ----------------
local function run_imgui()
  package.path = reaper.ImGui_GetBuiltinPath() .. "/?.lua;" .. package.path
  local ImGui = require("imgui")("0.9")
  local ctx = ImGui.CreateContext(TITLE)
  local input = ""
  local wetness = chat.wetness_db
  local function frame()
    chat:update()
    ImGui.SetNextWindowSize(ctx, 520, 460, ImGui.Cond_FirstUseEver)
    local visible, open = ImGui.Begin(ctx, TITLE, true)
    if visible then
      local reserve = (chat.proposal and (60 + 18 * math.min(#chat.proposal.changes, 6)) or 36) + 28
      if ImGui.BeginChild(ctx, "history", 0, -reserve) then
        for _, m in ipairs(chat.history) do
          ImGui.TextWrapped(ctx, (ui.PREFIX[m.who] or "") .. m.text)
        end
        if chat.scroll_to_end then
          ImGui.SetScrollHereY(ctx, 1.0)
          chat.scroll_to_end = false
        end
        ImGui.EndChild(ctx)
      end
      if chat.proposal then
        ImGui.TextWrapped(ctx, "This changes the plan:\n" .. table.concat(chat.proposal.changes, "\n"))
        if ImGui.Button(ctx, "Apply") then chat:apply() end
        ImGui.SameLine(ctx)
        if ImGui.Button(ctx, "Dismiss") then chat:dismiss() end
      end
      ImGui.SetNextItemWidth(ctx, -70)
      local entered
      entered, input = ImGui.InputText(ctx, "##message", input, ImGui.InputTextFlags_EnterReturnsTrue)
      ImGui.SameLine(ctx)
      local clicked = ImGui.Button(ctx, chat.busy and "..." or "Send")
      if (entered or clicked) and not chat.busy and input:match("%S") then
        chat:send(input)
        input = ""
        ImGui.SetKeyboardFocusHere(ctx, -1)
      end
      -- Wetness: typed, then sent with Enter or the button (the model refuses out-of-range values)
      ImGui.SetNextItemWidth(ctx, 110)
      local wet_entered
      wet_entered, wetness = ImGui.InputDouble(ctx, ui.WETNESS_LABEL, wetness, 1, 6, "%.1f",
                                               ImGui.InputTextFlags_EnterReturnsTrue)
      ImGui.SameLine(ctx)
      local wet_clicked = ImGui.Button(ctx, chat.wetness_busy and "...##wetness" or "Set##wetness")
      if (wet_entered or wet_clicked) and not chat.wetness_busy then chat:set_wetness(wetness) end
      ImGui.End(ctx)
    end
    if open then
      reaper.defer(frame)
    else
      chat:close()
    end
  end
  reaper.defer(frame)
end

-- gfx front-end --------------------------------------------------------------------------------
local function run_gfx()
  local dock = tonumber(reaper.GetExtState(transport.SECTION, "chat_dock")) or 0
  gfx.init(TITLE, 520, 460, dock)
  gfx.setfont(1, "Arial", 15)
  local input, buttons, was_down = "", {}, false
  local LINE = 18

  local function button(id, label, x, y)
    local w = gfx.measurestr(label) + 16
    buttons[id] = { x = x, y = y, w = w, h = LINE + 4 }
    gfx.set(0.3, 0.3, 0.35)
    gfx.rect(x, y, w, LINE + 4, 1)
    gfx.set(1, 1, 1)
    gfx.x, gfx.y = x + 8, y + 2
    gfx.drawstr(label)
    return x + w + 8
  end

  local function clicked_button()
    local down = gfx.mouse_cap & 1 == 1
    local hit
    if down and not was_down then
      for id, b in pairs(buttons) do
        if gfx.mouse_x >= b.x and gfx.mouse_x < b.x + b.w and gfx.mouse_y >= b.y and gfx.mouse_y < b.y + b.h then
          hit = id
        end
      end
    end
    was_down = down
    return hit
  end

  local function close()
    reaper.SetExtState(transport.SECTION, "chat_dock", tostring(gfx.dock(-1)), true)
    gfx.quit()
    chat:close()
  end

  local function frame()
    chat:update()
    local c = gfx.getchar()
    if c < 0 or c == 27 then return close() end
    local send_now = false
    if c == 13 then
      send_now = true
    elseif c == 8 then
      input = input:gsub("[%z\1-\127\194-\244][\128-\191]*$", "")
    elseif c >= 32 and c < 0xD800 and c ~= 127 then
      input = input .. utf8.char(c)
    end

    gfx.set(0.12, 0.12, 0.14)
    gfx.rect(0, 0, gfx.w, gfx.h, 1)
    local margin = 8
    local width = gfx.w - 2 * margin
    local bottom = gfx.h - 2 * (LINE + 8) - 4
    local proposal_lines = {}
    if chat.proposal then
      proposal_lines = ui.wrap("This changes the plan: " .. table.concat(chat.proposal.changes, "; "),
                               width, gfx.measurestr)
      bottom = bottom - (#proposal_lines * LINE + LINE + 12)
    end
    -- History, newest at the bottom.
    local lines = {}
    for _, m in ipairs(chat.history) do
      for _, l in ipairs(ui.wrap((ui.PREFIX[m.who] or "") .. m.text, width, gfx.measurestr)) do
        lines[#lines + 1] = { text = l, who = m.who }
      end
    end
    local y = bottom - LINE
    for i = #lines, 1, -1 do
      if y < margin then break end
      local who = lines[i].who
      if who == "you" then gfx.set(0.6, 0.8, 1) elseif who == "error" then gfx.set(1, 0.5, 0.5)
      elseif who == "info" then gfx.set(0.7, 0.7, 0.7) else gfx.set(1, 1, 1) end
      gfx.x, gfx.y = margin, y
      gfx.drawstr(lines[i].text)
      y = y - LINE
    end
    buttons = {}
    if chat.proposal then
      local py = bottom + 4
      gfx.set(1, 0.9, 0.6)
      for _, l in ipairs(proposal_lines) do
        gfx.x, gfx.y = margin, py
        gfx.drawstr(l)
        py = py + LINE
      end
      local bx = button("apply", "Apply", margin, py + 2)
      button("dismiss", "Dismiss", bx, py + 2)
    end
    -- Wetness row: the value last set and a button that asks for a new one.
    local wy = gfx.h - 2 * (LINE + 8)
    gfx.set(0.8, 0.8, 0.85)
    gfx.x, gfx.y = margin, wy + 2
    local wet_label = string.format("%s: %+.1f", ui.WETNESS_LABEL, chat.wetness_db)
    gfx.drawstr(wet_label)
    button("wetness", chat.wetness_busy and "..." or "Set wetness...", margin + gfx.measurestr(wet_label) + 12, wy)
    -- Input line and buttons.
    local iy = gfx.h - LINE - 8
    gfx.set(0.2, 0.2, 0.24)
    gfx.rect(margin, iy, width - 130, LINE + 4, 1)
    gfx.set(1, 1, 1)
    gfx.x, gfx.y = margin + 4, iy + 2
    gfx.drawstr(input .. ((math.floor(reaper.time_precise() * 2) % 2 == 0) and "|" or ""))
    local bx = button("send", chat.busy and "..." or "Send", margin + width - 122, iy)
    button("dock", gfx.dock(-1) > 0 and "Undock" or "Dock", bx, iy)

    local hit = clicked_button()
    if hit == "send" then send_now = true end
    if hit == "apply" then chat:apply() end
    if hit == "dismiss" then chat:dismiss() end
    if hit == "dock" then gfx.dock(gfx.dock(-1) > 0 and 0 or 1) end
    if hit == "wetness" and not chat.wetness_busy then
      local ok, typed = reaper.GetUserInputs("stase: " .. ui.WETNESS_LABEL, 1,
        ui.WETNESS_LABEL .. " " .. ui.wetness_range() .. "; 0 = the room:,extrawidth=60",
        string.format("%.1f", chat.wetness_db))
      if ok then chat:set_wetness(typed) end
    end
    if send_now and not chat.busy and input:match("%S") then
      chat:send(input)
      input = ""
    end
    gfx.update()
    stase_chat_ui = { buttons = buttons, chat = chat }  -- read by the tests' gfx stub
    reaper.defer(frame)
  end
  reaper.defer(frame)
end

if has_imgui() then run_imgui() else run_gfx() end
