-- @noindex
--[[
stase_json: the one JSON codec of the stase Lua scripts (RFC 8259), shared by the REAPER actions
(loaded with dofile from lib/) and the Ardour action (built into it by
reaper_scripts/ardour/build.lua, since Ardour keeps an action as bytecode and cannot find lib/).

  local json = dofile(lib_dir .. "stase_json.lua")
  json.encode(value)              -> string (object keys sorted, so output is stable; always
                                      valid UTF-8: a byte that starts no UTF-8 character, as in
                                      a Latin-1 track name, is written as U+FFFD)
  json.encode(value, {ascii=true}) -> the same value with every character that a shell or cmd.exe
                                      could read (space ' " % ! & | < > ^ ` $ \ and non-ASCII)
                                      written as a \uXXXX escape inside strings: pure ASCII
  json.decode(text)               -> value | nil, error message ("invalid JSON at line L column
                                      C: what")
  json.null                       -> sentinel for JSON null inside arrays/objects
  json.value(v)                   -> nil for json.null, v otherwise
  json.array(t)                   -> t marked as an array (an empty table encodes as {} unless
                                      marked; decoded arrays come marked)
  json.is_array(t)                -> true for a marked table or a non-empty Lua sequence

Numbers: NaN and +-Infinity are not JSON.  Encoding one raises an error naming it (never writes
`nan`); decoding refuses the literals NaN/Infinity and any number that overflows to infinity
(1e400), as the daemon does (bridge/dispatcher.py).  The number grammar is RFC 8259's exactly
(no "1.", ".5", "01", "+1").  Integers stay integers (an integer beyond 64 bits decodes to the
nearest float); floats are written in the shortest form that reads back bit for bit.

Works on Lua 5.3 (Ardour) and 5.4 (REAPER 6.x/7.x); tests/test_lua_json.py runs both against
Python's json module.
]]
local json = {}

json.null = setmetatable({}, { __tostring = function() return "null" end })
local ARRAY_MARK = setmetatable({}, { __mode = "k" })

--- Mark a table as a JSON array (so an empty one encodes as [] rather than {}).
function json.array(t)
  t = t or {}
  ARRAY_MARK[t] = true
  return t
end

function json.is_array(t)
  if type(t) ~= "table" then return false end
  if ARRAY_MARK[t] then return true end
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or math.type(k) ~= "integer" then return false end
    n = n + 1
  end
  return n > 0 and n == #t
end

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
-- Characters a shell or cmd.exe could interpret even inside quotes, plus space (cmd splits on it
-- once its quote state is confused by \" pairs).
local SHELL_UNSAFE = "[ '\"%%!&|<>%^`$\\%(%)%;%*%?~#=@]"

--- The string with every byte that does not start a valid UTF-8 character replaced by U+FFFD
-- (track names typed on old systems can be Latin-1; the daemon only accepts valid UTF-8). An
-- encoded UTF-16 surrogate (ED A0..BF xx) is invalid too; Lua 5.4 says so, Lua 5.3 does not.
local REPLACEMENT = "\239\191\189"
local SURROGATE = "\237[\160-\191][\128-\191]"
function json.sanitize_utf8(s)
  if utf8.len(s) and not s:find(SURROGATE) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local ch = utf8.len(s, i, i) and utf8.char(utf8.codepoint(s, i))
    if ch and not ch:find("^" .. SURROGATE) then
      out[#out + 1] = ch
      i = i + #ch
    else
      out[#out + 1] = REPLACEMENT
      i = i + 1
    end
  end
  return table.concat(out)
end

local function encode_string(s, ascii)
  s = json.sanitize_utf8(s)
  if ascii then
    local parts = {}
    for _, cp in utf8.codes(s) do
      local ch = utf8.char(cp)
      if cp >= 0x80 or cp < 0x20 or cp == 0x7f or ch:find(SHELL_UNSAFE) then
        if cp < 0x10000 then
          parts[#parts + 1] = string.format("\\u%04x", cp)
        else  -- above the BMP: a UTF-16 surrogate pair, as RFC 8259 section 7 says
          local v = cp - 0x10000
          parts[#parts + 1] = string.format("\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
        end
      else
        parts[#parts + 1] = ch
      end
    end
    -- The structural quotes are the only double quotes left; callers quote them for cmd.exe.
    return '"' .. table.concat(parts) .. '"'
  end
  return '"' .. s:gsub('[%z\1-\31\127"\\]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode_number(x)
  if x ~= x or x == math.huge or x == -math.huge then
    local name = x ~= x and "NaN" or (x > 0 and "Infinity" or "-Infinity")
    error("json.encode: cannot encode the non-finite number " .. name ..
          " (NaN and Infinity are not JSON)", 0)
  end
  if math.type(x) == "integer" then return string.format("%d", x) end
  if x == math.floor(x) and math.abs(x) < 1e15 then return string.format("%.1f", x) end
  local s = string.format("%.17g", x)
  -- Prefer the shortest form that reads back exactly (keeps messages readable).
  for digits = 6, 16 do
    local t = string.format("%." .. digits .. "g", x)
    if tonumber(t) == x then s = t break end
  end
  return s
end

local function encode_value(v, ascii, seen, out)
  local t = type(v)
  if v == nil or v == json.null then
    out[#out + 1] = "null"
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif t == "number" then
    out[#out + 1] = encode_number(v)
  elseif t == "string" then
    out[#out + 1] = encode_string(v, ascii)
  elseif t == "table" then
    if seen[v] then error("json.encode: a table refers to itself") end
    seen[v] = true
    if json.is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode_value(v[i], ascii, seen, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then
          error("json.encode: object keys must be strings, got " .. type(k))
        end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = encode_string(k, ascii)
        out[#out + 1] = ":"
        encode_value(v[k], ascii, seen, out)
      end
      out[#out + 1] = "}"
    end
    seen[v] = nil
  else
    error("json.encode: cannot encode a " .. t)
  end
end

function json.encode(value, opts)
  local out = {}
  encode_value(value, opts and opts.ascii, {}, out)
  return table.concat(out)
end

-- Decoder ---------------------------------------------------------------------------------------

local function decode_error(text, pos, what)
  local line, col = 1, 1
  for i = 1, math.min(pos - 1, #text) do
    if text:sub(i, i) == "\n" then line, col = line + 1, 1 else col = col + 1 end
  end
  error({ json_error = string.format("invalid JSON at line %d column %d: %s", line, col, what) })
end

local function skip_ws(text, pos)
  return text:find("[^ \t\r\n]", pos) or #text + 1
end

local decode_value

local function decode_string(text, pos)
  -- pos is at the opening quote
  local out, i = {}, pos + 1
  while true do
    local j = text:find('["\\%z\1-\31]', i)
    if not j then decode_error(text, pos, "unterminated string") end
    out[#out + 1] = text:sub(i, j - 1)
    local c = text:sub(j, j)
    if c == '"' then return table.concat(out), j + 1 end
    if c ~= "\\" then decode_error(text, j, "control character in string") end
    local e = text:sub(j + 1, j + 1)
    local simple = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
                     r = "\r", t = "\t" }
    if simple[e] then
      out[#out + 1] = simple[e]
      i = j + 2
    elseif e == "u" then
      local hex = text:sub(j + 2, j + 5)
      if not hex:match("^%x%x%x%x$") then decode_error(text, j, "bad \\u escape") end
      local cp = tonumber(hex, 16)
      i = j + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local lo = text:match("^\\u(%x%x%x%x)", i)
        local lo_cp = lo and tonumber(lo, 16)
        if lo_cp and lo_cp >= 0xDC00 and lo_cp <= 0xDFFF then
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo_cp - 0xDC00)
          i = i + 6
        else
          cp = 0xFFFD
        end
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        cp = 0xFFFD
      end
      out[#out + 1] = utf8.char(cp)
    else
      decode_error(text, j, "bad escape \\" .. e)
    end
  end
end

local function decode_number(text, pos)
  -- RFC 8259: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
  local stop = pos
  if text:sub(stop, stop) == "-" then stop = stop + 1 end
  local int = text:match("^0", stop) or text:match("^[1-9]%d*", stop)
  if not int then
    local word = text:match("^Infinity", stop) or text:match("^NaN", stop)
    if word then decode_error(text, pos, "-" .. word .. ": NaN and Infinity are not JSON") end
    decode_error(text, pos, "bad number (a digit must follow '-')")
  end
  stop = stop + #int
  if text:find("^%d", stop) then decode_error(text, pos, "bad number (leading zero)") end
  if text:sub(stop, stop) == "." then
    local frac = text:match("^%d+", stop + 1)
    if not frac then decode_error(text, pos, "bad number (a digit must follow '.')") end
    stop = stop + 1 + #frac
  end
  local e = text:match("^[eE][-+]?", stop)
  if e then
    local exp = text:match("^%d+", stop + #e)
    if not exp then decode_error(text, pos, "bad number (a digit must follow the exponent)") end
    stop = stop + #e + #exp
  end
  local s = text:sub(pos, stop - 1)
  local n = tonumber(s)  -- an integer beyond 64 bits reads as the nearest float
  if n == math.huge or n == -math.huge then
    decode_error(text, pos, "number " .. s .. " is out of range (it overflows to infinity)")
  end
  return n, stop
end

function decode_value(text, pos, depth)
  if depth > 200 then decode_error(text, pos, "nested too deeply") end
  pos = skip_ws(text, pos)
  local c = text:sub(pos, pos)
  if c == "{" then
    local obj = {}
    pos = skip_ws(text, pos + 1)
    if text:sub(pos, pos) == "}" then return obj, pos + 1 end
    while true do
      pos = skip_ws(text, pos)
      if text:sub(pos, pos) ~= '"' then decode_error(text, pos, "expected a string key") end
      local key
      key, pos = decode_string(text, pos)
      pos = skip_ws(text, pos)
      if text:sub(pos, pos) ~= ":" then decode_error(text, pos, "expected ':'") end
      local val
      val, pos = decode_value(text, pos + 1, depth + 1)
      obj[key] = val
      pos = skip_ws(text, pos)
      local d = text:sub(pos, pos)
      if d == "}" then return obj, pos + 1 end
      if d ~= "," then decode_error(text, pos, "expected ',' or '}'") end
      pos = pos + 1
    end
  elseif c == "[" then
    local arr = json.array({})
    pos = skip_ws(text, pos + 1)
    if text:sub(pos, pos) == "]" then return arr, pos + 1 end
    while true do
      local val
      val, pos = decode_value(text, pos, depth + 1)
      arr[#arr + 1] = val
      pos = skip_ws(text, pos)
      local d = text:sub(pos, pos)
      if d == "]" then return arr, pos + 1 end
      if d ~= "," then decode_error(text, pos, "expected ',' or ']'") end
      pos = pos + 1
    end
  elseif c == '"' then
    return decode_string(text, pos)
  elseif c == "-" or c:match("%d") then
    return decode_number(text, pos)
  elseif text:sub(pos, pos + 3) == "true" then
    return true, pos + 4
  elseif text:sub(pos, pos + 4) == "false" then
    return false, pos + 5
  elseif text:sub(pos, pos + 3) == "null" then
    return json.null, pos + 4
  elseif c == "" then
    decode_error(text, pos, "unexpected end of text")
  elseif text:find("^NaN", pos) or text:find("^Infinity", pos) then
    decode_error(text, pos, text:match("^%a+", pos) .. ": NaN and Infinity are not JSON")
  end
  decode_error(text, pos, "unexpected character '" .. c .. "'")
end

--- Decode a JSON text. Returns value, or nil and a message saying where it went wrong.
-- JSON null decodes to json.null (so arrays keep their length); use json.value(v) to map it to nil.
function json.decode(text)
  if type(text) ~= "string" then return nil, "json.decode: expected a string, got " .. type(text) end
  local ok, value, pos = pcall(decode_value, text, 1, 0)
  if not ok then
    if type(value) == "table" and value.json_error then return nil, value.json_error end
    error(value, 0)
  end
  pos = skip_ws(text, pos)
  if pos <= #text then
    return nil, "invalid JSON: trailing characters after the value at byte " .. pos
  end
  return value
end

--- nil for json.null, the value otherwise.
function json.value(v)
  if v == json.null then return nil end
  return v
end

return json
