-- bench/fleet.lua [SESSIONS [DELAY [SEQ_SAMPLE]]] - many Telnet devices
-- from one script: N login + command sessions against local router-like
-- servers (spec/servers/router.lua) that answer each request after DELAY
-- seconds, one after the other versus all at once under netlua.run.
--
-- Run inside the private namespace, with room for the descriptors:
--   make && sh scripts/netns.sh sh -c 'ulimit -n 16384 && \
--     LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" LUA_CPATH="build/?.so;;" \
--     lua5.4 bench/fleet.lua 1000 0.02'
--
-- One after the other, 1000 sessions take minutes; by default that column
-- times SEQ_SAMPLE sessions (100) and scales the figure, and says so.
-- Pass SEQ_SAMPLE = SESSIONS to time them all.
local netlua = require "netlua"
local telnet = require "netlua.telnet"
local H = require "helper"

local N = tonumber(arg[1]) or 1000
local DELAY = tonumber(arg[2]) or 0.02
local SAMPLE = math.min(N, tonumber(arg[3]) or 100)
local SERVERS = 4

local ports, pids = {}, {}
for i = 1, SERVERS do
  ports[i] = H.free_port()
  pids[i] = H.lua_server("router", ports[i], DELAY)
end

local function session(i)
  local tn, err = telnet.open("127.0.0.1", ports[i % SERVERS + 1], {timeout = 30})
  if not tn then return nil, err end
  local ok, lerr = tn:login{user = "admin", password = "pw", prompt = "r%d+> $"}
  if not ok then tn:close() return nil, lerr end
  local out, cerr = tn:cmd("show version")
  tn:close()
  if not out or not out:find("Version 1.2.3", 1, true) then return nil, cerr or "bad output" end
  return true
end

local function vmhwm()
  local f = io.open("/proc/self/status")
  local kb = f:read("a"):match("VmHWM:%s+(%d+)")
  f:close()
  return tonumber(kb) / 1024
end

-- one after the other
local t0 = netlua.monotime()
for i = 1, SAMPLE do assert(session(i)) end
local seq = (netlua.monotime() - t0) * N / SAMPLE

-- all at once
local failed = 0
t0 = netlua.monotime()
for i = 1, N do
  netlua.spawn(function()
    local ok, err = session(i)
    if not ok then failed = failed + 1 io.stderr:write("session ", i, ": ", tostring(err), "\n") end
  end)
end
assert(netlua.run())
local par = netlua.monotime() - t0

for _, pid in ipairs(pids) do H.kill(pid) end

print(("netlua fleet bench: %d Telnet sessions (login + 1 command), answers after %d ms, %d servers")
  :format(N, DELAY * 1000, SERVERS))
print(("sequential            %8.2f s%s"):format(seq,
  SAMPLE < N and (" (timed %d sessions, scaled to %d)"):format(SAMPLE, N) or ""))
print(("netlua.run            %8.2f s   (%d failed)"):format(par, failed))
print(("speed-up              %8.1fx"):format(seq / par))
print(("peak RSS (this script) %7.1f MiB"):format(vmhwm()))
