-- bench/fleet.lua [SIZES [DELAY [REPEAT]]] - many Telnet devices from one script:
-- N login + command sessions, all at once, against local router-like
-- servers (spec/servers/router.lua) that answer each request after DELAY
-- seconds (default 0.02), opened by host name ("localhost"), for each N
-- in SIZES (default "1000,10000").  Each N runs in a fresh process, for
-- netlua (this script with --client) and for the anchor, Python's asyncio
-- over raw streams doing the same (bench/fleet_asyncio.py); the table
-- gives time, peak RSS and RSS per session for both and their ratios.
-- Each figure is the fastest of REPEAT runs (default 3), netlua and the
-- anchor taking turns, so that a noisy moment lands on neither alone.
--
-- Run inside the private namespace:
--   make && sh scripts/netns.sh env LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" \
--     LUA_CPATH="build/?.so;;" lua5.4 bench/fleet.lua
--
-- It raises its descriptor limit to the hard limit (by running itself
-- again under `ulimit -n`); 10 000 sessions need a hard limit above that.
-- FLEET_HOST=127.0.0.1 in the environment skips the name lookups (both
-- clients), to see what they cost.  The clients run on the interpreter
-- that runs this script (luajit bench/fleet.lua, with LUA_CPATH naming
-- build-jit, times LuaJIT).
local netlua = require "netlua"
local telnet = require "netlua.telnet"

-- ---- the client: one size, in a process of its own ---------------------

local function vm(field)
  local f = io.open("/proc/self/status")
  local kb = f:read("*a"):match(field .. ":%s+(%d+)")
  f:close()
  return tonumber(kb)
end

-- CPU seconds this process used so far, all its threads (utime + stime)
local function cpu()
  local f = io.open("/proc/self/stat")
  local st = f:read("*a")
  f:close()
  local fields = {}
  for x in st:match("%) (.*)"):gmatch("%S+") do fields[#fields + 1] = x end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100  -- clock ticks
end

local function client(n, ports)
  local base, cpu0 = vm("VmHWM"), cpu()
  local function session(i)
    local tn, err = telnet.open(os.getenv("FLEET_HOST") or "localhost", ports[i % #ports + 1], {timeout = 120})
    if not tn then return nil, err end
    local ok, lerr = tn:login{user = "admin", password = "pw", prompt = "r%d+> $"}
    if not ok then tn:close() return nil, lerr end
    local out, cerr = tn:cmd("show version")
    tn:close()
    if not out or not out:find("Version 1.2.3", 1, true) then return nil, cerr or "bad output" end
    return true
  end
  local failed = 0
  local t0 = netlua.monotime()
  for i = 1, n do
    netlua.spawn(function()
      local ok, err = session(i)
      if not ok then
        failed = failed + 1
        if failed <= 3 then io.stderr:write("session ", i, ": ", tostring(err), "\n") end
      end
    end)
  end
  assert(netlua.run())
  local took = netlua.monotime() - t0
  print(("netlua %d %.3f %d %d %d %.2f"):format(n, took, vm("VmHWM"), failed, base, cpu() - cpu0))
end

if arg[1] == "--client" then
  local ports = {}
  for i = 3, #arg do ports[#ports + 1] = tonumber(arg[i]) end
  client(tonumber(arg[2]), ports)
  return
end

-- ---- the driver ---------------------------------------------------------

local H = require "helper"

local SIZES = arg[1] or "1000,10000"
local LUA = arg[-1] or "lua5.4"  -- this script's interpreter, for the clients
local DELAY = tonumber(arg[2]) or 0.02
local REPEAT = tonumber(arg[3]) or 3
local SERVERS = 4

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

-- the highest descriptor limit we may have, for us and the servers
if os.getenv("NETLUA_FLEET_RAISED") ~= "1" then
  local hard = sh("sh -c 'ulimit -Hn'"):match("%S+")
  local cmd = ("ulimit -n %s && NETLUA_FLEET_RAISED=1 exec %s %s %s %s %s"):format(
    hard, LUA, H.shquote(arg[0]), H.shquote(SIZES), H.shquote(tostring(DELAY)),
    H.shquote(tostring(REPEAT)))
  local ok, _, code = os.execute("sh -c " .. H.shquote(cmd))
  if type(ok) == "number" then  -- 5.1, LuaJIT: the wait status
    ok, code = ok == 0, ok >= 256 and math.floor(ok / 256) or 1
  end
  os.exit(ok and 0 or code)
end

local ports, pids = {}, {}
for i = 1, SERVERS do
  ports[i] = H.free_port()
  pids[i] = H.lua_server("router", ports[i], DELAY)
end
local portlist = table.concat(ports, " ")

local function parse(out, who)
  local name, n, secs, peak, failed, base, cpu = out:match("(%a+) (%d+) (%S+) (%d+) (%d+) (%d+) (%S+)")
  assert(name == who, who .. " client failed:\n" .. out)
  return {n = tonumber(n), secs = tonumber(secs), peak = tonumber(peak) / 1024,
          failed = tonumber(failed), base = tonumber(base) / 1024, cpu = tonumber(cpu)}
end

local rows = {}
local function faster(best, m)
  if best == nil or m.secs < best.secs then return m end
  return best
end
for n in SIZES:gmatch("%d+") do
  local nl, py
  for _ = 1, REPEAT do
    nl = faster(nl, parse(sh(("%s %s --client %s %s"):format(LUA, H.shquote(arg[0]), n, portlist)), "netlua"))
    py = faster(py, parse(sh(("/usr/bin/python3 %s %s %s"):format(
      H.shquote(H.root .. "/bench/fleet_asyncio.py"), n, portlist)), "asyncio"))
  end
  rows[#rows + 1] = {nl = nl, py = py}
end
for _, pid in ipairs(pids) do H.kill(pid) end

print(("netlua fleet bench: Telnet login + 1 command per session, all at once, by host name; "
  .. "answers after %d ms, %d servers; descriptor limit %s; netlua on %s; fastest of %d")
  :format(DELAY * 1000, SERVERS, sh("sh -c 'ulimit -n'"):match("%S+"), LUA, REPEAT))
print(("%-9s %-8s %9s %8s %6s %10s %10s %12s"):format(
  "sessions", "client", "time s", "CPU s", "failed", "peak MiB", "base MiB", "KiB/session"))
for _, r in ipairs(rows) do
  for _, c in ipairs {{"netlua", r.nl}, {"asyncio", r.py}} do
    local m = c[2]
    m.per = m.peak * 1024 / m.n
    print(("%-9d %-8s %9.2f %8.2f %6d %10.1f %10.1f %12.1f"):format(
      m.n, c[1], m.secs, m.cpu, m.failed, m.peak, m.base, m.per))
  end
  print(("%-9d %-8s %9.2fx %7.2fx %6s %10.2fx %10s %11.2fx"):format(
    r.nl.n, "ratio", r.nl.secs / r.py.secs, r.nl.cpu / r.py.cpu, "", r.nl.peak / r.py.peak, "",
    r.nl.per / r.py.per))
end
print("ratio = netlua / asyncio (targets: time <= 0.5x, memory per session <= 1.0x); "
  .. "CPU = the client process's user + system time, all threads (the servers share the machine); "
  .. "KiB/session = peak RSS / sessions")
