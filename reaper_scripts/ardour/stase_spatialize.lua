ardour {
	["type"]    = "EditorAction",
	name        = "stase: Spatialize selected tracks from prompt",
	license     = "MIT",
	author      = "stase developers",
	description = [[Describe the scene ("jazz club, sax a bit left, drums at the back"); the stase
daemon plans a place for each selected track, the plan is shown, and on OK the tracks' stereo
pan follows it (azimuth positive = left; pan linear in lateral angle, rear folds to front). The
plan is also saved as stase_plan.json in the session folder. Needs the daemon running
(`stase serve --daw ardour`) and the `stase` command (set its path in the script parameters).
Ardour must not sandbox Lua scripts (Preferences > Scripting), as the script runs `stase client`.]]
}

-- Ardour stores an action script's factory as bytecode and runs it in a fresh Lua 5.3 state, so
-- everything lives inside factory(). factory({__stase_test = true}) returns the helper table
-- instead of the action, for the headless test (tests/test_reaper_scripts.py).

function action_params ()
	return {
		["stase_cmd"] = { title = "Command that runs stase (full path if not on PATH)", default = "stase" },
		["timeout_s"] = { title = "Longest wait for the plan (s)", default = "120" },
	}
end

function factory (params) local S = {} ; do
	params = params or {}
	S.stase_cmd = params["stase_cmd"] or os.getenv ("STASE_CMD") or "stase"
	S.timeout_s = tonumber (params["timeout_s"]) or 120
	S.windows = package.config:sub (1, 1) == "\\"
	S.START_HINT = "Start it in a terminal with:\n\n    stase serve --daw ardour\n\nthen run this action again."

	-- JSON (RFC 8259), the subset the protocol needs; strings are written shell-safe: every
	-- character a shell or cmd.exe could read (space, quotes, % & | < > ^ $ ` \ ...) and all
	-- non-ASCII as \uXXXX, so the argument needs no further escaping.
	local UNSAFE = "[ '\"%%!&|<>%^`$\\%(%)%;%*%?~#=@]"
	local function enc_string (s)
		local out = {}
		if not utf8.len (s) then s = s:gsub ("[\128-\255]", "?") end
		for _, cp in utf8.codes (s) do
			local ch = utf8.char (cp)
			if cp >= 0x80 or cp < 0x20 or cp == 0x7f or ch:find (UNSAFE) then
				if cp < 0x10000 then
					out[#out + 1] = string.format ("\\u%04x", cp)
				else
					local v = cp - 0x10000
					out[#out + 1] = string.format ("\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
				end
			else
				out[#out + 1] = ch
			end
		end
		return '"' .. table.concat (out) .. '"'
	end
	function S.encode (v)
		local t = type (v)
		if v == nil then return "null"
		elseif t == "boolean" then return v and "true" or "false"
		elseif t == "number" then
			if math.type (v) == "integer" then return string.format ("%d", v) end
			return string.format ("%.17g", v)
		elseif t == "string" then return enc_string (v)
		elseif t == "table" then
			local parts = {}
			if #v > 0 or v.__array then
				for i = 1, #v do parts[i] = S.encode (v[i]) end
				return "[" .. table.concat (parts, ",") .. "]"
			end
			local keys = {}
			for k in pairs (v) do if k ~= "__array" then keys[#keys + 1] = k end end
			table.sort (keys)
			for i, k in ipairs (keys) do parts[i] = enc_string (k) .. ":" .. S.encode (v[k]) end
			return "{" .. table.concat (parts, ",") .. "}"
		end
		error ("cannot encode a " .. t)
	end

	local function dec_error (pos, what) error ({ json = "invalid JSON at byte " .. pos .. ": " .. what }) end
	local dec
	local function ws (s, i) return s:find ("[^ \t\r\n]", i) or #s + 1 end
	local ESC = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
	local function dec_string (s, i)
		local out, j = {}, i + 1
		while true do
			local k = s:find ('["\\]', j)
			if not k then dec_error (i, "unterminated string") end
			out[#out + 1] = s:sub (j, k - 1)
			if s:sub (k, k) == '"' then return table.concat (out), k + 1 end
			local e = s:sub (k + 1, k + 1)
			if ESC[e] then out[#out + 1] = ESC[e]; j = k + 2
			elseif e == "u" then
				local cp = tonumber (s:sub (k + 2, k + 5), 16) or dec_error (k, "bad \\u")
				j = k + 6
				if cp >= 0xD800 and cp <= 0xDBFF then
					local lo = tonumber (s:match ("^\\u(%x%x%x%x)", j) or "", 16)
					if lo and lo >= 0xDC00 and lo <= 0xDFFF then
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00); j = j + 6
					else cp = 0xFFFD end
				end
				out[#out + 1] = utf8.char (cp)
			else dec_error (k, "bad escape") end
		end
	end
	dec = function (s, i)
		i = ws (s, i)
		local c = s:sub (i, i)
		if c == "{" then
			local o = {}
			i = ws (s, i + 1)
			if s:sub (i, i) == "}" then return o, i + 1 end
			while true do
				local k; k, i = dec_string (s, ws (s, i))
				i = ws (s, i)
				if s:sub (i, i) ~= ":" then dec_error (i, "expected ':'") end
				o[k], i = dec (s, i + 1)
				i = ws (s, i)
				local d = s:sub (i, i)
				if d == "}" then return o, i + 1 end
				if d ~= "," then dec_error (i, "expected ',' or '}'") end
				i = i + 1
			end
		elseif c == "[" then
			local a = { __array = true }
			i = ws (s, i + 1)
			if s:sub (i, i) == "]" then return a, i + 1 end
			while true do
				a[#a + 1], i = dec (s, i)
				i = ws (s, i)
				local d = s:sub (i, i)
				if d == "]" then return a, i + 1 end
				if d ~= "," then dec_error (i, "expected ',' or ']'") end
				i = i + 1
			end
		elseif c == '"' then return dec_string (s, i)
		elseif s:sub (i, i + 3) == "true" then return true, i + 4
		elseif s:sub (i, i + 4) == "false" then return false, i + 5
		elseif s:sub (i, i + 3) == "null" then return nil, i + 4
		end
		local num = s:match ("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
		if num and tonumber (num) then return tonumber (num), i + #num end
		dec_error (i, "unexpected character")
	end
	function S.decode (s)
		local ok, v, i = pcall (dec, s, 1)
		if not ok then return nil, type (v) == "table" and v.json or tostring (v) end
		if ws (s, i) <= #s then return nil, "trailing characters" end
		return v
	end

	-- Maths: stase/core/conventions.py azimuth_to_stereo_pan, mapped to Ardour's pan azimuth control
	-- (libs/panners/1in2out: 0 = hard left, 0.5 = centre, 1 = hard right).
	function S.stereo_pan (az_deg, el_deg)
		local s = math.sin (math.rad (az_deg)) * math.cos (math.rad (el_deg or 0))
		local lateral = math.deg (math.asin (math.max (-1, math.min (1, s))))
		return math.max (-1, math.min (1, -lateral / 90))
	end
	function S.ardour_azimuth (pan) return (pan + 1) / 2 end

	-- Transport: run `stase client` and read its one-line JSON reply (exit 0 ok, 1 daemon error,
	-- 3 no daemon). Ardour blocks while it waits; --job-timeout bounds the wait.
	function S.quote (arg)
		if S.windows then return '"' .. arg:gsub ('"', '\\"') .. '"' end
		return "'" .. arg:gsub ("'", "'\\''") .. "'"
	end
	function S.command (verb, payload)
		return string.format ("%s client --job-timeout %d %s %s", S.stase_cmd, math.floor (S.timeout_s), verb,
		                      S.quote (S.encode (payload)))
	end
	function S.request (verb, payload)
		if not io or not io.popen then
			return nil, "This Ardour runs Lua scripts sandboxed (no io.popen), so the script cannot start " ..
			            "`stase client`. Untick Preferences > Scripting > 'Sandbox all Lua scripts'."
		end
		local h = io.popen (S.command (verb, payload) .. " 2>&1", "r")
		if not h then return nil, "could not run " .. S.stase_cmd end
		local out = h:read ("a") or ""
		local _, _, rc = h:close ()
		local reply
		for line in out:gmatch ("[^\r\n]+") do
			local v = line:match ("^%s*{") and S.decode (line)
			if type (v) == "table" and v.ok ~= nil and v.status ~= "accepted" and v.status ~= "progress" then reply = v end
		end
		if reply and reply.ok then return reply end
		if reply then return nil, "The stase daemon could not do that:\n\n" .. tostring (reply.error) end
		local said = (out:match ("^%s*([^\r\n]*)") or ""):sub (1, 300)
		if rc == 127 or said:find ("not found") or said:find ("not recognized") then
			return nil, "The `stase` command could not be run (" .. S.stase_cmd .. "): " .. said ..
			            "\n\nSet its full path in this action's script parameters."
		end
		if rc == 4 then  -- bridge/client.py: busy (reachable, but no reply in time)
			return nil, "The stase daemon is busy (no reply in time); try again in a moment." ..
			            (said ~= "" and ("\n\nThe client said: " .. said) or "")
		end
		return nil, "The stase daemon is not reachable.\n\n" .. S.START_HINT ..
		            (said ~= "" and ("\n\nThe client said: " .. said) or "")
	end

	-- Plan -> routes
	local function key (name) return (name or ""):gsub ("^%s+", ""):gsub ("%s+$", ""):lower () end
	function S.match (plan, routes)
		local by, problems, matches, unmatched = {}, {}, {}, {}
		for _, r in ipairs (routes) do
			local k = key (r:name ())
			if by[k] then problems[#problems + 1] = "two tracks are named '" .. r:name () .. "'" end
			by[k] = r
		end
		for _, s in ipairs (plan.sources or {}) do
			local r = type (s) == "table" and by[key (s.track)]
			if type (s) ~= "table" or type (s.azimuth_deg) ~= "number" then
				problems[#problems + 1] = "a source without a numeric azimuth_deg"
			elseif r then
				matches[#matches + 1] = { route = r, source = s, pan = S.stereo_pan (s.azimuth_deg, s.elevation_deg) }
			else
				unmatched[#unmatched + 1] = s.track
			end
		end
		return matches, unmatched, problems
	end

	function S.describe (plan, matches, unmatched)
		local lines = { "Room: " .. tostring (plan.room), "" }
		for _, m in ipairs (matches) do
			local p = m.pan
			local where = math.abs (p) < 0.005 and "centre" or string.format ("%d%% %s", math.floor (math.abs (p) * 100 + 0.5), p < 0 and "L" or "R")
			lines[#lines + 1] = string.format ("%s: az %+.1f deg, el %+.1f, %.1f m -> pan %s", m.route:name (),
				m.source.azimuth_deg, m.source.elevation_deg or 0, m.source.distance_m or 2, where)
		end
		if #unmatched > 0 then lines[#lines + 1] = "\nNot selected (skipped): " .. table.concat (unmatched, ", ") end
		return table.concat (lines, "\n")
	end

	--- Set every matched track's pan, all or nothing: on any failure the old values come back.
	function S.apply (matches)
		local saved, done = {}, {}
		for i, m in ipairs (matches) do
			local ctrl = m.route:pan_azimuth_control ()
			if ctrl:isnil () then return false, "track '" .. m.route:name () .. "' has no stereo panner" end
			saved[i] = ctrl:get_value ()
		end
		local ok, err = pcall (function ()
			for i, m in ipairs (matches) do
				local ctrl = m.route:pan_azimuth_control ()
				ctrl:set_value (S.ardour_azimuth (m.pan), PBD.GroupControlDisposition.NoGroup)
				done[#done + 1] = i
			end
		end)
		if not ok then
			for _, i in ipairs (done) do
				matches[i].route:pan_azimuth_control ():set_value (saved[i], PBD.GroupControlDisposition.NoGroup)
			end
			return false, tostring (err)
		end
		return true
	end

	function S.save_plan (plan)
		local path = ARDOUR.LuaAPI.build_filename (Session:path (), "stase_plan.json")
		local f = io.open (path, "w")
		if f then f:write (S.encode (plan), "\n"); f:close () end
		return path
	end

	-- UI (replaced by the test)
	S.ui = {
		message = function (text)
			LuaDialog.Message ("stase", text, LuaDialog.MessageType.Info, LuaDialog.ButtonType.Close):run ()
		end,
		confirm = function (text)
			return LuaDialog.Message ("stase", text, LuaDialog.MessageType.Question,
			                          LuaDialog.ButtonType.OK_Cancel):run () == LuaDialog.Response.OK
		end,
		prompt = function ()
			local rv = LuaDialog.Dialog ("stase: Spatialize selected tracks", {
				{ type = "entry", key = "prompt", default = "", title = "Describe the scene" },
			}):run ()
			return rv and rv["prompt"]
		end,
	}

	--- The whole flow for a list of routes; returns true when pans were changed.
	function S.spatialize (routes, prompt)
		if #routes == 0 then S.ui.message ("Select the tracks to place first."); return false end
		prompt = prompt or S.ui.prompt ()
		if not prompt or not prompt:match ("%S") then return false end
		local names = { __array = true }
		for i, r in ipairs (routes) do names[i] = r:name () end
		local reply, err = S.request ("plan", { prompt = prompt, tracks = names })
		if not reply then S.ui.message (err); return false end
		local result = reply.result or {}
		local plan = (type (result.plan) == "table" and result.plan) or (type (result.sources) == "table" and result)
		if not plan then S.ui.message ("The daemon's answer holds no plan."); return false end
		local matches, unmatched, problems = S.match (plan, routes)
		if #problems > 0 then S.ui.message ("The plan was not applied:\n- " .. table.concat (problems, "\n- ")); return false end
		if #matches == 0 then S.ui.message ("The plan names none of the selected tracks."); return false end
		if not S.ui.confirm (S.describe (plan, matches, unmatched) .. "\n\nApply this plan?") then return false end
		local ok, aerr = S.apply (matches)
		if not ok then S.ui.message ("Nothing was changed: " .. aerr); return false end
		S.save_plan (plan)
		return true
	end

	function S.selected_routes ()
		local list = {}
		for r in Editor:get_selection ().tracks:routelist ():iter () do list[#list + 1] = r end
		return list
	end
end
	if params.__stase_test then return S end
	return function () S.spatialize (S.selected_routes ()) end
end
