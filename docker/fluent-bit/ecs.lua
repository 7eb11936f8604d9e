--[[
pang's documents from Fluent Bit records: the Lua filter of docker/fluent-bit/fluent-bit.yaml.

Three callbacks, one per dataset, each `function(tag, timestamp, record)` as
Fluent Bit's Lua filter calls them (with `time_as_table: on`, so the
timestamp is `{sec = ..., nsec = ...}` and nothing is lost to a double):

  pang_app      tail records  -> logs-app-*    documents (shippers/parse/lines.py's rules, a subset)
  pang_syslog   syslog lines  -> logs-syslog-* documents (shippers/parse/syslog.py's rules)
  pang_metrics  cpu/mem/disk/netif samples -> metrics-* documents (shippers/source/metrics.py's names)

The documents are nested objects (`log = {level = ...}`), never dotted keys,
because the opensearch output runs with Replace_Dots off and pang's templates
map objects. A callback never sets `@timestamp`: the opensearch output writes
it (Time_Key) from the record's time, so a callback that finds the event's own
time returns it as the new record time (code 1); the daily index
(Logstash_Format) follows that time in UTC, as pang's index naming does.

Written for LuaJIT 2.1 (Lua 5.1 syntax: no integer division, no bit
operators, no goto, no utf8 library), which is what Fluent Bit embeds; the
tests also run it with Lua 5.4. It never raises on odd input: a value it
cannot use is left where it was (under `app`) or out.

PANG_FIELDS lists every field a callback can write, one string per field, so
tests/test_fluent_bit.py can check them against pang's index templates with a
regular expression (and, where a Lua interpreter is installed, check that
what the callbacks really write stays inside these lists). `app.*` is the
application's own JSON object, mapped dynamically by the logs-app template.
]]

PANG_FIELDS = {
  app = {
    "@timestamp", "message", "app.*",
    "agent.name", "agent.type",
    "host.name",
    "service.name", "service.version", "service.environment",
    "event.dataset", "event.action",
    "log.level", "log.logger", "log.offset", "log.file.path",
    "error.message", "error.type", "error.stack_trace",
    "trace.id", "span.id", "transaction.id",
    "process.thread.name",
    "http.request.method", "http.response.status_code", "http.response.bytes",
    "url.path", "url.original",
    "user.id",
    "client.address", "client.ip",
  },
  syslog = {
    "@timestamp", "message", "tags",
    "agent.name", "agent.type", "agent.ephemeral_id",
    "host.name", "host.hostname",
    "event.dataset", "event.original", "event.sequence",
    "log.level",
    "log.syslog.priority", "log.syslog.version",
    "log.syslog.facility.code", "log.syslog.facility.name",
    "log.syslog.severity.code", "log.syslog.severity.name",
    "log.syslog.hostname", "log.syslog.appname", "log.syslog.procid", "log.syslog.msgid",
    "log.syslog.structured_data",
    "client.address", "client.ip",
  },
  metrics = {
    "@timestamp",
    "agent.name", "agent.type",
    "host.name",
    "event.dataset", "event.module",
    "metricset.name", "metricset.period",
    "system.cpu.cores",
    "system.cpu.total.pct", "system.cpu.total.norm.pct",
    "system.cpu.user.pct", "system.cpu.user.norm.pct",
    "system.cpu.system.pct", "system.cpu.system.norm.pct",
    "system.memory.total", "system.memory.free",
    "system.memory.used.bytes", "system.memory.used.pct",
    "system.memory.actual.free", "system.memory.actual.used.bytes", "system.memory.actual.used.pct",
    "system.memory.swap.total", "system.memory.swap.free",
    "system.memory.swap.used.bytes", "system.memory.swap.used.pct",
    "system.load.1", "system.load.5", "system.load.15",
    "system.load.norm.1", "system.load.norm.5", "system.load.norm.15", "system.load.cores",
    "system.diskio.name", "system.diskio.read.bytes", "system.diskio.write.bytes",
    "system.network.name",
    "system.network.in.bytes", "system.network.out.bytes",
    "system.network.in.packets", "system.network.out.packets",
    "system.network.in.errors", "system.network.out.errors",
    "system.network.in.dropped", "system.network.out.dropped",
  },
}

-- Record keys the tail and syslog inputs add (fluent-bit.yaml sets the same names).
TAIL_TEXT_KEY = "log"            -- tail's `key` (multiline.parser always writes "log")
TAIL_PATH_KEY = "pang_path"      -- tail's Path_Key
TAIL_OFFSET_KEY = "pang_offset"  -- tail's Offset_Key
SYSLOG_TEXT_KEY = "raw"          -- the capture of the pang-syslog-raw parser
SYSLOG_PEER_KEY = "pang_peer"    -- syslog's source_address_key
APP_ROOT = "/pang/logs/app/"     -- the tail Path's fixed prefix: the next folder is the service
METRICS_PERIOD_MS = 10000        -- interval_sec of the metrics inputs, in ms

local floor = math.floor
local format = string.format
local byte, char, sub, find, match, gsub, upper, lower =
  string.byte, string.char, string.sub, string.find, string.match, string.gsub, string.upper, string.lower

-- Fluent Bit reads a metatable {type = 1} as "array" and {type = 2} as "map" (src/flb_lua.c), so an
-- empty JSON array stays an array and an empty object stays an object.
local ARRAY_MT = { type = 1 }
local MAP_MT = { type = 2 }

local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

local HOST_NAME = env("PANG_HOST_NAME") or env("HOSTNAME") or "unknown"
local ENVIRONMENT = env("PANG_SERVICE_ENVIRONMENT")
local VERSION = env("PANG_SERVICE_VERSION")
local PROC = env("PANG_FLB_PROC") or "/proc"

local function agent()
  return { name = "pang-fluent-bit", type = "fluent-bit" }
end

-- --------------------------------------------------------------------------- numbers and time

local function is_int(n)
  return type(n) == "number" and n == floor(n) and n > -9007199254740992 and n < 9007199254740992
end

-- Python's str() of a JSON number, for keyword fields (ints as digits)
local function num_str(n)
  if is_int(n) then return format("%d", n) end
  return tostring(n)
end

local function round4(x)
  return floor(x * 10000 + 0.5) / 10000
end

local function is_leap(y)
  return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
end

local MDAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

-- seconds since the epoch of a UTC wall clock, or nil when it is not a valid date
local function epoch(y, mo, d, h, mi, s)
  if y < 1 or y > 9999 or mo < 1 or mo > 12 or d < 1 or h > 23 or mi > 59 or s > 59 then return nil end
  local dim = MDAYS[mo]
  if mo == 2 and is_leap(y) then dim = 29 end
  if d > dim then return nil end
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
end

-- Fluent Bit keeps a record's time as EventTime, whose seconds are an unsigned 32-bit number
-- (src/flb_time.c): an event time outside 1970-01-01 .. 2106-02-07 cannot be the record's time,
-- so such a line keeps the time it was read at (pang keeps years 1 to 9999).
local MIN_SEC = 0
local MAX_SEC = 4294967295

-- a UTC time Fluent Bit can hold as a record time, else nil
local function in_range(t)
  if t == nil or t < MIN_SEC or t > MAX_SEC then return nil end
  return t
end

-- milliseconds of a fraction's digits: truncated, never rounded ("1239" -> 123)
local function frac_ms(frac)
  if frac == nil or frac == "" then return 0 end
  return tonumber(sub(frac .. "00", 1, 3))
end

-- the record time {sec, nsec} for epoch seconds and milliseconds
local function ts(sec, ms)
  return { sec = sec, nsec = (ms or 0) * 1000000 }
end

-- zone "+hh:mm", "+hhmm", "+hh", "Z", "UTC", "GMT" -> seconds to subtract, or nil when invalid
local function zone_offset(z)
  if z == nil or z == "Z" or z == "z" or z == "UTC" or z == "GMT" then return 0 end
  local sign, hh, mm = match(z, "^([+-])(%d%d):?(%d?%d?)$")
  if sign == nil then return nil end
  hh = tonumber(hh)
  mm = (mm == "" and 0) or tonumber(mm)
  if #z > 3 and #gsub(z, ":", "") ~= 5 then return nil end
  if hh > 23 or mm > 59 then return nil end
  local off = hh * 3600 + mm * 60
  if sign == "-" then off = -off end
  return off
end

-- shippers/parse/lines.py's _TS_ISO at `pos`: (sec, ms, end+1) or nil.
--   YYYY[-/]MM[-/]DD[T ]hh:mm:ss([.,]f{1,9})?(Z|z|[+-]hh(:?mm)?| ([+-]hh:?mm|UTC|GMT))?
local function iso_at(s, pos)
  local y, mo, d, h, mi, sec, e = match(s, "^(%d%d%d%d)[-/](%d%d)[-/](%d%d)[T ](%d%d):(%d%d):(%d%d)()", pos)
  if y == nil then return nil end
  local frac
  local f, e2 = match(s, "^[.,](%d+)()", e)
  if f ~= nil then
    if #f > 9 then f = sub(f, 1, 9) e2 = e + 10 end
    frac, e = f, e2
  end
  local zone
  local c = sub(s, e, e)
  if c == "Z" or c == "z" then
    zone, e = c, e + 1
  elseif c == "+" or c == "-" then
    local z = match(s, "^[+-]%d%d:%d%d", e) or match(s, "^[+-]%d%d%d%d", e) or match(s, "^[+-]%d%d", e)
    if z ~= nil then zone, e = z, e + #z end
  elseif c ~= "" and find(c, "^%s") then
    local z = match(s, "^[+-]%d%d:?%d%d", e + 1) or match(s, "^UTC", e + 1) or match(s, "^GMT", e + 1)
    if z ~= nil then zone, e = z, e + 1 + #z end
  end
  local off = zone_offset(zone)
  if off == nil then return nil, nil, e end
  local t = epoch(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec))
  t = t and in_range(t - off)
  if t == nil then return nil, nil, e end
  return t, frac_ms(frac), e
end

-- pang's _ts_epoch: seconds, millis, micros or nanos told apart by size
local function epoch_number(x)
  if x ~= x or x < 1e8 or x >= 1e20 then return nil end
  local ms
  if x < 1e11 then
    ms = floor(x * 1000 + 0.5)
  elseif x < 1e14 then
    ms = floor(x + 0.5)
  elseif x < 1e17 then
    ms = floor(x / 1000)
  else
    ms = floor(x / 1000000)
  end
  local sec = floor(ms / 1000)
  return sec, ms - sec * 1000
end

-- pang's _ts_string: a whole ISO string (or followed by "[Zone/Name]"), or an epoch number in a string
local function ts_string(s)
  local sec, ms, e = iso_at(s, 1)
  if e ~= nil then
    if sec ~= nil and (e == #s + 1 or sub(s, e, e) == "[") then return sec, ms end
    return nil
  end
  if match(s, "^%d%d%d%d%d%d%d%d%d+$") or match(s, "^%d%d%d%d%d%d%d%d%d+%.%d+$") then
    local ip = match(s, "^(%d+)")
    if #ip <= 20 then return epoch_number(tonumber(s)) end
  end
  return nil
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

local function utc_year_month(now_sec)
  local y, m = civil_from_days(floor(now_sec / 86400))
  return y, m
end

-- --------------------------------------------------------------------------- JSON (strict, RFC 8259)

local json_decode
do
  local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

  local function utf8_char(cp)
    if cp < 0x80 then return char(cp) end
    if cp < 0x800 then return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40) end
    if cp < 0x10000 then
      return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
    end
    return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
                0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end

  local value -- forward

  local function skip_ws(s, i)
    local _, e = find(s, "^[ \t\r\n]*", i)
    return e + 1
  end

  local function str(s, i) -- s[i] == '"'
    local parts, n = {}, 0
    i = i + 1
    while true do
      -- %c is 0-31 and DEL; raw DEL is valid JSON, the others are not
      local j = find(s, '[%c"\\]', i)
      if j == nil then return nil end
      local c = sub(s, j, j)
      if j > i then n = n + 1 parts[n] = sub(s, i, j - 1) end
      if c == '"' then return table.concat(parts), j + 1 end
      if c == "\127" then
        n = n + 1 parts[n] = c
        i = j + 1
      elseif c ~= "\\" then
        return nil
      else
        local esc = sub(s, j + 1, j + 1)
        if esc == "u" then
          local hex = match(s, "^%x%x%x%x", j + 2)
          if hex == nil then return nil end
          local cp = tonumber(hex, 16)
          i = j + 6
          if cp >= 0xD800 and cp <= 0xDBFF then
            local lo = match(s, "^\\u(%x%x%x%x)", i)
            lo = lo and tonumber(lo, 16)
            if lo == nil or lo < 0xDC00 or lo > 0xDFFF then return nil end -- a lone surrogate: orjson refuses it too
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            i = i + 6
          elseif cp >= 0xDC00 and cp <= 0xDFFF then
            return nil
          end
          n = n + 1 parts[n] = utf8_char(cp)
        else
          local r = escapes[esc]
          if r == nil then return nil end
          n = n + 1 parts[n] = r
          i = j + 2
        end
      end
    end
  end

  local function number(s, i)
    local m = match(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    if m == nil or m == "" then return nil end
    -- strict grammar: -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?
    local int, rest = match(m, "^(-?%d+)(.*)$")
    local digits = sub(int, 1, 1) == "-" and sub(int, 2) or int
    if #digits > 1 and sub(digits, 1, 1) == "0" then return nil end
    local frac, exp = match(rest, "^(%.?%d*)(.*)$")
    if frac == "." then return nil end
    if exp ~= "" and not match(exp, "^[eE][-+]?%d+$") then
      -- "1e" or "1e+" : take the longest valid prefix only if nothing dangles
      return nil
    end
    local v = tonumber(m)
    if v == nil then return nil end
    return v, i + #m
  end

  local function array(s, i, depth)
    local t, n = setmetatable({}, ARRAY_MT), 0
    i = skip_ws(s, i + 1)
    if sub(s, i, i) == "]" then return t, i + 1 end
    while true do
      local v
      v, i = value(s, i, depth + 1)
      if i == nil then return nil end
      n = n + 1
      t[n] = v
      i = skip_ws(s, i)
      local c = sub(s, i, i)
      if c == "]" then return t, i + 1 end
      if c ~= "," then return nil end
      i = skip_ws(s, i + 1)
    end
  end

  local function object(s, i, depth)
    local t = setmetatable({}, MAP_MT)
    i = skip_ws(s, i + 1)
    if sub(s, i, i) == "}" then return t, i + 1 end
    while true do
      if sub(s, i, i) ~= '"' then return nil end
      local k
      k, i = str(s, i)
      if k == nil then return nil end
      i = skip_ws(s, i)
      if sub(s, i, i) ~= ":" then return nil end
      local v
      v, i = value(s, skip_ws(s, i + 1), depth + 1)
      if i == nil then return nil end
      t[k] = v -- a repeated key: the last one wins, as with orjson
      i = skip_ws(s, i)
      local c = sub(s, i, i)
      if c == "}" then return t, i + 1 end
      if c ~= "," then return nil end
      i = skip_ws(s, i + 1)
    end
  end

  value = function(s, i, depth)
    if depth > 256 then return nil end
    local c = sub(s, i, i)
    if c == "{" then return object(s, i, depth) end
    if c == "[" then return array(s, i, depth) end
    if c == '"' then return str(s, i) end
    if c == "t" and sub(s, i, i + 3) == "true" then return true, i + 4 end
    if c == "f" and sub(s, i, i + 4) == "false" then return false, i + 5 end
    if c == "n" and sub(s, i, i + 3) == "null" then
      -- Fluent Bit's enable_flb_null gives a `flb_null` that is written as null; without it the key goes
      local null = rawget(_G, "flb_null")
      return null, i + 4, true
    end
    return number(s, i)
  end

  -- the decoded value, or nil when `s` is not exactly one JSON value
  json_decode = function(s)
    local ok, v, i = pcall(value, s, skip_ws(s, 1), 0)
    if not ok or i == nil then return nil end
    if skip_ws(s, i) ~= #s + 1 then return nil end
    return v
  end
end
pang_json_decode = json_decode -- for tests/test_fluent_bit.py's harness

local function is_array(v)
  if type(v) ~= "table" then return false end
  local mt = getmetatable(v)
  return mt ~= nil and mt.type == 1
end

local function is_map(v)
  return type(v) == "table" and not is_array(v)
end

local function empty(t)
  return next(t) == nil
end

-- --------------------------------------------------------------------------- levels

local LEVEL_WORDS = { "TRACE", "DEBUG", "INFO", "NOTICE", "WARNING", "WARN", "ERROR", "SEVERE", "CRITICAL", "FATAL", "PANIC" }
local LEVEL_SET = {}
for _, w in ipairs(LEVEL_WORDS) do LEVEL_SET[w] = true end
local PINO = { [10] = "TRACE", [20] = "DEBUG", [30] = "INFO", [40] = "WARN", [50] = "ERROR", [60] = "FATAL" }

local function normalize_level(v)
  if type(v) == "string" then
    local u = upper(match(v, "^%s*(.-)%s*$"))
    if u == "" or #u > 32 then return nil end
    if u == "WARNING" then return "WARN" end
    return u
  end
  if is_int(v) then return PINO[v] end
  return nil
end

-- --------------------------------------------------------------------------- stack traces

local PY_TB = "Traceback (most recent call last):"

local function lines_of(s)
  local t = {}
  for l in (s .. "\n"):gmatch("(.-)\n") do t[#t + 1] = l end
  return t
end

local function rstrip_cr(l)
  if sub(l, -1) == "\r" then return sub(l, 1, -2) end
  return l
end

-- `Name: msg` / `Name` as the last raised exception of a Python traceback
local function py_exc_line(l)
  local name, rest = match(l, "^([%a_][%w_.]*)(.*)$")
  if name == nil then return nil end
  if rest == "" then return name, nil end
  local msg = match(rest, "^:%s?(.*)$")
  if msg == nil then return nil end
  if msg == "" then msg = nil end
  return name, msg
end

local function ends_with_exc(name)
  for _, suf in ipairs({ "Exception", "Error", "Throwable", "Failure", "Fault" }) do
    if sub(name, -#suf) == suf then return true end
  end
  return false
end

-- a dotted Java/Python name: [A-Za-z_$][\w$]*(\.[\w$]+)*
local function dotted_name(run)
  if not find(run, "^[%a_$]") or sub(run, -1) == "." or find(run, "..", 1, true) then return false end
  return true
end

-- pang's _RE_JAVA_HEADER (fullmatch): ['Exception in thread "x" ']Name[: msg]
local function java_header(h)
  local rest = match(h, '^Exception in thread "[^"]*" (.*)$') or h
  local run, tail = match(rest, "^([%w_$.]+)(.*)$")
  if run == nil or not dotted_name(run) then return nil end
  if tail == "" then return run, nil end
  local msg = match(tail, "^:%s?(.*)$")
  if msg == nil then return nil end
  if msg == "" then msg = nil end
  return run, msg
end

-- pang's _RE_JAVA_TYPE_IN: the leftmost dotted name that starts a run of [\w$.], ends in
-- Exception/Error/Throwable and is followed by ":" or the end; `at_start` only tries the first run
local function java_type_in(h, at_start)
  local init = 1
  while true do
    local s0, e0, run = find(h, "([%w_$.]+)", init)
    if s0 == nil or (at_start and s0 ~= 1) then return nil end
    if dotted_name(run) then
      -- the suffix needs a character before it in its own segment: "IOException", not "Exception"
      local last = match(run, "([^.]*)$")
      local ok = false
      for _, suf in ipairs({ "Exception", "Error", "Throwable" }) do
        if #last > #suf and sub(last, -#suf) == suf then ok = true end
      end
      if ok then
        local after = sub(h, e0 + 1)
        if after == "" then return run, nil end
        local msg = match(after, "^:%s?(.*)$")
        if msg ~= nil then return run, (msg ~= "" and msg or nil) end
      end
    end
    init = e0 + 1
  end
end

local function rfind_plain(s, needle)
  local last
  local p = 1
  while true do
    local q = find(s, needle, p, true)
    if q == nil then return last end
    last, p = q, q + 1
  end
end

local function is_java_at(l)
  return find(l, "^[ \t]+at [%w_$.<>/%[%]`%-]+%(") ~= nil
      or find(l, "^[ \t]+at .*:%d+%)?$") ~= nil
      or find(l, "^[ \t]+at .*:%d+:%d+%)?$") ~= nil
end

-- pang's _stack_info: (stack_trace, error.type, error.message) of a multiline text, or nil
local function stack_info(text, whole)
  local tb = find(text, PY_TB, 1, true)
  if tb ~= nil then
    local start = tb
    while start > 1 and sub(text, start - 1, start - 1) ~= "\n" do start = start - 1 end
    local etype, emsg
    local last = rfind_plain(text, "\n" .. PY_TB)
    local pos = last and last + 1 or (sub(text, 1, #PY_TB) == PY_TB and 1 or nil)
    if pos then
      -- the exception raised last: the first non-indented line after the last traceback header
      for _, l in ipairs(lines_of(sub(text, pos + #PY_TB))) do
        if l ~= "" and not find(l, "^[ \t]") then
          etype, emsg = py_exc_line(rstrip_cr(l))
          break
        end
      end
    else
      -- an exception group's traceback is indented throughout: "  | ValueError: bad"
      local ls = lines_of(sub(text, start))
      for i = 2, #ls do
        local name, rest = match(rstrip_cr(ls[i]), "^[ \t]*| ([%a_][%w_.]*)(.*)$")
        if name then
          local msg
          if rest ~= "" then msg = match(rest, "^:%s?(.*)$") end
          if rest == "" or msg ~= nil then
            etype, emsg = name, (msg ~= "" and msg or nil)
            break
          end
        end
      end
    end
    return sub(text, start), etype, emsg
  end
  local ls = lines_of(text)
  local at_line
  for i, l in ipairs(ls) do
    if is_java_at(l) then at_line = i break end
  end
  if at_line == nil then
    if whole then -- a header line alone ("java.lang.X: msg"), e.g. a JSON error.stack_trace of one line
      local name, msg = java_type_in(ls[1], true)
      if name ~= nil then return text, name, msg end
    end
    return nil
  end
  if at_line == 1 then return text, nil, nil end
  local function from(i) return table.concat(ls, "\n", i) end
  local header = rstrip_cr(ls[at_line - 1])
  local name, msg = java_header(header)
  if name ~= nil and (find(name, ".", 1, true) or ends_with_exc(name)) then
    return from(at_line - 1), name, msg
  end
  name, msg = java_type_in(sub(header, -1024))
  if name ~= nil then return from(at_line), name, msg end
  return from(at_line), nil, nil
end

-- --------------------------------------------------------------------------- JSON lines

local HTTP_METHODS = { GET = 1, POST = 1, PUT = 1, DELETE = 1, PATCH = 1, HEAD = 1, OPTIONS = 1, CONNECT = 1, TRACE = 1, PROPFIND = 1, PURGE = 1 }

local function c_str(v)
  if type(v) == "string" then return v ~= "" and v or nil end
  if type(v) == "number" then return num_str(v) end
  return nil
end

local function c_text(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return num_str(v) end
  return nil
end

local function c_ts(v)
  if type(v) == "string" then
    local sec, ms = ts_string(v)
    if sec then return { sec, ms } end
  elseif type(v) == "number" then
    local sec, ms = epoch_number(v)
    if sec then return { sec, ms } end
  end
  return nil
end

local function status(v, lo, hi)
  if type(v) == "string" and match(v, "^%d%d%d$") then v = tonumber(v) end
  if not is_int(v) then return nil end
  if v < lo or v > hi then return nil end
  return v
end

local function c_status(v) return status(v, 100, 999) end
local function c_status_alias(v) return status(v, 100, 599) end
local function c_method_alias(v)
  if type(v) == "string" and HTTP_METHODS[upper(v)] then return v end
  return nil
end
local function c_path_alias(v)
  if type(v) == "string" and sub(v, 1, 1) == "/" then return v end
  return nil
end

local function c_stack(v)
  if type(v) == "string" then return v ~= "" and v or nil end
  if is_array(v) and #v > 0 then
    for _, x in ipairs(v) do
      if type(x) ~= "string" then return nil end
    end
    return table.concat(v, "\n")
  end
  return nil
end

local function is_action(v)
  if not find(v, "^[a-z0-9_-]+%.[a-z0-9_.-]*$") then return false end
  if find(v, "%.%.") or sub(v, -1) == "." then return false end
  return true
end

local function c_action_event(v)
  if type(v) == "string" and is_action(v) then return v end
  return nil
end

local function c_message_event(v)
  if type(v) == "string" and not is_action(v) then return v end
  return nil
end

-- fields: where each lands in the document
local F = {
  ts = { "@timestamp" }, msg = { "message" }, level = { "log", "level" }, logger = { "log", "logger" },
  trace = { "trace", "id" }, span = { "span", "id" }, txn = { "transaction", "id" },
  svc = { "service", "name" }, svcver = { "service", "version" },
  errmsg = { "error", "message" }, errtype = { "error", "type" }, stack = { "error", "stack_trace" },
  method = { "http", "request", "method" }, status = { "http", "response", "status_code" },
  path = { "url", "path" }, user = { "user", "id" }, action = { "event", "action" },
}

-- (field, converter) by spelling; rank 0 the ECS dotted key, 1 the ECS nested path, 2+ the library keys
local SPECS = {}
local function spec(field, conv, rank, key, nested)
  SPECS[#SPECS + 1] = { field = field, conv = conv, rank = rank, key = key, nested = nested }
end
for _, e in ipairs({
  { "ts", c_ts }, { "msg", c_text }, { "level", normalize_level }, { "logger", c_str }, { "trace", c_str },
  { "span", c_str }, { "txn", c_str }, { "svc", c_str }, { "svcver", c_str }, { "errmsg", c_text },
  { "errtype", c_str }, { "stack", c_stack }, { "method", c_str }, { "status", c_status }, { "path", c_str },
  { "user", c_str }, { "action", c_str },
}) do
  spec(e[1], e[2], 0, table.concat(F[e[1]], "."))
  if #F[e[1]] > 1 and e[1] ~= "ts" and e[1] ~= "msg" then spec(e[1], e[2], 1, nil, F[e[1]]) end
end
for _, e in ipairs({
  { "ts", c_ts, { "timestamp", "time", "ts", "asctime" } },
  { "msg", c_text, { "msg", "log" } },
  { "level", normalize_level, { "level", "severity", "levelname", "lvl" } },
  { "logger", c_str, { "logger", "logger_name" } },
  { "trace", c_str, { "trace_id", "traceId", "traceid" } },
  { "span", c_str, { "span_id", "spanId", "spanid" } },
  { "txn", c_str, { "transaction_id", "transactionId" } },
  { "svc", c_str, { "service", "service_name" } },
  { "svcver", c_str, { "service_version" } },
  { "errmsg", c_text, { "error" } },
  { "errtype", c_str, { "error_type", "exc_type" } },
  { "stack", c_stack, { "stack_trace", "exc_info", "stacktrace", "stack", "exception" } },
  { "method", c_method_alias, { "method" } },
  { "status", c_status_alias, { "status", "status_code" } },
  { "path", c_path_alias, { "path" } },
  { "user", c_str, { "user_id", "userId" } },
  { "action", c_str, { "action" } },
}) do
  for i, k in ipairs(e[3]) do spec(e[1], e[2], 1 + i, k) end
end
spec("logger", c_str, 9, "name")           -- only when a level was found
spec("action", c_action_event, 9, "event") -- structlog's event: an action name ...
spec("msg", c_message_event, 9, "event")   -- ... or the message

local function put(doc, path, v)
  local node = doc
  for i = 1, #path - 1 do
    local k = path[i]
    if type(node[k]) ~= "table" then node[k] = {} end
    node = node[k]
  end
  node[path[#path]] = v
end

local function from_json(obj, text)
  local doc = { message = text }
  local done = {}
  for rank = 0, 9 do
    for _, sp in ipairs(SPECS) do
      if sp.rank == rank and not done[sp.field] and not (sp.field == "logger" and sp.key == "name" and not done.level) then
        local container, key, chain
        if sp.nested then
          container, chain = obj, {}
          for i = 1, #sp.nested - 1 do
            local nxt = container[sp.nested[i]]
            if not is_map(nxt) then container = nil break end
            chain[#chain + 1] = { container, sp.nested[i] }
            container = nxt
          end
          key = sp.nested[#sp.nested]
        else
          container, key = obj, sp.key
        end
        if container ~= nil and container[key] ~= nil then
          local v = sp.conv(container[key])
          if v ~= nil then
            done[sp.field] = true
            container[key] = nil
            if chain then
              for i = #chain, 1, -1 do
                local parent, pk = chain[i][1], chain[i][2]
                if not empty(parent[pk]) then break end
                parent[pk] = nil
              end
            end
            if sp.field == "msg" then
              doc.message = v
            elseif sp.field == "ts" then
              doc["@timestamp"] = v
            else
              put(doc, F[sp.field], v)
            end
          end
        end
      end
    end
  end
  if done.stack and not done.errtype then
    local _, etype, emsg = stack_info(doc.error.stack_trace, true)
    if etype then
      doc.error.type = etype
      if emsg and not done.errmsg then doc.error.message = emsg end
    end
  end
  if not empty(obj) then doc.app = obj end
  return doc
end

-- --------------------------------------------------------------------------- plain text lines

local function level_word(first)
  local head = sub(first, 1, 80)
  local best, word
  for _, w in ipairs(LEVEL_WORDS) do
    local init = 1
    while true do
      local s, e = find(head, w, init, true)
      if s == nil or (best and s >= best) then break end
      local prev = s > 1 and sub(head, s - 1, s - 1) or ""
      local nxt = sub(head, e + 1, e + 1)
      if not find(prev, "^[%w_]$") and not find(nxt, "^[%w_]$") then
        best, word = s, w
        break
      end
      init = s + 1
    end
  end
  return word
end

local function is_ipv4(a)
  local o = { match(a, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
  if #o ~= 4 then return false end
  for _, x in ipairs(o) do
    if #x > 1 and sub(x, 1, 1) == "0" then return false end
    if tonumber(x) > 255 then return false end
  end
  return true
end

-- what Python's ipaddress.IPv6Address takes (without a scope id): 8 groups of 1-4 hex digits,
-- one "::" for a run of zero groups, an IPv4 address as the last two
local function is_ipv6(a)
  if not find(a, ":", 1, true) or find(a, ":::", 1, true) then return false end
  local function groups(part)
    local out = {}
    if part == "" then return out end
    for g in (part .. ":"):gmatch("([^:]*):") do out[#out + 1] = g end
    return out
  end
  local left, right = a, nil
  local dc = find(a, "::", 1, true)
  if dc then
    left, right = sub(a, 1, dc - 1), sub(a, dc + 2)
    if find(right, "::", 1, true) then return false end
  end
  local all = groups(left)
  local nleft = #all
  if right then for _, g in ipairs(groups(right)) do all[#all + 1] = g end end
  local count = 0
  for i, g in ipairs(all) do
    if i == #all and find(g, ".", 1, true) and is_ipv4(g) and (right == nil or i > nleft or right == "") then
      count = count + 2
    elseif find(g, "^%x%x?%x?%x?$") then
      count = count + 1
    else
      return false
    end
  end
  if dc then return count <= 7 end
  return count == 8
end

-- `" (\d{3}) (\d{1,18}|-)` at `p`: status and bytes, or nil
local function status_bytes(r, p)
  local st, nbytes = match(r, '^" (%d%d%d) (%d+)', p)
  if st == nil then
    st = match(r, '^" (%d%d%d) %-', p)
    nbytes = "-"
  end
  if st == nil then return nil end
  if #nbytes > 18 then nbytes = sub(nbytes, 1, 18) end
  return st, nbytes
end

-- After the request's opening quote, pang's `(?:([A-Z]{3,10}) (\S+)(?: [^"]*)?|[^"]*)" (\d{3}) (\d{1,18}|-)`
-- with its backtracking (the URL may hold quotes): method, url, status, bytes
local function request(r)
  local method, run, e = match(r, "^(%u+) (%S+)()")
  if method and #method >= 3 and #method <= 10 then
    local ustart = #method + 2
    for len = #run, 1, -1 do
      local p = ustart + len
      local st, nbytes
      if len == #run then
        local q = match(r, '^ [^"]*()', p) -- the optional ` [^"]*` part, then the quote
        if q then st, nbytes = status_bytes(r, q) end
        if st == nil then st, nbytes = status_bytes(r, p) end
      else
        st, nbytes = status_bytes(r, p)
      end
      if st then return method, sub(run, 1, len), st, nbytes end
    end
  end
  local q = match(r, '^[^"]*()')
  local st, nbytes = status_bytes(r, q)
  return nil, nil, st, nbytes
end

-- nginx/Apache common and combined lines (pang's _RE_ACCESS, anchored at the start); true when the line is one
local function access(first, doc)
  local addr, rest = match(first, "^(%S+) %S+ (.*)$")
  if addr == nil then return false end
  local after_user
  if sub(rest, 1, 1) == '"' then
    after_user = match(rest, '^%S+ (%[.*)$')
    if after_user == nil then after_user = match(rest, '^"[^"]*" (.*)$') end
  else
    after_user = match(rest, "^%S+ (.*)$")
  end
  if after_user == nil then return false end
  local day, mon, year, h, mi, s, zone, req =
    match(after_user, '^%[(%d%d)/([%w_][%w_][%w_])/(%d%d%d%d):(%d%d):(%d%d):(%d%d) ([+-]%d%d%d%d)%] "(.*)$')
  if day == nil then return false end
  local method, url, st, nbytes = request(req)
  if st == nil then return false end
  local mo = MONTHS[mon]
  if mo then
    local t = epoch(tonumber(year), mo, tonumber(day), tonumber(h), tonumber(mi), tonumber(s))
    local off = zone_offset(zone)
    if t and off and in_range(t - off) then doc["@timestamp"] = { t - off, 0 } end
  end
  local client = { address = addr }
  if is_ipv4(addr) or is_ipv6(addr) then client.ip = addr end
  doc.client = client
  local response = { status_code = tonumber(st) }
  if nbytes ~= "-" then response.bytes = tonumber(nbytes) end
  if method then
    doc.http = { request = { method = method }, response = response }
    local q = find(url, "?", 1, true)
    local path = q and sub(url, 1, q - 1) or url
    doc.url = (sub(path, 1, 1) == "/") and { original = url, path = path } or { original = url }
  else
    doc.http = { response = response }
  end
  return true
end

-- After a leading timestamp: log4j/logback, log4j2, Spring Boot and Python layouts (pang's
-- _RE_LAYOUT, in its order): level, logger, thread
local function layout(first, e)
  local rest = match(sub(first, e), "^%]?(%s.*)$")
  if rest == nil then return nil end
  local l, t, g = match(rest, "^%s+(%u+)%s+%[([^%]]*)%]%s+(%S+)%s+%-%s")
  if l and LEVEL_SET[l] then return l, g, t end
  t, l, g = match(rest, "^%s+%[([^%]]*)%]%s+(%u+)%s+(%S+)%s+%-%s")
  if l and LEVEL_SET[l] then return l, g, t end
  -- Spring Boot: LEVEL pid --- [app] [thread] logger : msg (the [app] part is optional)
  local after
  l, after = match(rest, "^%s+(%u+)%s+%d+%s+%-%-%-%s+(.*)$")
  if l and LEVEL_SET[l] then
    t, g = match(after, "^%[[^%]]*%]%s+%[%s*([^%]]*)%]%s+(%S+)%s+:%s")
    if t == nil then t, g = match(after, "^%[%s*([^%]]*)%]%s+(%S+)%s+:%s") end
    if t ~= nil then return l, g, t end
  end
  l, g = match(rest, "^%s+(%u+)%s+([%w_$.%-]+):%s")
  if l and LEVEL_SET[l] then return l, g, nil end
  g, l = match(rest, "^%s+%-%s+([%w_$.%-]+)%s+%-%s+(%u+)%s+%-%s")
  if l and LEVEL_SET[l] then return l, g, nil end
  return nil
end

-- the leftmost `key=` (at the start or after whitespace) of `keys` for which value(pos) answers
local function logfmt(head, keys, value)
  local best, best_v
  for _, k in ipairs(keys) do
    local p = 1
    while true do
      local s0, e0 = find(head, k .. "=", p, true)
      if s0 == nil or (best and s0 >= best) then break end
      if s0 == 1 or find(sub(head, s0 - 1, s0 - 1), "^%s") then
        local v = value(e0 + 1)
        if v ~= nil then best, best_v = s0, v break end
      end
      p = s0 + 1
    end
  end
  return best_v
end

-- syslog's "Nov 24 10:00:00[.fff]" at the start, then a word boundary; (sec, ms) or nil
local function syslog_line_ts(first, now_sec)
  local mon, d, h, mi, s, e = match(first, "^(%u%l%l) ([ %d]%d) (%d%d):(%d%d):(%d%d)()")
  if mon == nil or MONTHS[mon] == nil then return nil end
  local ms = 0
  local frac, fe = match(first, "^%.(%d+)()", e)
  local nxt = sub(first, e, e)
  if frac and #frac <= 9 and not find(sub(first, fe, fe), "^[%w_]") then
    ms = frac_ms(frac)
  elseif nxt ~= "." and find(nxt, "^[%w_]") then
    return nil
  end
  local y = utc_year_month(now_sec)
  local mo, dd = MONTHS[mon], tonumber((gsub(d, " ", "")))
  local sec = epoch(y, mo, dd, tonumber(h), tonumber(mi), tonumber(s))
  if sec and sec - now_sec > 86400 then sec = epoch(y - 1, mo, dd, tonumber(h), tonumber(mi), tonumber(s)) end
  if sec == nil then return nil end
  return sec, ms
end

local function from_text(text, now_sec)
  local doc = { message = text }
  local nl = find(text, "\n", 1, true)
  local first = nl and sub(text, 1, nl - 1) or text
  local c = sub(first, 1, 1)
  local t, level, logger, thread
  local is_access = false
  if find(c, "^%d") or c == "[" then
    local sec, ms, e = iso_at(first, c == "[" and 2 or 1)
    if e then
      if sec then t = { sec, ms } end
      level, logger, thread = layout(first, e)
      if thread then
        thread = match(thread, "^%s*(.-)%s*$")
        if thread == "" then thread = nil end
      end
    end
  elseif c ~= "" and find("JFMASOND", c, 1, true) then
    local sec, ms = syslog_line_ts(first, now_sec)
    if sec then t = { sec, ms } end
  end
  if t == nil and level == nil then
    if find(c, "^%u") then
      local l, g = match(first, "^(%u+):([^:%s]*):")
      if l and LEVEL_SET[l] then
        level = l
        if g ~= "" then logger = g end
      end
    end
    if level == nil and find(first, '] "', 1, true) then
      is_access = access(first, doc)
      if is_access then
        t = doc["@timestamp"]
        doc["@timestamp"] = nil
      end
    end
  end
  if level == nil and not is_access and find(first, "=", 1, true) then
    local head = sub(first, 1, 1024)
    if find(head, "level=", 1, true) or find(head, "lvl=", 1, true) or find(head, "severity=", 1, true) then
      level = logfmt(head, { "level", "lvl", "severity" }, function(p) return match(head, '^"?(%a+)', p) end)
    end
    if t == nil then
      -- the leftmost ts=/time=/timestamp=, whatever its value; an unusable value gives no time
      local v = logfmt(head, { "ts", "time", "timestamp" },
        function(p) return match(head, '^"([^"]*)"', p) or match(head, "^(%S+)", p) end)
      if v then
        local sec, ms = ts_string(v)
        if sec then t = { sec, ms } end
      end
    end
  end
  if level == nil and not is_access then level = level_word(first) end
  if t == nil and not is_access then
    -- an ISO timestamp further in: its first colon is 13 characters after its start
    local p = find(first, ":", 14, true)
    local tries = 4
    while p and p <= 64 and tries > 0 do
      local sec, ms, e = iso_at(first, p - 13)
      if e then
        if sec then t = { sec, ms } end
        break
      end
      p = find(first, ":", p + 1, true)
      tries = tries - 1
    end
  end
  if t then doc["@timestamp"] = t end
  if level then
    local lv = normalize_level(level)
    if lv then
      doc.log = { level = lv }
      if logger then doc.log.logger = logger end
    end
  elseif logger then
    doc.log = { logger = logger }
  end
  if thread then doc.process = { thread = { name = thread } } end
  if nl then
    local stack, etype, emsg = stack_info(text)
    if stack then
      doc.error = { stack_trace = stack, type = etype, message = emsg }
    end
  end
  return doc
end

local function parse_line(text, now_sec)
  if sub(text, 1, 1) == "{" then
    local obj = json_decode(text)
    if is_map(obj) then return from_json(obj, text) end
  end
  return from_text(text, now_sec)
end

-- --------------------------------------------------------------------------- app files

-- pang's service_from_path for the glob /pang/logs/app/*/*.log: the first folder under the root,
-- else the file name up to its first dot
local function service_from_path(path)
  if sub(path, 1, #APP_ROOT) == APP_ROOT then
    local svc = match(path, "^([^/]+)/", #APP_ROOT + 1)
    if svc then return svc end
  end
  local name = match(path, "([^/]*)$") or ""
  local stem = match(name, "^(.*)%.[^.]*$") or name
  if sub(name, 1, 1) == "." and not find(name, ".", 2, true) then stem = name end
  local svc = match(stem, "^([^.]*)")
  if svc == nil or svc == "" then return "unknown" end
  return svc
end

function pang_app(tag, timestamp, record)
  local text = record[TAIL_TEXT_KEY]
  if type(text) ~= "string" then text = record.message end
  if type(text) ~= "string" then return 0, timestamp, record end
  local now_sec = type(timestamp) == "table" and timestamp.sec or floor(tonumber(timestamp) or 0)
  local ok, doc = pcall(parse_line, text, now_sec)
  if not ok or type(doc) ~= "table" then doc = { message = text } end
  local code, t = 2, timestamp
  local found = doc["@timestamp"]
  doc["@timestamp"] = nil
  if type(found) == "table" then
    code, t = 1, ts(found[1], found[2])
  end
  local service = doc.service
  if type(service) ~= "table" then service = {} doc.service = service end
  local path = record[TAIL_PATH_KEY]
  if service.name == nil then service.name = type(path) == "string" and service_from_path(path) or "unknown" end
  if ENVIRONMENT and service.environment == nil then service.environment = ENVIRONMENT end
  if VERSION and service.version == nil then service.version = VERSION end
  local log = doc.log
  if type(log) ~= "table" then log = {} doc.log = log end
  if type(path) == "string" then log.file = { path = path } end
  if record[TAIL_OFFSET_KEY] ~= nil then log.offset = tonumber(record[TAIL_OFFSET_KEY]) end
  doc.host = { name = HOST_NAME }
  doc.agent = agent()
  local event = doc.event
  if type(event) ~= "table" then event = {} doc.event = event end
  event.dataset = "app"
  return code, t, doc
end

-- --------------------------------------------------------------------------- syslog

local FACILITY_NAMES = {
  "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
  "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
  "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}
local SEVERITY_NAMES = { "emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug" }

-- trailing NUL, CR and LF off (SysLogHandler appends NUL, rsyslog's protocol-23 format LF)
local function rstrip_end(s)
  local n = #s
  while n > 0 do
    local b = byte(s, n)
    if b ~= 0 and b ~= 13 and b ~= 10 then break end
    n = n - 1
  end
  return sub(s, 1, n)
end

-- pang's _iso_time over an RFC 3339 match at `pos` (date, "T" or also " ", time, fraction up to 9
-- digits, zone Z or +hh:mm/+hhmm): ({sec or nil, ms}, end) or nil when the pattern does not match
local function rfc3339(s, pos, t_or_space)
  local y, mo, d, sep, h, mi, sec, e = match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)(.)(%d%d):(%d%d):(%d%d)()", pos)
  if y == nil then return nil end
  if not (sep == "T" or sep == "t" or (t_or_space and sep == " ")) then return nil end
  local frac
  local f = match(s, "^[.,](%d+)", e)
  if f then
    if #f > 9 then return nil end
    frac, e = f, e + 1 + #f
  end
  local zone = match(s, "^[Zz]", e) or match(s, "^[+-]%d%d:?%d%d", e)
  if zone then e = e + #zone end
  sec = tonumber(sec)
  if sec == 60 then sec = 59 end
  local off = zone_offset(zone and upper(zone) or nil)
  local t = epoch(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), sec)
  return { t and off and in_range(t - off) or nil, frac_ms(frac) }, e
end

-- RFC 5424 structured data at s[pos] == "[": (table, end) or nil when malformed
local function structured_data(s, pos)
  local sd = setmetatable({}, MAP_MT)
  local n = #s
  while pos <= n and sub(s, pos, pos) == "[" do
    local id, e = match(s, '^%[([^%s="%]]+)()', pos)
    if id == nil or #id > 64 then return nil end
    local params = sd[id]
    if params == nil then
      params = setmetatable({}, MAP_MT)
      sd[id] = params
    end
    pos = e
    while true do
      local name, e2 = match(s, '^ +([^%s="%]]+)="()', pos)
      if name == nil or #name > 64 then break end
      -- the value runs to the first quote not escaped by a backslash; only \", \\ and \] are escapes
      local p = e2
      local buf = {}
      while true do
        local q = find(s, '["\\]', p)
        if q == nil then return nil end
        buf[#buf + 1] = sub(s, p, q - 1)
        if sub(s, q, q) == '"' then
          p = q + 1
          break
        end
        local nx = sub(s, q + 1, q + 1)
        if nx == "" then return nil end
        if nx == '"' or nx == "\\" or nx == "]" then buf[#buf + 1] = nx else buf[#buf + 1] = "\\" .. nx end
        p = q + 2
      end
      local value = table.concat(buf)
      local old = params[name]
      if old == nil then
        params[name] = value
      elseif type(old) == "table" then
        old[#old + 1] = value
      else
        params[name] = setmetatable({ old, value }, ARRAY_MT) -- RFC 5424 allows a repeated PARAM-NAME
      end
      pos = p
    end
    local close = match(s, "^ *%]()", pos)
    if close == nil then return nil end
    pos = close
  end
  return sd, pos
end

local function month_of(mon)
  return MONTHS[upper(sub(mon, 1, 1)) .. lower(sub(mon, 2))]
end

-- pang's _TS_BSD at `pos`: "Mmm dd [yyyy ]hh:mm:ss[.f]" then spaces or the end:
-- ({sec or nil, ms}, end after the spaces) or nil
local function bsd_at(s, pos, received_sec)
  local mon, e = match(s, "^(%a%a%a)()", pos)
  if mon == nil or month_of(mon) == nil then return nil end
  local day
  day, e = match(s, "^  ?(%d%d?)()", e)
  if day == nil then return nil end
  local year, h, mi, sec, e2 = match(s, "^ (%d%d%d%d) (%d%d):(%d%d):(%d%d)()", e)
  if year == nil then
    h, mi, sec, e2 = match(s, "^ (%d%d):(%d%d):(%d%d)()", e)
    if h == nil then return nil end
  end
  e = e2
  local frac, fe = match(s, "^%.(%d+)()", e)
  if frac then
    if #frac > 9 then return nil end
    e = fe
  end
  local sp = match(s, "^ +()", e)
  if sp then e = sp elseif e <= #s then return nil end
  local month = month_of(mon)
  local y
  if year then
    y = tonumber(year)
  else
    -- no year: the one that puts the message at most 5 months after received, or 6 before
    local ry, rm = utc_year_month(received_sec)
    y = ry
    local delta = month - rm
    if delta >= 6 then y = y - 1 elseif delta < -6 then y = y + 1 end
  end
  sec = tonumber(sec)
  if sec == 60 then sec = 59 end
  local t = epoch(y, month, tonumber(day), tonumber(h), tonumber(mi), sec)
  return { t, frac_ms(frac) }, e
end

-- pang's _TAG at `pos`: NAME[[PID]][:] then a space or the end: (name, pid or nil, colon?, end) or nil
local function tag_at(s, pos)
  local name, e = match(s, "^([^%s%[%]:]+)()", pos)
  if name == nil or #name > 128 then return nil end
  local pid
  if sub(s, e, e) == "[" then
    local inner, e2 = match(s, "^%[([^%s%[%]]*)%]()", e)
    if inner == nil or #inner > 128 then return nil end
    pid, e = inner, e2
  end
  local colon = sub(s, e, e) == ":"
  if colon then e = e + 1 end
  if e <= #s then
    if sub(s, e, e) ~= " " then return nil end
    e = e + 1
  end
  return name, pid, colon, e
end

-- pang's parse: the document for a message, or nil when it is neither RFC 5424 nor RFC 3164
local function parse_syslog(text, received_sec)
  local s = rstrip_end(text)
  local n = #s
  local pos = 1
  while pos <= n do
    local b = byte(s, pos)
    if b ~= 32 and b ~= 9 and b ~= 13 and b ~= 10 and b ~= 0 then break end
    pos = pos + 1
  end
  local syslog = setmetatable({}, MAP_MT)
  local log = {}
  local pri
  local pv, pe = match(s, "^<(%d%d?%d?)>()", pos)
  if pv and tonumber(pv) < 192 then
    pri = tonumber(pv)
    pos = pe
    local fac, sev = floor(pri / 8), pri % 8
    log.level = SEVERITY_NAMES[sev + 1]
    syslog.priority = pri
    syslog.facility = { code = fac, name = FACILITY_NAMES[fac + 1] }
    syslog.severity = { code = sev, name = SEVERITY_NAMES[sev + 1] }
  end
  local timestamp, hostname, message
  local is5424 = false
  if pri then
    -- VERSION SP (TIMESTAMP|-) SP HOSTNAME SP APP-NAME SP PROCID SP MSGID, then SP or the end
    local ver, e = match(s, "^([1-9]%d?%d?) ()", pos)
    local tsv, e2
    if ver then
      if sub(s, e, e) == "-" then
        e2 = e + 1
      else
        tsv, e2 = rfc3339(s, e, false)
      end
    end
    local host, app, procid, msgid, e3
    if e2 then host, app, procid, msgid, e3 = match(s, "^ (%S+) (%S+) (%S+) (%S+)()", e2) end
    if host and (e3 == n + 1 or sub(s, e3, e3) == " ") then
      is5424 = true
      syslog.version = tonumber(ver)
      timestamp = tsv
      if host ~= "-" then hostname = host end
      if app ~= "-" then syslog.appname = app end
      if procid ~= "-" then syslog.procid = procid end
      if msgid ~= "-" then syslog.msgid = msgid end
      pos = e3 + 1
      if pos > n then
        message = ""
      elseif sub(s, pos, pos) == "-" and (pos == n or sub(s, pos + 1, pos + 1) == " ") then
        message = sub(s, pos + 2)
      else
        local sd, sde
        if sub(s, pos, pos) == "[" then sd, sde = structured_data(s, pos) end
        if sd and (sde == n + 1 or sub(s, sde, sde) == " ") then
          if not empty(sd) then syslog.structured_data = sd end
          message = sub(s, sde + 1)
        else -- no or malformed structured data: the rest is the message
          message = sub(s, pos)
        end
      end
      if sub(message, 1, 3) == "\239\187\191" then message = sub(message, 4) end -- a UTF-8 BOM
    end
  end
  if not is5424 then
    -- RFC 3164 and its variants
    local start = match(s, "^ *()", pos)
    local t, te = bsd_at(s, start, received_sec)
    if t == nil then
      local e
      t, e = rfc3339(s, start, true)
      if t then
        local sp = match(s, "^ +()", e)
        if sp then te = sp elseif e == n + 1 then te = e else t = nil end
      end
    end
    if t == nil then
      if pri == nil then return nil end
    else
      timestamp = t
      pos = te
      local name, pid, colon, e = tag_at(s, pos)
      if name == nil or (pid == nil and not colon) then
        local host, spaces, he = match(s, "^(%S+)( *)()", pos)
        if host and #host <= 255 and (spaces ~= "" or he == n + 1) then
          hostname = host
          pos = he
          name, pid, colon, e = tag_at(s, pos)
        end
      end
      if name ~= nil and (pid ~= nil or colon) then
        syslog.appname = name
        if pid and pid ~= "" then syslog.procid = pid end
        pos = e
      end
    end
    message = sub(s, pos)
  end
  local doc = { message = message }
  if timestamp and timestamp[1] then doc["@timestamp"] = timestamp end
  if hostname then
    syslog.hostname = hostname
    doc.host = { hostname = hostname }
  end
  if not empty(syslog) then log.syslog = syslog end
  if not empty(log) then doc.log = log end
  return doc
end

-- "udp://10.0.0.5:514", "tcp://[::1]:514", "10.0.0.5:514" -> client.address (no port) and client.ip
local function peer(p)
  local scheme, rest = match(p, "^(%a+)://(.*)$")
  local addr = rest or p
  local bracketed = match(addr, "^%[([^%]]*)%]")
  if bracketed then
    addr = bracketed
  else
    local _, colons = gsub(addr, ":", "")
    if colons == 1 or (scheme and colons > 1 and find(addr, ":%d+$")) then addr = match(addr, "^(.*):[^:]*$") end
  end
  local base = match(addr, "^([^%%]*)")
  if is_ipv4(base) or is_ipv6(base) then return { address = addr, ip = base } end
  return { address = addr }
end

local EPHEMERAL_ID
do
  local f = io.open((PROC or "/proc") .. "/sys/kernel/random/uuid", "r")
  if f then EPHEMERAL_ID = f:read("*l") f:close() end
  if EPHEMERAL_ID == nil or EPHEMERAL_ID == "" then
    math.randomseed(os.time() + floor((os.clock() or 0) * 1000000))
    EPHEMERAL_ID = format("%08x-%08x", math.random(0, 2147483646), math.random(0, 2147483646))
  end
end
local SEQUENCE = 0

function pang_syslog(tag, timestamp, record)
  local raw = record[SYSLOG_TEXT_KEY]
  if type(raw) ~= "string" then raw = record.message end
  if type(raw) ~= "string" then return 0, timestamp, record end
  local received = type(timestamp) == "table" and timestamp.sec or floor(tonumber(timestamp) or 0)
  local ok, doc = pcall(parse_syslog, raw, received)
  if not ok then doc = nil end
  if doc == nil then
    doc = { message = rstrip_end(raw), tags = setmetatable({ "pang.parse_error" }, ARRAY_MT) }
  end
  local code, t = 2, timestamp
  local found = doc["@timestamp"]
  doc["@timestamp"] = nil
  if type(found) == "table" and found[1] then code, t = 1, ts(found[1], found[2]) end
  local event = { original = raw, dataset = "syslog" }
  -- Generate_ID hashes the record: the sequence keeps two equal messages in the same second apart
  SEQUENCE = SEQUENCE + 1
  event.sequence = SEQUENCE
  doc.event = event
  local p = record[SYSLOG_PEER_KEY]
  if type(p) == "string" and p ~= "" then doc.client = peer(p) end
  doc.host = doc.host or {}
  doc.host.name = HOST_NAME
  local a = agent()
  a.ephemeral_id = EPHEMERAL_ID
  doc.agent = a
  return code, t, doc
end

-- --------------------------------------------------------------------------- metrics

local function metric_doc(metricset, body)
  local doc = {
    event = { dataset = "metrics", module = "system" },
    metricset = { name = metricset, period = METRICS_PERIOD_MS },
    host = { name = HOST_NAME },
    agent = agent(),
    system = body,
  }
  return doc
end

local function pct(part, whole)
  if whole > 0 then return round4(part / whole) end
  return 0
end

local function load_doc()
  local f = io.open(PROC .. "/loadavg", "r")
  if not f then return nil end
  local line = f:read("*l")
  f:close()
  local one, five, fifteen = match(line or "", "^(%S+) (%S+) (%S+)")
  one, five, fifteen = tonumber(one), tonumber(five), tonumber(fifteen)
  if not (one and five and fifteen) then return nil end
  return one, five, fifteen
end

-- disk and netif report bytes per interval; pang ships counters. Sums since Fluent Bit started:
local TOTALS = {}
local function add(key, v)
  TOTALS[key] = (TOTALS[key] or 0) + (tonumber(v) or 0)
  return TOTALS[key]
end

local NETIF = {
  { "rx.bytes", "in", "bytes" }, { "tx.bytes", "out", "bytes" },
  { "rx.packets", "in", "packets" }, { "tx.packets", "out", "packets" },
  { "rx.errors", "in", "errors" }, { "tx.errors", "out", "errors" },
  { "rx.drop", "in", "dropped" }, { "tx.drop", "out", "dropped" },
}

function pang_metrics(tag, timestamp, record)
  if record.cpu_p ~= nil then
    local cores = 0
    for k, _ in pairs(record) do
      if type(k) == "string" and match(k, "^cpu%d+%.p_cpu$") then cores = cores + 1 end
    end
    if cores == 0 then cores = 1 end
    local function state(p)
      local norm = (tonumber(p) or 0) / 100
      return { pct = round4(norm * cores), norm = { pct = round4(norm) } }
    end
    local docs = { metric_doc("cpu", { cpu = {
      cores = cores, total = state(record.cpu_p), user = state(record.user_p), system = state(record.system_p),
    } }) }
    local one, five, fifteen = load_doc()
    if one then
      docs[2] = metric_doc("load", { load = {
        ["1"] = round4(one), ["5"] = round4(five), ["15"] = round4(fifteen),
        norm = { ["1"] = round4(one / cores), ["5"] = round4(five / cores), ["15"] = round4(fifteen / cores) },
        cores = cores,
      } })
    end
    return 2, timestamp, docs
  end
  if record["Mem.total"] ~= nil then
    local kib = 1024
    local total = (tonumber(record["Mem.total"]) or 0) * kib
    local used = (tonumber(record["Mem.used"]) or 0) * kib       -- total - free, as pang's used.bytes
    local available = (tonumber(record["Mem.free"]) or 0) * kib  -- MemAvailable, as pang's actual.free
    local stotal = (tonumber(record["Swap.total"]) or 0) * kib
    local sused = (tonumber(record["Swap.used"]) or 0) * kib
    local sfree = (tonumber(record["Swap.free"]) or 0) * kib
    return 2, timestamp, metric_doc("memory", { memory = {
      total = total, free = total - used,
      used = { bytes = used, pct = pct(used, total) },
      actual = { free = available, used = { bytes = total - available, pct = pct(total - available, total) } },
      swap = { total = stotal, free = sfree, used = { bytes = sused, pct = pct(sused, stotal) } },
    } })
  end
  if record.read_size ~= nil or record.write_size ~= nil then
    return 2, timestamp, metric_doc("diskio", { diskio = {
      name = "all",
      read = { bytes = add("disk.read", record.read_size) },
      write = { bytes = add("disk.write", record.write_size) },
    } })
  end
  local iface
  for k, _ in pairs(record) do
    if type(k) == "string" then
      iface = match(k, "^(.+)%.rx%.bytes$")
      if iface then break end
    end
  end
  if iface then
    local net = { name = iface, ["in"] = {}, out = {} }
    for _, m in ipairs(NETIF) do
      local v = record[iface .. "." .. m[1]]
      if v ~= nil then net[m[2]][m[3]] = add(iface .. "." .. m[1], v) end
    end
    return 2, timestamp, metric_doc("network", { network = net })
  end
  return -1, timestamp, record -- not a sample this script knows: dropped rather than mis-indexed
end
