-- @noindex
--[[
stase_json: a small, dependency-free JSON encoder/decoder for the stase ReaScripts.

  local json = dofile(lib_dir .. "stase_json.lua")
  json.encode(value)              -> string (RFC 8259; object keys sorted, so output is stable)
  json.encode(value, {ascii=true}) -> string with every character that a shell or cmd.exe could
                                      read (space ' " % ! & | < > ^ ` $ \ and non-ASCII) written
                                      as a \uXXXX escape inside strings: safe to paste between
                                      single quotes (POSIX sh) or double quotes (cmd.exe).
  json.decode(text)               -> value | nil, error message
  json.null                       -> sentinel for JSON null inside arrays/objects
  json.is_array(t)                -> true for a Lua sequence (empty tables encode as [] only
                                      when marked with json.array({}))

Works on Lua 5.3 (Ardour) and 5.4 (REAPER 6.x/7.x): integers stay integers, floats are written
with %.17g so a number survives a round trip bit for bit.
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
-- (track names typed on old systems can be Latin-1; the daemon only accepts valid UTF-8).
function json.sanitize_utf8(s)
  if utf8.len(s) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    if utf8.len(s, i, i) then
      local ch = utf8.char(utf8.codepoint(s, i))
      out[#out + 1] = ch
      i = i + #ch
    else
      out[#out + 1] = "\239\191\189"
      i = i + 1
    end
  end
  return table.concat(out)
end

local function encode_string(s, ascii)
  if ascii then
    s = json.sanitize_utf8(s)
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
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode_number(x)
  if x ~= x or x == math.huge or x == -math.huge then
    error("json.encode: cannot encode a non-finite number (" .. tostring(x) .. ")")
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
    local j = text:find('["\\%c]', i)
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
  local s = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if not s or s == "" or s == "-" then decode_error(text, pos, "bad number") end
  if s:match("^-?0%d") then decode_error(text, pos, "leading zero") end
  local n
  if s:find("[.eE]") then n = tonumber(s) else n = math.tointeger(tonumber(s)) or tonumber(s) end
  if n == nil then decode_error(text, pos, "bad number " .. s) end
  return n, pos + #s
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
