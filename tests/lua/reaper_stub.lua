--[[
A recording stand-in for REAPER's `reaper` API (and `gfx`, and ReaImGui's `imgui` module), for
running the stase ReaScripts under a plain Lua 5.4 interpreter.

    local stub = dofile("tests/lua/reaper_stub.lua")
    local env = stub.new(scenario)      -- installs _G.reaper and _G.gfx
    ...dofile(script)...
    env:run_defer()                     -- runs the reaper.defer queue like REAPER's timer
    env:report()                        -- JSON-able table: calls, tracks, ext state, requests

Every API call is appended to env.calls as {fn = name, args = {...}} (tracks are written as
"track:<name>"). Answers come from the scenario (a table decoded from JSON by run_script.lua):

  tracks        = { {name=, selected=bool, pan=, vol=, ext={}} }
  os            = "Other" | "Win64" | "OSX64"          (reaper.GetOS)
  resource_path = folder for Data/stase_spool
  inputs        = { {ok=bool, csv="..."} }              GetUserInputs answers, in order
  message_box   = { 1, 2, ... }                         ShowMessageBox answers (default 1 = OK)
  daemon        = "down" | "real" | "missing" | { verb = reply | {reply, reply...} }
                  where reply = {rc=0, out="<client stdout>", delay_ticks=n}
  refuse_pan_for = "<track name>"                       SetMediaTrackInfo_Value fails there
  imgui         = { ... }                               present: ReaImGui is "installed"
  gfx_events    = { {tick=n, char=c} | {tick=n, click="apply"} }
  close_when_drawn = "text"                             Esc once a drawn line holds the text
  max_ticks     = 2000                                  defer ticks before giving up
]]
local M = {}

local Env = {}
Env.__index = Env

local function describe(v, env)
  if type(v) == "table" and v.__track then return "track:" .. v.name end
  if type(v) == "function" then return "<function>" end
  if type(v) == "table" then return "<table>" end
  return v
end

function M.new(scenario)
  local env = setmetatable({ scenario = scenario, calls = {}, ext = {}, projext = {},
                             defer_queue = {}, ticks = 0, clock = 1000.0, requests = {},
                             messages = {}, inputs_asked = {}, pending_writes = {},
                             inputs_i = 0, mb_i = 0, tracks = {} }, Env)
  for i, t in ipairs(scenario.tracks or {}) do
    env.tracks[i] = { __track = true, name = t.name, selected = t.selected and true or false,
                      pan = t.pan or 0.0, vol = t.vol or 1.0, ext = t.ext or {} }
  end
  for k, v in pairs(scenario.ext or {}) do env.ext[k] = v end
  for k, v in pairs(scenario.projext or {}) do env.projext[k] = v end
  env:install()
  if (scenario.os or ""):match("^Win") then
    -- The scripts build Windows paths (backslashes); map them onto this POSIX file system.
    local open, remove, rename = io.open, os.remove, os.rename
    local function posix(path) return (path:gsub("\\", "/")) end
    io.open = function(path, mode) return open(posix(path), mode) end
    os.remove = function(path) return remove(posix(path)) end
    os.rename = function(from, to) return rename(posix(from), posix(to)) end
  end
  return env
end

function Env:record(fn, ...)
  local args = table.pack(...)
  local out = {}
  for i = 1, args.n do out[i] = describe(args[i], self) end
  self.calls[#self.calls + 1] = { fn = fn, args = out, tick = self.ticks }
end

function Env:selected()
  local list = {}
  for _, t in ipairs(self.tracks) do if t.selected then list[#list + 1] = t end end
  return list
end

-- Fake daemon ---------------------------------------------------------------------------------

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- Parse the runner file the transport wrote: the client command, verb and request file, whose
-- JSON is read here (while it exists: the real runner removes it when the client exits).
function Env:parse_runner(cmd)
  -- POSIX paths are single-quoted ('\'' inside), Windows ones double-quoted (% doubled in .bat)
  local function unquote_sh(q) return (q:gsub("'\\''", "'")) end
  local runner = cmd:match("^/bin/sh '(.*)'$")
  if runner then runner = unquote_sh(runner) end
  runner = runner or cmd:match('^cmd%.exe /C "(.*)"$')
  if runner then runner = runner:gsub("\\", "/") end
  assert(runner, "ExecProcess got an unexpected command line: " .. cmd)
  local text = assert(read_file(runner), "runner file missing: " .. runner)
  local line
  for l in text:gmatch("[^\r\n]+") do
    if l:find(" client ", 1, true) then line = l end
  end
  assert(line, "no client command in runner:\n" .. text)
  local posix_text = runner:match("%.sh$") ~= nil
  -- the quoted path runs to the output redirection (background) or to the end of the line
  local verb, quoted = line:match(" client .-([%a_]+) %-%-request%-file (.-) > ")
  if not verb then verb, quoted = line:match(" client .-([%a_]+) %-%-request%-file (.-) 2>&1$") end
  assert(verb, "cannot parse client line (VERB --request-file PATH): " .. line)
  assert(quoted:match(posix_text and "^'.*'$" or '^".*"$'), "request path not quoted: " .. quoted)
  assert(not line:find("{", 1, true), "a JSON payload on the command line: " .. line)
  local request = quoted:sub(2, -2)
  if posix_text then request = unquote_sh(request) else request = request:gsub("%%%%", "%%") end
  local function posix(path) return path and (path:gsub("\\", "/")) end
  request = posix(request)
  local arg = assert(read_file(request), "request file missing: " .. request)
  local out = text:match("> '(.-%.out)'") or text:match('> "([^"]+%.out)"')
  local rc = text:match("echo [^\n]*> '(.-%.rc)%.part'") or text:match('echo [^\n]*> "([^"]+%.rc)%.part"')
  local err = text:match("2> '(.-%.err)'") or text:match('2> "([^"]+%.err)"')
  if out and posix_text then out, rc, err = unquote_sh(out), unquote_sh(rc), unquote_sh(err) end
  if not posix_text and out then
    out, rc, err = out:gsub("%%%%", "%%"), rc:gsub("%%%%", "%%"), err:gsub("%%%%", "%%")
  end
  return { runner = runner, text = text, line = line, verb = verb, arg = arg, request = request,
           out = posix(out), rc = posix(rc), err = posix(err) }
end

function Env:daemon_reply(verb, payload)
  local d = self.scenario.daemon
  if d == "down" then
    return { rc = 1, out = "stase client: error: no reply from the stase daemon at 127.0.0.1:9100 " ..
                           "within 2.0 s (is `stase serve` running?)\n" }
  elseif d == "missing" then
    return { rc = 127, out = "/bin/sh: 1: stase: not found\n" }
  end
  local r = d and d[verb]
  if r == nil then
    return { rc = 0, out = '{"id":"x","ok":false,"error":"unknown verb ' .. verb .. '"}\n' }
  end
  if r[1] then  -- a sequence of replies, one per request
    self.reply_i = self.reply_i or {}
    self.reply_i[verb] = (self.reply_i[verb] or 0) + 1
    r = r[math.min(self.reply_i[verb], #r)]
  end
  return r
end

function Env:exec_process(cmd, timeout)
  local d = self.scenario.daemon
  if d == "real" then return self:exec_real(cmd, timeout) end
  local p = self:parse_runner(cmd)
  local json = M.json
  local payload = json.decode(p.arg)
  self.requests[#self.requests + 1] = { verb = p.verb, payload = payload, arg = p.arg,
                                        line = p.line, timeout = timeout, runner = p.text,
                                        request_file = p.request }
  local r = self:daemon_reply(p.verb, payload)
  if timeout >= 0 then
    return string.format("%d\n%s", r.rc, r.out)
  end
  -- Background job: the "client" writes its output (interim lines first) and exit status later.
  local due = self.ticks + (r.delay_ticks or 2)
  if r.interim then
    write_file(p.out, r.interim)
  end
  self.pending_writes[#self.pending_writes + 1] = { due = due, fn = function()
    write_file(p.out, (r.interim or "") .. r.out)
    write_file(p.err, r.err or "")
    write_file(p.rc, tostring(r.rc) .. "\n")
  end }
  return ""
end

--- Run the runner for real (end-to-end test against a live daemon).
function Env:exec_real(cmd, timeout)
  local p = self:parse_runner(cmd)
  self.requests[#self.requests + 1] = { verb = p.verb, payload = M.json.decode(p.arg), arg = p.arg,
                                        line = p.line, timeout = timeout, runner = p.text,
                                        request_file = p.request }
  if timeout >= 0 then
    local h = io.popen(cmd .. "; echo \"__RC=$?\"", "r")
    local out = h:read("a")
    h:close()
    local rc = out:match("__RC=(%d+)%s*$")
    out = out:gsub("__RC=%d+%s*$", "")
    return string.format("%s\n%s", rc or "1", out)
  end
  os.execute(cmd .. " &")
  self.real_jobs = (self.real_jobs or 0) + 1
  return ""
end

-- The API -------------------------------------------------------------------------------------

function Env:install()
  local env = self
  local R = {}
  local function rec(name, fn)
    R[name] = function(...)
      env:record(name, ...)
      return fn(...)
    end
  end
  rec("GetOS", function() return env.scenario.os or "Other" end)
  rec("GetResourcePath", function() return env.scenario.resource_path end)
  rec("RecursiveCreateDirectory", function(path)
    -- single quotes: the stub itself must not run a path's shell syntax (issue 14 #21 test)
    os.execute("mkdir -p '" .. (path:gsub("\\", "/"):gsub("'", "'\\''")) .. "'")
    return 1
  end)
  rec("time_precise", function() return env.clock end)
  rec("GetExtState", function(section, key) return env.ext[section .. "/" .. key] or "" end)
  rec("SetExtState", function(section, key, value, persist)
    env.ext[section .. "/" .. key] = value
  end)
  rec("GetProjExtState", function(proj, section, key)
    local v = env.projext[section .. "/" .. key]
    return v and 1 or 0, v or ""
  end)
  rec("SetProjExtState", function(proj, section, key, value)
    env.projext[section .. "/" .. key] = value
    return 1
  end)
  rec("GetProjectPath", function() return env.scenario.project_path or "/projects/song" end)
  rec("CountSelectedTracks", function() return #env:selected() end)
  rec("GetSelectedTrack", function(proj, i) return env:selected()[i + 1] end)
  rec("CountTracks", function() return #env.tracks end)
  rec("GetTrack", function(proj, i) return env.tracks[i + 1] end)
  rec("GetTrackName", function(tr) return true, tr.name end)
  rec("GetMediaTrackInfo_Value", function(tr, parm)
    if parm == "D_PAN" then return tr.pan elseif parm == "D_VOL" then return tr.vol end
    return 0
  end)
  rec("SetMediaTrackInfo_Value", function(tr, parm, value)
    if env.scenario.refuse_pan_for == tr.name and parm == "D_PAN" then return false end
    if parm == "D_PAN" then tr.pan = value elseif parm == "D_VOL" then tr.vol = value
    else return false end
    return true
  end)
  rec("GetSetMediaTrackInfo_String", function(tr, parm, value, set)
    if parm:sub(1, 6) ~= "P_EXT:" and parm ~= "P_NAME" then return false, "" end
    if set then
      if parm == "P_NAME" then tr.name = value else tr.ext[parm:sub(7)] = value end
      return true, value
    end
    if parm == "P_NAME" then return true, tr.name end
    return tr.ext[parm:sub(7)] ~= nil, tr.ext[parm:sub(7)] or ""
  end)
  for _, name in ipairs({ "Undo_BeginBlock2", "Undo_EndBlock2", "PreventUIRefresh",
                          "TrackList_AdjustWindows", "UpdateArrange", "ShowConsoleMsg" }) do
    rec(name, function() end)
  end
  rec("ShowMessageBox", function(msg, title, kind)
    env.messages[#env.messages + 1] = { text = msg, title = title, kind = kind }
    env.mb_i = env.mb_i + 1
    local answers = env.scenario.message_box or {}
    return answers[env.mb_i] or 1
  end)
  rec("GetUserInputs", function(title, n, captions, defaults)
    env.inputs_asked[#env.inputs_asked + 1] = { title = title, n = n, captions = captions,
                                                defaults = defaults }
    env.inputs_i = env.inputs_i + 1
    local a = (env.scenario.inputs or {})[env.inputs_i]
    if not a or not a.ok then return false, "" end
    return true, a.csv
  end)
  rec("ExecProcess", function(cmd, timeout) return env:exec_process(cmd, timeout) end)
  rec("defer", function(fn)
    env.defer_queue[#env.defer_queue + 1] = fn
    return true
  end)
  rec("APIExists", function(name)
    return env.scenario.imgui ~= nil and name == "ImGui_GetBuiltinPath"
  end)
  if self.scenario.imgui then
    rec("ImGui_GetBuiltinPath", function() return env.scenario.imgui.path end)
  end
  if self.scenario.imgui then R.__scenario_imgui_events = self.scenario.imgui.events or {} end
  _G.reaper = R
  _G.gfx = self:make_gfx()
  self.reaper = R
end

-- gfx: a window of 520x460 whose getchar/mouse follow scenario.gfx_events -----------------------
function Env:make_gfx()
  local env = self
  local G = { w = 520, h = 460, x = 0, y = 0, mouse_x = 0, mouse_y = 0, mouse_cap = 0 }
  local dock = 0
  local function rec(name, fn)
    G[name] = function(...)
      env:record("gfx." .. name, ...)
      return fn(...)
    end
  end
  rec("init", function() env.gfx_open = true return 1 end)
  rec("quit", function() env.gfx_open = false end)
  rec("dock", function(v) if v >= 0 then dock = v end return dock end)
  G.setfont = function() end
  G.set = function() end
  G.rect = function() end
  G.update = function() end
  G.drawstr = function(s) env.drawn = env.drawn or {}; env.drawn[#env.drawn + 1] = s end
  G.measurestr = function(s) return 7 * #s, 15 end
  G.getchar = function()
    G.mouse_cap = 0
    -- Real-daemon tests cannot know the tick an answer lands on: click a button once it shows.
    local want = env.scenario.click_when_shown
    local shown = want and _G.stase_chat_ui and _G.stase_chat_ui.buttons[want]
    if env.clicked_when_shown and env.scenario.close_after_apply and not shown then return 27 end
    local until_text = env.scenario.close_when_drawn
    if until_text then
      for _, line in ipairs(env.drawn or {}) do
        if line:find(until_text, 1, true) then return 27 end
      end
    end
    if shown and not env.clicked_when_shown then
      env.clicked_when_shown = true
      G.mouse_x, G.mouse_y, G.mouse_cap = shown.x + 2, shown.y + 2, 1
    end
    for _, e in ipairs(env.scenario.gfx_events or {}) do
      if e.tick == env.ticks then
        if e.click then
          local b = _G.stase_chat_ui and _G.stase_chat_ui.buttons[e.click]
          assert(b, "no '" .. e.click .. "' button on screen at tick " .. env.ticks)
          G.mouse_x, G.mouse_y, G.mouse_cap = b.x + 2, b.y + 2, 1
        elseif e.text then
          env.typing = e.text
        else
          return e.char
        end
      end
    end
    if env.typing and #env.typing > 0 then
      local c = env.typing:byte(1)
      env.typing = env.typing:sub(2)
      return c
    end
    return 0
  end
  return G
end

--- Run the defer queue like REAPER does (one pass per timer tick, about 30 per second).
function Env:run_defer()
  local max_ticks = self.scenario.max_ticks or 2000
  while #self.defer_queue > 0 do
    if self.ticks >= max_ticks then
      self.defer_left = #self.defer_queue
      return false
    end
    self.ticks = self.ticks + 1
    self.clock = self.clock + 1 / 30
    local still = {}
    for _, w in ipairs(self.pending_writes) do
      if w.due <= self.ticks then w.fn() else still[#still + 1] = w end
    end
    self.pending_writes = still
    local queue = self.defer_queue
    self.defer_queue = {}
    for _, fn in ipairs(queue) do fn() end
    if self.real_jobs then  -- a real client runs in the background: let it get CPU time
      os.execute("sleep 0.02")
    end
  end
  self.defer_left = 0
  return true
end

function Env:report()
  local tracks = {}
  for i, t in ipairs(self.tracks) do
    tracks[i] = { name = t.name, pan = t.pan, vol = t.vol, ext = t.ext, selected = t.selected }
  end
  local counts = {}
  for _, c in ipairs(self.calls) do counts[c.fn] = (counts[c.fn] or 0) + 1 end
  local arr = M.json.array
  return { calls = arr(self.calls), counts = counts, tracks = arr(tracks), ext = self.ext,
           projext = self.projext, requests = arr(self.requests), messages = arr(self.messages),
           inputs_asked = arr(self.inputs_asked), ticks = self.ticks, defer_left = self.defer_left,
           gfx_open = self.gfx_open or false, drawn = self.drawn }
end

return M
