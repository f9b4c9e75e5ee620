-- @noindex
--[[
stase_transport: how the ReaScripts reach the stase daemon.

Lua inside REAPER has no sockets, so every request runs the one-shot CLI client
`stase client VERB --request-file PATH` (stase/cli/client.py, bridge/client.py), which reads the
request object from PATH, sends /stase/VERB over OSC to the daemon on 127.0.0.1 and prints the
reply JSON {"id","ok","result"} or {"id","ok":false,"error"}; it exits 0 (ok), 1 (the daemon
answered with an error), 2 (the client refused the request or a flag), 3 (no daemon answered;
message on stderr) or 4 (the daemon is there but answered too late). Background jobs add
--progress, so the daemon's interim replies ({"status":"accepted"} and
{"status":"progress","progress":0..1,"message":...}) arrive one per line before the final one.

The request travels as a file, never on the command line: json.encode(payload) (UTF-8) is written
to job_<id>.json in the spool folder, under a temporary name first and renamed into place, so the
client never reads half a request. No shell quoting touches what the user typed. The only
arguments are file paths under REAPER's resource path (which the user does not choose character
by character), quoted by T.quote_path: single quotes for sh, so `$(...)` or backticks in a folder
name stay text; double quotes with % doubled in a .bat. The runner removes the request file when
the client exits (so a cancelled job leaves none behind); the transport removes it too.

The command runs from a small runner file in <REAPER resource path>/Data/stase_spool/ (a .sh or
.bat), started with reaper.ExecProcess:
  * request_sync(verb, payload)  -- ExecProcess(runner, timeout_ms): only for quick verbs
                                    (status in Settings); waits at most `sync_timeout_ms`.
  * start(verb, payload) -> job  -- ExecProcess(runner, -1 / -2): returns at once; the runner
                                    writes the client's stdout to job.out and its exit status to
                                    job.rc (renamed into place last). job:poll() reads them.
  * run(verb, payload, on_done, opts) -- start + a reaper.defer loop polling the job until it is
                                    done, cancelled or past `job_timeout_s`; REAPER never freezes.

Settings (reaper.GetExtState/SetExtState, section "stase", persisted):
  stase_cmd        command that runs the stase CLI (default "stase"; e.g.
                   /Users/me/stase/.venv/bin/stase, quote it yourself if the path has spaces)
  client_args      extra arguments after `client` (e.g. "--port 9100")
  sync_timeout_ms  longest blocking wait for a quick request (default 3000)
  job_timeout_s    longest wait for a long job in the defer loop (default 180)
]]
local T = {}
T.SECTION = "stase"
T.DEFAULTS = { stase_cmd = "stase", client_args = "", sync_timeout_ms = "3000",
               job_timeout_s = "180" }
T.START_HINT = "Start it in a terminal with:\n\n    stase serve --daw reaper\n\n" ..
               "(or `stase serve --daw none`), then run this action again. If `stase` lives in " ..
               "a virtual environment, set its full path with the action 'stase: Settings'."

local json

--- Wire in the JSON module (the scripts load both with dofile from lib/).
function T.init(json_module)
  json = json_module
  return T
end

function T.setting(key)
  local v = reaper.GetExtState(T.SECTION, key)
  if v == nil or v == "" then v = T.DEFAULTS[key] end
  return v
end

function T.is_windows()
  local os_name = reaper.GetOS and reaper.GetOS() or ""
  return os_name:match("^Win") ~= nil
end

--- Quote one argument for the platform's shell.
function T.quote_arg(s, windows)
  if windows then
    return '"' .. s:gsub('"', '\\"') .. '"'
  end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- Quote a file path for the runner file's shell. POSIX: single quotes, inside which sh expands
-- nothing (a resource path holding `$(...)`, backticks or `"` stays text). Windows: double quotes
-- (a Windows path cannot hold `"`) with every % doubled, because a .bat file expands %VAR% even
-- inside quotes.
function T.quote_path(path, windows)
  if windows then
    return '"' .. (path:gsub("%%", "%%%%")) .. '"'
  end
  return T.quote_arg(path, false)
end

--- The full client command line for one request whose JSON is in the file `request_path`.
function T.build_command(verb, request_path, windows, with_progress)
  if not tostring(verb):match("^[%a_]+$") then
    error("stase transport: a verb is letters and underscores only, got " .. tostring(verb))
  end
  local parts = { T.setting("stase_cmd"), "client" }
  local extra = T.setting("client_args")
  if extra ~= "" then parts[#parts + 1] = extra end
  if with_progress then parts[#parts + 1] = "--progress" end
  parts[#parts + 1] = verb
  parts[#parts + 1] = "--request-file"
  parts[#parts + 1] = T.quote_path(request_path, windows)
  return table.concat(parts, " ")
end

function T.spool_dir()
  local dir = reaper.GetResourcePath() .. "/Data/stase_spool"
  -- cmd.exe can read "/x" inside a path as a switch: use backslashes throughout on Windows.
  if T.is_windows() then dir = dir:gsub("/", "\\") end
  reaper.RecursiveCreateDirectory(dir, 0)
  return dir
end

local counter = 0
local function new_job_id()
  counter = counter + 1
  local t = reaper.time_precise and reaper.time_precise() or os.clock()
  return string.format("%d_%d_%d", math.floor(t * 1000) % 100000000, counter, math.random(0, 99999))
end

local function write_file(path, text)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not (ok and closed) then return nil, werr or cerr end
  return true
end

--- Write `text` to `path` whole or not at all: a temporary file, then a rename (the reader, the
-- client, starts only afterwards, but a full disk must not leave half a request behind).
local function write_file_atomic(path, text)
  local ok, err = write_file(path .. ".part", text)
  if ok then ok, err = os.rename(path .. ".part", path) end
  if not ok then os.remove(path .. ".part") end
  return ok, err
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

--- Write the request file and the runner for one request; returns the ExecProcess command line
-- and the file paths, or nil and a message. With `with_files` the client's stdout/stderr/exit
-- status go to files (background job); without, stdout and stderr go to ExecProcess's captured
-- output (quick request).
function T.write_runner(verb, payload, with_files)
  local windows = T.is_windows()
  local ok_encode, text = pcall(json.encode, payload or {})
  if not ok_encode then return nil, "The request could not be written: " .. tostring(text) end
  local base = T.spool_dir() .. (windows and "\\" or "/") .. "job_" .. new_job_id()
  local paths = { request = base .. ".json", out = base .. ".out", err = base .. ".err",
                  rc = base .. ".rc" }
  local ok_build, command = pcall(T.build_command, verb, paths.request, windows, with_files)
  if not ok_build then return nil, tostring(command) end
  local lines
  local function q(path) return T.quote_path(path, windows) end
  if windows then
    paths.runner = base .. ".bat"
    if with_files then
      lines = { "@echo off", command .. " > " .. q(paths.out) .. " 2> " .. q(paths.err),
                "set STASE_RC=%ERRORLEVEL%", "del /q " .. q(paths.request) .. " 2> nul",
                "echo %STASE_RC% > " .. q(paths.rc .. ".part"),
                "move /y " .. q(paths.rc .. ".part") .. " " .. q(paths.rc) .. " > nul" }
    else
      lines = { "@echo off", command .. " 2>&1", "set STASE_RC=%ERRORLEVEL%",
                "del /q " .. q(paths.request) .. " 2> nul", "exit /b %STASE_RC%" }
    end
  else
    paths.runner = base .. ".sh"
    -- REAPER started from the Finder/desktop has a minimal PATH: add the usual install places.
    lines = { 'PATH="$PATH:$HOME/.local/bin:/usr/local/bin:/opt/homebrew/bin"; export PATH' }
    if with_files then
      lines[#lines + 1] = command .. " > " .. q(paths.out) .. " 2> " .. q(paths.err)
      lines[#lines + 1] = "rc=$?; rm -f " .. q(paths.request)
      lines[#lines + 1] = "echo $rc > " .. q(paths.rc .. ".part")
      lines[#lines + 1] = "mv -f " .. q(paths.rc .. ".part") .. " " .. q(paths.rc)
    else
      lines[#lines + 1] = command .. " 2>&1"
      lines[#lines + 1] = "rc=$?; rm -f " .. q(paths.request) .. "; exit $rc"
    end
  end
  local ok, err = write_file_atomic(paths.request, text)
  if not ok then return nil, "cannot write the request file " .. paths.request .. ": " .. tostring(err) end
  ok, err = write_file(paths.runner, table.concat(lines, windows and "\r\n" or "\n") ..
                       (windows and "\r\n" or "\n"))
  if not ok then
    os.remove(paths.request)
    return nil, "cannot write the runner file " .. paths.runner .. ": " .. tostring(err)
  end
  if windows then
    paths.exec = 'cmd.exe /C "' .. paths.runner .. '"'
  else
    paths.exec = "/bin/sh " .. q(paths.runner)
  end
  return paths
end

local function first_line(text)
  text = (text or ""):gsub("^%s+", "")
  return (text:match("^[^\r\n]*") or ""):sub(1, 300)
end

--- Every JSON object found in the client's output, in order (one per line; or the whole text
-- when it is a single pretty-printed object).
function T.parse_replies(text)
  local replies = {}
  if not text or text == "" then return replies end
  local whole = json.decode(text)
  if type(whole) == "table" and not json.is_array(whole) then
    replies[1] = whole
    return replies
  end
  for line in text:gmatch("[^\r\n]+") do
    if line:match("^%s*{") then
      local v = json.decode(line)
      if type(v) == "table" and not json.is_array(v) then replies[#replies + 1] = v end
    end
  end
  return replies
end

--- True for a reply that only says "accepted" or reports progress (a long job still running).
function T.is_interim(reply)
  if type(reply) ~= "table" then return false end
  -- bridge/dispatcher.py: {"ok":true,"status":"accepted"|"progress","job":n,"progress":0..1,
  -- "message":"..."} precede the final reply of a long job.
  local status = json.value(reply.status)
  if status == "accepted" or status == "progress" then return true end
  local r = json.value(reply.result)
  return type(r) == "table" and json.value(r.partial) ~= nil and r.final ~= true and r.done ~= true
end

--- Turn (exit status, output) into (reply, nil) or (nil, err) where err = {kind=, message=}.
-- kind: "not_found" (stase command missing), "down" (daemon unreachable), "busy" (exit 4: the
-- daemon answered too late), "usage" (exit 2: a bad flag or request), "daemon" (the
-- daemon answered ok=false), "bad_reply" (unreadable output), "timeout", "exec".
function T.interpret(rc, output)
  local replies = T.parse_replies(output)
  local final
  for i = #replies, 1, -1 do
    if replies[i].ok ~= nil and not T.is_interim(replies[i]) then final = replies[i] break end
  end
  if final then
    if final.ok == true then return final end
    local e = json.value(final.error)
    if type(e) == "table" then e = e.message or json.encode(e) end
    return nil, { kind = "daemon", message = "The stase daemon could not do that:\n\n" .. tostring(e or "unknown error"),
                  reply = final }
  end
  local said = first_line(output)
  if rc == 127 or rc == 9009 or said:match("not found") or said:match("not recognized") or
     said:match("No such file") then
    return nil, { kind = "not_found", message = "The `stase` command could not be run (" ..
      T.setting("stase_cmd") .. "): " .. said .. "\n\nSet its full path with the action " ..
      "'stase: Settings', for example /path/to/stase/.venv/bin/stase." }
  end
  if rc == 4 then  -- bridge/client.py EXIT_BUSY: the daemon is there but answered too late
    return nil, { kind = "busy", message = "The stase daemon is busy (it did not answer in time; " ..
      "it may be overloaded). Try again in a moment." ..
      (said ~= "" and ("\n\nThe client said: " .. said) or "") }
  end
  if rc == 2 then  -- stase/cli/__init__.py EXIT_USAGE: the request or a setting was refused
    return nil, { kind = "usage", message = "The stase client refused the request: " ..
      (said ~= "" and said or "(no message)") ..
      "\n\nCheck the action 'stase: Settings' (client_args)." }
  end
  if rc ~= 0 then
    return nil, { kind = "down", message = "The stase daemon is not reachable.\n\n" .. T.START_HINT ..
      (said ~= "" and ("\n\nThe client said: " .. said) or "") }
  end
  return nil, { kind = "bad_reply", message = "The stase client printed no reply the scripts " ..
    "understand: " .. (said ~= "" and said or "(no output)") }
end

--- Send one quick request and wait at most sync_timeout_ms. Returns reply or nil, err.
function T.request_sync(verb, payload, timeout_ms)
  local paths, werr = T.write_runner(verb, payload, false)
  if not paths then return nil, { kind = "exec", message = werr } end
  timeout_ms = timeout_ms or tonumber(T.setting("sync_timeout_ms")) or 3000
  local raw = reaper.ExecProcess(paths.exec, timeout_ms)
  os.remove(paths.runner)
  if raw == nil then
    -- the client may still be starting: the runner removes the request file when it exits
    return nil, { kind = "timeout", message = "The stase client did not answer within " ..
      timeout_ms .. " ms (or could not be started).\n\nIs the daemon running? " .. T.START_HINT }
  end
  os.remove(paths.request)
  local rc, output = raw:match("^(-?%d+)\r?\n(.*)$")
  if not rc then rc, output = raw:match("^(-?%d+)$"), "" end
  return T.interpret(tonumber(rc) or -1, output or raw)
end

local Job = {}
Job.__index = Job

--- Start a long request in the background; returns a job (poll it) or nil, err.
function T.start(verb, payload)
  local paths, werr = T.write_runner(verb, payload, true)
  if not paths then return nil, { kind = "exec", message = werr } end
  -- -1: do not wait (POSIX); -2: do not wait and keep the console window minimised (Windows).
  local started = reaper.ExecProcess(paths.exec, T.is_windows() and -2 or -1)
  if started == nil then
    os.remove(paths.runner)
    os.remove(paths.request)
    return nil, { kind = "exec", message = "REAPER could not start the stase client (" ..
      paths.exec .. ")." }
  end
  local now = reaper.time_precise()
  return setmetatable({ verb = verb, paths = paths, started = now, state = "running",
                        seen = 0 }, Job)
end

--- Poll once. Returns "running", interim_replies | "done", reply, err.
function Job:poll()
  if self.state ~= "running" then return self.state, self.reply, self.err end
  local rc_text = read_file(self.paths.rc)
  if rc_text == nil then
    local partial = read_file(self.paths.out) or ""
    local interim = {}
    -- Only complete lines: the client may be in the middle of writing the last one.
    local complete = partial:match("^(.*\n)") or ""
    for _, r in ipairs(T.parse_replies(complete)) do interim[#interim + 1] = r end
    return "running", interim
  end
  local out = read_file(self.paths.out) or ""
  local err_text = read_file(self.paths.err) or ""
  local rc = tonumber(rc_text:match("-?%d+")) or -1
  self.reply, self.err = T.interpret(rc, out ~= "" and out or err_text)
  if self.err and self.err.kind ~= "daemon" and err_text ~= "" and out ~= "" then
    self.err.message = self.err.message .. "\n" .. first_line(err_text)
  end
  self.state = "done"
  self:cleanup()
  return "done", self.reply, self.err
end

function Job:cleanup()
  for _, key in ipairs({ "runner", "request", "out", "err", "rc" }) do os.remove(self.paths[key]) end
end

--- Stop waiting (the client process finishes on its own and its runner removes the request
-- file; the reply files stay in the spool folder).
function Job:cancel()
  if self.state == "running" then
    self.state = "cancelled"
    self.err = { kind = "cancelled", message = "cancelled" }
  end
end

--- Start a request and poll it from a reaper.defer loop.
-- on_done(reply, err) runs exactly once; opts.on_progress(interim_replies) on each new interim
-- reply; opts.timeout_s overrides job_timeout_s. Returns the job (or nil after on_done(nil, err)).
function T.run(verb, payload, on_done, opts)
  opts = opts or {}
  local job, err = T.start(verb, payload)
  if not job then
    on_done(nil, err)
    return nil
  end
  local timeout_s = opts.timeout_s or tonumber(T.setting("job_timeout_s")) or 180
  local function tick()
    local state, a, b = job:poll()
    if state == "running" then
      if opts.on_progress and #a > job.seen then
        job.seen = #a
        opts.on_progress(a)
      end
      if reaper.time_precise() - job.started > timeout_s then
        job:cancel()
        on_done(nil, { kind = "timeout", message = "The stase daemon did not finish '" .. verb ..
          "' within " .. timeout_s .. " s. It may still be working; try again in a moment " ..
          "(the limit is the setting job_timeout_s)." })
        return
      end
      reaper.defer(tick)
    elseif state == "done" then
      on_done(a, b)
    end
    -- "cancelled": stop polling silently; whoever cancelled has already told the user.
  end
  reaper.defer(tick)
  return job
end

return T
