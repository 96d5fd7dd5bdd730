--- bench/multicast.lua: datagrams per second, netlua vs raw C vs LuaSocket.
--
-- Run (after `make bench`), inside a private namespace only:
--   sh scripts/netns.sh env LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/multicast.lua
-- Arguments (all optional): COUNT (400000 sends), ROUNDS (2000 receive
-- rounds of 200), SIZE (64 bytes), REPEAT (5: each figure is the best of).
--
-- Sending: COUNT datagrams of SIZE bytes to an IPv4 group on lo, once
-- with no member (the send path alone) and once with one local member
-- that never reads (every send also pays for local delivery).  sendmany
-- is shown with UDP_SEGMENT (runs of equal-sized datagrams cut by the
-- kernel) and without it ("gso off": plain sendmmsg).  Receiving: per round,
-- BATCH datagrams are queued on a joined socket (not timed), then drained
-- (timed); BATCH is small enough for LuaSocket's capped receive buffer.
-- The "malloc'd copy" row is the C loop also copying each datagram into
-- a block of its own, freed after the round: the least any receive that
-- hands datagrams over as strings must do.
-- The "Lua floor" row is bench/c/lua/recvfloor.c: a C method doing only
-- recvfrom, the string, the cached sender text and the port, with no
-- checks, no timeout and no wait.  It is what the Lua call and the string
-- cost on top of raw C, so netlua's receivefrom is read against it too.
-- Every figure comes from the same run; ratios are against raw C.
local netlua = require "netlua"
local mc = require "netlua.multicast"

local COUNT, SIZE = tonumber(arg[1]) or 400000, tonumber(arg[3]) or 64
local ROUNDS = tonumber(arg[2]) or 2000  -- 0.1 s or more a figure: shorter windows swing ±15%
-- LuaSocket cannot raise its receive buffer past the system cap (~208 KiB):
-- a round must fit in it
local BATCH = SIZE <= 128 and 200 or 40
local MANY = 128                       -- datagrams per sendmany/receivemany
local GROUP, RGROUP = "239.77.0.1", "239.77.0.2"
local REF = "build/bench/mcast_ref"

local function exists(p) local f = io.open(p) if f then f:close() return true end end
assert(os.getenv("NETLUA_NETNS") == "1", "run me through scripts/netns.sh")

local function free_port()
  local s = assert(mc.socket())
  assert(s:bind("127.0.0.1", 0))
  local _, p = s:getsockname()
  s:close()
  return p
end

local function raw_c(cmd)
  if not exists(REF) then return nil end
  local p = assert(io.popen(REF .. " " .. cmd))
  local out = p:read("*a")
  p:close()
  return tonumber(out:match("rate (%d+)"))
end

local payload = ("x"):rep(SIZE)

-- ---- sending ------------------------------------------------------------
-- With `member`, a socket joins the group first and is never read (as the
-- C reference does): every send then also pays for local delivery.
local function with_member(port, member, fn)
  local m = member and assert(mc.receiver{group = GROUP, port = port})
  local rate = fn()
  if m then m:close() end
  return rate
end

local function send_netlua(port, member)
  return with_member(port, member, function()
    local s = assert(mc.sender{ttl = 1})
    local t0 = netlua.monotime()
    for _ = 1, COUNT do s:sendto(payload, GROUP, port) end
    local dt = netlua.monotime() - t0
    s:close()
    return COUNT / dt
  end)
end

-- LuaSocket's connected UDP: setpeername once, then send
local function send_netlua_connected(port, member)
  return with_member(port, member, function()
    local s = assert(mc.sender{ttl = 1})
    assert(s:setpeername(GROUP, port))
    local t0 = netlua.monotime()
    for _ = 1, COUNT do s:send(payload) end
    local dt = netlua.monotime() - t0
    s:close()
    return COUNT / dt
  end)
end

local function send_netlua_many(port, member, gso)
  return with_member(port, member, function()
    local s = assert(mc.sender{ttl = 1})
    assert(s:setoption("gso", gso))
    local batch = {}
    for i = 1, MANY do batch[i] = payload end
    local n = math.floor(COUNT / MANY)
    local t0 = netlua.monotime()
    for _ = 1, n do s:sendmany(batch, GROUP, port) end
    local dt = netlua.monotime() - t0
    s:close()
    return n * MANY / dt
  end)
end

local ok_ls, socket = pcall(require, "socket")
if not ok_ls then socket = nil end

local function send_luasocket(port, member)
  return with_member(port, member, function()
    local s = assert(socket.udp())
    -- LuaSocket makes its descriptor lazily: options fail before a bind
    assert(s:setsockname("*", 0))
    assert(s:setoption("ip-multicast-ttl", 1))
    local t0 = netlua.monotime()
    for _ = 1, COUNT do s:sendto(payload, GROUP, port) end
    local dt = netlua.monotime() - t0
    s:close()
    return COUNT / dt
  end)
end

-- ---- receiving ----------------------------------------------------------
-- drain(n) must take n datagrams and return how many it got.
local function rounds(port, drain)
  local tx = assert(mc.sender{ttl = 1})
  local total, got = 0, 0
  for _ = 1, ROUNDS do
    -- filled one sendto at a time, as the C reference does, so every
    -- method drains the same kind of queued packets
    for _ = 1, BATCH do assert(tx:sendto(payload, RGROUP, port)) end
    local t0 = netlua.monotime()
    got = got + drain(BATCH)
    total = total + (netlua.monotime() - t0)
  end
  tx:close()
  assert(got == ROUNDS * BATCH, ("lost datagrams: %d of %d"):format(ROUNDS * BATCH - got, ROUNDS * BATCH))
  return got / total
end

-- drain(n) for a socket with LuaSocket's receivefrom: one call a datagram
local function receivefrom_loop(r)
  return function(n)
    for i = 1, n do
      if not r:receivefrom(2048) then return i - 1 end
    end
    return n
  end
end

local function recv_netlua(port)
  local r = assert(mc.receiver{group = RGROUP, port = port, rcvbuf = 4 * 1024 * 1024})
  local rate = rounds(port, receivefrom_loop(r))
  r:close()
  return rate
end

-- a batch receive method ("receivemany", "receivedatas" or
-- "receivepacked", which takes `senders`), MANY a call
local function recv_netlua_batch(port, method, senders)
  local r = assert(mc.receiver{group = RGROUP, port = port, rcvbuf = 4 * 1024 * 1024})
  local packed = method == "receivepacked"
  local rate = rounds(port, function(n)
    local got = 0
    while got < n do
      local t, sizes = r[method](r, MANY, 2048, senders)
      if not t then return got end
      got = got + (packed and #sizes or #t)
    end
    return got
  end)
  r:close()
  return rate
end

-- the floor: bench/c/lua/recvfloor.c, the least any binding can do per
-- datagram (method call, recvfrom, string, cached sender text, port) with
-- no checks and no waits; built by `make bench` beside netlua's core.so
local core_so = package.searchpath("netlua.core", package.cpath)
local floor_dir = core_so and core_so:gsub("netlua/core%.so$", "bench/")
local ok_floor, recvfloor = pcall(function()
  return assert(package.loadlib(floor_dir .. "recvfloor.so", "luaopen_recvfloor"))()
end)
if not ok_floor then recvfloor = nil end

local function recv_floor(port)
  local r = assert(mc.receiver{group = RGROUP, port = port, rcvbuf = 4 * 1024 * 1024})
  local rate = rounds(port, receivefrom_loop(recvfloor.wrap(r:getfd())))
  r:close()
  return rate
end

local function recv_luasocket(port)
  local r = assert((socket.udp4 or socket.udp)())  -- udp4 makes its descriptor now
  assert(r:setoption("reuseaddr", true))
  assert(r:setsockname("*", port))
  assert(r:setoption("ip-add-membership", {multiaddr = RGROUP, interface = "*"}))
  r:settimeout(1)
  local rate = rounds(port, receivefrom_loop(r))
  r:close()
  return rate
end

-- ---- report -------------------------------------------------------------
-- Each figure is the best of REPEAT runs, taken in turns (all methods once,
-- then again...) so that a noisy moment of the machine does not land on
-- one method only.
local REPEAT = tonumber(arg[4]) or 5
local rows = {}
local function row(what, ref, fn)
  rows[#rows + 1] = {what = what, ref = ref, fn = fn}
end

for _, member in ipairs {false, true} do
  local tag = member and "send, 1 member:" or "send, no member:"
  local ref = tag .. " raw C sendto loop"
  row(ref, ref, function()
    return raw_c(("send %s %d %d %d%s"):format(GROUP, free_port(), COUNT, SIZE,
      member and " member" or ""))
  end)
  row(tag .. " netlua sendto loop", ref, function() return send_netlua(free_port(), member) end)
  row(tag .. " netlua send loop (setpeername)", ref,
    function() return send_netlua_connected(free_port(), member) end)
  row(("%s netlua sendmany (%d/call)"):format(tag, MANY), ref,
    function() return send_netlua_many(free_port(), member, true) end)
  row(tag .. " netlua sendmany, gso off", ref,
    function() return send_netlua_many(free_port(), member, false) end)
  if socket then
    row(tag .. " LuaSocket sendto loop", ref, function() return send_luasocket(free_port(), member) end)
  end
end

local rref = "receive: raw C recvfrom loop"
row(rref, rref, function()
  return raw_c(("recv %s %d %d %d %d"):format(RGROUP, free_port(), ROUNDS, BATCH, SIZE))
end)
row("receive: raw C recvfrom + a malloc'd copy each", rref, function()
  return raw_c(("recv %s %d %d %d %d copy"):format(RGROUP, free_port(), ROUNDS, BATCH, SIZE))
end)
if recvfloor then
  row("receive: Lua floor (bare C method, no checks)", rref,
    function() return recv_floor(free_port()) end)
end
row("receive: netlua receivefrom loop", rref, function() return recv_netlua(free_port()) end)
row(("receive: netlua receivemany (%d/call)"):format(MANY), rref,
  function() return recv_netlua_batch(free_port(), "receivemany") end)
row(("receive: netlua receivedatas (%d/call)"):format(MANY), rref,
  function() return recv_netlua_batch(free_port(), "receivedatas") end)
row(("receive: netlua receivepacked (%d/call)"):format(MANY), rref,
  function() return recv_netlua_batch(free_port(), "receivepacked") end)
row(("receive: netlua receivepacked, no senders (%d/call)"):format(MANY), rref,
  function() return recv_netlua_batch(free_port(), "receivepacked", false) end)
if socket then
  row("receive: LuaSocket receivefrom loop", rref, function() return recv_luasocket(free_port()) end)
end

local best = {}
for _ = 1, REPEAT do
  for _, r in ipairs(rows) do
    local rate = r.fn()
    if rate and (best[r.what] == nil or rate > best[r.what]) then best[r.what] = rate end
  end
end

print(("netlua multicast bench: %d-byte datagrams, IPv4 group on lo, %s, best of %d")
  :format(SIZE, _VERSION, REPEAT))
print(("%-52s %12s %9s"):format("what", "datagrams/s", "vs raw C"))
for _, r in ipairs(rows) do
  local rate, ref = best[r.what], best[r.ref]
  local ratio = (rate and ref) and ("%.2fx"):format(rate / ref) or "-"
  print(("%-52s %12s %9s"):format(r.what, rate and ("%.0f"):format(rate) or "n/a", ratio))
end
local fl, nl = best["receive: Lua floor (bare C method, no checks)"], best["receive: netlua receivefrom loop"]
if fl and nl then
  print(("netlua receivefrom vs the Lua floor: %.2fx"):format(nl / fl))
elseif not recvfloor then
  print("(the Lua floor module is missing: run `make bench` first)")
end
if not socket then print("(LuaSocket not installed: its rows are left out)") end
if not exists(REF) then print("(" .. REF .. " missing: run `make bench` first)") end
