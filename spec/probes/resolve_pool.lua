-- probes/resolve_pool.lua MODE N: many name lookups from one script, run
-- by spec/resolve_pool_spec.lua in a child whose descriptor limit the
-- spec sets (`ulimit -n`).  Prints "key value..." lines.
--   many N     N tasks each look up "localhost" with a service of their
--              own (port 20000 + i) at once: how many succeeded, how many
--              got an answer for another task's port, the first failure,
--              and the most threads this process had meanwhile
--   fleet N    N tasks look up getaddrinfo("localhost", "ftp") at once
--   exhausted  every descriptor taken: what a lookup (in and out of a
--              task) and a connect by name say
local netlua = require "netlua"
local lookup = require "netlua.lookup"
local tcp = require "netlua.tcp"  -- now: with no descriptor left, require cannot open files
local mode, n = arg[1], tonumber(arg[2]) or 0

-- 5.1 and LuaJIT lack table.pack
local pack = table.pack or function(...) return {n = select("#", ...), ...} end

local function report(key, ...)
  local t = pack(...)
  for i = 1, t.n do t[i] = tostring(t[i]) end
  print(key .. " " .. table.concat(t, " "))
  io.stdout:flush()
end

local function threads()
  local f = io.open("/proc/self/status")
  local k = f and tonumber(f:read("*a"):match("Threads:%s*(%d+)")) or 0
  if f then f:close() end
  return k
end

if mode == "many" or mode == "fleet" then
  local ok, wrong, first, done, most = 0, 0, nil, 0, threads()
  for i = 1, n do
    netlua.spawn(function()
      local port = mode == "many" and 20000 + i or 21
      local r, msg, code = lookup.getaddrinfo("localhost", mode == "many" and tostring(port) or "ftp",
                                              {socktype = "stream"})
      if r then
        if r[1] and r[1].port == port and r[1].addr == "127.0.0.1" then ok = ok + 1
        else wrong = wrong + 1 end
      elseif not first then
        first = tostring(code) .. " " .. tostring(msg)
      end
      done = done + 1
    end)
  end
  netlua.spawn(function()
    while done < n do
      most = math.max(most, threads())
      netlua.sleep(0.005)
    end
  end)
  assert(netlua.run())
  report("ok", ok)
  report("wrong", wrong)
  report("threads", most)
  report("first", first or "none")
elseif mode == "exhausted" then
  -- the scheduler's own descriptor and module first
  netlua.run(function() netlua.sleep(0) end)
  -- take every descriptor left
  local held = {}
  while true do
    local f = io.open("/dev/null")
    if not f then break end
    held[#held + 1] = f
  end
  local function show(key, v, msg, code)
    report(key, v and "ok" or code, msg)
  end
  show("plain", lookup.getaddrinfo("localhost", "ftp"))
  show("deadline", lookup.getaddrinfo("localhost", "ftp", {timeout = 5}))
  show("connect", tcp.connect("localhost", 21, {timeout = 5}))
  netlua.run(function()
    show("task", lookup.getaddrinfo("localhost", "ftp"))
    show("taskconnect", tcp.connect("localhost", 21, {timeout = 5}))
  end)
  -- and once descriptors are free again, lookups work again
  for _, f in ipairs(held) do f:close() end
  held = nil
  collectgarbage()
  show("after", lookup.getaddrinfo("localhost", "ftp"))
  netlua.run(function()
    show("taskafter", lookup.getaddrinfo("localhost", "ftp"))
  end)
end
