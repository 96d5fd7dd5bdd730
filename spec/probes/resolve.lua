-- probes/resolve.lua MODE: name lookups as a script sees them, run by
-- spec/resolve_spec.lua in a mount namespace whose /etc/resolv.conf
-- points at spec/servers/dns_slow.lua.  Prints "key value..." lines.
--   coop     lookups in tasks while another task ticks every 20 ms
--   timeout  lookups with a timeout against a resolver that never answers
--   block    a lookup outside any task, no timeout (the plain call)
--   order    one resolver thread: four lookups in tasks end in the order
--            they were asked
--   cancel   one resolver thread held by a dead lookup: lookups queued
--            behind it time out or are closed, and are then dropped
--            from the queue, not run
local netlua = require "netlua"
local lookup = require "netlua.lookup"
local telnet = require "netlua.telnet"
local ftp = require "netlua.ftp"
local mode = arg[1]

-- 5.1 and LuaJIT lack table.pack and table.unpack
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local unpack = table.unpack or unpack
-- it sends (UDP to 127.0.0.1, DNS to the scripted server): only inside
-- the private namespace
assert(os.getenv("NETLUA_NETNS") == "1", "run me through scripts/netns.sh (make test)")

local function report(key, ...)
  local t = pack(...)
  for i = 1, t.n do t[i] = tostring(t[i]) end
  print(key .. " " .. table.concat(t, " "))
  io.stdout:flush()
end

-- Runs fn and reports key, "ok" or the failure's code, the seconds it
-- took and the second value (a message, or what was found).
local function timed(key, fn)
  local t0 = netlua.monotime()
  local v, msg, code = fn()
  report(key, v and "ok" or code, netlua.monotime() - t0, msg)
end

if mode == "coop" then
  local srv = assert(netlua.tcp.listen("127.0.0.1", 0))
  local _, port = srv:getsockname()
  local ticks, done = 0, 0
  local function job(key, fn)
    netlua.spawn(function()
      timed(key, fn)
      done = done + 1
    end)
  end
  -- a job whose call must give `want` as its first value
  local function expect(key, want, fn, ...)
    local args = pack(...)
    job(key, function()
      local v, msg, code = fn(unpack(args, 1, args.n))
      if v then return v == want or nil, v, "wrong" end
      return v, msg, code
    end)
  end
  job("connect", function()
    local c, msg, code = netlua.tcp.connect("slow.netlua.test", port, {timeout = 5})
    if c then
      local ip = c:getpeername()
      c:close()
      return ip == "127.0.0.1" or nil, "peer " .. tostring(ip), "wrong"
    end
    return c, msg, code
  end)
  job("getaddrinfo", function()
    local r, msg, code = lookup.getaddrinfo("slow2.netlua.test", 80, {family = "inet", socktype = "stream"})
    if r then return r[1].addr == "127.0.0.1" or nil, r[1].addr, "wrong" end
    return r, msg, code
  end)
  expect("gethostbyname", "127.0.0.1", lookup.gethostbyname, "slow3.netlua.test")
  -- an FTP greeting from a task of ours
  local fsrv = assert(netlua.tcp.listen("127.0.0.1", 0))
  local _, fport = fsrv:getsockname()
  netlua.spawn(function()
    local c = assert(fsrv:accept(5))
    c:send("220 probe ready\r\n")
    netlua.sleep(0.2)
    c:close()
  end)
  job("ftp", function()
    local f = ftp.new{timeout = 5}
    local welcome, msg, code = f:connect("slow4.netlua.test", fport)
    f:close()
    if welcome then return welcome:find("probe ready", 1, true) and true or nil, welcome, "wrong" end
    return welcome, msg, code
  end)
  -- closing a session whose connect is still looking the name up
  local victim = ftp.new{timeout = 5}
  job("ftpclose", function() return victim:connect("slow7.netlua.test", fport) end)
  netlua.spawn(function()
    netlua.sleep(0.1)
    victim:close()
  end)
  job("sendto", function()
    local u = assert(netlua.udp.socket())
    local sink = assert(netlua.udp.socket())
    assert(sink:bind("127.0.0.1", 0))
    local _, sport = sink:getsockname()
    local n, _, msg, code = u:sendto("ping", "slow8.netlua.test", sport)
    local got = n and sink:receivefrom()
    u:close() sink:close()
    if n then return got == "ping" or nil, got, "wrong" end
    return n, msg, code
  end)
  expect("getnameinfo", "slowhost.netlua.test", lookup.getnameinfo, "127.0.0.2", 80)
  job("gethostbyname_ex", function()
    local name, aliases_or_msg, addrs_or_code = lookup.gethostbyname_ex("slow5.netlua.test")
    if name then return addrs_or_code[1] == "127.0.0.1" or nil, addrs_or_code[1], "wrong" end
    return name, aliases_or_msg, addrs_or_code
  end)
  expect("gethostbyaddr", "slowhost.netlua.test", lookup.gethostbyaddr, "127.0.0.2")
  netlua.spawn(function()
    while done < 9 do
      ticks = ticks + 1
      netlua.sleep(0.02)
    end
  end)
  netlua.run()
  report("ticks", ticks)
  srv:close()
elseif mode == "timeout" then
  timed("connect", function() return netlua.tcp.connect("dead.netlua.test", 80, {timeout = 0.3}) end)
  timed("getaddrinfo", function() return lookup.getaddrinfo("dead.netlua.test", 80, {timeout = 0.3}) end)
  timed("getnameinfo", function() return lookup.getnameinfo("127.0.0.2", 80, {timeout = 0.3}) end)
  timed("sendto", function()
    local u = assert(netlua.udp.socket())
    u:settimeout(0.3)
    local n, err, msg, code = u:sendto("x", "dead.netlua.test", 9)
    u:close()
    if n == nil and err ~= "timeout" then return nil, "LuaSocket's err: " .. tostring(err), "wrong" end
    return n, msg, code
  end)
  timed("telnet", function() return telnet.open("dead.netlua.test", 23, {timeout = 0.3}) end)
  timed("ftp", function() return ftp.new{timeout = 0.3}:connect("dead.netlua.test") end)
  -- and inside a task, where the timeout is the same bound
  netlua.run(function()
    timed("task-connect", function() return netlua.tcp.connect("dead.netlua.test", 80, {timeout = 0.3}) end)
  end)
  -- the helper threads left waiting for the dead resolver must not take
  -- the script's signals: SIGINT (2) and SIGTERM (15) blocked in each
  local helpers, blocking = 0, 0
  local self = io.open("/proc/self/stat"):read("*l"):match("^(%d+)")
  for tid in io.popen("ls /proc/" .. self .. "/task"):lines() do
    local f = io.open("/proc/" .. self .. "/task/" .. tid .. "/status")
    local status = f and f:read("*a") or ""
    if f then f:close() end
    if tid ~= self and status ~= "" then
      helpers = helpers + 1
      -- bits 1 and 14 of the 64-bit mask, read from its hex digits (a
      -- double would lose the low bits of a full mask)
      local mask = status:match("SigBlk:%s*(%x+)") or "0"
      local function bit(b)
        local at = #mask - math.floor(b / 4)
        local d = at >= 1 and tonumber(mask:sub(at, at), 16) or 0
        return math.floor(d / 2 ^ (b % 4)) % 2 == 1
      end
      if bit(1) and bit(14) then blocking = blocking + 1 end
    end
  end
  report("threads", helpers, blocking)
elseif mode == "block" then
  local t0 = netlua.monotime()
  local r, msg, code = lookup.getaddrinfo("slow.netlua.test", 80, {family = "inet"})
  report("getaddrinfo", r and r[1].addr or code, netlua.monotime() - t0, msg)
elseif mode == "order" then
  report("max", lookup.resolver_threads(1))
  local order = {}
  netlua.run(function()
    local tasks = {}
    for i = 1, 4 do
      tasks[i] = netlua.spawn(function()
        local r, _, code = lookup.getaddrinfo("slow" .. i .. ".netlua.test", 80, {family = "inet"})
        order[#order + 1] = r and r[1].addr == "127.0.0.1" and i or tostring(code)
      end)
    end
    for i = 1, 4 do netlua.join(tasks[i]) end
  end)
  report("order", table.concat(order, ","))
elseif mode == "cancel" then
  lookup.resolver_threads(1)
  netlua.run(function()
    -- the first takes the one thread for the resolver's 3 s; the others
    -- wait in the queue until their timeout
    for i = 1, 5 do
      netlua.spawn(timed, "dead" .. i, function()
        return lookup.getaddrinfo("dead" .. i .. ".netlua.test", 80, {timeout = 0.3})
      end)
    end
    -- closed by another task while its lookup is queued
    local victim = ftp.new{timeout = 30}
    netlua.spawn(timed, "ftpclose", function() return victim:connect("dead9.netlua.test", 21) end)
    netlua.spawn(function()
      netlua.sleep(0.1)
      victim:close()
    end)
    netlua.sleep(0.5)
    -- once the thread is free, the next lookup is this one: the five
    -- abandoned ones (3 s each) are not run first
    timed("after", function() return lookup.getaddrinfo("localhost", 80, {timeout = 30}) end)
  end)
else
  error("unknown mode " .. tostring(mode))
end
